"""Pacers: how many new lines a (campaign, language) pool starts now.

Every pacer is a pure decision over a :class:`PoolSnapshot` (what the pool looks like at
``now``); the learning ones also keep estimates fed by ``observe_*`` calls. The dispatcher asks
on every event (a call resolves, a PSR frees up) and at each timer, so a freed PSR gets a line
at that instant.

- ``preview``: the PSR sees the entry and starts the call; the line is theirs (reserved).
- ``progressive``: one line per ready PSR, reserved for that PSR: nothing is ever abandoned.
- ``ratio``: about ``k`` lines in progress per ready PSR; lines are not reserved.
- ``adaptive``: the VICIdial-style baseline (see :class:`AdaptivePacer`).
- ``predictive``: model-based, learning online (see :mod:`dialer.predictive`).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Literal, NamedTuple, Protocol


class PoolSnapshot(NamedTuple):
    """One pool at one instant, as the pacer sees it (a tuple: one is built per pool on every
    dispatch, and a frozen dataclass costs several times as much to build)."""

    now: datetime
    ready: int  # PSRs ready for a call and holding none
    busy_elapsed: tuple[float, ...]  # per PSR talking or in wrap-up: seconds since connect
    ringing_elapsed: tuple[float, ...]  # unreserved lines not yet resolved: seconds since dial
    reserved_lines: int  # lines reserved for a PSR (progressive, preview, callbacks)
    waiting: int  # persons detected and waiting for a PSR
    logged_in: int  # PSRs in the pool (ready, reserved, busy or paused)

    @property
    def lines(self) -> int:
        """Unreserved lines in progress (ringing, or answered and waiting)."""
        return len(self.ringing_elapsed) + self.waiting


class Pacer(Protocol):
    """A pacing policy for one pool."""

    mode: str
    reserves: bool  # True: each line is reserved for one ready PSR
    # How long its answer may stand while nothing happens (seconds): the dispatcher paces the
    # pool again that long after its last decision (see Dispatcher.next_deadline). None: the
    # answer changes only on events (a line resolves, a PSR frees up), which pace at once.
    repace_seconds: float | None

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """How many new lines to start now."""
        ...

    def observe_line(self, ring_seconds: float, live: bool, at: datetime) -> None:
        """A line resolved after ``ring_seconds``: a person (``live``) or not."""
        ...

    def observe_handle(self, seconds: float, at: datetime) -> None:
        """A connect finished: talk plus wrap-up took ``seconds``."""
        ...

    def observe_abandon(self, abandoned: bool, at: datetime) -> None:
        """A person was detected; ``abandoned`` when no PSR took them within the grace."""
        ...


class _NoLearning:
    """Observation hooks for pacers that learn nothing."""

    def observe_line(self, ring_seconds: float, live: bool, at: datetime) -> None:
        """Ignored."""

    def observe_handle(self, seconds: float, at: datetime) -> None:
        """Ignored."""

    def observe_abandon(self, abandoned: bool, at: datetime) -> None:
        """Ignored."""


class ProgressivePacer(_NoLearning):
    """One line per ready PSR, reserved for them: no abandonment, ever."""

    mode = "progressive"
    reserves = True
    repace_seconds: float | None = None

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """Every ready PSR gets a line, counting unreserved lines already in flight (left from
        another mode when the abandonment guard switched to this one) as taken."""
        return max(0, snap.ready - snap.lines)


class PreviewPacer(ProgressivePacer):
    """The PSR previews the entry and starts the call: the dispatcher offers, the PSR dials."""

    mode = "preview"


class RatioPacer(_NoLearning):
    """About ``ratio`` unreserved lines in progress per ready PSR."""

    mode = "ratio"
    reserves = False
    repace_seconds: float | None = None

    def __init__(self, ratio: float) -> None:
        if ratio < 1.0:
            raise ValueError("a dialing ratio is at least 1.0")
        self.ratio = ratio

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """Top up to ``ratio`` lines per ready PSR (rounded down; at least one per PSR)."""
        if snap.ready <= 0:
            return 0
        target = max(snap.ready, math.floor(self.ratio * snap.ready + 1e-9))
        return max(0, target - snap.lines)


class AdaptivePacer:
    """The VICIdial-style baseline (pacing-notes, in words), for comparison.

    Every ``cycle_seconds`` it averages, over the last minute, ready PSRs minus calls waiting for
    a PSR, and multiplies the dial level by ``1 + difference / PSRs * intensity``, capped at
    ``max_level`` and floored at 1.0; it halves the level when more than half of the last
    minute's answers were dropped; when the day's drop rate is over ``target`` it resets the
    level to 1.0. Calls kept in progress = level x counted PSRs, where ``counting`` is ``idle``
    (ready PSRs) or ``all`` (every logged-in PSR, VICIdial's default).

    Like VICIdial's, it runs on a fixed clock: whoever drives the dispatcher ticks it every
    second (``dialer simulate``: the scenario's ``tick_seconds``), besides the events; each
    decision is one of its samples.
    """

    mode = "adaptive"
    reserves = False
    repace_seconds: float | None = None  # driven by that fixed clock

    def __init__(
        self,
        counting: Literal["idle", "all"] = "idle",
        *,
        target: float = 0.03,
        intensity: float = 1.0,
        max_level: float = 8.0,
        cycle_seconds: float = 15.0,
    ) -> None:
        self.counting = counting
        self.target = target
        self.intensity = intensity
        self.max_level = max_level
        self.cycle_seconds = cycle_seconds
        self.level = 1.0
        self._samples: deque[tuple[datetime, int, int]] = deque()  # (at, ready - waiting, PSRs)
        self._answers: deque[tuple[datetime, bool]] = deque()
        self._day: tuple[object, int, int] = (None, 0, 0)  # (date, detected, abandoned)
        self._last_cycle: datetime | None = None

    def _trim(self, now: datetime) -> None:
        while self._samples and (now - self._samples[0][0]).total_seconds() > 60:
            self._samples.popleft()
        while self._answers and (now - self._answers[0][0]).total_seconds() > 60:
            self._answers.popleft()

    def _adjust(self, now: datetime) -> None:
        self._trim(now)
        if self._samples:
            difference = sum(s[1] for s in self._samples) / len(self._samples)
            agents = max(1.0, sum(s[2] for s in self._samples) / len(self._samples))
            self.level *= 1 + difference / agents * self.intensity
        dropped = sum(1 for _, a in self._answers if a)
        if self._answers and dropped * 2 > len(self._answers):
            self.level /= 2
        _, detected, abandoned = self._day
        if detected and abandoned / detected > self.target:
            self.level = 1.0
        self.level = min(self.max_level, max(1.0, self.level))

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """Keep ``level x counted PSRs`` lines in progress."""
        self._samples.append((snap.now, snap.ready - snap.waiting, max(1, snap.logged_in)))
        if (
            self._last_cycle is None
            or (snap.now - self._last_cycle).total_seconds() >= self.cycle_seconds
        ):
            self._adjust(snap.now)
            self._last_cycle = snap.now
        counted = snap.ready if self.counting == "idle" else snap.logged_in
        if snap.ready <= 0:
            return 0
        return max(0, math.floor(self.level * counted + 1e-9) - snap.lines)

    def observe_line(self, ring_seconds: float, live: bool, at: datetime) -> None:
        """Not used."""

    def observe_handle(self, seconds: float, at: datetime) -> None:
        """Not used."""

    def observe_abandon(self, abandoned: bool, at: datetime) -> None:
        """Count answers and drops for the last minute and the day."""
        self._answers.append((at, abandoned))
        day, detected, dropped = self._day
        if day != at.date():
            day, detected, dropped = at.date(), 0, 0
        self._day = (day, detected + 1, dropped + int(abandoned))


def make_pacer(
    mode: str,
    *,
    ratio: float = 2.0,
    counting: Literal["idle", "all"] = "idle",
    max_abandon_rate: float = 0.03,
) -> Pacer:
    """The pacer for a dialing mode."""
    if mode == "progressive":
        return ProgressivePacer()
    if mode == "preview":
        return PreviewPacer()
    if mode == "ratio":
        return RatioPacer(ratio)
    if mode == "adaptive":
        return AdaptivePacer(counting, target=max_abandon_rate)
    if mode == "predictive":
        from dialer.predictive import PredictivePacer

        return PredictivePacer(max_abandon_rate=max_abandon_rate)
    raise ValueError(f"unknown dialing mode {mode!r}")
