"""The compliance gate: may this phone be dialed now? And the abandonment ledger and guard.

Every dial passes :func:`check_dial` (when the list is worked and again right before the call
is placed). Everything here is pure: ``now`` and all data are arguments; nothing reads the
clock, the environment, the database or the network. Timestamps are aware datetimes (naive
ones raise ``ValueError``: that is a programming error, not user input).

Rules, their sources and every threshold
----------------------------------------

Calling window (47 CFR 64.1200(c)(1), FTC TSR; state rules from the versioned table in
``dialer/data/state_rules.yaml`` via :mod:`dialer.staterules`; domain-facts §3.6-3.7)
    A dial is allowed only when ``now`` lies, in EVERY candidate zone of the callee, inside
    ``[start, end)`` spans of that zone's local date made of: the federal 08:00-21:00, the
    campaign's windows for that weekday, and each candidate state's window for that date
    (the states apply in every zone: zone and state are both uncertain, so the gate takes the
    cross product, the most restrictive reading). Local time is computed per zone with
    ``zoneinfo``, so DST (and Arizona's and Hawaii's lack of it) is exact.
Holidays (restricted-holiday states: domain-facts §3.7, DNC.com and ClickPoint lists)
    The whole local day is closed when (a) any candidate state restricts its holidays
    (AL, LA, MS, PA, RI, UT in the table) and the date is one of them, whatever the campaign
    says; or (b) the campaign has ``skip_holidays`` and the date is a US federal holiday (the
    ``holidays`` library's federal calendar, observed days included) or a holiday of any
    candidate state (:func:`dialer.staterules.is_state_holiday`).
Do-not-call (47 CFR 64.1200(c)(2), (d); TSR 16 CFR 310.4(b)(1)(iii); DESIGN.md)
    A phone on an applicable list (global, clinic or campaign; the caller decides which
    apply) is refused.
Consent (47 CFR 64.1200(a)(1)(iii), (a)(9)(iv); domain-facts §3.6)
    A mobile without a consent record is refused when the campaign sets
    ``require_consent_for_mobile``. Home and work lines never need one here.
Household caps (the campaign file)
    At most ``max_attempts`` attempts per household per campaign, ever; and at most
    ``max_attempts_per_day`` per callee-local day. The day is counted in EVERY candidate zone:
    the attempts falling on the zone's current local date are counted, and the cap binds if it
    is reached in any zone (the strictest reading; for US zones inside 08:00-21:00 the zones
    agree on the date, so this only matters for odd histories).
Phone caps (FCC 20-186 healthcare-exempt calls: 1 a day, 3 a week; Fla. Stat. 501.616,
Maryland and 15 O.S. 775C.4: 3 per 24 h; Maine: 1 per 8 h)
    :func:`dialer.staterules.most_restrictive_caps`: the federal ``Cap(1, 24)`` and
    ``Cap(3, 168)`` plus every cap of every candidate state, each a rolling window of ``W``
    elapsed hours over every campaign's attempts to the phone (so ``phone_attempts`` must
    reach back 168 h at least). The attempts after ``now - W`` count; one made at ``t`` stops
    counting at exactly ``t + W`` (half-open, like the calling windows). A dial is refused
    when it would be call number ``calls + 1`` in such a window.
Requested callbacks (``DialRequest.requested``)
    A callback the callee asked for, at the time they asked, is made at their express
    request: the household caps (the campaign's policy for calls nobody asked for) and the
    federal healthcare limits (conditions of calling without consent) do not count it against
    them; a state's own cap counts every call and still applies, as do do-not-call, consent,
    windows and holidays.
Retry delay (the campaign's ``retry_after``)
    Refused before ``next_attempt_at`` (allowed at that instant); :func:`retry_time` computes
    it from the last outcome.
Ringing (47 CFR 64.1200(a)(6); TSR 16 CFR 310.4(b)(4)(i))
    :data:`MIN_RING_SECONDS` = 15: an unanswered call rings at least 15 seconds (or 4 rings).
Abandonment (47 CFR 64.1200(a)(7); TSR 16 CFR 310.4(b)(4); pacing-notes)
    :func:`is_abandoned`: a person detected (the engine's mark for "greeting completed") and
    not bridged to a PSR within :data:`ABANDON_GRACE_SECONDS` = 2 s, inclusive, is abandoned;
    so is one who hangs up inside those 2 s with no PSR. The rate (abandoned / persons
    detected) per campaign over successive :data:`ABANDON_PERIOD` = 30-day periods from the
    campaign's start must stay at or below its cap (``max_abandon_rate``, 3% at most).
    :class:`AbandonLedger` keeps the figure and guards it: a count rule that holds the cap
    exactly (which alone governs the first :func:`guard_minimum` = 334 persons of a period at
    3%), plus hysteresis that trips above :data:`GUARD_TRIP_FRACTION` = 0.95 of the cap
    (2.85%) and releases below :data:`GUARD_RELEASE_FRACTION` = 0.85 (2.55%); see
    :meth:`AbandonLedger.guard`.

Refusal reasons and ``not_before``
----------------------------------

:func:`check_dial` reports the first failing rule in this order (:class:`Reason`):

=========================  ===================================================================
``do_not_call``            on an applicable do-not-call list (permanent)
``no_consent``             a mobile without consent in a campaign that requires it (permanent)
``max_attempts``           the household used the campaign's ``max_attempts`` (permanent)
``holiday``                outside the window in a zone whose local date a holiday closes
``outside_window``         outside the allowed spans in some candidate zone
``retry_delay``            before ``next_attempt_at``
``max_attempts_per_day``   the household's daily cap is reached in some candidate zone
``phone_cap``              a rolling per-phone cap (federal or state) is reached
=========================  ===================================================================

Permanent refusals carry no ``not_before``. For the others ``not_before`` is the earliest
instant at which the same request would be allowed: the latest instant at which a refusing
retry delay or cap clears (each clears for good once passed, since no attempt is added while
the dial waits and the recorded attempts are not later than ``now``), then the first window
opening from there within :data:`NEXT_WINDOW_HORIZON_DAYS`; None when no window opens within
that horizon. It is always later than ``now``. Windows are reported before delays because
they are the common case and the one a supervisor can read at a glance.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import cache
from zoneinfo import ZoneInfo

from holidays import country_holidays

from dialer.campaigns import WEEKDAYS, CampaignModel, PhoneKindName, duration
from dialer.staterules import (
    Cap,
    Interval,
    StateRules,
    intersect_intervals,
    is_restricted_holiday,
    is_state_holiday,
    most_restrictive,
    most_restrictive_caps,
)

MIN_RING_SECONDS = 15
"""Unanswered calls ring at least this long (47 CFR 64.1200(a)(6), TSR 310.4(b)(4)(i))."""

ABANDON_GRACE_SECONDS = 2.0
"""A detected person must reach a PSR within this many seconds (47 CFR 64.1200(a)(7)(i))."""

ABANDON_PERIOD = timedelta(days=30)
"""The abandonment rate is measured over successive periods of this length (TSR 310.4(b)(4))."""

GUARD_TRIP_FRACTION = 0.95
"""The guard trips when the period's rate exceeds this fraction of the cap (2.85% at 3%)."""

