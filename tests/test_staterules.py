"""The state calling-rules table: it loads, cites its sources, and answers window/cap questions."""

from __future__ import annotations

import copy
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialer.staterules import (
    Cap,
    Interval,
    StateRules,
    allowed_intervals,
    call_caps,
    intersect_intervals,
    is_restricted_holiday,
    is_state_holiday,
    load_state_rules,
    most_restrictive,
    most_restrictive_caps,
)

RULES = load_state_rules()

# Every state in the reference notes' table (domain-facts §3.7).
REFERENCE_STATES = ["AL", "CT", "FL", "IL", "KY", "LA", "MD", "MA", "MI", "MN", "MS", "NV",
                    "NM", "OK", "PA", "RI", "ME", "NE", "UT", "TX"]  # fmt: skip
FEDERAL_ONLY = ["OR", "NY", "CA", "WA", "GA"]

MON = date(2026, 11, 30)
SAT = date(2026, 11, 28)
SUN = date(2026, 11, 29)
JULY_4_OBSERVED = date(2026, 7, 3)  # a Friday: July 4 2026 is a Saturday
THANKSGIVING = date(2026, 11, 26)
DAY_AFTER_THANKSGIVING = date(2026, 11, 27)  # a Pennsylvania legal holiday
BATTLE_OF_NEW_ORLEANS = date(2026, 1, 8)  # Louisiana extra, not in the holidays library


def span(start: str, end: str) -> Interval:
    """A ``[start, end)`` interval from two HH:MM strings."""
    return (time.fromisoformat(start), time.fromisoformat(end))


FEDERAL = [span("08:00", "21:00")]


def raw_table() -> dict[str, Any]:
    """The packaged YAML as a plain dict, for building malformed copies."""
    text = resources.files("dialer").joinpath("data/state_rules.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def test_packaged_table_loads_validates_and_is_cached() -> None:
    rules = load_state_rules()
    assert isinstance(rules, StateRules)
    assert rules.version == "2026-11-28"
    assert rules.federal.window == span("08:00", "21:00")
    assert load_state_rules() is rules


def test_loading_a_path_reads_that_file(tmp_path: Path) -> None:
    table = raw_table()
    table["version"] = "2027-01-01"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(table), encoding="utf-8")
    assert load_state_rules(path).version == "2027-01-01"


@pytest.mark.parametrize("state", REFERENCE_STATES)
def test_every_reference_state_is_in_the_table_with_resolvable_sources(state: str) -> None:
    source_ids = {source.id for source in RULES.sources}
    rule = RULES.states[state]
    assert rule.sources
    assert set(rule.sources) <= source_ids
    assert rule.note


def test_table_has_no_state_beyond_the_reference_notes() -> None:
    assert sorted(RULES.states) == sorted(REFERENCE_STATES)


def test_every_source_has_an_address_from_the_reference_notes() -> None:
    urls = {source.url for source in RULES.sources}
    assert "https://www.dropcowboy.com/state-compliance" in urls
    assert "https://dnc.com/holiday-alerts?year=2023" in urls
    assert set(RULES.federal.sources) <= {source.id for source in RULES.sources}


@pytest.mark.parametrize("day", [MON, SAT, SUN, THANKSGIVING], ids=["mon", "sat", "sun", "thanks"])
@pytest.mark.parametrize("state", [*FEDERAL_ONLY, None])
def test_states_without_a_row_get_the_federal_window(state: str | None, day: date) -> None:
    assert allowed_intervals(RULES, state, day) == FEDERAL


