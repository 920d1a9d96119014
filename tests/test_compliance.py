"""The compliance gate: windows across zones and DST, state rules, holidays, DNC, caps, retry,
consent, ``not_before``; the abandonment ledger and its guard; property tests on all of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.campaigns import WEEKDAYS, CampaignModel, parse_campaign
from dialer.compliance import (
    ABANDON_PERIOD,
    MIN_RING_SECONDS,
    AbandonLedger,
    DialRequest,
    Reason,
    check_dial,
    day_cap_clears_at,
    guard_minimum,
    in_calling_window,
    is_abandoned,
    next_window_open,
    retry_time,
)
from dialer.staterules import Cap, StateRules, allowed_intervals, load_state_rules

RULES = load_state_rules()
NY, CHI, DEN, PHX, LA = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
)
ANC, HNL = "America/Anchorage", "Pacific/Honolulu"
US_ZONES = [NY, CHI, DEN, PHX, LA, ANC, HNL, "America/Detroit", "America/Boise"]
EVERY_DAY = [{"days": list(WEEKDAYS), "start": "08:00", "end": "21:00"}]


def make(**calling: Any) -> CampaignModel:
    """A recall campaign with these ``calling`` keys (module-level: hypothesis reuses it)."""
    data = {"name": "test-recall", "kind": "recall", "audience": {}, "calling": calling}
    return parse_campaign(data, Path("test-recall.yaml"))


# Open every day 08:00-21:00, holidays not skipped, caps out of the way: only the rule under
# test refuses.
OPEN = make(windows=EVERY_DAY, skip_holidays=False, max_attempts=99, max_attempts_per_day=99)
DEFAULT = make()  # Mon-Fri 09:00-20:00, Sat 10:00-14:00, skip_holidays


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def request(**overrides: Any) -> DialRequest:
    fields: dict[str, Any] = {
        "phone": "+12125550100",
        "phone_kind": "home",
        "zones": (NY,),
        "states": (),
        "has_consent": False,
        "on_dnc": False,
    }
    return DialRequest(**{**fields, **overrides})


def without_federal_caps(rules: StateRules, caps: tuple[Cap, ...] = ()) -> StateRules:
    return rules.model_copy(update={"federal": rules.federal.model_copy(update={"caps": caps})})


# -- windows -----------------------------------------------------------------------------------

WINDOW_CASES = [
    # DST: 2026-03-08 spring forward, 2026-11-01 fall back.
    ("ny-fri-before-spring-forward-0759", (NY,), (), OPEN, utc(2026, 3, 6, 12, 59), False),
    ("ny-mon-after-spring-forward-0859", (NY,), (), OPEN, utc(2026, 3, 9, 12, 59), True),
    ("ny+la-after-spring-forward-la-0559", (NY, LA), (), OPEN, utc(2026, 3, 9, 12, 59), False),
    ("ny+la-la-opens-0800", (NY, LA), (), OPEN, utc(2026, 3, 9, 15, 0), True),
    ("ny+la-ny-2059", (NY, LA), (), OPEN, utc(2026, 3, 10, 0, 59), True),
    ("ny+la-ny-closes-2100", (NY, LA), (), OPEN, utc(2026, 3, 10, 1, 0), False),
    ("ny-fri-before-fall-back-0859", (NY,), (), OPEN, utc(2026, 10, 30, 12, 59), True),
    ("ny-mon-after-fall-back-0759", (NY,), (), OPEN, utc(2026, 11, 2, 12, 59), False),
    # Arizona keeps standard time: in July it is Los Angeles time, not Denver's.
    ("phoenix-july-0759", (PHX,), (), OPEN, utc(2026, 7, 1, 14, 59), False),
    ("denver-july-0859", (DEN,), (), OPEN, utc(2026, 7, 1, 14, 59), True),
    ("phoenix+denver-july", (PHX, DEN), (), OPEN, utc(2026, 7, 1, 14, 59), False),
    ("phoenix-january-0800", (PHX,), (), OPEN, utc(2026, 1, 5, 15, 0), True),
    ("honolulu-0759", (HNL,), (), OPEN, utc(2026, 7, 1, 17, 59), False),
    ("honolulu-0800", (HNL,), (), OPEN, utc(2026, 7, 1, 18, 0), True),
    ("anchorage-akdt-0800", (ANC,), (), OPEN, utc(2026, 7, 1, 16, 0), True),
    ("anchorage-akst-0700", (ANC,), (), OPEN, utc(2026, 1, 5, 16, 0), False),
    # Two zones in two states, one of which (AL) forbids Sunday calls.
    ("chi+ny-al+ga-saturday", (CHI, NY), ("AL", "GA"), OPEN, utc(2026, 10, 17, 17), True),
    ("chi+ny-al+ga-sunday", (CHI, NY), ("AL", "GA"), OPEN, utc(2026, 10, 18, 17), False),
    ("chi+ny-ga-sunday", (CHI, NY), ("GA",), OPEN, utc(2026, 10, 18, 17), True),
    # State rules.
    ("ky-0959", (NY,), ("KY",), OPEN, utc(2026, 10, 19, 13, 59), False),
    ("ky-1000", (NY,), ("KY",), OPEN, utc(2026, 10, 19, 14, 0), True),
    ("tx-sunday-1159", (CHI,), ("TX",), OPEN, utc(2026, 10, 18, 16, 59), False),
    ("tx-sunday-noon", (CHI,), ("TX",), OPEN, utc(2026, 10, 18, 17, 0), True),
    ("tx-saturday-0859", (CHI,), ("TX",), OPEN, utc(2026, 10, 17, 13, 59), False),
    ("tx-monday-0900", (CHI,), ("TX",), OPEN, utc(2026, 10, 19, 14, 0), True),
    ("al-sunday-noon", (CHI,), ("AL",), OPEN, utc(2026, 10, 18, 17, 0), False),
    ("fl-2000-closed", (NY,), ("FL",), OPEN, utc(2026, 10, 20, 0, 0), False),
    ("fl-1959", (NY,), ("FL",), OPEN, utc(2026, 10, 19, 23, 59), True),
    # Campaign windows (default: Mon-Fri 09:00-20:00, Sat 10:00-14:00).
    ("campaign-monday-0830", (NY,), (), DEFAULT, utc(2026, 10, 19, 12, 30), False),
    ("campaign-monday-0900", (NY,), (), DEFAULT, utc(2026, 10, 19, 13, 0), True),
    ("campaign-monday-2000-closed", (NY,), (), DEFAULT, utc(2026, 10, 20, 0, 0), False),
    ("campaign-saturday-1359", (NY,), (), DEFAULT, utc(2026, 10, 17, 17, 59), True),
    ("campaign-saturday-1400-closed", (NY,), (), DEFAULT, utc(2026, 10, 17, 18, 0), False),
    ("campaign-sunday-noon", (NY,), (), DEFAULT, utc(2026, 10, 18, 16, 0), False),
]


@pytest.mark.parametrize(
    ("zones", "states", "campaign", "now", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in WINDOW_CASES],
)
def test_calling_window(
    zones: tuple[str, ...],
    states: tuple[str, ...],
    campaign: CampaignModel,
    now: datetime,
    expected: bool,
) -> None:
    assert in_calling_window(zones, states, campaign, now, RULES) is expected
    verdict = check_dial(request(zones=zones, states=states), campaign, now, RULES)
    assert verdict.allowed is expected
    if not expected:
        assert verdict.reason == Reason.outside_window
        assert verdict.not_before is not None and verdict.not_before > now


def test_each_campaign_and_rule_table_gets_its_own_windows_however_often_asked() -> None:
    """The gate remembers a day's spans per campaign and rule table: asking for one campaign
    never answers for another with other windows, nor for a reloaded campaign or other rules."""
    evening = utc(2026, 12, 1, 23)  # Tuesday 18:00 in New York
    early = make(windows=[{"days": list(WEEKDAYS), "start": "08:00", "end": "12:00"}])
    assert in_calling_window((NY,), (), OPEN, evening, RULES)
    assert not in_calling_window((NY,), (), early, evening, RULES)
    assert in_calling_window((NY,), (), OPEN, evening, RULES)
    reloaded = make(windows=[{"days": list(WEEKDAYS), "start": "19:00", "end": "21:00"}])
    assert not in_calling_window((NY,), (), reloaded, evening, RULES)
    closing_at_5 = RULES.model_copy(
        update={"federal": RULES.federal.model_copy(update={"window": (time(8), time(17))})}
    )
    assert not in_calling_window((NY,), (), OPEN, evening, closing_at_5)


MORNING = time(8)  # not_before below: the next open morning, 08:00 in New York
HOLIDAY_CASES = [
    ("labor-day-skip-holidays", (), True, date(2026, 9, 7), "holiday", date(2026, 9, 8)),
    ("labor-day-not-skipped", (), False, date(2026, 9, 7), None, None),
    ("independence-observed-fri", (), True, date(2026, 7, 3), "holiday", date(2026, 7, 5)),
    ("pa-restricts-anyway", ("PA",), False, date(2026, 9, 7), "holiday", date(2026, 9, 8)),
    ("al+ga-restricted-by-al", ("GA", "AL"), False, date(2026, 9, 7), "holiday", date(2026, 9, 8)),
    ("ma-patriots-day-skipped", ("MA",), True, date(2026, 4, 20), "holiday", date(2026, 4, 21)),
    ("ma-patriots-day-not-restricted", ("MA",), False, date(2026, 4, 20), None, None),
    ("la-battle-of-new-orleans", ("LA",), False, date(2026, 1, 8), "holiday", date(2026, 1, 9)),
    ("ordinary-tuesday", ("PA",), True, date(2026, 10, 20), None, None),
]


@pytest.mark.parametrize(
    ("states", "skip_holidays", "day", "reason", "opens"),
    [pytest.param(*case[1:], id=case[0]) for case in HOLIDAY_CASES],
)
def test_holidays(
    states: tuple[str, ...],
    skip_holidays: bool,
    day: date,
    reason: str | None,
    opens: date | None,
) -> None:
    """Noon in New York on ``day``; refused ones reopen at 08:00 on ``opens``."""
    campaign = make(windows=EVERY_DAY, skip_holidays=skip_holidays)
    now = datetime.combine(day, time(12), ZoneInfo(NY))
    verdict = check_dial(request(zones=(NY,), states=states), campaign, now, RULES)
    not_before = None if opens is None else datetime.combine(opens, MORNING, ZoneInfo(NY))
    assert (verdict.allowed, verdict.reason, verdict.not_before) == (
        reason is None,
        reason,
        not_before,
    )


# -- permanent refusals ---------------------------------------------------------------------

INSIDE = utc(2026, 10, 20, 16)  # Tuesday 12:00 in New York, 09:00 in Los Angeles


@pytest.mark.parametrize(
    ("overrides", "calling", "reason"),
    [
        pytest.param({"on_dnc": True}, {}, "do_not_call", id="dnc"),
        pytest.param(
            {"on_dnc": True, "phone_kind": "mobile"},
            {"require_consent_for_mobile": True},
            "do_not_call",
            id="dnc-before-consent",
        ),
        pytest.param(
            {"phone_kind": "mobile"},
            {"require_consent_for_mobile": True},
            "no_consent",
            id="mobile-without-consent",
        ),
        pytest.param(
            {"phone_kind": "mobile", "has_consent": True},
            {"require_consent_for_mobile": True},
            None,
            id="mobile-with-consent",
        ),
        pytest.param(
            {"phone_kind": "home"}, {"require_consent_for_mobile": True}, None, id="home-no-need"
        ),
        pytest.param({"phone_kind": "mobile"}, {}, None, id="mobile-consent-not-required"),
        pytest.param(
            {"household_attempts": (utc(2026, 10, 1, 16), utc(2026, 10, 5, 16))},
            {"max_attempts": 2},
            "max_attempts",
            id="household-total-reached",
        ),
        pytest.param(
            {"household_attempts": (utc(2026, 10, 1, 16),)},
            {"max_attempts": 2},
            None,
            id="household-total-below",
        ),
    ],
)
def test_permanent_refusals(
    overrides: dict[str, Any], calling: dict[str, Any], reason: str | None
) -> None:
    campaign = make(windows=EVERY_DAY, skip_holidays=False, **calling)
    verdict = check_dial(request(**overrides), campaign, INSIDE, RULES)
    assert (verdict.allowed, verdict.reason, verdict.not_before) == (reason is None, reason, None)


def test_dnc_refuses_outside_the_window_too_without_not_before() -> None:
    verdict = check_dial(request(on_dnc=True), OPEN, utc(2026, 10, 20, 4), RULES)
    assert (verdict.reason, verdict.not_before) == (Reason.do_not_call, None)


# -- caps, delays and not_before ------------------------------------------------------------

H = timedelta(hours=1)
D = timedelta(days=1)
NOT_CAPPED = {"max_attempts": 99, "max_attempts_per_day": 99}

CAP_CASES: list[tuple[str, dict[str, Any], dict[str, Any], datetime, str | None, Any]] = [
    # Los Angeles, per-day cap 1: 19:00 PDT on the 19th is 02:00 UTC on the 20th.
    (
        "per-day-next-local-day-same-utc-day",
        {"zones": (LA,), "household_attempts": (utc(2026, 10, 20, 2),)},
        {"max_attempts_per_day": 1},
        utc(2026, 10, 20, 16),
        None,
        None,
    ),
    (
        "per-day-same-local-day-across-utc-midnight",
        {"zones": (LA,), "household_attempts": (utc(2026, 10, 19, 16),)},
        {"max_attempts_per_day": 1},
        utc(2026, 10, 20, 2),
        "max_attempts_per_day",
        utc(2026, 10, 20, 15),  # midnight PDT, then the 08:00 PDT opening
    ),
    (
        "per-day-counted-in-every-zone",  # 00:30 New York on the 20th is still the 19th in LA
        {"zones": (NY, LA), "household_attempts": (utc(2026, 10, 20, 4, 30),)},
        {"max_attempts_per_day": 1},
        utc(2026, 10, 20, 16),
        "max_attempts_per_day",
        utc(2026, 10, 21, 15),
    ),
    (
        "per-day-below-limit",
        {"household_attempts": (utc(2026, 10, 20, 13),)},
        {"max_attempts_per_day": 2},
        utc(2026, 10, 20, 16),
        None,
        None,
    ),
    (
        "phone-1-per-24h",
        {"phone_attempts": (utc(2026, 10, 19, 20),)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        "phone_cap",
        utc(2026, 10, 20, 20),
    ),
    (
        "phone-24h-exactly-later",
        {"phone_attempts": (utc(2026, 10, 19, 16),)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        None,
        None,
    ),
    (
        "phone-3-per-168h",
        {"phone_attempts": (utc(2026, 10, 14, 18), utc(2026, 10, 16, 16), utc(2026, 10, 18, 16))},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        "phone_cap",
        utc(2026, 10, 21, 18),
    ),
    (
        "phone-3-per-168h-oldest-expired",
        {"phone_attempts": (utc(2026, 10, 13, 16), utc(2026, 10, 16, 16), utc(2026, 10, 18, 16))},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        None,
        None,
    ),
    (
        "retry-delay",
        {"next_attempt_at": utc(2026, 10, 20, 17)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        "retry_delay",
        utc(2026, 10, 20, 17),
    ),
    (
        "retry-delay-reached",
        {"next_attempt_at": utc(2026, 10, 20, 16)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        None,
        None,
    ),
    (
        "retry-after-window-closes-waits-for-morning",  # 21:30 New York
        {"next_attempt_at": utc(2026, 10, 21, 1, 30)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        "retry_delay",
        utc(2026, 10, 21, 12),
    ),
    (
        "outside-window-reported-first-not-before-clears-both",  # 07:00 NY, cap until 09:00
        {"phone_attempts": (utc(2026, 10, 19, 13),)},
        NOT_CAPPED,
        utc(2026, 10, 20, 11),
        "outside_window",
        utc(2026, 10, 20, 13),
    ),
    (
        "retry-before-phone-cap",
        {"phone_attempts": (utc(2026, 10, 19, 20),), "next_attempt_at": utc(2026, 10, 20, 17)},
        NOT_CAPPED,
        utc(2026, 10, 20, 16),
        "retry_delay",
        utc(2026, 10, 20, 20),
    ),
]


@pytest.mark.parametrize(
    ("overrides", "calling", "now", "reason", "not_before"),
    [pytest.param(*case[1:], id=case[0]) for case in CAP_CASES],
)
def test_caps_delays_and_not_before(
    overrides: dict[str, Any],
    calling: dict[str, Any],
    now: datetime,
    reason: str | None,
    not_before: datetime | None,
) -> None:
    campaign = make(windows=EVERY_DAY, skip_holidays=False, **calling)
    req = request(**overrides)
    verdict = check_dial(req, campaign, now, RULES)
    assert (verdict.allowed, verdict.reason, verdict.not_before) == (
        reason is None,
        reason,
        not_before,
    )
    if not_before is not None:
        assert check_dial(req, campaign, not_before, RULES).allowed


@pytest.mark.parametrize(
    ("states", "attempts", "allowed"),
    [
        pytest.param(("FL",), 2, True, id="fl-2-in-24h"),
        pytest.param(("FL",), 3, False, id="fl-3-in-24h"),
        pytest.param(("OK", "GA"), 3, False, id="ok-among-candidates"),
        pytest.param(("MD",), 3, False, id="md-3-in-24h"),
        pytest.param(("GA",), 3, True, id="no-state-cap"),
    ],
)
def test_state_phone_caps(states: tuple[str, ...], attempts: int, allowed: bool) -> None:
    """With the federal caps removed, the state's 3 per 24 hours is what binds."""
    rules = without_federal_caps(RULES)
    now = utc(2026, 10, 20, 16)
    phone_attempts = tuple(now - timedelta(hours=i + 1) for i in range(attempts))
    req = request(states=states, phone_attempts=phone_attempts)
    verdict = check_dial(req, OPEN, now, rules)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reason == Reason.phone_cap
        assert verdict.not_before == phone_attempts[-1] + timedelta(hours=24)


