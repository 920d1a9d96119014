"""The event loop of simulated time: the network's events, simulated PSRs, and the engine's timers.

One loop drives the real :class:`~dialer.dispatch.Dispatcher` on a virtual clock: it delivers
the simulated network's call events, plays the PSRs (they log in and out on a schedule, wrap up
for a drawn time and then record a drawn disposition, start previewed calls after a look), and
runs the dispatcher's timers. At one instant, network events come before PSR actions, which come
before timers, so a PSR who frees up exactly at a grace deadline still takes the waiting caller.
Used by ``dialer simulate`` and ``dialer demo``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dialer.agents import AgentRuntime, AgentState
from dialer.clock import VirtualClock
from dialer.dispatch import Dispatcher
from dialer.outcomes import Disposition
from dialer.telephony.base import CallEvent
from dialer.telephony.simulated import Distribution

EVENT, ACTION, CLOSE, TICK = 0, 1, 2, 3  # priorities at one instant
DispositionChooser = Callable[[str], tuple[Disposition, datetime | None]]


def choose(shares: dict[str, float], rng: random.Random) -> str:
    """A key drawn with probability proportional to its share."""
    pick = rng.random() * sum(shares.values())
    for name, share in shares.items():
        pick -= share
        if pick <= 0:
            return name
    return next(iter(shares))


class EventLoop:
    """Simulated time around one dispatcher (see the module doc)."""

    def __init__(
        self,
        clock: VirtualClock,
        rng: random.Random,
        wrap: Distribution,
        dispositions: DispositionChooser,
        *,
        preview_seconds: float = 10.0,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.wrap = wrap
        self.dispositions = dispositions
        self.preview_seconds = preview_seconds
        self.dispatcher: Dispatcher | None = None
        self._queue: list[tuple[datetime, int, int, str, Any]] = []
        self._seq = itertools.count()
        self.handlers: dict[str, Callable[[Any], None]] = {}

    def attach(self, dispatcher: Dispatcher) -> None:
        """Drive this dispatcher; its PSR state changes become simulated PSR behaviour."""
        self.dispatcher = dispatcher
        dispatcher.listeners.append(self._on_agent)

    def push(self, at: datetime, priority: int, kind: str, payload: Any = None) -> None:
        """Schedule something at ``at``."""
        heapq.heappush(self._queue, (at, priority, next(self._seq), kind, payload))

    def deliver(self, at: datetime, event: CallEvent) -> None:
        """The simulated network's scheduling hook."""
        self.push(at, EVENT, "event", event)

    def _on_agent(self, agent: AgentRuntime) -> None:
        now = self.clock.now()
        if agent.state is AgentState.wrap_up:
            self.push(
                now + timedelta(seconds=self.wrap.sample(self.rng)),
                ACTION,
                "dispose",
                (agent.id, agent.attempt_id),
            )
        elif agent.state is AgentState.previewing:
            self.push(now + timedelta(seconds=self.preview_seconds), ACTION, "preview", agent.id)

    def every(self, start: datetime, end: datetime, seconds: float) -> None:
        """Let the dispatcher re-pace every ``seconds`` between ``start`` and ``end``."""
        self.push(start, TICK, "tick", (end, seconds))

    def run(self) -> None:
        """Run until nothing is left to happen."""
        dispatcher = self.dispatcher
        assert dispatcher is not None
        while True:
            deadline = dispatcher.next_deadline()
            if deadline is not None and (not self._queue or deadline < self._queue[0][0]):
                self.clock.advance_to(max(deadline, self.clock.now()))
                dispatcher.tick()
                continue
            if not self._queue:
                return
            at, _, _, kind, payload = heapq.heappop(self._queue)
            self.clock.advance_to(max(at, self.clock.now()))
            self._handle(dispatcher, kind, payload)

    def _handle(self, dispatcher: Dispatcher, kind: str, payload: Any) -> None:
        if kind == "event":
            dispatcher.on_event(payload)
        elif kind == "dispose":
            agent_id, attempt_id = payload
            campaign = dispatcher.campaign_of(attempt_id)
            if campaign is not None and dispatcher.wrapping(agent_id) == attempt_id:
                disposition, callback_at = self.dispositions(campaign.kind)
                dispatcher.dispose(agent_id, disposition, callback_at=callback_at)
        elif kind == "preview":
            dispatcher.dial_preview(payload)
        elif kind == "tick":
            end, seconds = payload
            if self.clock.now() < end:
                dispatcher.tick()
                self.push(self.clock.now() + timedelta(seconds=seconds), TICK, "tick", payload)
        else:
            self.handlers[kind](payload)
