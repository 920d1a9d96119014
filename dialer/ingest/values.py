"""Vectorised value parsers for import cells.

Each parser takes a Series of stripped strings ("" for blank) and returns the parsed values
(None for blank) plus a boolean mask of cells that are not blank and do not parse. Parsing
works on the distinct values, so a million rows cost what their few thousand distinct dates do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import pandas as pd
import phonenumbers

from dialer import geo

TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})
LANGUAGE_ALIASES = {
    "en": "en",
    "eng": "en",
    "english": "en",
    "es": "es",
    "spa": "es",
    "spanish": "es",
}
# The 50 states, DC and the inhabited territories.
US_STATES = frozenset(
    {
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "PR",
        "VI",
        "GU",
        "AS",
        "MP",
    }
)
_BAD = object()


def _parse_distinct(
    cells: pd.Series, parse: Callable[[str], object]
) -> tuple[pd.Series, pd.Series]:
    """Apply ``parse`` (which returns ``_BAD`` on failure) to each distinct non-blank cell."""
    blank = cells.eq("")
    lookup = {value: parse(value) for value in cells[~blank].unique()}
    parsed = cells.map(lookup).astype(object)
    bad = parsed.map(lambda v: v is _BAD).astype(bool) & ~blank
    parsed = parsed.where(~blank & ~bad, None)
    return parsed, bad


def parse_dates(cells: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series]:
    """Dates in ``fmt`` (default ISO ``%Y-%m-%d``) -> ``datetime.date``."""

    def parse(value: str) -> object:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            return _BAD

    return _parse_distinct(cells, parse)


def parse_local_datetimes(cells: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series]:
    """Naive local datetimes in ``fmt`` -> ``datetime`` (no zone yet)."""

    def parse(value: str) -> object:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            return _BAD

    return _parse_distinct(cells, parse)


def parse_booleans(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """true/false, yes/no, 1/0 in any case -> bool."""

    def parse(value: str) -> object:
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        return _BAD

    return _parse_distinct(cells, parse)


def parse_choices(cells: pd.Series, allowed: Iterable[str]) -> tuple[pd.Series, pd.Series]:
    """One of ``allowed`` (case-insensitive) -> the allowed spelling."""
    by_lower = {a.lower(): a for a in allowed}
    return _parse_distinct(cells, lambda v: by_lower.get(v.lower(), _BAD))


def parse_integers(cells: pd.Series, minimum: int = 0) -> tuple[pd.Series, pd.Series]:
    """Whole numbers at least ``minimum`` -> int."""

    def parse(value: str) -> object:
        try:
            number = int(value)
        except ValueError:
            return _BAD
        return number if number >= minimum else _BAD

    return _parse_distinct(cells, parse)


def parse_states(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """2-letter US state or territory codes, upper-cased."""
    return _parse_distinct(cells, lambda v: v.upper() if v.upper() in US_STATES else _BAD)


def parse_timezones(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """IANA zone names such as ``America/Chicago``."""
    return _parse_distinct(cells, lambda v: v if geo.is_timezone(v) else _BAD)


def normalise_languages(cells: pd.Series) -> pd.Series:
    """en/eng/English -> en and es/spa/Spanish -> es (any case); others kept; blank -> None."""
    lowered = cells.str.lower()
    mapped = lowered.map(LANGUAGE_ALIASES)
    result = mapped.where(mapped.notna(), cells).astype(object)
    return result.where(cells.ne(""), None)


def normalise_phone(raw: str) -> tuple[str | None, bool]:
    """(E.164, valid) for a phone as typed; US is the default region, extensions are dropped."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_valid_number(number):
        return None, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


def normalise_phones(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Vectorised :func:`normalise_phone`: (E.164 or None, valid flag); blank -> (None, False)."""
    lookup = {value: normalise_phone(value) for value in cells[cells.ne("")].unique()}
    pairs = cells.map(lookup)
    e164 = pairs.map(lambda p: p[0] if isinstance(p, tuple) else None).astype(object)
    valid = pairs.map(lambda p: bool(p[1]) if isinstance(p, tuple) else False).astype(bool)
    return e164, valid


def join_errors(masks: list[tuple[pd.Series, str]], index: pd.Index) -> pd.Series:
    """Per row, the messages of every mask that is True, joined with '; ' ('' when none)."""
    result = pd.Series("", index=index, dtype=object)
    for mask, message in masks:
        hit = mask.reindex(index, fill_value=False).astype(bool)
        joined = result[hit].map(
            lambda current, message=message: f"{current}; {message}" if current else message
        )
        result[hit] = joined
    return result