@pytest.mark.parametrize(
    ("states", "attempts", "allowed"),
    [
        pytest.param((), 1, True, id="federal-1-a-day-does-not-count-it"),
        pytest.param((), 5, True, id="federal-3-a-week-does-not-count-it"),
        pytest.param(("FL",), 2, True, id="fl-2-in-24h"),
        pytest.param(("FL",), 3, False, id="fl-3-in-24h-still-binds"),
    ],
)
def test_a_requested_callback_is_held_to_state_caps_only(
    states: tuple[str, ...], attempts: int, allowed: bool
) -> None:
    """The callee asked for this call: the household caps and the federal healthcare limits
    do not count it, a state's cap does."""
    now = utc(2026, 10, 20, 16)
    campaign = make(max_attempts=2, max_attempts_per_day=1)
    phone_attempts = tuple(now - timedelta(hours=i + 1) for i in range(attempts))
    req = request(
        states=states,
        phone_attempts=phone_attempts,
        household_attempts=phone_attempts,
        requested=True,
    )
    verdict = check_dial(req, campaign, now, RULES)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reason == Reason.phone_cap
    unrequested = check_dial(replace(req, requested=False), campaign, now, RULES)
    assert not unrequested.allowed


def test_maine_one_call_per_8_hours_binds_under_the_federal_caps() -> None:
    rules = without_federal_caps(RULES)
    now = utc(2026, 10, 20, 16)
    req = request(states=("ME",), phone_attempts=(now - timedelta(hours=7),))
    assert check_dial(req, OPEN, now, rules).not_before == now + H


