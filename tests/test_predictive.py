"""The predictive pacer: what it learns, when it trusts its model, the budget it never exceeds,
how its threshold moves, and its abandon probabilities against a Monte Carlo of the same world."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from numpy.typing import NDArray

from dialer.pacing import PoolSnapshot
from dialer.predictive import GAIN, LAMBDA_START, MIN_LINES_SEEN, PredictivePacer

Floats = NDArray[np.float64]


class World:
    """Scenario S2's callees and PSRs (pacing notes), drawn with numpy."""

    def __init__(self, seed: int, p: float = 0.3) -> None:
        self.rng = np.random.default_rng(seed)
        self.p = p

    def lognormal(self, mean: float, sd: float, n: int) -> Floats:
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return self.rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), n)

    def lines(self, n: int) -> tuple[NDArray[np.bool_], Floats]:
        """Whether each line reaches a person, and when it resolves (seconds after the dial)."""
        live = self.rng.random(n) < self.p
        kind = self.rng.random(n)
        other = np.where(
            kind < 0.25,
            self.rng.uniform(1, 5, n),
            np.where(kind < 0.70, 24.0, self.lognormal(12, 4, n)),
        )
        return live, np.where(live, self.lognormal(9, 4, n), other)

    def handles(self, n: int) -> Floats:
        """Talk plus wrap-up."""
        return self.lognormal(180, 180, n) + self.lognormal(20, 10, n)


def trained(
    now: datetime, *, p: float = 0.3, lines: int = 3000, handles: int = 1000
) -> PredictivePacer:
    """A pacer that has watched ``lines`` resolved lines and ``handles`` connects of S2."""
    pacer = PredictivePacer()
    world = World(seed=7, p=p)
    resolve(pacer, *world.lines(lines), until=now)
    for seconds in world.handles(handles):
        pacer.observe_handle(float(seconds), now)
    return pacer


def resolve(
    pacer: PredictivePacer, live: NDArray[np.bool_], seconds: Floats, *, until: datetime
) -> None:
    """Lines placed a second apart, resolving after ``seconds``; the last one placed a minute
    before ``until``, so that every one has settled by then."""
    placed = until - timedelta(seconds=60 + len(live))
    ends = [placed + timedelta(seconds=i + float(s)) for i, s in enumerate(seconds)]
    for end, is_live, ring in sorted(zip(ends, live, seconds, strict=True)):
        pacer.observe_line(float(ring), bool(is_live), end)
    pacer.observe_line(0.0, False, until)  # (a line at ``until`` settles the rest)


def persons(pacer: PredictivePacer, at: datetime, served: int, abandoned: int = 0) -> None:
    """Persons detected in the current period (with no decision just before: lambda holds)."""
    for index in range(served + abandoned):
        pacer.observe_abandon(index < abandoned, at)


def snapshot(
    now: datetime,
    *,
    ready: int = 0,
    busy: tuple[float, ...] = (),
    ringing: tuple[float, ...] = (),
    waiting: int = 0,
) -> PoolSnapshot:
    return PoolSnapshot(now, ready, busy, ringing, 0, waiting, ready + len(busy))


# -- learning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.3, 0.1])
def test_it_learns_the_live_answer_rate_within_two_points(now: datetime, p: float) -> None:
    pacer = trained(now, p=p)

    assert pacer.trusted
    assert abs(pacer.p - p) < 0.02


@pytest.mark.parametrize(("before", "after", "within"), [(0.3, 0.1, 0.03), (0.1, 0.3, 0.05)])
def test_it_follows_a_change_of_the_answer_rate_within_a_few_hundred_lines(
    now: datetime, before: float, after: float, within: float
) -> None:
    pacer = trained(now, p=before)
    later = World(seed=8, p=after)
    resolve(pacer, *later.lines(300), until=now + timedelta(hours=1))

    assert abs(pacer.p - after) < within


def test_a_steady_answer_rate_keeps_the_whole_window(now: datetime) -> None:
    pacer = trained(now, lines=20_000)

    assert pacer.live_rate.lines == 3000
    assert abs(pacer.p - 0.3) < 0.015


# -- before the model is trusted ---------------------------------------------------------------

