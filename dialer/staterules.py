"""State calling rules: the versioned, sourced table and pure questions about it.

The table lives in ``dialer/data/state_rules.yaml`` and is validated by the models below (every
model forbids unknown keys)::

    version: "2026-11-28"
    sources:  [{id, title, url, retrieved}]            # every rule names its sources by id
    federal:  {window: [HH:MM, HH:MM], caps: [{calls, window_hours}], sources, note}
    states:
      XX:                                              # 2-letter USPS code
        weekday | saturday | sunday: [HH:MM, HH:MM] or null (null: no calls that day)
        holidays: no_calls or null                     # null: holidays follow the day's window
        extra_holidays: [{month, day, name}]           # fixed dates added to the calendar
        caps: [{calls, window_hours}]
        sunday_and_holiday_prerecorded: [HH:MM, HH:MM] or null
        sources: [id], note: text

Windows are ``[start, end)`` in the callee's local time. A state's window is always
intersected with the federal one; states missing from the table get the federal rules.

Policy: where sources disagree or a cell is ambiguous, the table takes the *most restrictive
reading* and its ``note`` says so; the functions here do the same (an entry with several
candidate states gets the intersection of their windows and the union of their caps).

A state's *legal holidays* are the ``holidays`` library's public calendar for that state
(``holidays.US(subdiv=...)``), which includes observed days, plus the table's
``extra_holidays``. That full calendar is used rather than the short list of typical dates
(New Year's, MLK Day, Memorial Day, July 4, Labor Day, Thanksgiving, Christmas) because it
contains that list and restricts more.

Everything here is pure: no clock, no environment, no database. :func:`load_state_rules`
reads a file and lets :class:`pydantic.ValidationError` through for a malformed table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import yaml
from holidays import country_holidays
from holidays.countries.united_states import UnitedStates
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

Interval = tuple[time, time]
"""A ``[start, end)`` span of callee-local wall-clock time within one day."""

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_SATURDAY, _SUNDAY = 5, 6


def _parse_window(value: object) -> object:
    """Turn ``["HH:MM", "HH:MM"]`` into two times; YAML must quote them (10:00 is an int)."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError('expected a window ["HH:MM", "HH:MM"]')
    times: list[time] = []
    for part in value:
        if not isinstance(part, str) or not _HHMM.fullmatch(part):
            raise ValueError(f'expected a quoted time "HH:MM", got {part!r}')
        times.append(time.fromisoformat(part))
    return tuple(times)


def _check_order(window: Interval) -> Interval:
    start, end = window
    if end <= start:
        raise ValueError(f"window end {end:%H:%M} is not after its start {start:%H:%M}")
    return window


Window = Annotated[Interval, BeforeValidator(_parse_window), AfterValidator(_check_order)]
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]