def test_day_cap_counts_nothing_with_no_attempts() -> None:
    assert day_cap_clears_at((), (NY, LA), 1, utc(2026, 10, 20, 16)) is None


def test_no_window_within_the_horizon_gives_no_not_before() -> None:
    sunday_only = make(windows=[{"days": ["sun"], "start": "09:00", "end": "17:00"}])
    verdict = check_dial(request(states=("AL",)), sunday_only, INSIDE, RULES)
    assert (verdict.reason, verdict.not_before) == (Reason.outside_window, None)


def test_request_needs_a_zone_and_aware_times() -> None:
    with pytest.raises(ValueError, match="at least one candidate zone"):
        request(zones=())
    with pytest.raises(ValueError, match="aware"):
        request(phone_attempts=(datetime(2026, 10, 20, 16),))
    with pytest.raises(ValueError, match="aware"):
        check_dial(request(), OPEN, datetime(2026, 10, 20, 16), RULES)


# -- next_window_open and retry_time --------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "now", "expected"),
    [
        pytest.param((NY,), utc(2026, 10, 20, 16), utc(2026, 10, 20, 16), id="open-now"),
        pytest.param((NY,), utc(2026, 10, 17, 18, 30), utc(2026, 10, 19, 13), id="weekend"),
        pytest.param((NY,), utc(2026, 3, 7, 20), utc(2026, 3, 9, 13), id="spring-forward"),
        pytest.param((NY,), utc(2026, 10, 31, 19), utc(2026, 11, 2, 14), id="fall-back"),
        pytest.param((NY, LA), utc(2026, 3, 9, 12, 59), utc(2026, 3, 9, 16), id="ny+la-dst"),
        pytest.param((NY, LA), utc(2026, 10, 24, 0, 30), utc(2026, 10, 24, 17), id="ny+la-sat"),
        pytest.param((HNL,), utc(2026, 10, 20, 6), utc(2026, 10, 20, 19), id="honolulu"),
        pytest.param((NY,), utc(2026, 9, 5, 18, 30), utc(2026, 9, 8, 13), id="labor-day-weekend"),
    ],
)
def test_next_window_open(zones: tuple[str, ...], now: datetime, expected: datetime) -> None:
    """The default campaign: Mon-Fri 09:00-20:00, Sat 10:00-14:00, holidays skipped."""
    assert next_window_open(zones, (), DEFAULT, now, RULES) == expected


