"""Pacers' decisions on hand-built pool snapshots: progressive and preview, fixed ratio, the
VICIdial-style adaptive level cycle by cycle, and make_pacer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from dialer.pacing import (
    AdaptivePacer,
    Pacer,
    PoolSnapshot,
    PreviewPacer,
    ProgressivePacer,
    RatioPacer,
    make_pacer,
)
from dialer.predictive import PredictivePacer

Snap = Callable[..., PoolSnapshot]


@pytest.fixture
def make_snapshot(now: datetime) -> Snap:
    """A pool snapshot at ``now + seconds`` from keyword overrides of an empty pool."""

    def make(seconds: float = 0, **overrides: Any) -> PoolSnapshot:
        values: dict[str, Any] = {
            "now": now + timedelta(seconds=seconds),
            "ready": 0,
            "busy_elapsed": (),
            "ringing_elapsed": (),
            "reserved_lines": 0,
            "waiting": 0,
            "logged_in": 0,
        }
        values.update(overrides)
        return PoolSnapshot(**values)

    return make


def ringing(n: int) -> tuple[float, ...]:
    """``n`` unreserved lines that have rung for a few seconds each."""
    return tuple(float(i + 1) for i in range(n))


def test_lines_counts_unreserved_ringing_and_waiting_only(make_snapshot: Snap) -> None:
    snap = make_snapshot(ringing_elapsed=ringing(3), waiting=2, reserved_lines=4)

    assert snap.lines == 5


# -- progressive and preview -------------------------------------------------------------------


PROGRESSIVE = {
    "nobody-ready": ({"ready": 0, "logged_in": 5, "busy_elapsed": (30.0,) * 5}, 0),
    "one-ready": ({"ready": 1, "logged_in": 1}, 1),
    "every-ready-psr-gets-one": ({"ready": 4, "logged_in": 6, "busy_elapsed": (10.0, 90.0)}, 4),
    "reserved-lines-belong-to-reserved-psrs": ({"ready": 2, "reserved_lines": 3}, 2),
}


@pytest.mark.parametrize("pacer", [ProgressivePacer(), PreviewPacer()], ids=lambda p: p.mode)
@pytest.mark.parametrize(("state", "expected"), PROGRESSIVE.values(), ids=PROGRESSIVE.keys())
def test_progressive_and_preview_start_one_line_per_ready_psr(
    make_snapshot: Snap, pacer: Pacer, state: dict[str, Any], expected: int
) -> None:
    assert pacer.lines_to_start(make_snapshot(**state)) == expected


@pytest.mark.parametrize(
    ("pacer", "mode", "reserves"),
    [
        (ProgressivePacer(), "progressive", True),
        (PreviewPacer(), "preview", True),
        (RatioPacer(2.0), "ratio", False),
        (AdaptivePacer(), "adaptive", False),
    ],
    ids=["progressive", "preview", "ratio", "adaptive"],
)
def test_mode_and_reservation(pacer: Pacer, mode: str, reserves: bool) -> None:
    assert (pacer.mode, pacer.reserves) == (mode, reserves)


def test_progressive_leaves_ready_psrs_for_unreserved_lines_in_flight(make_snapshot: Snap) -> None:
    snap = make_snapshot(ready=3, logged_in=3, ringing_elapsed=ringing(2))

    assert ProgressivePacer().lines_to_start(snap) == 1


# -- fixed ratio -------------------------------------------------------------------------------


RATIO = {
    "k2-nobody-ready": (2.0, {"ready": 0, "logged_in": 4}, 0),
    "k2-nobody-ready-nothing-ringing": (2.0, {"ready": 0}, 0),
    "k2-one-ready": (2.0, {"ready": 1}, 2),
    "k2-three-ready": (2.0, {"ready": 3}, 6),
    "k2-tops-up-ringing": (2.0, {"ready": 3, "ringing_elapsed": ringing(4)}, 2),
    "k2-waiting-is-a-line": (2.0, {"ready": 3, "ringing_elapsed": ringing(4), "waiting": 1}, 1),
    "k2-full": (2.0, {"ready": 3, "ringing_elapsed": ringing(6)}, 0),
    "k2-over-never-negative": (2.0, {"ready": 1, "ringing_elapsed": ringing(5)}, 0),
    "k2-reserved-lines-not-counted": (2.0, {"ready": 2, "reserved_lines": 3}, 4),
    "k2-busy-psrs-not-counted": (2.0, {"ready": 1, "busy_elapsed": (5.0, 60.0)}, 2),
    "k1.5-one-ready-rounds-down": (1.5, {"ready": 1}, 1),
    "k1.5-three-ready": (1.5, {"ready": 3}, 4),
    "k1.5-four-ready": (1.5, {"ready": 4}, 6),
    "k5.3-two-ready": (5.3, {"ready": 2}, 10),
    "k5.3-ten-ready": (5.3, {"ready": 10}, 53),
    "k1.4-45-ready-float-floor": (1.4, {"ready": 45}, 63),  # 1.4 x 45 = 62.99999999999999
    "k1-one-per-ready": (1.0, {"ready": 4, "ringing_elapsed": ringing(1)}, 3),
}


@pytest.mark.parametrize(("k", "state", "expected"), RATIO.values(), ids=RATIO.keys())
def test_ratio_tops_up_to_floor_k_times_ready_minus_lines(
    make_snapshot: Snap, k: float, state: dict[str, Any], expected: int
) -> None:
    assert RatioPacer(k).lines_to_start(make_snapshot(**state)) == expected


@pytest.mark.parametrize("k", [0.0, 0.5, 0.999], ids=["zero", "half", "just-under-one"])
def test_ratio_below_one_is_refused(k: float) -> None:
    with pytest.raises(ValueError, match=r"^a dialing ratio is at least 1\.0$"):
        RatioPacer(k)


# -- adaptive ----------------------------------------------------------------------------------


@pytest.fixture
def adaptive() -> AdaptivePacer:
    """The VICIdial-style pacer counting idle PSRs, with no drop-rate reset in the way."""
    return AdaptivePacer("idle", target=1.0)


def test_adaptive_first_decision_adjusts_at_once(make_snapshot: Snap) -> None:
    pacer = AdaptivePacer("idle")

    # 2 ready, none waiting, 4 PSRs: level 1 x (1 + 2/4) = 1.5; 1.5 x 2 ready = 3 lines.
    started = pacer.lines_to_start(make_snapshot(ready=2, logged_in=4))

    assert (pacer.level, started) == (1.5, 3)


@pytest.mark.parametrize(
    ("counting", "state", "expected"),
    [
        ("idle", {"ready": 2, "logged_in": 4}, 3),  # floor(1.5 x 2 ready)
        ("all", {"ready": 2, "logged_in": 4}, 6),  # floor(1.5 x 4 logged in)
        ("idle", {"ready": 2, "logged_in": 4, "ringing_elapsed": ringing(2)}, 1),
        ("all", {"ready": 2, "logged_in": 4, "ringing_elapsed": ringing(2)}, 4),
        ("idle", {"ready": 0, "logged_in": 4}, 0),
        ("all", {"ready": 0, "logged_in": 4}, 0),  # nobody to take an answer: no new line
        ("all", {"ready": 2, "logged_in": 4, "ringing_elapsed": ringing(9)}, 0),
    ],
    ids=[
        "idle-counts-ready",
        "all-counts-logged-in",
        "idle-minus-lines",
        "all-minus-lines",
        "idle-nobody-ready",
        "all-nobody-ready",
        "all-over-never-negative",
    ],
)
def test_adaptive_keeps_level_times_counted_psrs(
    make_snapshot: Snap, counting: str, state: dict[str, Any], expected: int
) -> None:
    pacer = AdaptivePacer(counting)  # type: ignore[arg-type]
    pacer.lines_to_start(make_snapshot(0))  # the cycle's adjustment
    pacer.level = 1.5

    assert pacer.lines_to_start(make_snapshot(1, **state)) == expected  # inside the cycle
    assert pacer.level == 1.5


def test_adaptive_adjusts_once_per_cycle_over_the_last_minute(
    adaptive: AdaptivePacer, make_snapshot: Snap
) -> None:
    levels = []
    for seconds, ready in [(0, 2), (10, 0), (14.9, 0), (15, 1), (29, 4), (30, 0)]:
        adaptive.lines_to_start(make_snapshot(seconds, ready=ready, logged_in=4))
        levels.append(adaptive.level)

    # t=0: 1 x (1 + 2/4) = 1.5; t=10 and t=14.9: inside the cycle, unchanged;
    # t=15: samples 2, 0, 0, 1 average 0.75 -> 1.5 x (1 + 0.75/4) = 1.78125;
    # t=29: inside the cycle; t=30: samples 2, 0, 0, 1, 4, 0 average 7/6 -> x (1 + 7/24).
    assert levels == pytest.approx([1.5, 1.5, 1.5, 1.78125, 1.78125, 1.78125 * (1 + 7 / 24)])


def test_adaptive_forgets_samples_older_than_a_minute(
    adaptive: AdaptivePacer, make_snapshot: Snap
) -> None:
    adaptive.lines_to_start(make_snapshot(0, ready=4, logged_in=4))  # x 2
    adaptive.lines_to_start(make_snapshot(61, ready=0, logged_in=4))  # only this sample: x 1

    assert adaptive.level == 2.0


def test_adaptive_waiting_calls_lower_the_level(
    adaptive: AdaptivePacer, make_snapshot: Snap
) -> None:
    adaptive.level = 4.0

    adaptive.lines_to_start(make_snapshot(ready=1, waiting=3, logged_in=4))

    assert adaptive.level == 4.0 * (1 + (1 - 3) / 4)


@pytest.mark.parametrize(
    ("intensity", "expected"), [(0.5, 1.25), (1.0, 1.5), (2.0, 2.0)], ids=["half", "one", "two"]
)
def test_adaptive_intensity_scales_the_step(
    make_snapshot: Snap, intensity: float, expected: float
) -> None:
    pacer = AdaptivePacer("idle", intensity=intensity)

    pacer.lines_to_start(make_snapshot(ready=2, logged_in=4))

    assert pacer.level == expected


@pytest.mark.parametrize(
    ("level", "state", "expected"),
    [
        (1.0, {"ready": 0, "waiting": 5, "logged_in": 2}, 1.0),  # 1 x (1 - 5/2) < 0
        (1.2, {"ready": 0, "waiting": 1, "logged_in": 4}, 1.0),  # 0.9, floored
        (7.0, {"ready": 4, "logged_in": 4}, 8.0),  # 14, capped
    ],
    ids=["floored-from-negative", "floored", "capped-at-max-level"],
)
def test_adaptive_level_stays_between_one_and_max(
    adaptive: AdaptivePacer,
    make_snapshot: Snap,
    level: float,
    state: dict[str, Any],
    expected: float,
) -> None:
    adaptive.level = level

    adaptive.lines_to_start(make_snapshot(**state))

    assert adaptive.level == expected


def test_adaptive_level_never_exceeds_max_level_over_many_cycles(make_snapshot: Snap) -> None:
    pacer = AdaptivePacer("all", target=1.0, max_level=3.0)

    for cycle in range(20):
        pacer.lines_to_start(make_snapshot(15 * cycle, ready=10, logged_in=10))

    assert pacer.level == 3.0


def answers(pacer: AdaptivePacer, now: datetime, *dropped: bool, seconds: float = 0) -> None:
    """Report persons detected at ``now + seconds``: ``True`` for each one abandoned."""
    for drop in dropped:
        pacer.observe_abandon(drop, now + timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        ((True, True, False), 2.0),
        ((True, True, True), 2.0),
        ((True, False), 4.0),  # exactly half: not "more than half"
        ((True, False, False), 4.0),
        ((), 4.0),
    ],
    ids=["two-of-three", "all", "exactly-half", "one-of-three", "no-answers"],
)
def test_adaptive_halves_when_most_of_the_last_minutes_answers_dropped(
    adaptive: AdaptivePacer,
    make_snapshot: Snap,
    now: datetime,
    dropped: tuple[bool, ...],
    expected: float,
) -> None:
    adaptive.level = 4.0
    answers(adaptive, now, *dropped, seconds=-30)

    adaptive.lines_to_start(make_snapshot(ready=0, logged_in=4))  # difference 0: x 1

    assert adaptive.level == expected


def test_adaptive_ignores_drops_older_than_a_minute_for_halving(
    adaptive: AdaptivePacer, make_snapshot: Snap, now: datetime
) -> None:
    adaptive.level = 4.0
    answers(adaptive, now, True, True, True, seconds=-61)

    adaptive.lines_to_start(make_snapshot(ready=0, logged_in=4))

    assert adaptive.level == 4.0


def test_adaptive_halving_is_floored_at_one(
    adaptive: AdaptivePacer, make_snapshot: Snap, now: datetime
) -> None:
    adaptive.level = 1.5
    answers(adaptive, now, True, seconds=-1)

    adaptive.lines_to_start(make_snapshot(ready=0, logged_in=4))

    assert adaptive.level == 1.0


@pytest.mark.parametrize(
    ("dropped_today", "expected"),
    [(3, 1.0), (2, 4.0)],
    ids=["over-target-resets", "at-target-keeps"],
)
def test_adaptive_resets_to_one_when_the_days_drop_rate_is_over_target(
    make_snapshot: Snap, now: datetime, dropped_today: int, expected: float
) -> None:
    pacer = AdaptivePacer("idle", target=0.02)
    pacer.level = 4.0
    # 100 persons today, hours ago (out of the last minute): only the day's rate speaks.
    drops = [True] * dropped_today + [False] * (100 - dropped_today)
    answers(pacer, now, *drops, seconds=-3600)

    pacer.lines_to_start(make_snapshot(ready=0, logged_in=4))

    assert pacer.level == expected


def test_adaptive_stays_at_one_every_cycle_while_the_day_is_over_target(
    make_snapshot: Snap, now: datetime
) -> None:
    pacer = AdaptivePacer("idle", target=0.03)
    answers(pacer, now, True, False, False, False, seconds=-3600)  # 25% today

    levels = []
    for cycle in range(4):
        pacer.lines_to_start(make_snapshot(15 * cycle, ready=4, logged_in=4))
        levels.append(pacer.level)

    assert levels == [1.0] * 4


def test_adaptive_drop_rate_starts_afresh_each_day(make_snapshot: Snap, now: datetime) -> None:
    pacer = AdaptivePacer("idle", target=0.03)
    answers(pacer, now, True, True, seconds=-86400)  # yesterday: 100% dropped
    answers(pacer, now, False, seconds=-3600)  # today: 0%
    pacer.level = 4.0

    pacer.lines_to_start(make_snapshot(ready=0, logged_in=4))

    assert pacer.level == 4.0


def test_adaptive_learns_nothing_from_lines_and_handles(
    adaptive: AdaptivePacer, make_snapshot: Snap, now: datetime
) -> None:
    adaptive.observe_line(5.0, True, now)
    adaptive.observe_handle(200.0, now)

    assert adaptive.lines_to_start(make_snapshot(ready=2, logged_in=4)) == 3


# -- make_pacer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "cls"),
    [
        pytest.param(mode, cls, id=mode)
        for mode, cls in [
            ("progressive", ProgressivePacer),
            ("preview", PreviewPacer),
            ("ratio", RatioPacer),
            ("adaptive", AdaptivePacer),
            ("predictive", PredictivePacer),
        ]
    ],
)
def test_make_pacer_builds_each_mode(mode: str, cls: type) -> None:
    pacer = make_pacer(mode)

    assert type(pacer) is cls and pacer.mode == mode


def test_make_pacer_passes_ratio_counting_and_target() -> None:
    ratio = make_pacer("ratio", ratio=5.3)
    adaptive = make_pacer("adaptive", counting="all", max_abandon_rate=0.02)

    assert isinstance(ratio, RatioPacer) and ratio.ratio == 5.3
    assert isinstance(adaptive, AdaptivePacer)
    assert (adaptive.counting, adaptive.target) == ("all", 0.02)


def test_make_pacer_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match=r"^unknown dialing mode 'power'$"):
        make_pacer("power")