UNTRUSTED = {
    "one-line-per-ready-psr": ({"ready": 3, "busy": (200.0,) * 17}, 3),
    "lines-in-flight-count": ({"ready": 3, "busy": (200.0,) * 17, "ringing": (1.0, 2.0)}, 1),
    "none-ready-none-started": ({"busy": (400.0,) * 20}, 0),
}


@pytest.mark.parametrize(("state", "expected"), UNTRUSTED.values(), ids=UNTRUSTED.keys())
def test_until_it_trusts_the_model_it_holds_no_line_beyond_the_ready_psrs(
    now: datetime, state: dict[str, object], expected: int
) -> None:
    pacer = trained(now, lines=MIN_LINES_SEEN - 1)

    assert not pacer.trusted
    assert pacer.lines_to_start(snapshot(now, **state)) == expected  # type: ignore[arg-type]


# -- decisions ---------------------------------------------------------------------------------


def test_each_line_started_carries_more_risk_than_the_one_before(now: datetime) -> None:
    pacer = trained(now)
    mid_call = snapshot(now, busy=tuple(100.0 + 10 * i for i in range(20)))

    risks = [pacer.marginal(mid_call, started) for started in range(6)]

    assert risks == sorted(risks) and risks[0] < risks[-1]


def test_it_dials_ahead_for_psrs_mid_call_and_holds_back_for_persons_ahead(now: datetime) -> None:
    pacer = trained(now)
    persons(pacer, now, 2000)
    pacer.log_lambda = math.log(0.3)
    calls = tuple(100.0 + 10 * i for i in range(20))

    def started(**state: Any) -> int:
        return pacer.lines_to_start(snapshot(now, **state))

    mid_call = started(busy=calls)
    assert started(busy=(5.0,) * 20) == 0  # nobody can be free before a person answers
    assert mid_call > 0
    assert started(busy=calls, waiting=1) < mid_call
    assert started(busy=calls, ringing=(1.0, 2.0)) < mid_call
    assert started(ready=1, busy=calls[1:]) > mid_call


def test_a_line_that_finds_a_ready_psr_whatever_happens_cannot_be_abandoned(
    now: datetime,
) -> None:
    pacer = trained(now)

    assert pacer.marginal(snapshot(now, ready=2, busy=(100.0,) * 18, ringing=(3.0,))) == 0.0
    assert pacer.marginal(snapshot(now, ready=0, ringing=(3.0,))) == 1.0


# Snapshots where the abandon probability is in the range the threshold works in.
CASES = {
    "twenty-busy-one-ringing": (0, tuple(np.linspace(100, 400, 20)), (1.0,)),
    "two-ready-three-ringing": (2, tuple(np.linspace(5, 300, 18)), (1.0, 2.0, 3.0)),
    "one-ready-ten-busy": (1, (20.0,) * 10, (5.0,)),
    "four-late-calls": (0, (250.0, 250.0, 300.0, 350.0), ()),
}


@pytest.mark.parametrize(("ready", "busy", "ringing"), CASES.values(), ids=CASES.keys())
def test_its_abandon_probability_matches_a_monte_carlo_of_the_world_it_learned(
    now: datetime, ready: int, busy: tuple[float, ...], ringing: tuple[float, ...]
) -> None:
    """The person of one more line is abandoned when fewer PSRs are free by its arrival plus
    the grace than persons arrived before it (each busy PSR's rest of call and each ringing
    line's fate drawn given how long it has already lasted)."""
    pacer = trained(now)
    world, n = World(seed=11), 40_000
    handles = world.handles(400_000)
    live, resolved = world.lines(400_000)
    arrival = world.lognormal(9, 4, n)
    free = np.full(n, ready)
    for elapsed in busy:
        rest = handles[handles > elapsed] - elapsed
        free += world.rng.choice(rest, n) <= arrival + 2.0
    ahead = np.zeros(n, dtype=np.int64)
    for rung in ringing:
        pick = world.rng.choice(np.nonzero(resolved > rung)[0], n)
        ahead += live[pick] & (resolved[pick] - rung < arrival)
    simulated = float(np.mean(free - ahead < 1))

    model = pacer.marginal(snapshot(now, ready=ready, busy=busy, ringing=ringing))

    assert model == pytest.approx(simulated, abs=0.04)