def test_next_window_open_gives_up_after_the_horizon() -> None:
    now = utc(2026, 10, 17, 18, 30)  # Saturday afternoon: Monday is 2 days away
    assert next_window_open((NY,), (), DEFAULT, now, RULES, horizon_days=1) is None
    assert next_window_open((NY,), (), DEFAULT, now, RULES, horizon_days=2) is not None


@pytest.mark.parametrize(
    ("retry_after", "outcome", "delay"),
    [
        pytest.param({}, "no_answer", 4 * H, id="default-no-answer"),
        pytest.param({}, "busy", timedelta(minutes=30), id="default-busy"),
        pytest.param({}, "wrong_number", timedelta(0), id="default-wrong-number"),
        pytest.param({"machine": "2d"}, "machine", 2 * D, id="override"),
        pytest.param({"no_answer": "1h30m"}, "no_answer", 1.5 * H, id="combined-units"),
    ],
)
def test_retry_time(retry_after: dict[str, str], outcome: str, delay: timedelta) -> None:
    ended_at = utc(2026, 10, 20, 16)
    assert retry_time(make(retry_after=retry_after), outcome, ended_at) == ended_at + delay


def test_retry_time_rejects_an_outcome_without_a_delay() -> None:
    with pytest.raises(ValueError, match="no retry delay for outcome 'booked'"):
        retry_time(DEFAULT, "booked", utc(2026, 10, 20, 16))


