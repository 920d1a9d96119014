"""A simulated telephone network: callees who answer, ring out, are busy or are machines.

Package code, not a test mock: ``dialer simulate``, ``dialer demo`` and the tests run the real
engine against it. A dial's fate is drawn when it is placed (:class:`CalleeModel`); events are
handed to ``schedule(at, event)``, which the simulation's event loop delivers on its virtual
clock. A person answering is detected after ``live_answer_delay``; a machine after its delay;
unanswered calls ring out after the no-answer delay, or the engine's ring timeout when shorter.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.clock import Clock
from dialer.telephony.base import CallEvent, CallRequest, EventKind


@dataclass(frozen=True)
class Distribution:
    """A distribution of seconds: ``fixed``, ``uniform``, ``exponential`` or ``lognormal``
    (lognormal given by the mean and standard deviation of the seconds themselves)."""

    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """One draw (never negative)."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "exponential":
            return rng.expovariate(1 / self.a) if self.a > 0 else 0.0
        if self.kind == "lognormal":
            sigma2 = math.log(1 + (self.b / self.a) ** 2)
            return rng.lognormvariate(math.log(self.a) - sigma2 / 2, math.sqrt(sigma2))
        raise ValueError(f"unknown distribution {self.kind!r}")

    @property
    def mean(self) -> float:
        """The expected value."""
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return self.a


@dataclass(frozen=True)
class CalleeModel:
    """How the callee population and the network behave."""

    live_rate: Callable[[datetime], float]  # share of dials a person answers, by time
    live_delay: Distribution
    fast_fail_share: float
    fast_fail_delay: Distribution
    no_answer_share: float
    no_answer_delay: Distribution
    machine_share: float
    machine_delay: Distribution
    talk: Distribution
    opt_out_share: float = 0.02  # of people hearing the safe-harbor message who press 9
    message_seconds: float = 12.0  # safe-harbor message
    voicemail_seconds: float = 25.0  # greeting, beep and our message


ScheduleFn = Callable[[datetime, CallEvent], None]


class SimulatedNetwork:
    """A :class:`~dialer.telephony.base.Provider` whose calls happen on a virtual clock."""

    def __init__(
        self, model: CalleeModel, rng: random.Random, clock: Clock, schedule: ScheduleFn
    ) -> None:
        self.model = model
        self.rng = rng
        self.clock = clock
        self.schedule = schedule
        self._ids = itertools.count(1)
        self.placed = 0

    def _emit(
        self, attempt_id: int, kind: EventKind, after: float = 0.0, digits: str | None = None
    ) -> None:
        at = self.clock.now() + timedelta(seconds=after)
        self.schedule(at, CallEvent(f"sim-{next(self._ids):012d}", attempt_id, kind, at, digits))

    def place_call(self, request: CallRequest) -> str:
        """Draw the callee's fate now and schedule what follows."""
        self.placed += 1
        model, rng = self.model, self.rng
        attempt = request.attempt_id
        self._emit(attempt, EventKind.ringing)
        draw = rng.random()
        if draw < model.live_rate(self.clock.now()):
            delay = model.live_delay.sample(rng)
            self._emit(attempt, EventKind.person_detected, delay)
            return f"sim-call-{attempt}"
        rest = (draw - model.live_rate(self.clock.now())) / (1 - model.live_rate(self.clock.now()))
        if rest < model.fast_fail_share:
            kind = EventKind.busy if rng.random() < 0.5 else EventKind.failed
            self._emit(attempt, kind, model.fast_fail_delay.sample(rng))
        elif rest < model.fast_fail_share + model.no_answer_share:
            delay = min(model.no_answer_delay.sample(rng), float(request.ring_timeout_seconds))
            self._emit(attempt, EventKind.no_answer, delay)
        else:
            self._emit(attempt, EventKind.machine_detected, model.machine_delay.sample(rng))
        return f"sim-call-{attempt}"

    def bridge(self, attempt_id: int, agent_id: int) -> None:
        """The PSR's room takes the call: the conversation lasts a drawn talk time."""
        self._emit(attempt_id, EventKind.bridged)
        self._emit(attempt_id, EventKind.hangup, self.model.talk.sample(self.rng))

    def play_message(
        self, attempt_id: int, text: str, language: str, *, opt_out_digit: str | None
    ) -> None:
        """Play a message; some people press the opt-out key during the safe-harbor one."""
        model = self.model
        safe_harbor = opt_out_digit is not None  # only the safe-harbor message takes keys
        length = model.message_seconds if safe_harbor else model.voicemail_seconds
        if safe_harbor and opt_out_digit and self.rng.random() < model.opt_out_share:
            self._emit(attempt_id, EventKind.keypress, length * 0.8, digits=opt_out_digit)
        self._emit(attempt_id, EventKind.message_done, length)

    def hangup(self, attempt_id: int) -> None:
        """End the call now."""
        self._emit(attempt_id, EventKind.hangup)