def test_a_burst_resolving_sorted_by_outcome_does_not_move_the_live_answer_rate(
    now: datetime,
) -> None:
    # A shift starts: 300 lines placed at once resolve failures first, then persons, then the
    # unanswered ones at the ring-out, a run of about a hundred. Read in that order the rate
    # "changes" to 0 (and a pacer sure nobody answers dials without limit).
    pacer = trained(now)
    start = now + timedelta(hours=1)
    live, seconds = World(seed=9).lines(300)
    for index in sorted(range(300), key=lambda i: seconds[i]):
        pacer.observe_line(
            float(seconds[index]),
            bool(live[index]),
            start + timedelta(seconds=float(seconds[index])),
        )
        assert abs(pacer.p - 0.3) < 0.03
    pacer.observe_line(5.0, False, start + timedelta(minutes=2))  # the burst has settled

    assert abs(pacer.p - 0.3) < 0.03


# -- budget and control ------------------------------------------------------------------------


def test_it_never_keeps_more_unreserved_lines_than_the_period_can_absorb(now: datetime) -> None:
    pacer = trained(now)
    pacer.log_lambda = math.log(0.5)  # the model alone would dial many lines
    persons(pacer, now, 490, abandoned=10)  # 2% so far: room for 4 lines in flight
    for ready in range(4):
        for ringing in range(7):
            snap = snapshot(
                now + timedelta(seconds=1),
                ready=ready,
                busy=(400.0,) * (20 - ready),
                ringing=tuple(1.0 + i for i in range(ringing)),
            )
            started = pacer.lines_to_start(snap)
            after = snap.lines + started
            if started > max(0, snap.ready - snap.lines):  # lines that could be abandoned
                assert after <= 4
                assert (10 + after) / (500 + after) <= 0.03  # even if all of them were


def test_a_new_period_starts_with_no_line_beyond_the_ready_psrs(now: datetime) -> None:
    pacer = trained(now)
    pacer.log_lambda = math.log(0.5)
    persons(pacer, now, 2000)
    busy = (400.0,) * 18

    assert pacer.lines_to_start(snapshot(now, ready=2, busy=busy)) > 2
    last = now + timedelta(days=30, microseconds=-1)  # the period's last instant
    assert pacer.lines_to_start(snapshot(last, ready=2, busy=busy)) > 2
    assert pacer.lines_to_start(snapshot(now + timedelta(days=30), ready=2, busy=busy)) == 2


@pytest.mark.parametrize("month", [2, 10])  # first periods spanning the March, November change
def test_a_period_from_an_origin_in_a_zone_with_dst_ends_where_its_arithmetic_says(
    now: datetime, month: int
) -> None:
    origin = datetime(2026, month, 20, 9, tzinfo=ZoneInfo("America/Chicago"))
    pacer = trained(now)
    persons(pacer, origin, 2000)
    busy = (400.0,) * 20
    for hours in (0, 718.5, 719.5, 720.5, 721.5, 1, 719.5, 720.5):
        at = (origin + timedelta(hours=hours)).astimezone(UTC)
        new_period = (at - origin) // timedelta(days=30) != 0
        assert (pacer.line_limit(snapshot(at, busy=busy)) == 0) is new_period


def test_lambda_rises_when_served_falls_when_abandoned_and_holds_when_out_of_control(
    now: datetime,
) -> None:
    pacer = trained(now)
    target = 0.9 * 0.03
    start = math.log(LAMBDA_START)
    pacer.lines_to_start(snapshot(now, ready=1, busy=(100.0,) * 19))

    pacer.observe_abandon(False, now + timedelta(seconds=1))
    assert pacer.log_lambda == pytest.approx(start + GAIN * target)
    pacer.observe_abandon(True, now + timedelta(seconds=2))
    assert pacer.log_lambda == pytest.approx(start + GAIN * target - GAIN * (1 - target))
    # Nobody asked this pacer for a minute (the guard dialed): a served person says nothing.
    pacer.observe_abandon(False, now + timedelta(seconds=62))
    assert pacer.log_lambda == pytest.approx(start + GAIN * target - GAIN * (1 - target))