def test_min_ring_seconds() -> None:
    assert MIN_RING_SECONDS == 15


# -- abandonment ------------------------------------------------------------------------------

T0 = utc(2026, 1, 5, 15)


def seconds(value: float) -> datetime:
    return T0 + timedelta(seconds=value)


@pytest.mark.parametrize(
    ("bridged", "ended", "expected"),
    [
        pytest.param(1.0, 60.0, False, id="bridged-in-1s"),
        pytest.param(2.0, 60.0, False, id="bridged-at-exactly-2s-is-within"),
        pytest.param(2.000001, 60.0, True, id="bridged-just-after-2s"),
        pytest.param(-3.0, 60.0, False, id="psr-on-the-line-before-detection"),
        pytest.param(None, 1.5, True, id="hung-up-inside-grace-without-psr"),
        pytest.param(None, 10.0, True, id="never-bridged"),
        pytest.param(None, 0.0, True, id="ended-at-detection"),
        pytest.param(1.8, 1.5, True, id="bridge-stamped-after-end"),
    ],
)
def test_is_abandoned(bridged: float | None, ended: float, expected: bool) -> None:
    bridged_at = None if bridged is None else seconds(bridged)
    assert is_abandoned(T0, bridged_at, seconds(ended)) is expected


def test_is_abandoned_custom_grace_and_bad_order() -> None:
    assert is_abandoned(T0, seconds(2.5), seconds(60), grace_seconds=3.0) is False
    with pytest.raises(ValueError, match="cannot end before"):
        is_abandoned(T0, None, seconds(-1))