WINDOW_CASES = [
    ("AL", MON, [span("08:00", "20:00")], "AL-weekday"),
    ("AL", SAT, [span("08:00", "20:00")], "AL-saturday"),
    ("AL", SUN, [], "AL-sunday-no-calls"),
    ("AL", THANKSGIVING, [], "AL-thanksgiving-no-calls"),
    ("KY", MON, [span("10:00", "21:00")], "KY-weekday"),
    ("KY", SUN, [span("10:00", "21:00")], "KY-sunday"),
    ("ky", MON, [span("10:00", "21:00")], "KY-lower-case-code"),
    ("CT", MON, [span("09:00", "20:00")], "CT-takes-9-to-8"),
    ("CT", SUN, [span("09:00", "20:00")], "CT-sunday"),
    ("FL", SUN, [span("08:00", "20:00")], "FL-sunday"),
    ("IL", MON, [span("09:00", "21:00")], "IL-takes-prerecorded-9am"),
    ("LA", JULY_4_OBSERVED, [], "LA-july-4-observed"),
    ("LA", THANKSGIVING, [], "LA-thanksgiving"),
    ("LA", BATTLE_OF_NEW_ORLEANS, [], "LA-battle-of-new-orleans"),
    ("LA", SUN, [], "LA-sunday"),
    ("OR", JULY_4_OBSERVED, FEDERAL, "OR-july-4-observed"),
    ("OR", THANKSGIVING, FEDERAL, "OR-thanksgiving"),
    ("MS", SUN, [], "MS-sunday"),
    ("MS", JULY_4_OBSERVED, [], "MS-holiday-takes-no-calls"),
    ("MS", date(2027, 7, 5), [], "MS-sunday-holiday-moves-to-monday"),
    ("PA", SAT, [span("08:00", "12:00")], "PA-saturday-morning-only"),
    ("PA", SUN, [span("08:00", "21:00")], "PA-sunday"),
    ("PA", DAY_AFTER_THANKSGIVING, [], "PA-day-after-thanksgiving"),
    ("RI", MON, [span("09:00", "18:00")], "RI-weekday"),
    ("RI", SAT, [span("10:00", "17:00")], "RI-saturday"),
    ("RI", SUN, [], "RI-sunday"),
    ("TX", SAT, [span("09:00", "21:00")], "TX-saturday"),
    ("TX", SUN, [span("12:00", "21:00")], "TX-sunday-noon"),
    ("NE", MON, FEDERAL, "NE-weekday"),
    ("NE", SUN, [span("13:00", "21:00")], "NE-sunday-afternoon"),
    ("NE", THANKSGIVING, [span("13:00", "21:00")], "NE-holiday-afternoon"),
    ("UT", MON, FEDERAL, "UT-weekday"),
    ("UT", THANKSGIVING, [], "UT-holiday"),
    ("ME", SUN, FEDERAL, "ME-federal-window"),
]


@pytest.mark.parametrize(
    ("state", "day", "expected"),
    [pytest.param(s, d, e, id=i) for s, d, e, i in WINDOW_CASES],
)
def test_allowed_intervals(state: str, day: date, expected: list[Interval]) -> None:
    assert allowed_intervals(RULES, state, day) == expected


@pytest.mark.parametrize(
    ("state", "day", "expected"),
    [
        pytest.param("LA", JULY_4_OBSERVED, True, id="LA-observed-day"),
        pytest.param("LA", date(2026, 7, 4), True, id="LA-actual-saturday-date"),
        pytest.param("LA", BATTLE_OF_NEW_ORLEANS, True, id="LA-extra-holiday"),
        pytest.param("LA", MON, False, id="LA-ordinary-monday"),
        pytest.param("AL", date(2027, 12, 24), True, id="AL-christmas-saturday-moves-to-friday"),
        pytest.param("OR", THANKSGIVING, False, id="OR-holidays-not-restricted"),
        pytest.param("NE", THANKSGIVING, False, id="NE-holidays-narrowed-not-restricted"),
        pytest.param(None, THANKSGIVING, False, id="no-state"),
    ],
)
def test_is_restricted_holiday(state: str | None, day: date, expected: bool) -> None:
    assert is_restricted_holiday(RULES, state, day) is expected


def test_is_state_holiday_knows_states_outside_the_table() -> None:
    assert is_state_holiday(RULES, "OR", THANKSGIVING)
    assert not is_state_holiday(RULES, "OR", BATTLE_OF_NEW_ORLEANS)
    assert not is_state_holiday(RULES, None, THANKSGIVING)


FEDERAL_CAPS = [Cap(1, 24), Cap(3, 168)]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param("FL", [Cap(1, 24), Cap(3, 24), Cap(3, 168)], id="FL-3-per-24h"),
        pytest.param("MD", [Cap(1, 24), Cap(3, 24), Cap(3, 168)], id="MD-3-per-24h"),
        pytest.param("OK", [Cap(1, 24), Cap(3, 24), Cap(3, 168)], id="OK-3-per-24h"),
        pytest.param("ME", [Cap(1, 8), *FEDERAL_CAPS], id="ME-1-per-8h"),
        pytest.param("OR", FEDERAL_CAPS, id="OR-federal-only"),
        pytest.param("KY", FEDERAL_CAPS, id="KY-no-state-cap"),
        pytest.param(None, FEDERAL_CAPS, id="no-state"),
    ],
)
def test_call_caps(state: str | None, expected: list[Cap]) -> None:
    assert call_caps(RULES, state) == expected


def test_most_restrictive_caps_is_the_union_over_candidates() -> None:
    caps = most_restrictive_caps(RULES, ["ME", "FL", None])
    assert caps == [Cap(1, 8), Cap(1, 24), Cap(3, 24), Cap(3, 168)]
    assert most_restrictive_caps(RULES, []) == FEDERAL_CAPS