class Cap(NamedTuple):
    """At most ``calls`` calls to one phone in any rolling ``window_hours`` hours."""

    calls: Annotated[int, Field(ge=1)]
    window_hours: Annotated[int, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """A document the table was compiled from."""

    id: SourceId
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")
    retrieved: str | None = Field(
        pattern=r"^\d{4}-\d{2}(-\d{2})?$",
        description="As-of date (YYYY-MM or YYYY-MM-DD) of the copy used; null if unrecorded.",
    )


class ExtraHoliday(_Model):
    """A fixed-date state holiday the ``holidays`` library does not list."""

    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    name: str = Field(min_length=1)

    @model_validator(mode="after")
    def _real_date(self) -> ExtraHoliday:
        date(2000, self.month, self.day)  # a leap year, so 02-29 is allowed; raises ValueError
        return self


class FederalRule(_Model):
    """The rules for every callee: the daily window and the per-phone caps."""

    window: Window
    caps: tuple[Cap, ...] = ()
    sources: tuple[SourceId, ...] = Field(min_length=1)
    note: str = ""


class StateRule(_Model):
    """One state's narrowing of the federal rules."""

    weekday: Window | None
    saturday: Window | None
    sunday: Window | None
    holidays: Literal["no_calls"] | None = None
    extra_holidays: tuple[ExtraHoliday, ...] = ()
    caps: tuple[Cap, ...] = ()
    sunday_and_holiday_prerecorded: Window | None = None
    sources: tuple[SourceId, ...] = Field(min_length=1)
    note: str = Field(min_length=1)


class StateRules(_Model):
    """The whole table: version, sources, federal rules and per-state rules."""

    version: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    sources: tuple[Source, ...] = Field(min_length=1)
    federal: FederalRule
    states: dict[str, StateRule]

    @model_validator(mode="after")
    def _check_references(self) -> StateRules:
        ids = [source.id for source in self.sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate source ids in {ids}")
        unknown_states = sorted(set(self.states) - set(UnitedStates.subdivisions))
        if unknown_states:
            raise ValueError(f"states: {unknown_states} are not US state or territory codes")
        cited = [("federal", self.federal.sources)]
        cited += [(f"states.{code}", rule.sources) for code, rule in self.states.items()]
        for where, refs in cited:
            unknown = sorted(set(refs) - set(ids))
            if unknown:
                raise ValueError(f"{where}.sources: unknown source ids {unknown}")
        return self


def load_state_rules(path: Path | None = None) -> StateRules:
    """Load and validate the table at ``path``, or the packaged table (cached) when None."""
    if path is None:
        return _packaged_rules()
    return _parse(path.read_text(encoding="utf-8"))


@cache
def _packaged_rules() -> StateRules:
    text = resources.files("dialer").joinpath("data/state_rules.yaml").read_text(encoding="utf-8")
    return _parse(text)


def _parse(text: str) -> StateRules:
    return StateRules.model_validate(yaml.safe_load(text))


def state_rule(rules: StateRules, state: str | None) -> StateRule | None:
    """The table's row for ``state`` (any case), or None when only federal rules apply."""
    return None if state is None else rules.states.get(state.upper())


@cache
def _library_holidays(state: str, year: int) -> frozenset[date]:
    subdiv = state if state in UnitedStates.subdivisions else None
    return frozenset(country_holidays("US", subdiv=subdiv, years=year))


def is_state_holiday(rules: StateRules, state: str | None, local_date: date) -> bool:
    """True when ``local_date`` is a legal holiday (observed days included) in ``state``."""
    if state is None:
        return False
    if local_date in _library_holidays(state.upper(), local_date.year):
        return True
    rule = state_rule(rules, state)
    extras = rule.extra_holidays if rule is not None else ()
    return any((h.month, h.day) == (local_date.month, local_date.day) for h in extras)


def is_restricted_holiday(rules: StateRules, state: str | None, local_date: date) -> bool:
    """True when ``state`` forbids calls on its holidays and ``local_date`` is one of them."""
    rule = state_rule(rules, state)
    if rule is None or rule.holidays != "no_calls":
        return False
    return is_state_holiday(rules, state, local_date)


def intersect_intervals(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The sorted ``[start, end)`` spans that lie in both ``a`` and ``b``."""
    spans = [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b]
    return sorted(span for span in spans if span[0] < span[1])


def _day_window(rule: StateRule, local_date: date) -> Interval | None:
    weekday = local_date.weekday()
    if weekday == _SUNDAY:
        return rule.sunday
    return rule.saturday if weekday == _SATURDAY else rule.weekday


def allowed_intervals(rules: StateRules, state: str | None, local_date: date) -> list[Interval]:
    """Callee-local spans on ``local_date`` when ``state`` (None: federal only) allows calls."""
    federal = [rules.federal.window]
    rule = state_rule(rules, state)
    if rule is None:
        return federal
    day = _day_window(rule, local_date)
    if day is None or is_restricted_holiday(rules, state, local_date):
        return []
    spans = intersect_intervals(federal, [day])
    narrowed = rule.sunday_and_holiday_prerecorded
    if narrowed is not None and (
        local_date.weekday() == _SUNDAY or is_state_holiday(rules, state, local_date)
    ):
        spans = intersect_intervals(spans, [narrowed])
    return spans


def most_restrictive(
    rules: StateRules, states: Iterable[str | None], local_date: date
) -> list[Interval]:
    """Spans allowed by every candidate state at once; no candidates means federal only."""
    spans = [rules.federal.window]
    for state in states:
        spans = intersect_intervals(spans, allowed_intervals(rules, state, local_date))
    return spans


def call_caps(rules: StateRules, state: str | None) -> list[Cap]:
    """Per-phone caps for a callee in ``state``: the federal caps plus the state's own.

    Every cap is a rolling window of elapsed hours: ``Cap(3, 24)`` means no more than 3 calls
    in any 24 hours ending at the moment of the dial. The federal healthcare limits "1 a day,
    3 a week" become ``Cap(1, 24)`` and ``Cap(3, 168)``. The rolling reading is the stricter
    one: calls happen only inside 08:00-21:00, so two calls on one callee-local calendar day
    are under 14 hours apart and two in one calendar week under 7 days apart; a rolling cap
    therefore also enforces the calendar-day and calendar-week limits, and in addition
    forbids e.g. a call at 20:30 followed by one at 08:00 next morning. Caps count every call
    to the phone, across campaigns and subjects. The list is de-duplicated and sorted.
    """
    return most_restrictive_caps(rules, [state])


def most_restrictive_caps(
    rules: StateRules, states: Iterable[str | None], *, federal: bool = True
) -> list[Cap]:
    """Every cap any candidate state imposes (plus the federal caps unless ``federal`` is
    False), de-duplicated."""
    caps = set(rules.federal.caps) if federal else set()
    for state in states:
        rule = state_rule(rules, state)
        caps.update(rule.caps if rule is not None else ())
    return sorted(caps, key=_cap_order)


def _cap_order(cap: Cap) -> tuple[int, int]:
    return (cap.window_hours, cap.calls)