def test_ledger_periods_run_in_30_days_from_the_first_record() -> None:
    ledger = AbandonLedger()
    assert (ledger.rate(T0), ledger.period_rates(), ledger.period_start(T0)) == (0.0, [], T0)
    for day, abandoned in [(0, True), (1, False), (29, False), (30, False), (75, True)]:
        ledger.record(T0 + timedelta(days=day, hours=1), abandoned)
    first = T0 + H
    assert ledger.period_start(T0 + timedelta(days=30)) == first
    assert ledger.period_start(first + ABANDON_PERIOD) == first + ABANDON_PERIOD
    assert ledger.rate(T0 + timedelta(days=10)) == 1 / 3
    assert ledger.period_rates() == [
        (first, 3, 1, 1 / 3),
        (first + ABANDON_PERIOD, 1, 0, 0.0),
        (first + 2 * ABANDON_PERIOD, 1, 1, 1.0),
    ]


def test_ledger_period_edges_are_exact_whichever_period_was_asked_before() -> None:
    ledger = AbandonLedger(started_at=T0)
    edge = T0 + ABANDON_PERIOD
    micro = timedelta(microseconds=1)
    asked = [edge - micro, edge, T0, edge + ABANDON_PERIOD - micro, edge - micro, T0 - micro]
    assert [ledger.period_start(at) for at in asked] == [
        T0,
        edge,
        T0,
        edge,
        T0,
        T0 - ABANDON_PERIOD,
    ]


def test_ledger_periods_from_an_origin_in_a_zone_with_dst_follow_its_arithmetic() -> None:
    zone = ZoneInfo("America/Chicago")
    # First periods spanning the March and the November change: 30 days on the wall clock
    # are 719 and 721 hours.
    for origin in (datetime(2026, 2, 20, 9, tzinfo=zone), datetime(2026, 10, 20, 9, tzinfo=zone)):
        ledger = AbandonLedger(started_at=origin)
        for hours in (0, 700, 719, 719.5, 720, 720.5, 721, 1439, 1440, 1441, 5):
            at = (origin + timedelta(hours=hours)).astimezone(UTC)
            expected = origin + ABANDON_PERIOD * ((at - origin) // ABANDON_PERIOD)
            assert ledger.period_start(at) == expected


def test_ledger_start_and_out_of_order_records() -> None:
    ledger = AbandonLedger(started_at=T0)
    ledger.record(T0 + timedelta(days=31), True)
    ledger.record(T0 + timedelta(days=2), False)
    assert ledger.period_start(T0 + timedelta(days=31)) == T0 + ABANDON_PERIOD
    assert [row[1:] for row in ledger.period_rates()] == [(1, 0, 0.0), (1, 1, 1.0)]
    ledger.record(T0 - timedelta(days=1), False)  # earlier than the start: the origin moves
    assert ledger.period_start(T0) == T0 - D


def fill(ledger: AbandonLedger, detected: int, abandoned: int, at: datetime = T0) -> None:
    for index in range(detected):
        ledger.record(at + timedelta(seconds=index), index < abandoned)


def test_guard_count_rule_at_the_start_of_a_period() -> None:
    ledger = AbandonLedger()
    assert ledger.guard(T0, 0.03) is True  # an empty period: one abandon would be 100%
    fill(ledger, 32, 0)
    assert ledger.guard(T0, 0.03) is True  # 1/33 = 3.03%
    fill(ledger, 1, 0, T0 + H)
    assert ledger.guard(T0, 0.03) is False  # 1/34 = 2.94%
    assert ledger.guard(T0, 0.03, in_flight=2) is True  # 2/35 = 5.7%
    assert ledger.guard(T0 + ABANDON_PERIOD, 0.03) is True  # the next period starts empty


def test_guard_hysteresis() -> None:
    cap = 0.03
    assert guard_minimum(cap) == 334
    ledger = AbandonLedger()
    fill(ledger, 1000, 28)
    assert ledger.guard(T0, cap) is False  # 2.8%, below the 2.85% trip
    fill(ledger, 1, 1, T0 + H)
    assert ledger.guard(T0, cap) is True  # 29/1001 = 2.897%: tripped
    fill(ledger, 114, 0, T0 + 2 * H)
    assert ledger.guard(T0, cap) is True  # 29/1115 = 2.60%: still above the 2.55% release
    fill(ledger, 23, 0, T0 + 3 * H)
    assert ledger.guard(T0, cap) is False  # 29/1138 = 2.548%: released
    fill(ledger, 2, 2, T0 + 4 * H)
    assert ledger.guard(T0, cap) is False  # 31/1140 = 2.72%: between, not re-tripped
    fill(ledger, 2, 2, T0 + 5 * H)
    assert ledger.guard(T0, cap) is True  # 33/1142 = 2.89%: tripped again
    assert ledger.guard(T0 + ABANDON_PERIOD + H, cap) is True  # new period: count rule
    fill(ledger, 400, 0, T0 + ABANDON_PERIOD + H)
    assert ledger.guard(T0 + ABANDON_PERIOD + H, cap) is False  # the old flag is not carried


def test_guard_rejects_no_in_flight() -> None:
    with pytest.raises(ValueError, match="in_flight"):
        AbandonLedger().guard(T0, 0.03, in_flight=0)


# -- properties -------------------------------------------------------------------------------

STATES = ["AL", "CT", "FL", "IL", "KY", "LA", "MD", "MA", "ME", "MI", "MN", "MS", "NE", "NM",
          "NV", "OK", "PA", "RI", "TX", "UT", "NY", "CA", "GA", "AZ", "HI", "AK", "OR"]  # fmt: skip


def _dst_changes() -> list[datetime]:
    """US DST changes 2020-2030 (02:00 local, i.e. about 07:00-10:00 UTC)."""
    changes = []
    for year in range(2020, 2031):
        march = [date(year, 3, d) for d in range(8, 15)]
        november = [date(year, 11, d) for d in range(1, 8)]
        for day in (*march, *november):
            if day.weekday() == 6:
                changes.append(datetime.combine(day, time(8), UTC))
    return changes


instants = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)).map(lambda d: d.replace(tzinfo=UTC)),
    st.builds(  # within 3 days of a DST change
        lambda change, offset: change + timedelta(minutes=offset),
        st.sampled_from(_dst_changes()),
        st.integers(-3 * 1440, 3 * 1440),
    ),
    st.builds(  # US daytime: 13:00-02:00 UTC
        lambda day, minute: datetime.combine(day, time(13), UTC) + timedelta(minutes=minute),
        st.dates(date(2020, 1, 1), date(2030, 12, 31)),
        st.integers(0, 13 * 60),
    ),
)


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    days = draw(
        st.sampled_from([list(WEEKDAYS), list(WEEKDAYS[:5])])
        | st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
    )
    start = draw(st.integers(8 * 60, 10 * 60) | st.integers(8 * 60, 21 * 60 - 1))
    end = draw(st.integers(max(start + 1, 18 * 60), 21 * 60) | st.integers(start + 1, 21 * 60))
    return {"days": days, "start": hhmm(start), "end": hhmm(end)}


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


