"""The predictive pacer: a model of the next few seconds, learned online, steered to the cap.

Nothing is given to it: it learns from the pool's own calls the live-answer probability ``p``,
the distributions of time to a person (``D``) and to a non-live end (``F``), and of handle time
(talk plus wrap-up, ``H``). ``p`` is the rate over the most recent lines since its last change
(a maximum-likelihood change point, so a mid-day drop or rise is followed within a few hundred
lines), the lines read in the order they were placed (in the order they resolve, a burst of
lines looks like a change); the distributions are the most recent few thousand observations.

Decision. A line started now reaches a person after ``D`` (with probability ``p``). That person
is served if, by ``D`` plus the grace, more PSRs are free than persons came before it:

- PSRs free by ``t + grace``: the ready ones, plus for each busy PSR ``P(H <= e + t + grace |
  H > e)`` given the ``e`` seconds they have been on this call;
- persons before it: those waiting, plus for each ringing line (rung ``r`` seconds) the
  posterior ``P(person within t | unresolved at r)``, plus ``p * P(D <= t)`` per line started
  in the same decision.

Both are sums of independent Bernoullis. Their difference ``X(t)`` is approximated from its
first three cumulants (the refined normal approximation: the normal one plus a skewness term,
which matters with few PSRs and few lines, where the counts are small and lopsided; it is worth
about a quarter point of occupancy on scenario S2). The person of one more line is then abandoned
with probability ``E_D[P(X(D) < 1)]``, the expectation taken over ``K`` quantiles of the learned
``D`` (a whole distribution of arrival times, not one horizon); it is exactly 0 when every line
ahead reaching a person would still leave it a ready PSR, and exactly 1 when the persons waiting
already take every PSR ready or busy. Lines are started while that probability stays at or
below a threshold ``lambda`` (the Lagrangian form of "most occupancy for a given abandonment").

Control. ``log(lambda)`` integrates the error of every person detected: up by ``GAIN * target``
when served, down by ``GAIN * (1 - target)`` when abandoned, with ``target`` = ``TARGET_SHARE``
(90%) of the cap. Its drift is zero exactly when the abandonment equals the target, and since
``log(lambda)`` stays in a bounded band, the count of abandons stays within a few of
``target * persons``: the long-run rate converges on the target. It does not wind up while the
pacer is not in control (guard tripped, lines limited by the budget below). Near the edge of the
band the dispatcher's guard tolerates (the period's rate at ``TRIP_SHARE`` of the cap, just
under the guard's own trip point), ``lambda`` is cut by ``SLACK_GAIN`` per abandon of slack
missing, so a run of bad luck slows the dialing instead of tripping the guard.

Budget. The pacer keeps its own count of persons and abandons per 30-day period (like the
dispatcher's ledger) and never keeps more unreserved lines than the cap can absorb if every one
of them were abandoned (the ledger's count rule); early in a period this limits lines instead of
letting the guard take the campaign to progressive dialing. A line-count bound per PSR holds
always. Until it has seen enough calls it dials at most one unreserved line per ready PSR, which
cannot abandon.

Cost: one decision is two table gathers (busy PSRs and ringing lines, each ``n x 3K``) and a few
``K``-long sums; tables are refitted every few hundred observations.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from dialer.pacing import PoolSnapshot

FloatArray = NDArray[np.float64]
_add = np.add.reduce

TARGET_SHARE = 0.90  # aim the abandonment at 90% of the cap, never over it
GRACE_SECONDS = 2.0  # a person waits this long for a PSR (the safe-harbor rule)
PERIOD = timedelta(days=30)  # the abandonment rate is measured per 30-day period

MIN_LINES_SEEN = 100  # settled lines (read by the live-answer rate) before it is trusted
MIN_LIVE_SEEN = 20  # persons detected before the model is trusted
MIN_HANDLES_SEEN = 20  # finished connects before the model is trusted

K = 8  # quantiles of D the marginal abandon probability averages over
HANDLE_SAMPLES = 4000  # most recent handle times kept
RING_SAMPLES = 3000  # most recent times to a person / to a non-live end kept
HANDLE_GRID = 3600  # busy-PSR table covers this many seconds of elapsed time (1-s steps)
RING_STEP = 0.5  # ringing-line table step (seconds)
RING_GRID = 120  # ringing-line table covers RING_GRID * RING_STEP seconds
MIN_TAIL = 30  # samples beyond an elapsed time needed to trust its conditional
REFIT_HANDLES = 100  # handles between refits of the busy table
REFIT_LINES = 200  # resolved lines between refits of the ring tables

P_WINDOW = 3000  # most recent lines the live-answer rate is estimated from
SETTLE = timedelta(seconds=30)  # a line placed this long ago has resolved (the ring timeout)
P_CHANGE_LLR = 15.0  # log-likelihood ratio of "the rate changed here" over "it did not"
P_CHANGE_CHECK = 25  # lines between change-point checks
P_CHANGE_MIN = 30  # lines on each side of a change point
LAMBDA_START = 0.01  # abandon probability a new line's person may carry, at first
LAMBDA_MIN, LAMBDA_MAX = 1e-4, 0.5
GAIN = 0.05  # log-lambda step per person detected, per unit of error
TRIP_SHARE = 0.93  # the period's rate this share of the cap is the edge of the safe band
SLACK_ABANDONS = 4.0  # fewer abandons than this left before that edge: tighten
SLACK_GAIN = 0.7  # log-lambda cut per abandon of slack missing
IN_CONTROL_SECONDS = 5.0  # persons count for the controller if it decided this recently
MAX_LINES_PER_PSR = 15  # sanity bound: unreserved lines per logged-in PSR
_PER_STEP = 1 / RING_STEP
_RING_END = RING_GRID * RING_STEP  # rung this long or longer: the table's last row
_RING_ROW0 = HANDLE_GRID + 1  # the ringing-line rows' first row in the joint table


class _Samples:
    """Recent observations of one duration, with an empirical CDF."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.sorted: FloatArray = np.zeros(0)

    def add(self, seconds: float) -> None:
        self.values.append(max(0.0, seconds))

    def fit(self) -> None:
        self.sorted = np.sort(np.asarray(self.values, dtype=np.float64))

    def cdf(self, x: FloatArray) -> FloatArray:
        """P(value <= x) on the last fit."""
        n = len(self.sorted)
        if n == 0:
            return np.zeros_like(x)
        return np.searchsorted(self.sorted, x, side="right").astype(np.float64) / n

    def quantiles(self, levels: FloatArray) -> FloatArray:
        if len(self.sorted) == 0:
            return np.zeros_like(levels)
        return np.quantile(self.sorted, levels).astype(np.float64)


