"""The predictive pacer: a model of the next few seconds, learned online, steered to the cap.

Nothing is given to it: it learns from the pool's own calls the live-answer probability ``p``,
the distributions of time to a person (``D``) and to a non-live end (``F``), and of handle time
(talk plus wrap-up, ``H``). At each decision, with ``tau`` the typical time a new line takes to
reach a person:

- PSRs free by then: the ready ones, plus for each busy PSR ``P(H <= e + tau | H > e)`` given
  the ``e`` seconds they have been on this call (elapsed time is worth a point of occupancy);
- persons needing a PSR by then: those waiting, plus for each ringing line (rung ``r`` seconds)
  ``P(person within tau | unresolved at r)``, plus ``p * P(D <= tau)`` per new line;

and it starts new lines while ``free - persons >= z * sd`` (normal approximation of the two
sums of Bernoullis). The outer loop moves ``z`` so that the abandonment of recent live answers
approaches ``TARGET_SHARE`` (90%) of the cap: above it ``z`` rises (fewer lines), below it
falls. The dispatcher's abandonment guard (:mod:`dialer.compliance`) stays the hard limit.

Until it has seen enough calls it dials one unreserved line per ready PSR, which cannot abandon.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

import numpy as np

from dialer.pacing import PoolSnapshot

TARGET_SHARE = 0.90  # aim the abandonment at 90% of the cap, never over it
MIN_LINES_SEEN = 100  # resolved lines before the model is trusted
MIN_HANDLES_SEEN = 20  # finished connects before the model is trusted
SAMPLES = 4000  # most recent observations kept per distribution
GRID_SECONDS = 7200  # CDF tables cover this many seconds, at 1-second steps
REFIT_EVERY = 200  # observations between refits of the tables
MAX_LINES_PER_READY = 12  # a sanity bound on lines per ready PSR
Z_START, Z_MIN, Z_MAX = 1.0, -2.0, 5.0
Z_GAIN = 0.02  # z change per live answer, per unit of relative error
RATE_MEMORY = 1500  # live answers the outer loop's abandonment estimate remembers


class _Cdf:
    """An empirical CDF on a 1-second grid, refitted from recent samples."""

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=SAMPLES)
        self.table = np.zeros(GRID_SECONDS + 1)
        self._since_fit = 0

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self._since_fit += 1
        if self._since_fit >= REFIT_EVERY or len(self.samples) < REFIT_EVERY:
            self.refit()

    def refit(self) -> None:
        self._since_fit = 0
        data = np.sort(np.asarray(self.samples))
        grid = np.arange(GRID_SECONDS + 1)
        self.table = np.searchsorted(data, grid, side="right") / max(1, len(data))

    def at(self, seconds: np.ndarray) -> np.ndarray:
        index = np.clip(seconds.astype(np.int64), 0, GRID_SECONDS)
        return self.table[index]


class PredictivePacer:
    """Model-based predictive pacing (see the module doc)."""

    mode = "predictive"
    reserves = False

    def __init__(self, *, max_abandon_rate: float = 0.03) -> None:
        self.target = TARGET_SHARE * max_abandon_rate
        self.z = Z_START
        self.live = 0
        self.lines_seen = 0
        self.handles = _Cdf()
        self.to_person = _Cdf()
        self.to_other = _Cdf()
        self._rate = self.target  # smoothed abandonment of recent live answers

    # Learning ------------------------------------------------------------------------------

    def observe_line(self, ring_seconds: float, live: bool, at: datetime) -> None:
        """A line resolved: a person after ``ring_seconds``, or not."""
        self.lines_seen += 1
        if live:
            self.live += 1
            self.to_person.add(ring_seconds)
        else:
            self.to_other.add(ring_seconds)

    def observe_handle(self, seconds: float, at: datetime) -> None:
        """A connect's talk plus wrap-up."""
        self.handles.add(seconds)

    def observe_abandon(self, abandoned: bool, at: datetime) -> None:
        """A person detected: move ``z`` toward the target abandonment."""
        alpha = 1 / RATE_MEMORY
        self._rate += alpha * ((1.0 if abandoned else 0.0) - self._rate)
        if self.trusted:
            error = (self._rate - self.target) / self.target
            self.z = min(Z_MAX, max(Z_MIN, self.z + Z_GAIN * error))

    @property
    def trusted(self) -> bool:
        """Has it seen enough to pace by the model?"""
        return (
            self.lines_seen >= MIN_LINES_SEEN
            and len(self.handles.samples) >= MIN_HANDLES_SEEN
            and self.live > 0
        )

    @property
    def p(self) -> float:
        """Estimated live-answer probability per line."""
        return self.live / self.lines_seen if self.lines_seen else 0.0

    # Deciding ------------------------------------------------------------------------------

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """New lines to start now (see the module doc)."""
        if snap.ready <= 0 and not snap.busy_elapsed:
            return 0
        if not self.trusted:
            return max(0, snap.ready - snap.lines)
        tau = self._horizon()
        free_mean, free_var = self._free(snap, tau)
        need_mean, need_var = self._persons(snap, tau)
        per_line = self.p * float(self.to_person.at(np.array([tau]))[0])
        limit = MAX_LINES_PER_READY * max(1, snap.ready)
        started = 0
        while started < limit - snap.lines:
            mean = free_mean - need_mean - per_line * (started + 1)
            var = free_var + need_var + per_line * (1 - per_line) * (started + 1)
            if mean < self.z * math.sqrt(max(var, 1e-9)):
                break
            started += 1
        return started

    def _horizon(self) -> float:
        """Seconds a new line typically takes to reach a person (the median of D)."""
        samples = self.to_person.samples
        return float(np.median(np.asarray(samples))) if samples else 10.0

    def _free(self, snap: PoolSnapshot, tau: float) -> tuple[float, float]:
        if not snap.busy_elapsed:
            return float(snap.ready), 0.0
        elapsed = np.asarray(snap.busy_elapsed)
        done_now = self.handles.at(elapsed)
        done_then = self.handles.at(elapsed + tau)
        survive = np.maximum(1.0 - done_now, 1e-9)
        q = np.clip((done_then - done_now) / survive, 0.0, 1.0)
        return snap.ready + float(q.sum()), float((q * (1 - q)).sum())

    def _persons(self, snap: PoolSnapshot, tau: float) -> tuple[float, float]:
        if not snap.ringing_elapsed:
            return float(snap.waiting), 0.0
        rung = np.asarray(snap.ringing_elapsed)
        p = self.p
        person_now = self.to_person.at(rung)
        person_then = self.to_person.at(rung + tau)
        other_now = self.to_other.at(rung)
        alive_person = p * (1 - person_now)
        alive_other = (1 - p) * (1 - other_now)
        alive = np.maximum(alive_person + alive_other, 1e-12)
        a = np.clip(p * (person_then - person_now) / alive, 0.0, 1.0)
        return snap.waiting + float(a.sum()), float((a * (1 - a)).sum())