GUARD_RELEASE_FRACTION = 0.85
"""A tripped guard releases when the period's rate falls below this fraction (2.55% at 3%)."""

NEXT_WINDOW_HORIZON_DAYS = 14
"""How far ahead :func:`next_window_open` (and so ``not_before``) looks for an opening."""


class Reason(str, Enum):
    """Why the gate refused a dial; stored and reported as the string value."""

    do_not_call = "do_not_call"  # the phone is on an applicable do-not-call list
    no_consent = "no_consent"  # a mobile without consent, and the campaign requires it
    max_attempts = "max_attempts"  # the household used up the campaign's attempts
    holiday = "holiday"  # a holiday closes the callee-local day in a candidate zone
    outside_window = "outside_window"  # outside the allowed spans in a candidate zone
    retry_delay = "retry_delay"  # before the retry time set by the last outcome
    max_attempts_per_day = "max_attempts_per_day"  # household's daily cap, callee-local day
    phone_cap = "phone_cap"  # a rolling per-phone cap across campaigns (federal or state)


@dataclass(frozen=True)
class DialRequest:
    """Everything the gate needs to know about one prospective dial (see the module doc)."""

    phone: str  # E.164
    phone_kind: PhoneKindName
    zones: tuple[str, ...]  # candidate IANA zones of the callee; at least one
    states: tuple[str, ...]  # candidate 2-letter states; empty means federal rules only
    has_consent: bool  # a consent record exists for this phone
    on_dnc: bool  # on a do-not-call list that applies (the caller checks the lists)
    household_attempts: tuple[datetime, ...] = ()  # this campaign's attempts on the household
    phone_attempts: tuple[datetime, ...] = ()  # every campaign's, over 168 h back at least
    next_attempt_at: datetime | None = None  # earliest retry time set by the last outcome
    requested: bool = False  # a callback the callee asked for (see phone_cap_clears_at)

    def __post_init__(self) -> None:
        if not self.zones:
            # The phone is protected health information: never put it in a message.
            raise ValueError("a dial request needs at least one candidate zone")
        for at in (*self.household_attempts, *self.phone_attempts):
            _require_aware(at)
        if self.next_attempt_at is not None:
            _require_aware(self.next_attempt_at)


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: allowed, or the reason and the earliest instant it could be."""

    allowed: bool
    reason: Reason | None = None
    not_before: datetime | None = None


ALLOWED = Verdict(allowed=True)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {at.isoformat()}")


# -- calling windows -----------------------------------------------------------------------


@cache
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(country_holidays("US", years=year))


def is_holiday_closed(
    states: Sequence[str], campaign: CampaignModel, rules: StateRules, local_date: date
) -> bool:
    """True when a holiday closes the whole callee-local day (see the module doc, Holidays)."""
    if any(is_restricted_holiday(rules, state, local_date) for state in states):
        return True
    if not campaign.calling.skip_holidays:
        return False
    if local_date in _federal_holidays(local_date.year):
        return True
    return any(is_state_holiday(rules, state, local_date) for state in states)


def _campaign_intervals(campaign: CampaignModel, local_date: date) -> list[Interval]:
    day = WEEKDAYS[local_date.weekday()]
    return sorted(
        (time.fromisoformat(window.start), time.fromisoformat(window.end))
        for window in campaign.calling.windows
        if day in window.days
    )


# Spans computed lately, by (states, day, the campaign's and the rules' identities), each with
# the campaign and rules it was computed for: the gate asks for the same few days of the same
# campaign for every dial. An entry serves only the very objects it was computed from (held
# here, so their identities cannot be reused while the entry lives); a campaign reloaded from
# its file is a new object and computes its own.
_SpansKey = tuple[tuple[str, ...], date, int, int]
_SPANS: dict[_SpansKey, tuple[CampaignModel, StateRules, tuple[Interval, ...]]] = {}
_SPANS_KEPT = 4096


def allowed_local_intervals(
    states: Sequence[str], campaign: CampaignModel, rules: StateRules, local_date: date
) -> tuple[Interval, ...]:
    """Callee-local ``[start, end)`` spans of ``local_date`` when a dial is allowed in a zone.

    Federal 08:00-21:00, every candidate state's window, the campaign's windows for that
    weekday, and holidays. The spans may overlap (overlapping campaign windows); membership
    in any of them is what counts.
    """
    key = (tuple(states), local_date, id(campaign), id(rules))
    known = _SPANS.get(key)
    if known is not None and known[0] is campaign and known[1] is rules:
        return known[2]
    spans: tuple[Interval, ...] = ()
    if not is_holiday_closed(states, campaign, rules, local_date):
        spans = tuple(
            intersect_intervals(
                most_restrictive(rules, states, local_date),
                _campaign_intervals(campaign, local_date),
            )
        )
    if len(_SPANS) >= _SPANS_KEPT:
        _SPANS.clear()
    _SPANS[key] = (campaign, rules, spans)
    return spans


def _zone_allows(
    zone: str, states: Sequence[str], campaign: CampaignModel, now: datetime, rules: StateRules
) -> bool:
    local = now.astimezone(ZoneInfo(zone))
    moment = local.time()
    spans = allowed_local_intervals(states, campaign, rules, local.date())
    return any(start <= moment < end for start, end in spans)


def in_calling_window(
    zones: Sequence[str],
    states: Sequence[str],
    campaign: CampaignModel,
    now: datetime,
    rules: StateRules,
) -> bool:
    """True when ``now`` is inside the allowed spans in every candidate zone (none: False)."""
    _require_aware(now)
    return bool(zones) and all(_zone_allows(zone, states, campaign, now, rules) for zone in zones)


def next_window_open(
    zones: Sequence[str],
    states: Sequence[str],
    campaign: CampaignModel,
    now: datetime,
    rules: StateRules,
    *,
    horizon_days: int = NEXT_WINDOW_HORIZON_DAYS,
) -> datetime | None:
    """The earliest instant (UTC) at or after ``now`` inside the window in every zone, or None.

    ``now`` itself when it is inside; None when nothing opens within ``horizon_days``. The
    allowed set is, per zone, a union of half-open spans, so its earliest point after ``now``
    is ``now`` or the latest of the span starts that contain it: trying every span start of
    every zone in time order, and returning the first one :func:`in_calling_window` accepts,
    finds it exactly (DST shifts included, since each start is converted with its own date;
    US clocks change at 02:00, outside every span, so each span is one stretch of UTC).
    """
    now = now.astimezone(UTC)
    if in_calling_window(zones, states, campaign, now, rules):
        return now
    end = now + timedelta(days=horizon_days)
    candidates = sorted(set(_span_starts(zones, states, campaign, now, end, rules)))
    for candidate in candidates:
        if in_calling_window(zones, states, campaign, candidate, rules):
            return candidate
    return None


def _span_starts(
    zones: Iterable[str],
    states: Sequence[str],
    campaign: CampaignModel,
    now: datetime,
    end: datetime,
    rules: StateRules,
) -> Iterable[datetime]:
    for zone in zones:
        tz = ZoneInfo(zone)
        first, last = now.astimezone(tz).date(), end.astimezone(tz).date()
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            for start, _ in allowed_local_intervals(states, campaign, rules, day):
                at = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
                if now < at <= end:
                    yield at


# -- caps and delays -----------------------------------------------------------------------


def day_cap_clears_at(
    attempts: Sequence[datetime], zones: Sequence[str], limit: int, now: datetime
) -> datetime | None:
    """When the per-day cap stops refusing, or None when it does not refuse now.

    In each zone the attempts on that zone's current local date are counted; the cap refuses
    when any zone has ``limit`` or more. It clears at the latest next local midnight among
    the zones that refuse (a fresh day holds no past attempts in any zone).
    """
    clears: datetime | None = None
    for zone in zones:
        tz = ZoneInfo(zone)
        today = now.astimezone(tz).date()
        count = sum(1 for at in attempts if at.astimezone(tz).date() == today)
        if count >= limit:
            tomorrow = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)
            midnight = tomorrow.astimezone(UTC)
            clears = midnight if clears is None else max(clears, midnight)
    return clears


def rolling_cap_clears_at(
    attempts: Sequence[datetime], caps: Iterable[Cap], now: datetime
) -> datetime | None:
    """When the rolling per-phone caps stop refusing, or None when none refuses now.

    A cap ``Cap(n, h)`` refuses when ``n`` or more attempts lie after ``now - h hours``. With
    those attempts sorted, it clears once the ``k - n + 1``-th of the ``k`` recent ones is
    ``h`` hours old, leaving ``n - 1`` in the window.
    """
    if not attempts:  # every cap allows at least one call
        return None
    ordered = sorted(attempts)
    clears: datetime | None = None
    for cap in caps:
        window = timedelta(hours=cap.window_hours)
        recent = ordered[bisect.bisect_right(ordered, now - window) :]
        if len(recent) >= cap.calls:
            at = recent[len(recent) - cap.calls] + window
            clears = at if clears is None else max(clears, at)
    return clears


def phone_cap_clears_at(
    attempts: Sequence[datetime],
    states: Sequence[str],
    now: datetime,
    rules: StateRules,
    *,
    requested: bool = False,
) -> datetime | None:
    """When the per-phone caps stop refusing a dial to a phone with these ``attempts`` (every
    campaign's), or None when none refuses now.

    A callback the callee asked for (``requested``) is a call made at their express request:
    the federal healthcare limits (1 a day, 3 a week) are conditions of calling *without*
    consent and do not apply to it, but a state's own cap (e.g. 3 calls in 24 hours) counts
    every call and still does (the most restrictive reading).
    """
    if not attempts:  # (a phone never called: most dials)
        return None
    caps = most_restrictive_caps(rules, states, federal=not requested)
    return rolling_cap_clears_at(attempts, caps, now)


def retry_time(campaign: CampaignModel, outcome: str, ended_at: datetime) -> datetime:
    """When the next attempt may start after ``outcome`` ended at ``ended_at`` (retry_after)."""
    delays = {str(key): text for key, text in campaign.calling.retry_after.items()}
    if outcome not in delays:
        known = ", ".join(sorted(delays))
        raise ValueError(f"no retry delay for outcome {outcome!r} (known: {known})")
    return ended_at + duration(delays[outcome])


# -- the gate ------------------------------------------------------------------------------


def _permanent_refusal(request: DialRequest, campaign: CampaignModel) -> Reason | None:
    if request.on_dnc:
        return Reason.do_not_call
    calling = campaign.calling
    needs_consent = request.phone_kind == "mobile" and calling.require_consent_for_mobile
    if needs_consent and not request.has_consent:
        return Reason.no_consent
    if len(request.household_attempts) >= calling.max_attempts and not request.requested:
        return Reason.max_attempts
    return None


def _delay_refusal(
    request: DialRequest, campaign: CampaignModel, now: datetime, rules: StateRules
) -> tuple[Reason | None, datetime]:
    """The first refusing delay or cap, and the instant every one of them has cleared."""
    checks: list[tuple[Reason, datetime | None]] = [
        (Reason.retry_delay, request.next_attempt_at),
        (
            Reason.max_attempts_per_day,
            None
            if request.requested
            else day_cap_clears_at(
                request.household_attempts,
                request.zones,
                campaign.calling.max_attempts_per_day,
                now,
            ),
        ),
        (
            Reason.phone_cap,
            phone_cap_clears_at(
                request.phone_attempts, request.states, now, rules, requested=request.requested
            ),
        ),
    ]
    refusing = [(reason, at) for reason, at in checks if at is not None and at > now]
    if not refusing:
        return None, now
    return refusing[0][0], max(at for _, at in refusing)


def _window_reason(
    request: DialRequest, campaign: CampaignModel, now: datetime, rules: StateRules
) -> Reason | None:
    closed = [z for z in request.zones if not _zone_allows(z, request.states, campaign, now, rules)]
    if not closed:
        return None
    for zone in closed:
        local_date = now.astimezone(ZoneInfo(zone)).date()
        if is_holiday_closed(request.states, campaign, rules, local_date):
            return Reason.holiday
    return Reason.outside_window


def check_dial(
    request: DialRequest, campaign: CampaignModel, now: datetime, rules: StateRules
) -> Verdict:
    """May ``request`` be dialed at ``now``? Every rule of the module doc, in its order."""
    _require_aware(now)
    permanent = _permanent_refusal(request, campaign)
    if permanent is not None:
        return Verdict(allowed=False, reason=permanent)
    delay_reason, cleared_at = _delay_refusal(request, campaign, now, rules)
    window_reason = _window_reason(request, campaign, now, rules)
    reason = window_reason or delay_reason
    if reason is None:
        return ALLOWED
    opens_at = next_window_open(request.zones, request.states, campaign, cleared_at, rules)
    return Verdict(allowed=False, reason=reason, not_before=opens_at)


# -- abandonment ---------------------------------------------------------------------------


def is_abandoned(
    detected_at: datetime,
    bridged_at: datetime | None,
    ended_at: datetime,
    grace_seconds: float = ABANDON_GRACE_SECONDS,
) -> bool:
    """True when a detected person was not bridged to a PSR within ``grace_seconds``.

    A bridge exactly ``grace_seconds`` after detection is in time: the rule says "within 2
    seconds", and the engine's bridging deadline is the same instant, so the two agree. A
    person never bridged is abandoned, including one who hung up inside the grace period
    (the issue counts those too). A bridge stamped after the call ended did not happen.
    """
    if ended_at < detected_at:
        raise ValueError("a call cannot end before its person was detected")
    if bridged_at is None or bridged_at > ended_at:
        return True
    return bridged_at - detected_at > timedelta(seconds=grace_seconds)


def guard_minimum(cap: float) -> int:
    """Persons detected in a period below which the guard uses only its count rule.

    Below it one abandon moves the rate by more than the hysteresis band (0.10 of the cap:
    334 detections at 3%), so rate thresholds would flip on single calls.
    """
    return math.ceil(1 / ((GUARD_TRIP_FRACTION - GUARD_RELEASE_FRACTION) * cap))


class AbandonLedger:
    """Persons detected and abandoned for one campaign, by 30-day period, and its guard.

    Periods are successive :data:`ABANDON_PERIOD` spans from the ledger's origin: the
    campaign's first attempt when given as ``started_at``, else the first recorded
    detection (a campaign younger than 30 days is measured since its start). Records may
    arrive in any order. The only state besides the records is the guard's hysteresis flag.
    """

    def __init__(self, started_at: datetime | None = None) -> None:
        if started_at is not None:
            _require_aware(started_at)
        self._started_at = started_at
        self._origin = started_at  # the earlier of started_at and the first detection
        self._detected: list[datetime] = []  # sorted
        self._abandoned: list[datetime] = []  # sorted
        self._tripped_period: datetime | None = None  # period whose soft guard is tripped
        # The guard runs on every pacing decision: the counts of the last period it asked for
        # (its start, detected, abandoned), until the next record; and that period's span
        # while the origin stays (aware UTC: see period_start).
        self._period_counts: tuple[datetime, int, int] | None = None
        self._span: tuple[datetime, datetime] | None = None

    def record(self, detected_at: datetime, abandoned: bool) -> None:
        """Record a person detected at ``detected_at``, abandoned or not."""
        _require_aware(detected_at)
        bisect.insort(self._detected, detected_at)
        if self._origin is None or detected_at < self._origin:
            self._origin = detected_at
            self._span = None
        if abandoned:
            bisect.insort(self._abandoned, detected_at)
        self._period_counts = None

    def origin(self) -> datetime | None:
        """Where the first period starts, or None before anything is known."""
        return self._origin

    def period_start(self, at: datetime) -> datetime:
        """The start of the 30-day period containing ``at`` (``at`` itself when empty)."""
        origin = self._origin
        if origin is None:
            return at
        span = self._span
        if span is not None and span[0] <= at < span[1]:
            return span[0]
        start = origin + ABANDON_PERIOD * ((at - origin) // ABANDON_PERIOD)
        if origin.tzinfo is UTC:
            # From a UTC origin the period is exactly [start, start + ABANDON_PERIOD); from
            # another zone additions go by its wall clock, so only UTC spans are kept.
            self._span = (start, start + ABANDON_PERIOD)
        return start

    def counts(self, at: datetime) -> tuple[int, int]:
        """Persons detected and abandoned in the period containing ``at``."""
        start = self.period_start(at)
        return self._counts(start, start + ABANDON_PERIOD)

    def _counts(self, start: datetime, end: datetime) -> tuple[int, int]:
        def between(times: list[datetime]) -> int:
            return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)

        return between(self._detected), between(self._abandoned)

    def rate(self, at: datetime) -> float:
        """Abandoned / detected in the period containing ``at`` (0.0 with no detections)."""
        detected, abandoned = self.counts(at)
        return abandoned / detected if detected else 0.0

    def period_rates(self) -> list[tuple[datetime, int, int, float]]:
        """Every period up to the last record: start, detected, abandoned, rate."""
        origin = self.origin()
        if origin is None or not self._detected:
            return []
        rows = []
        for index in range((self._detected[-1] - origin) // ABANDON_PERIOD + 1):
            start = origin + index * ABANDON_PERIOD
            detected, abandoned = self._counts(start, start + ABANDON_PERIOD)
            rows.append((start, detected, abandoned, abandoned / detected if detected else 0.0))
        return rows

    def guard(self, at: datetime, cap: float, *, in_flight: int = 1) -> bool:
        """True: dial progressively now (abandon nothing) to keep this period at or below ``cap``.

        Two rules, either of which trips it:

        * Count rule (the guarantee): trip when ``in_flight`` more abandons, each of them a
          detection too, would put the period containing ``at`` over the cap:
          ``(abandoned + in_flight) / (detected + in_flight) > cap``. Following the guard
          keeps every period at or below the cap at every moment, hence at its end: an
          abandon only happens while the guard is False, so the rate right after it is at
          most the checked bound; detections that are not abandoned only lower the rate; a new
          period starts from zero, where the rule trips until ``1/cap - 1`` persons (33 at 3%)
          have been detected. This holds when at most ``in_flight`` abandons can follow one
          check (default 1: one check per call that may reach a person) and when ``at`` lies
          in the period those abandons will be recorded in (near a period's end, pass the
          latest detection time of the calls being placed: a new, empty period trips).
        * Hysteresis (the margin): once ``guard_minimum(cap)`` persons were detected in the
          period, trip when its rate exceeds ``GUARD_TRIP_FRACTION`` of the cap and release
          only when it falls below ``GUARD_RELEASE_FRACTION``. The predictive pacer aims at
          0.90 of the cap; the band straddles that aim, so a pacer on target never trips it
          and one that overshoots is held to progressive until the period regains a margin,
          instead of flapping at the cap. The flag belongs to one period and is dropped at
          the next.
        """
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        start = self.period_start(at)
        counts = self._period_counts
        if counts is not None and counts[0] == start:
            _, detected, abandoned = counts
        else:
            detected, abandoned = self._counts(start, start + ABANDON_PERIOD)
            self._period_counts = (start, detected, abandoned)
        soft = self._hysteresis(start, detected, abandoned, cap)
        hard = (abandoned + in_flight) / (detected + in_flight) > cap
        return soft or hard

    def _hysteresis(self, period: datetime, detected: int, abandoned: int, cap: float) -> bool:
        was_tripped = self._tripped_period == period
        if detected < guard_minimum(cap):
            tripped = False
        elif was_tripped:
            tripped = abandoned / detected >= GUARD_RELEASE_FRACTION * cap
        else:
            tripped = abandoned / detected > GUARD_TRIP_FRACTION * cap
        if tripped:
            self._tripped_period = period
        elif was_tripped:
            self._tripped_period = None
        return tripped