campaigns = st.builds(
    lambda windows, skip, total, per_day, consent: make(
        windows=windows,
        skip_holidays=skip,
        max_attempts=total,
        max_attempts_per_day=per_day,
        require_consent_for_mobile=consent,
    ),
    st.lists(windows(), min_size=1, max_size=3),
    st.booleans(),
    st.integers(1, 8).map(lambda n: 9 - n),
    st.integers(1, 3),
    st.booleans(),
)
# None: the packaged table; a list: the packaged table with these caps as the federal ones.
federal_caps = st.none() | st.lists(
    st.builds(Cap, st.integers(1, 4), st.integers(1, 200)), max_size=3
)


def rules_with(caps: list[Cap] | None) -> StateRules:
    return RULES if caps is None else without_federal_caps(RULES, tuple(caps))


past = st.lists(st.integers(0, 10 * 86400), max_size=4)


@st.composite
def dials(draw: st.DrawFn) -> tuple[DialRequest, datetime]:
    now = draw(instants)
    household, phone = draw(past), draw(past)
    retry = draw(st.none() | st.none() | st.integers(-86400, 3 * 86400))
    req = DialRequest(
        phone="+12125550100",
        phone_kind=draw(st.sampled_from(["mobile", "home", "work"])),
        zones=tuple(draw(st.lists(st.sampled_from(US_ZONES), min_size=1, max_size=3))),
        states=tuple(draw(st.lists(st.sampled_from(STATES), max_size=3))),
        has_consent=draw(st.booleans()),
        on_dnc=draw(st.integers(0, 7)) == 7,  # rarely: hypothesis favours small values
        household_attempts=tuple(now - timedelta(seconds=s) for s in household),
        phone_attempts=tuple(now - timedelta(seconds=s) for s in phone),
        next_attempt_at=None if retry is None else now + timedelta(seconds=retry),
        requested=draw(st.integers(0, 3)) == 3,  # a callback the callee asked for
    )
    return req, now


