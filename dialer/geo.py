"""Where a callee is: time zones from ZIP codes and from phone area codes, offline.

ZIP data comes from the ``zipcodes`` package (bundled USPS/Census data with IANA zones) and
area-code zones from ``phonenumbers``' geocoding tables, so nothing is looked up over the network.
"""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

import pandas as pd
import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone
from phonenumbers.tzdata import TIMEZONE_DATA

_ZIP5 = re.compile(r"^\s*(\d{5})(?:[-\s]?\d{4})?\s*$")


@cache
def known_timezones() -> frozenset[str]:
    """Every IANA zone name the installed tz database knows."""
    return frozenset(available_timezones())


def is_timezone(name: str) -> bool:
    """True when ``name`` is an IANA zone name such as ``America/Chicago``."""
    return name in known_timezones()


@cache
def _zip_table() -> dict[str, tuple[str | None, str | None]]:
    table: dict[str, tuple[str | None, str | None]] = {}
    zones = known_timezones()
    for row in zipcodes.list_all():  # type: ignore[no-untyped-call]
        zone = row.get("timezone") or None
        table[row["zip_code"]] = (zone if zone in zones else None, row.get("state") or None)
    return table


def zip5(postal_code: str | None) -> str | None:
    """The 5-digit ZIP of a US postal code (``97201`` or ``97201-1234``), else None."""
    if not postal_code:
        return None
    match = _ZIP5.match(postal_code)
    return match.group(1) if match else None


def zip_timezone(postal_code: str | None) -> str | None:
    """The IANA zone of a US ZIP code, or None when unknown."""
    code = zip5(postal_code)
    return _zip_table().get(code, (None, None))[0] if code else None


def zip_state(postal_code: str | None) -> str | None:
    """The 2-letter state of a US ZIP code, or None when unknown."""
    code = zip5(postal_code)
    return _zip_table().get(code, (None, None))[1] if code else None


def zip_timezones(postal_codes: pd.Series) -> pd.Series:
    """Vectorised :func:`zip_timezone` (object Series with None where unknown)."""
    uniques = postal_codes.dropna().unique()
    lookup = {code: zip_timezone(code) for code in uniques}
    return postal_codes.map(lookup).astype(object).where(postal_codes.notna(), None)


_ZONES_BY_PREFIX: dict[str, tuple[str, ...]] = {}
_STATE_BY_PREFIX: dict[str, str | None] = {}


def _zones_for_prefix(prefix: str, e164: str) -> tuple[str, ...]:
    """Zones of the first number seen with this prefix (the data is no finer than it)."""
    found = _ZONES_BY_PREFIX.get(prefix)
    if found is None:
        found = _ZONES_BY_PREFIX[prefix] = _lookup_zones(e164)
    return found


def _lookup_zones(e164: str) -> tuple[str, ...]:
    number = phonenumbers.parse(e164)
    zones = tuple(phone_timezone.time_zones_for_number(number))
    # With no data for the prefix the library answers with every zone of the country, which
    # says nothing about where the callee is: treat that as unknown.
    country = TIMEZONE_DATA.get(str(number.country_code), ())
    if len(country) > 1 and set(zones) == set(country):
        return ()
    return tuple(sorted(z for z in zones if is_timezone(z)))


def phone_timezones(e164: str) -> tuple[str, ...]:
    """IANA zones of a valid E.164 number's area code (empty when unknown)."""
    # The library's zone data goes no finer than area code plus exchange (+1 NPA NXX).
    prefix = e164[:8] if e164.startswith("+1") else e164
    return _zones_for_prefix(prefix, e164)


STATE_CODES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
}  # fmt: skip


def _state_for_prefix(prefix: str, e164: str) -> str | None:
    """The state of the first number seen with this prefix."""
    if prefix not in _STATE_BY_PREFIX:
        _STATE_BY_PREFIX[prefix] = _lookup_state(e164)
    return _STATE_BY_PREFIX[prefix]


def _lookup_state(e164: str) -> str | None:
    # Imported here: the geocoding data takes about 0.4 s to load, which every command that
    # imports this module would pay whether or not it reads a number's state.
    from phonenumbers import geocoder

    description = geocoder.description_for_number(phonenumbers.parse(e164), "en")
    tail = description.rsplit(", ", 1)[-1]
    if len(tail) == 2 and tail.isupper():
        return tail
    return STATE_CODES.get(description)


def phone_state(e164: str) -> str | None:
    """The US state of a number's area code, when the geocoding data knows it (area codes do
    not cross state lines, so the area code decides)."""
    if not e164.startswith("+1"):
        return None
    return _state_for_prefix(e164[:5], e164)