@pytest.mark.parametrize(
    ("states", "day", "expected"),
    [
        pytest.param(["KY", "MI"], MON, [span("10:00", "21:00")], id="KY-and-MI"),
        pytest.param(["KY", "CT"], MON, [span("10:00", "20:00")], id="KY-and-CT"),
        pytest.param(["TX", "NE"], SUN, [span("13:00", "21:00")], id="TX-and-NE-sunday"),
        pytest.param(["OR", "LA"], THANKSGIVING, [], id="OR-and-LA-holiday"),
        pytest.param(["OR", None], MON, FEDERAL, id="OR-and-unknown"),
        pytest.param(["AL", "FL"], SUN, [], id="AL-forbids-sunday"),
        pytest.param([], MON, FEDERAL, id="no-candidates-federal"),
    ],
)
def test_most_restrictive(states: list[str | None], day: date, expected: list[Interval]) -> None:
    assert most_restrictive(RULES, states, day) == expected


def test_intersect_intervals_keeps_only_overlaps() -> None:
    morning, evening = span("08:00", "12:00"), span("17:00", "21:00")
    assert intersect_intervals([morning, evening], [span("10:00", "18:00")]) == [
        span("10:00", "12:00"),
        span("17:00", "18:00"),
    ]
    assert intersect_intervals([morning], [span("12:00", "13:00")]) == []


def _set(table: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(table)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


MALFORMED = [
    (("surprise",), 1, ("surprise",), "Extra inputs are not permitted", "extra-top-level-key"),
    (("states", "KY", "weekend"), ["10:00", "21:00"], ("states", "KY", "weekend"),
     "Extra inputs are not permitted", "extra-state-key"),
    (("states", "KY", "weekday"), ["21:00", "10:00"], ("states", "KY", "weekday"),
     "window end 10:00 is not after its start 21:00", "end-before-start"),
    (("states", "KY", "sunday"), ["10:00", "10:00"], ("states", "KY", "sunday"),
     "window end 10:00 is not after its start 10:00", "empty-window"),
    (("states", "KY", "saturday"), [600, "21:00"], ("states", "KY", "saturday"),
     'expected a quoted time "HH:MM", got 600', "unquoted-yaml-time"),
    (("federal", "window"), ["8am", "9pm"], ("federal", "window"),
     "expected a quoted time \"HH:MM\", got '8am'", "not-hh-mm"),
    (("states", "FL", "caps"), [{"calls": 0, "window_hours": 24}], ("states", "FL", "caps", 0,
     "calls"), "greater than or equal to 1", "zero-calls-cap"),
    (("states", "KY", "holidays"), "maybe", ("states", "KY", "holidays"), "'no_calls'",
     "unknown-holiday-mode"),
    (("states", "XX"), {"weekday": None, "saturday": None, "sunday": None, "sources":
     ["dropcowboy"], "note": "x"}, (), "['XX'] are not US state or territory codes",
     "unknown-state-code"),
    (("states", "KY", "sources"), ["dropcowboy", "nowhere"], (),
     "states.KY.sources: unknown source ids ['nowhere']", "unknown-source-id"),
    (("states", "KY", "sources"), [], ("states", "KY", "sources"), "at least 1 item",
     "no-sources"),
    (("states", "LA", "extra_holidays"), [{"month": 2, "day": 30, "name": "x"}],
     ("states", "LA", "extra_holidays", 0), "day is out of range", "impossible-extra-holiday"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "loc", "message"),
    [pytest.param(p, v, loc, m, id=i) for p, v, loc, m, i in MALFORMED],
)
def test_malformed_table_is_rejected(
    path: tuple[str, ...], value: Any, loc: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        StateRules.model_validate(_set(raw_table(), path, value))
    errors = caught.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == loc
    assert message in errors[0]["msg"]


def test_duplicate_source_ids_are_rejected() -> None:
    table = raw_table()
    table["sources"].append(dict(table["sources"][0]))
    with pytest.raises(ValidationError, match="duplicate source ids"):
        StateRules.model_validate(table)


def test_loading_a_malformed_file_raises_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    table = _set(raw_table(), ("states", "KY", "weekday"), ["21:00", "10:00"])
    path.write_text(yaml.safe_dump(table), encoding="utf-8")
    with pytest.raises(ValidationError, match="window end 10:00 is not after its start 21:00"):
        load_state_rules(path)


def _inside(inner: Interval, spans: list[Interval]) -> bool:
    return any(start <= inner[0] and inner[1] <= end for start, end in spans)


CANDIDATES = [*REFERENCE_STATES, *FEDERAL_ONLY, None]


@given(
    states=st.lists(st.sampled_from(CANDIDATES), max_size=4),
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
)
def test_intersection_lies_inside_federal_and_every_candidate(
    states: list[str | None], day: date
) -> None:
    result = most_restrictive(RULES, states, day)
    singles = [allowed_intervals(RULES, state, day) for state in states]
    for inner in result:
        assert inner[0] < inner[1]
        assert _inside(inner, FEDERAL)
        assert all(_inside(inner, single) for single in singles)
    if any(single == [] for single in singles):
        assert result == []