def assert_every_rule_holds(
    req: DialRequest, campaign: CampaignModel, now: datetime, rules: StateRules
) -> None:
    """An independent restatement of each rule, from the raw inputs. A requested callback is
    held to every rule but the household caps and the federal per-phone caps."""
    calling = campaign.calling
    assert not req.on_dnc
    assert req.has_consent or not (
        req.phone_kind == "mobile" and calling.require_consent_for_mobile
    )
    assert req.requested or len(req.household_attempts) < calling.max_attempts
    assert req.next_attempt_at is None or now >= req.next_attempt_at
    for zone in req.zones:
        zone_info = ZoneInfo(zone)
        local = now.astimezone(zone_info)
        moment, day = local.time(), WEEKDAYS[local.weekday()]
        assert time(8) <= moment < time(21)
        assert any(
            day in w.days and time.fromisoformat(w.start) <= moment < time.fromisoformat(w.end)
            for w in calling.windows
        )
        for state in req.states:
            spans = allowed_intervals(rules, state, local.date())
            assert any(start <= moment < end for start, end in spans)
        same_day = [
            a for a in req.household_attempts if a.astimezone(zone_info).date() == local.date()
        ]
        assert req.requested or len(same_day) < calling.max_attempts_per_day
    caps = set() if req.requested else {*rules.federal.caps}
    for state in req.states:
        caps.update(rules.states[state].caps if state in rules.states else ())
    for cap in caps:
        window = timedelta(hours=cap.window_hours)
        assert sum(1 for a in req.phone_attempts if now - window < a <= now) + 1 <= cap.calls


PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(dial=dials(), campaign=campaigns, caps=federal_caps)
def test_property_an_allowed_dial_breaks_no_rule(
    dial: tuple[DialRequest, datetime], campaign: CampaignModel, caps: list[Cap] | None
) -> None:
    req, now, rules = *dial, rules_with(caps)
    if check_dial(req, campaign, now, rules).allowed:
        assert_every_rule_holds(req, campaign, now, rules)


@PROPERTY_SETTINGS
@given(dial=dials(), campaign=campaigns, caps=federal_caps)
def test_property_not_before_is_later_and_then_allowed(
    dial: tuple[DialRequest, datetime], campaign: CampaignModel, caps: list[Cap] | None
) -> None:
    req, now, rules = *dial, rules_with(caps)
    verdict = check_dial(req, campaign, now, rules)
    permanent = {Reason.do_not_call, Reason.no_consent, Reason.max_attempts}
    if verdict.allowed or verdict.reason in permanent:
        assert verdict.not_before is None
        return
    if verdict.not_before is not None:
        assert verdict.not_before > now
        later = check_dial(req, campaign, verdict.not_before, rules)
        assert later.allowed, later
        assert_every_rule_holds(req, campaign, verdict.not_before, rules)


@PROPERTY_SETTINGS
@given(
    zones=st.lists(st.sampled_from(US_ZONES), min_size=1, max_size=3),
    states=st.lists(st.sampled_from(STATES), max_size=2),
    campaign=campaigns,
    now=instants,
    fraction=st.floats(0, 1, exclude_max=True),
)
def test_property_next_window_open_is_the_first_opening(
    zones: list[str],
    states: list[str],
    campaign: CampaignModel,
    now: datetime,
    fraction: float,
) -> None:
    opens = next_window_open(zones, states, campaign, now, RULES)
    if opens is None:
        return
    assert opens >= now
    assert in_calling_window(zones, states, campaign, opens, RULES)
    if opens > now:  # no earlier instant is open: a random one and the one just before
        earlier = min(now + (opens - now) * fraction, opens - timedelta(microseconds=1))
        assert not in_calling_window(zones, states, campaign, earlier, RULES)
        before = opens - timedelta(microseconds=1)
        assert not in_calling_window(zones, states, campaign, before, RULES)


@settings(max_examples=200, deadline=None)
@given(
    cap=st.sampled_from([0.01, 0.03, 0.05, 0.2]),
    events=st.lists(
        st.tuples(st.integers(0, 4 * 1440), st.booleans(), st.integers(1, 4)),
        max_size=600,
    ),
    in_flight=st.integers(1, 4),
)
def test_property_following_the_guard_keeps_every_period_at_or_below_the_cap(
    cap: float, events: list[tuple[int, bool, int]], in_flight: int
) -> None:
    """Each check lets up to ``in_flight`` calls through; any of them may be abandoned."""
    ledger, at = AbandonLedger(started_at=T0), T0
    for gap_minutes, wants_abandon, batch in events:
        at += timedelta(minutes=gap_minutes)  # up to 4 days apart: several periods
        guarded = ledger.guard(at, cap, in_flight=in_flight)
        for _ in range(min(batch, in_flight)):
            ledger.record(at, wants_abandon and not guarded)
            assert ledger.rate(at) <= cap or ledger.counts(at)[1] == 0
    for _, detected, abandoned, rate in ledger.period_rates():
        assert rate <= cap, (detected, abandoned)


def test_instants_come_back_in_utc_whatever_zone_they_went_in_with() -> None:
    now = datetime(2026, 10, 20, 12, tzinfo=ZoneInfo(NY))
    opens = next_window_open((NY,), (), OPEN, now, RULES)
    assert opens == now and opens.tzinfo is UTC
    retry_at = datetime(2026, 10, 20, 13, tzinfo=ZoneInfo(NY))
    not_before = check_dial(request(next_attempt_at=retry_at), OPEN, now, RULES).not_before
    assert not_before == retry_at and not_before.tzinfo is UTC