class _LiveRate:
    """The live-answer rate over the most recent lines since the last change of the rate.

    Lines are read in the order they were placed, once every line placed as early has
    resolved (``SETTLE`` later), not in the order they resolve: a line's outcome and
    how long it takes are not independent (a fast failure ends in seconds, a person is detected
    after about ten, an unanswered line rings out at the timeout), so the lines of a burst
    resolve sorted by outcome, and read that way a burst of a hundred lines looks like the rate
    falling to 0 and then rising. Lines placed at one instant are read with their persons
    spread evenly among them, for the same reason.

    Every few lines it looks for the split of its window that best explains the outcomes as
    two rates (the maximum-likelihood change point); when that split is ``P_CHANGE_LLR`` times
    (in log) more likely than one rate, the lines before it are forgotten. A step from 30% to
    10% is found within about 150 lines, and the estimate then uses only the new ones.
    """

    def __init__(self) -> None:
        # The window's outcomes (1: a person) are _hits[_start:_end]: a buffer twice the
        # window, slid back to its front when full, so a change-point check reads them as an
        # array instead of converting a few thousand Python ints each time.
        self._hits = np.zeros(2 * P_WINDOW, dtype=np.int8)
        self._start = self._end = 0
        self.count = 0  # persons in the window
        self.settled = 0  # lines read so far
        self._since_check = 0
        self._unsettled: list[tuple[datetime, int, bool]] = []  # a heap by placement time
        self._seq = 0

    @property
    def lines(self) -> int:
        """Lines in the window the rate is read from."""
        return self._end - self._start

    @property
    def value(self) -> float:
        lines = self._end - self._start
        return self.count / lines if lines else 0.0

    def observe(self, placed: datetime, live: bool, now: datetime) -> None:
        """A line placed at ``placed`` resolved (a person or not) by ``now``."""
        heapq.heappush(self._unsettled, (placed, self._seq, live))
        self._seq += 1
        heap, cutoff = self._unsettled, now - SETTLE
        while heap and heap[0][0] <= cutoff:
            at = heap[0][0]
            group = []
            while heap and heap[0][0] == at:
                group.append(heapq.heappop(heap)[2])
            persons = sum(group)
            for index in range(len(group)):  # the group's persons spread evenly among it
                self.add((index + 1) * persons // len(group) > index * persons // len(group))

    def add(self, live: bool) -> None:
        hits = self._hits
        if self._end == len(hits):
            kept = self._end - self._start
            hits[:kept] = hits[self._start : self._end]
            self._start, self._end = 0, kept
        if self._end - self._start == P_WINDOW:
            self.count -= int(hits[self._start])
            self._start += 1
        hits[self._end] = live
        self._end += 1
        self.count += int(live)
        self.settled += 1
        self._since_check += 1
        if self._since_check >= P_CHANGE_CHECK:
            self._since_check = 0
            self._forget_before_a_change()

    def _forget_before_a_change(self) -> None:
        n = self._end - self._start
        if n < 2 * P_CHANGE_MIN:
            return
        cumulative = np.cumsum(self._hits[self._start : self._end], dtype=np.int64)
        split = np.arange(P_CHANGE_MIN, n - P_CHANGE_MIN + 1)
        before = cumulative[split - 1]  # persons among the lines before each split
        total = int(cumulative[-1])
        after = total - before
        gain = (
            _log_likelihood(before, split)
            + _log_likelihood(after, n - split)
            - _log_likelihood(np.array([total]), np.array([n]))
        )
        best = int(np.argmax(gain))
        if gain[best] > P_CHANGE_LLR:
            self._start += int(split[best])
            self.count = total - int(before[best])


def _log_likelihood(hits: NDArray[np.int64], lines: NDArray[np.int64]) -> FloatArray:
    """Log-likelihood of ``hits`` successes in ``lines`` Bernoulli trials at their own rate,
    h log(h / l) + (l - h) log(1 - h / l) = x(h) + x(l - h) - x(l) with x(v) = v log v
    (0 for v = 0), read from a table of x over the counts a window can hold."""
    return _XLOGX[hits] + _XLOGX[lines - hits] - _XLOGX[lines]  # type: ignore[no-any-return]


def _x_log_x(top: int) -> FloatArray:
    """v log v for v = 0 .. top (0 log 0 = 0)."""
    values = np.arange(top + 1, dtype=np.float64)
    values[1:] *= np.log(values[1:])
    return values


_XLOGX = _x_log_x(P_WINDOW)


class PredictivePacer:
    """Model-based predictive pacing (see the module doc)."""

    mode = "predictive"
    reserves = False
    # Its outlook changes as calls age (a busy PSR nears the end of a call, a ringing line
    # nears its answer), so a decision goes stale with nothing happening: the pool is paced
    # again 2 s after its last decision, or at once on an event. Pacing every second instead
    # measured the same occupancy and abandonment on S2 and S3 with a third more decisions.
    repace_seconds: float | None = 2.0

    def __init__(self, *, max_abandon_rate: float = 0.03) -> None:
        self.cap = max_abandon_rate
        self.target = TARGET_SHARE * max_abandon_rate
        self.log_lambda = math.log(LAMBDA_START)
        self.lines_seen = 0
        self.live_seen = 0
        self.handles_seen = 0
        self.live_rate = _LiveRate()
        self.handles = _Samples(HANDLE_SAMPLES)
        self.to_person = _Samples(RING_SAMPLES)
        self.to_other = _Samples(RING_SAMPLES)
        self._since_handles = 0
        self._since_lines = 0
        self._p_fitted = -1.0
        # Tables (see _fit_*), per row the K horizons' contributions to the mean of (free PSRs -
        # persons), then the K variances, then the K third cumulants: by a busy PSR's elapsed
        # seconds, by a ringing line's elapsed half-seconds; and per line started now (persons
        # by each horizon).
        self._busy: FloatArray = np.zeros((HANDLE_GRID + 1, 3 * K))
        self._ring: FloatArray = np.zeros((RING_GRID + 1, 3 * K))
        # Both, one above the other (_RING_ROW0 on): a decision gathers its rows in one take.
        self._table: FloatArray = np.zeros((_RING_ROW0 + RING_GRID + 1, 3 * K))
        self._empty: FloatArray = np.zeros(3 * K)
        self._new_q: list[float] = [0.0] * K
        self._new_v: list[float] = [0.0] * K
        self._new_c: list[float] = [0.0] * K
        # The 30-day period's persons and abandons (the ledger's count rule, replicated).
        self._origin: datetime | None = None
        self._period = -1
        self.period_persons = 0
        self.period_abandons = 0
        self._last_decision: datetime | None = None
        self._limited_until: datetime | None = None
        # Read on every decision (every second), recomputed only when their inputs change:
        # whether enough has been seen (it never goes back), the period's end, and the
        # threshold with the values it was computed from.
        self._trusted = False
        self._period_end: datetime | None = None
        self._threshold: tuple[float, int, int, float] = (math.nan, -1, -1, 0.0)

    # Learning ------------------------------------------------------------------------------

    def observe_line(self, ring_seconds: float, live: bool, at: datetime) -> None:
        """A line resolved: a person after ``ring_seconds``, or not."""
        self.lines_seen += 1
        self.live_rate.observe(at - timedelta(seconds=ring_seconds), live, at)
        if live:
            self.live_seen += 1
            self.to_person.add(ring_seconds)
        else:
            self.to_other.add(ring_seconds)
        self._since_lines += 1
        p = self.p
        if (
            self._since_lines >= REFIT_LINES
            or self.lines_seen <= MIN_LINES_SEEN
            or abs(p - self._p_fitted) > 0.02 * max(self._p_fitted, 0.01)
        ) and self.trusted:
            self._fit_rings()

    def observe_handle(self, seconds: float, at: datetime) -> None:
        """A connect's talk plus wrap-up."""
        self.handles.add(seconds)
        self.handles_seen += 1
        self._since_handles += 1
        if self._since_handles >= REFIT_HANDLES or self.handles_seen <= 2 * MIN_HANDLES_SEEN:
            self._fit_handles()

    def observe_abandon(self, abandoned: bool, at: datetime) -> None:
        """A person detected: count it in its period and move ``lambda`` toward the target."""
        if self._origin is None:
            self._origin = at
        period = (at - self._origin) // PERIOD
        if period != self._period:
            self._period, self.period_persons, self.period_abandons = period, 0, 0
            self._period_end = None
        self.period_persons += 1
        self.period_abandons += int(abandoned)
        if abandoned:
            step = -GAIN * (1 - self.target)
        elif self._in_control(at):
            step = GAIN * self.target
        else:
            return
        self.log_lambda = min(
            math.log(LAMBDA_MAX), max(math.log(LAMBDA_MIN), self.log_lambda + step)
        )

    def _in_control(self, at: datetime) -> bool:
        """Did this pacer (not the guard) decide lately, with no budget limit binding?"""
        if self._last_decision is None:
            return False
        if abs((at - self._last_decision).total_seconds()) > IN_CONTROL_SECONDS:
            return False
        return self._limited_until is None or at > self._limited_until

    @property
    def trusted(self) -> bool:
        """Has it seen enough to pace by the model? (The counts only grow: once it has, it
        stays so.)"""
        if not self._trusted:
            self._trusted = (
                self.live_rate.settled >= MIN_LINES_SEEN
                and self.live_seen >= MIN_LIVE_SEEN
                and self.handles_seen >= MIN_HANDLES_SEEN
            )
        return self._trusted

    @property
    def p(self) -> float:
        """Estimated live-answer probability per line."""
        return self.live_rate.value

    @property
    def threshold(self) -> float:
        """The abandon probability a new line's person may carry: the controller's, cut when
        the period's abandons come near the edge of the band the guard tolerates."""
        log_lambda, persons, abandons = self.log_lambda, self.period_persons, self.period_abandons
        known = self._threshold
        if known[0] == log_lambda and known[1] == persons and known[2] == abandons:
            return known[3]
        slack = TRIP_SHARE * self.cap * persons - abandons
        missing = max(0.0, SLACK_ABANDONS - slack)
        value = math.exp(log_lambda - SLACK_GAIN * missing)
        self._threshold = (log_lambda, persons, abandons, value)
        return value

    # Tables --------------------------------------------------------------------------------

    def _horizons(self) -> FloatArray:
        """K arrival times of a new line's person: the midpoint quantiles of D."""
        levels = (np.arange(K, dtype=np.float64) + 0.5) / K
        return self.to_person.quantiles(levels)

    def _fit_handles(self) -> None:
        self._since_handles = 0
        self.handles.fit()
        if not self.to_person.values:
            return
        self.to_person.fit()
        horizons = self._horizons() + GRACE_SECONDS
        elapsed = np.arange(HANDLE_GRID + 1, dtype=np.float64)
        done_now = self.handles.cdf(elapsed)
        # Where too few calls lasted that long, keep the last trustworthy conditional: the rows
        # from the first thin one on repeat the row before it, so only the rows before it are
        # computed (a few hundred of the hour's 3,601 on a typical handle time).
        thin = (1.0 - done_now) * len(self.handles.sorted) < MIN_TAIL
        trusted = max(1, int(np.argmax(thin))) if thin.any() else HANDLE_GRID + 1
        done_now = done_now[:trusted]
        done_then = self.handles.cdf(elapsed[:trusted, None] + horizons[None, :])
        alive = np.maximum(1.0 - done_now, 1e-12)
        q = np.clip((done_then - done_now[:, None]) / alive[:, None], 0.0, 1.0)
        busy = np.empty((HANDLE_GRID + 1, 3 * K))
        busy[:trusted] = _cumulants(q)
        busy[trusted:] = busy[trusted - 1]
        self._busy = busy
        self._table = np.concatenate([self._busy, self._ring])

    def _fit_rings(self) -> None:
        self._since_lines = 0
        self.to_person.fit()
        self.to_other.fit()
        p = self.p
        self._p_fitted = p
        horizons = self._horizons()
        rung = np.arange(RING_GRID + 1, dtype=np.float64) * RING_STEP
        person_now = self.to_person.cdf(rung)
        person_then = self.to_person.cdf(rung[:, None] + horizons[None, :])
        other_now = self.to_other.cdf(rung)
        alive = p * (1.0 - person_now) + (1.0 - p) * (1.0 - other_now)
        q = np.where(
            alive[:, None] > 1e-9,
            p * (person_then - person_now[:, None]) / np.maximum(alive[:, None], 1e-9),
            0.0,
        )
        self._ring = _cumulants(np.clip(q, 0.0, 1.0), persons=True)
        levels = (np.arange(K, dtype=np.float64) + 0.5) / K
        new = _cumulants(p * levels, persons=True)
        # Kept as (positive) per-line amounts: each line started subtracts them.
        self._new_q = (-new[:K]).tolist()
        self._new_v = new[K : 2 * K].tolist()
        self._new_c = (-new[2 * K :]).tolist()
        if self.handles_seen:
            self._fit_handles()  # its table depends on the horizons (quantiles of D) too
        else:
            self._table = np.concatenate([self._busy, self._ring])

    # Deciding ------------------------------------------------------------------------------

    def line_limit(self, snap: PoolSnapshot) -> int:
        """Most unreserved lines to have in progress after this decision."""
        bound = MAX_LINES_PER_PSR * max(1, snap.logged_in)
        origin = self._origin
        if self._period < 0 or origin is None:
            return bound
        now, end = snap.now, self._period_end
        if end is not None:
            if not end - PERIOD <= now < end:
                return 0  # a new period begins: the ledger trips until persons are counted
        elif (now - origin) // PERIOD != self._period:
            return 0
        elif origin.tzinfo is UTC:
            # From a UTC origin the period is exactly [end - PERIOD, end); from another zone
            # additions go by its wall clock, so each decision takes the division.
            self._period_end = origin + PERIOD * (self._period + 1)
        # Every line in flight (and the next one) could be abandoned: keep the period under
        # the cap even then, so the dispatcher's count rule never takes over.
        persons, abandons = self.period_persons, self.period_abandons
        room = (self.cap * persons - abandons) / (1.0 - self.cap) - 1.0
        return max(0, min(bound, math.floor(room)))

    def lines_to_start(self, snap: PoolSnapshot) -> int:
        """New lines to start now (see the module doc)."""
        self._last_decision = snap.now
        if snap.ready <= 0 and not snap.busy_elapsed:
            return 0
        lines = len(snap.ringing_elapsed) + snap.waiting
        if not (self._trusted or self.trusted):
            return max(0, snap.ready - lines)
        if self._p_fitted < 0:
            self._fit_rings()
        limit = self.line_limit(snap)
        room = limit - lines
        safe = max(0, snap.ready - lines)  # lines that cannot abandon
        wanted = self._wanted(snap, max(room, safe) + 1)
        if wanted > room and wanted > safe:
            self._limited_until = snap.now + timedelta(seconds=30)
        return max(safe, min(wanted, room))

    def marginal(self, snap: PoolSnapshot, started: int = 0) -> float:
        """Abandon probability of the person of one more line after ``started`` new ones."""
        self._ensure_fitted()
        return self._marginal(self._sums(snap), started)

    def _ensure_fitted(self) -> None:
        if self._p_fitted < 0:
            self._fit_rings()

    def _sums(self, snap: PoolSnapshot) -> _Sums:
        """The cumulants of (free PSRs - persons before a new line's person) at each of the K
        horizons, and its bounds."""
        busy, ringing = snap.busy_elapsed, snap.ringing_elapsed
        # Row of a busy PSR: whole seconds on the call; of a ringing line: half-seconds rung,
        # below the busy rows; both capped at the end of their table (and a clock stepped
        # back, making an elapsed time negative, reads the first row). The indices are built
        # in Python: for a few dozen values that is cheaper than NumPy's conversions.
        # (np.add.reduce is ndarray.sum without its Python wrapper: this runs every decision.)
        rows = [HANDLE_GRID if e >= HANDLE_GRID else int(e) if e > 0 else 0 for e in busy]
        rows += [
            _RING_ROW0 + (RING_GRID if r >= _RING_END else int(r * _PER_STEP) if r > 0 else 0)
            for r in ringing
        ]
        total = _add(self._table.take(rows, axis=0), axis=0) if rows else self._empty
        values: list[float] = total.tolist()
        base = snap.ready - snap.waiting - 0.5  # with the continuity correction
        return _Sums(
            [base + x for x in values[:K]],
            values[K : 2 * K],
            values[2 * K :],
            snap.ready - snap.waiting - len(ringing),
            snap.ready - snap.waiting + len(busy),
        )

    def _marginal(self, sums: _Sums, started: int, above: float = math.inf) -> float:
        """P(no PSR for the person of one more line), averaged over the K arrival times; exact
        where every line ahead reaching a person still leaves a PSR, or no PSR can be free.

        With ``above``, it stops as soon as the horizons summed so far exceed it and returns
        that partial value, which is then above ``above`` as the whole would be (the terms are
        not negative, so a partial sum never exceeds the whole): most decisions start nothing,
        and settle on the first horizon or two."""
        if sums.lowest - started >= 1:
            return 0.0
        if sums.highest < 1:
            return 1.0
        total = 0.0
        sqrt, erfc, exp = math.sqrt, math.erfc, math.exp
        for mean, variance, third, q, v, c in zip(
            sums.means,
            sums.variances,
            sums.thirds,
            self._new_q,
            self._new_v,
            self._new_c,
            strict=True,
        ):
            # P(X < 0) at this horizon, X's cumulants less what the ``started`` lines take (the
            # mean already continuity-corrected): the refined normal approximation,
            # Phi(z) + skew (1 - z^2) phi(z) / 6 at z = -mean / sd, kept within [0, 1]. Written
            # out here: it runs about 17 times per call placed.
            mean -= started * q
            variance += started * v
            third -= started * c
            if variance <= 1e-12:
                total += 1.0 if mean < 0 else 0.0
            else:
                sd = sqrt(variance)
                z = -mean / sd
                value = 0.5 * erfc(-z / _SQRT2) + third / (variance * sd) * (1.0 - z * z) * exp(
                    -0.5 * z * z
                ) / (6.0 * _SQRT2PI)
                total += 1.0 if value > 1.0 else value if value > 0.0 else 0.0
            if total / K > above:
                break
        return total / K

    def _wanted(self, snap: PoolSnapshot, most: int) -> int:
        """Lines to start (at most ``most``): while the next one's marginal stays under lambda."""
        sums = self._sums(snap)
        threshold = self.threshold
        started = 0
        while started < most and self._marginal(sums, started, threshold) <= threshold:
            started += 1
        return started


class _Sums(NamedTuple):
    """(free PSRs - persons ahead) of a new line's person, per horizon: mean (less the
    continuity correction), variance, third cumulant; and its least and greatest values."""

    means: list[float]
    variances: list[float]
    thirds: list[float]
    lowest: int
    highest: int


def _cumulants(q: FloatArray, *, persons: bool = False) -> FloatArray:
    """Mean, variance and third cumulant of Bernoulli(q) (of its negative for ``persons``),
    side by side along the last axis."""
    variance = q * (1.0 - q)
    third = variance * (1.0 - 2.0 * q)
    sign = -1.0 if persons else 1.0
    return np.concatenate([sign * q, variance, sign * third], axis=-1)


_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
