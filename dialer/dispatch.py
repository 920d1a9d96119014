"""The dialing loop: PSRs, pools, pacing, the compliance gate, calls and their outcomes.

The :class:`Dispatcher` is driven from outside, one instant at a time: provider events
(:meth:`Dispatcher.on_event`), PSR actions (:meth:`login`, :meth:`ready`, :meth:`pause`,
:meth:`dispose`) and timers (:meth:`tick`, at :meth:`next_deadline`). After each of them it
dispatches at once, so a PSR who frees up gets a line at that instant. The same code runs live
(Twilio, system clock) and simulated (SimulatedNetwork, virtual clock).

Per (campaign, language) pool a pacer decides how many lines to start; the allocator shares the
PSRs among pools. Every dial passes the compliance gate twice: when an entry is claimed, and
again (do-not-call and retired numbers, in the launch transaction) right before it is placed.
A person detected on an unreserved line is bridged to a ready PSR of the pool, or waits at most
the grace (2 s) for one, then hears the safe-harbor message: abandoned. Each campaign's
abandonment ledger guards the cap: while it says so the campaign dials progressively.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialer.agents import BUSY, HOLDING, AgentRuntime, AgentState, PoolDemand, PoolKey, allocate
from dialer.calls import Call, CallStatus, Command, Effect, Step, apply
from dialer.campaigns import CampaignModel
from dialer.clock import Clock, micros
from dialer.compliance import (
    ABANDON_GRACE_SECONDS,
    ALLOWED,
    MIN_RING_SECONDS,
    AbandonLedger,
    DialRequest,
    Verdict,
    check_dial,
    phone_cap_clears_at,
    retry_time,
)
from dialer.outcomes import Disposition, Outcome, flags, is_conversion
from dialer.pacing import Pacer, PoolSnapshot, ProgressivePacer, make_pacer
from dialer.staterules import StateRules
from dialer.store.attempts import CampaignInfo, ClaimedEntry, EngineStore, Launch
from dialer.telephony.base import CallEvent, CallRequest, EventKind, Provider

RECENT_CALLS = 2000  # ended calls kept for late provider reports
# A launch renews its household's lease at once only when the lease would not outlast the next
# upkeep (which renews the leases of the calls in progress) by this much; else the renewal
# rides with the queued writes.
LEASE_SLACK_SECONDS = 60.0
# The states a pool snapshot (every dispatch, every second) tests, bound once: looking an enum
# member up on its class costs more than the test itself on Python 3.11.
_READY, _RESERVED = AgentState.ready, AgentState.reserved


def _pacing_class(state: AgentState) -> int:
    """What a pacer sees of a PSR's state: ready, reserved, busy (talking or wrapping up, since
    their connect), or none of those."""
    if state is _READY:
        return 0
    if state is _RESERVED:
        return 1
    return 2 if state in BUSY else 3


@dataclass(frozen=True)
class EngineSettings:
    """Knobs of the dialing loop (documented defaults)."""

    ring_timeout_seconds: int = 30  # at least MIN_RING_SECONDS
    grace_seconds: float = ABANDON_GRACE_SECONDS
    wrap_timeout_seconds: float = 300.0  # no disposition by then: no_disposition
    claim_batch: int = 50
    lease_seconds: float = 900.0
    empty_pool_retry_seconds: float = 60.0
    callback_owner_minutes: float = 15.0
    upkeep_seconds: float = 300.0  # lease renewal for calls in progress, sweep of orphans
    preview_skip_minutes: float = 30.0  # a skipped preview is offered again after this
    flush_seconds: float = 5.0  # the longest an outcome or event waits to be written


# Events that only record a call's progress: with no effect they free no PSR and resolve no
# line, so no pacer's decision can change on them (the periodic tick still runs).
PROGRESS_ONLY = frozenset(
    {EventKind.initiated, EventKind.ringing, EventKind.answered, EventKind.bridged}
)


@dataclass
class CallbackDue:
    """A call-back to place: its owner first, anyone who speaks the language after the window."""

    id: int
    campaign: str
    household_id: int
    agent_id: int | None
    due_at: datetime
    entry: ClaimedEntry | None = None


@dataclass
class Line:
    """A call in progress."""

    call: Call
    pool: PoolKey
    entry: ClaimedEntry
    mode: str
    reserved_for: int | None = None  # PSR id (progressive, preview, callback)
    observed: bool = False  # the pacer has been told how the line resolved
    # call.placed_at (set when placed; events never overwrite it) as clock.micros: pacing
    # reads it every second
    placed_us: int = 0


@dataclass
class Pool:
    """A (campaign, language) pool."""

    key: PoolKey
    info: CampaignInfo
    pacer: Pacer
    supply: deque[ClaimedEntry] = field(default_factory=deque)
    lines: set[int] = field(default_factory=set)  # unreserved lines not yet resolved
    waiting: deque[int] = field(default_factory=deque)  # persons waiting for a PSR
    empty_until: datetime | None = None
    # When its pacer's last answer goes stale (its repace_seconds after that decision); None
    # until its first decision, or when the pacer needs no re-pacing.
    repace_at: datetime | None = None
    # The dispatcher's count of changes (Dispatcher._changes) its pacer last decided on.
    paced_change: int = -1


@dataclass
class CampaignRun:
    """A campaign the dispatcher is dialing."""

    info: CampaignInfo
    ledger: AbandonLedger
    weight: float = 1.0
    open: bool = True
    guard_pacer: Pacer = field(default_factory=ProgressivePacer)


class Dispatcher:
    """The dialing loop for one node (see the module doc)."""

    def __init__(
        self,
        store: EngineStore,
        provider: Provider,
        clock: Clock,
        rules: StateRules,
        settings: EngineSettings | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.clock = clock
        self.rules = rules
        self.settings = settings or EngineSettings()
        if self.settings.ring_timeout_seconds < MIN_RING_SECONDS:
            raise ValueError(f"unanswered calls must ring at least {MIN_RING_SECONDS} s")
        if self.settings.upkeep_seconds >= self.settings.lease_seconds:
            raise ValueError("leases must be renewed (upkeep_seconds) more often than they last")
        self.campaigns: dict[str, CampaignRun] = {}
        self.pools: dict[PoolKey, Pool] = {}
        self.agents: dict[int, AgentRuntime] = {}
        # Each pool's PSRs, as the last allocation left them (a PSR changes pool only there).
        self._members: dict[PoolKey, list[AgentRuntime]] = {}
        self.lines: dict[int, Line] = {}
        self._timers: list[tuple[datetime, int, str, int]] = []
        self._seq = itertools.count()
        self._wrap_attempt: dict[int, int] = {}  # agent id -> attempt in wrap-up
        # Called on every PSR state change (the web console pushes them; the simulator's PSRs
        # act on them).
        self.listeners: list[Callable[[AgentRuntime], None]] = []
        self._previews: dict[int, tuple[PoolKey, ClaimedEntry]] = {}
        # Calls ended recently, for late reports (an opt-out key reported after the hang-up).
        self._ended_lines: OrderedDict[int, Line] = OrderedDict()
        self._callbacks: list[CallbackDue] = []
        self._upkeep_at: datetime | None = None
        # What a pool snapshot reads of its PSRs (ready, reserved, members, connect times of
        # the busy ones), per pool, as of the last PSR state change or allocation: pacing
        # reads it on every dispatch, PSRs change far less often.
        self._roster: dict[PoolKey, tuple[int, int, int, list[int]]] = {}
        self._now: datetime | None = None  # the last instant micros() was taken of
        self._now_us = 0
        self._repaced: list[Pool] = []  # pools whose pacer's answer goes stale with time
        # Changes to what pacers read (PSR states as a pacer sees them, allocation, lines in
        # flight, persons waiting, what a pacer or the ledger learned), counted: a pacer whose
        # answer goes stale with time is asked again when this moves or its answer is stale.
        self._changes = 0

    # Set-up --------------------------------------------------------------------------------

    def open_campaign(
        self,
        campaign: CampaignModel,
        *,
        weight: float = 1.0,
        pacer_mode: str | None = None,
        ratio: float | None = None,
        counting: str = "idle",
    ) -> CampaignRun:
        """Start dialing a campaign (its latest list), with one pool per language."""
        now = self.clock.now()
        info = self.store.load_campaign(campaign, now)
        # Calls this node left unfinished when it stopped: end them, release its claims.
        self.store.reconcile(info.id, now)
        run = CampaignRun(info, self._ledger(info), weight)
        if self._upkeep_at is None:  # the first renewal and sweep, a few minutes from now
            self._upkeep_at = now + timedelta(seconds=self.settings.upkeep_seconds)
        self.campaigns[campaign.name] = run
        mode = pacer_mode or campaign.dialing.mode
        for language in ("en", "es"):
            pacer = make_pacer(
                mode,
                ratio=ratio or campaign.dialing.ratio,
                counting="all" if counting == "all" else "idle",
                max_abandon_rate=campaign.dialing.max_abandon_rate,
            )
            pool = Pool((campaign.name, language), info, pacer)
            self.pools[pool.key] = pool
            if pacer.repace_seconds is not None:
                self._repaced.append(pool)
        for row in self.store.open_callbacks(info.id):
            self._add_callback(
                CallbackDue(row.id, campaign.name, row.household_id, row.agent_id, row.due_at)
            )
        self._reallocate()
        self.dispatch()
        return run

    def _ledger(self, info: CampaignInfo) -> AbandonLedger:
        """The campaign's abandonment ledger, rebuilt from every person it has detected."""
        first, history = self.store.abandonment_history(info.id)
        ledger = AbandonLedger(started_at=first)
        for detected_at, abandoned in history:
            ledger.record(detected_at, bool(abandoned))
        return ledger

    def close_campaign(self, name: str) -> None:
        """Stop starting lines for a campaign; calls in progress finish."""
        self.campaigns[name].open = False

    # PSRs ------------------------------------------------------------------------------------

    def login(
        self,
        agent_id: int,
        name: str,
        languages: frozenset[str],
        *,
        campaigns: frozenset[str] | None = None,
    ) -> None:
        """A PSR logs in (paused until ready)."""
        agent = AgentRuntime(agent_id, name, languages, campaigns=campaigns)
        self.agents[agent_id] = agent
        self._set_state(agent, AgentState.paused, reason="login")

    def ready(self, agent_id: int) -> None:
        """A PSR is ready for calls."""
        agent = self.agents[agent_id]
        if agent.state in BUSY or agent.state in HOLDING:
            return
        self._set_state(agent, AgentState.ready)
        self._reallocate()
        self.dispatch()

    def pause(self, agent_id: int, reason: str) -> None:
        """A ready PSR takes a break (a busy one is paused when the call and wrap-up end)."""
        agent = self.agents[agent_id]
        if agent.state in (AgentState.ready, AgentState.paused):
            self._set_state(agent, AgentState.paused, reason=reason)
        else:
            agent.pause_pending = reason

    def logout(self, agent_id: int) -> None:
        """A PSR logs out now, or when their call and wrap-up end."""
        agent = self.agents[agent_id]
        if agent.state in BUSY or agent.state in HOLDING:
            agent.logout_pending = True
            return
        self._set_state(agent, AgentState.logged_out)
        del self.agents[agent_id]
        self._reallocate()

    def _set_state(
        self,
        agent: AgentRuntime,
        state: AgentState,
        *,
        reason: str | None = None,
        attempt_id: int | None = None,
    ) -> None:
        now = self.clock.now()
        if _pacing_class(agent.state) != _pacing_class(state):
            self._roster.clear()
            self._changes += 1
        agent.state, agent.since = state, now
        agent.pause_reason = reason if state is AgentState.paused else None
        self.store.note_agent_state(
            agent.id, state.value, now, reason=reason, attempt_id=attempt_id
        )
        for listener in self.listeners:
            listener(agent)

    def _free_agent(self, agent: AgentRuntime) -> None:
        """After a call (or a released reservation): ready, or the pause/logout they asked for."""
        agent.attempt_id, agent.connected_at = None, None
        if agent.logout_pending:
            self._set_state(agent, AgentState.logged_out)
            del self.agents[agent.id]
            self._reallocate()
        elif agent.pause_pending:
            reason, agent.pause_pending = agent.pause_pending, None
            self._set_state(agent, AgentState.paused, reason=reason)
        else:
            self._set_state(agent, AgentState.ready)
            self._serve_waiting(agent)

    def _reallocate(self) -> None:
        free = [a for a in self.agents.values() if a.state not in BUSY and a.state not in HOLDING]
        demands = []
        for key, pool in self.pools.items():
            run = self.campaigns[key[0]]
            busy = sum(
                1
                for a in self.agents.values()
                if a.pool == key and (a.state in BUSY or a.state in HOLDING)
            )
            has_work = run.open and (
                pool.supply or pool.empty_until is None or pool.empty_until <= self.clock.now()
            )
            demands.append(PoolDemand(key, run.weight if has_work else 0.0, busy))
        for agent_id, key in allocate(free, demands).items():
            self.agents[agent_id].pool = key
        members: dict[PoolKey, list[AgentRuntime]] = {}
        for agent in self.agents.values():
            if agent.pool is not None:
                members.setdefault(agent.pool, []).append(agent)
        self._members = members
        self._roster.clear()
        self._changes += 1

    def campaign_of(self, attempt_id: int | None) -> CampaignModel | None:
        """The campaign of a call in progress or in wrap-up."""
        line = self.lines.get(attempt_id) if attempt_id is not None else None
        return self.campaigns[line.pool[0]].info.model if line else None

    def wrapping(self, agent_id: int) -> int | None:
        """The attempt a PSR is wrapping up, if any."""
        return self._wrap_attempt.get(agent_id)

    # Timers ----------------------------------------------------------------------------------

    def _at(self, when: datetime, kind: str, ref: int) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), kind, ref))

    def next_deadline(self) -> datetime | None:
        """When :meth:`tick` must run next (None: nothing pending): the next timer; while
        calls are in progress, the next upkeep (their leases must be renewed); and while a
        pool with PSRs is open under a pacer whose answer goes stale with time (its
        ``repace_seconds``), the moment its last decision does."""
        soonest = self._timers[0][0] if self._timers else None
        upkeep = self._upkeep_at if self.lines else None
        if upkeep is not None and (soonest is None or upkeep < soonest):
            soonest = upkeep
        for pool in self._repaced:
            if pool.key in self._members and self.campaigns[pool.key[0]].open:
                at = pool.repace_at or self.clock.now()
                if soonest is None or at < soonest:
                    soonest = at
        return soonest

    def tick(self) -> None:
        """Run every timer due by now, then dispatch."""
        now = self.clock.now()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, ref = heapq.heappop(self._timers)
            if kind == "grace":
                self._grace_over(ref)
            elif kind == "wrap":
                self._wrap_timeout(ref)
            # "callback" timers only need the dispatch below
        expired = [p for p in self.pools.values() if p.empty_until and p.empty_until <= now]
        if expired:  # pools that ran empty may have work again: give them PSRs to find out
            for pool in expired:
                pool.empty_until = None
            self._reallocate()
        self.dispatch()
        self.store.maybe_flush(now, self.settings.flush_seconds)
        if self._upkeep_at is not None and now >= self._upkeep_at:
            self._upkeep(now)

    def _upkeep(self, now: datetime) -> None:
        """Every few minutes (on a tick: a live driver ticks at least every few seconds):
        renew the leases of this node's calls in progress, so no other node takes a long call
        for an orphan, and end the attempts a stopped node left open (its leases lapsed)."""
        self._upkeep_at = now + timedelta(seconds=self.settings.upkeep_seconds)
        lease = timedelta(seconds=self.settings.lease_seconds)
        self.store.flush()  # queued lease renewals of launches go first, not over these
        self.store.renew_leases(
            sorted({line.entry.household_id for line in self.lines.values()}), now + lease
        )
        for run in self.campaigns.values():
            self.store.sweep(run.info.id, now, set(self.lines))

    # Dispatching -----------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Place due callbacks, then start the lines every open pool's pacer asks for."""
        if self._callbacks:
            self._serve_callbacks()
        for key, pool in self.pools.items():
            run = self.campaigns[key[0]]
            if run.open:
                self._pace(pool, run)

    def _pacer(self, pool: Pool, run: CampaignRun, in_flight: int) -> Pacer:
        cap = run.info.model.dialing.max_abandon_rate
        if not pool.pacer.reserves and run.ledger.guard(
            self.clock.now(), cap, in_flight=max(1, in_flight)
        ):
            return run.guard_pacer
        return pool.pacer

    def _micros(self, now: datetime) -> int:
        """``micros(now)``, remembered for the instant (several dispatches share one)."""
        if now is not self._now:
            self._now, self._now_us = now, micros(now)
        return self._now_us

    def _roster_of(self, key: PoolKey) -> tuple[int, int, int, list[int]]:
        """Ready, reserved and member counts of a pool, and its busy PSRs' connect times."""
        roster = self._roster.get(key)
        if roster is None:
            ready = reserved = members = 0
            busy: list[int] = []
            for agent in self._members.get(key, ()):
                if agent.pool != key:
                    continue
                members += 1
                state = agent.state
                if state is _READY:
                    ready += 1
                elif state is _RESERVED:
                    reserved += 1
                elif state in BUSY and agent.connected_at is not None:
                    busy.append(agent.connected_us)
            roster = self._roster[key] = (ready, reserved, members, busy)
        return roster

    def _snapshot(self, pool: Pool) -> PoolSnapshot:
        now = self.clock.now()
        now_us = self._micros(now)
        ready, reserved, members, busy = self._roster_of(pool.key)
        lines = self.lines
        ringing = tuple([(now_us - lines[i].placed_us) / 1_000_000 for i in pool.lines])
        return PoolSnapshot(
            now,
            ready,
            tuple([(now_us - since) / 1_000_000 for since in busy]),
            ringing,
            reserved,
            len(pool.waiting),
            members,
        )

    def _pace(self, pool: Pool, run: CampaignRun) -> None:
        if pool.key not in self._members:
            return  # nobody to pace for (PSRs arrive through an allocation: a change)
        repace = pool.pacer.repace_seconds
        if repace is not None:
            # A pacer whose answer goes stale with time is asked again when anything it reads
            # has changed since its last answer, or when that answer is stale; in between it
            # would give the same answer. (Every other pacer is asked on every dispatch.)
            now = self.clock.now()
            changes = self._changes
            if pool.paced_change == changes and pool.repace_at and now < pool.repace_at:
                return
            pool.repace_at = now + timedelta(seconds=repace)
            pool.paced_change = changes
        snap = self._snapshot(pool)
        if not snap.logged_in:
            return  # nobody to pace for
        pacer = self._pacer(pool, run, snap.lines + 1)
        wanted = pacer.lines_to_start(snap)
        if wanted <= 0:
            return
        ready = [a for a in self._members[pool.key] if a.pool == pool.key and a.state is _READY]
        ready.sort(key=lambda a: (a.since or self.clock.now(), a.id))
        if pacer.reserves:
            wanted = min(wanted, len(ready))
        entries = self._take(pool, run, wanted)
        owners = ready[: len(entries)] if pacer.reserves else []
        if pacer.mode == "preview":
            for owner, entry in zip(owners, entries, strict=False):
                self._offer(owner, pool, entry)
            return
        self._launch(pool, run, entries, pacer.mode, owners)

    # Callbacks -------------------------------------------------------------------------------

    def _add_callback(self, callback: CallbackDue) -> None:
        self._callbacks.append(callback)
        window = timedelta(minutes=self.settings.callback_owner_minutes)
        self._at(callback.due_at, "callback", callback.id)
        self._at(callback.due_at + window, "callback", callback.id)

    def _serve_callbacks(self) -> None:
        """Place each due callback on a line reserved for its owner when they are ready, or,
        once the owner's window has passed, for any ready PSR who speaks the language."""
        now = self.clock.now()
        window = timedelta(minutes=self.settings.callback_owner_minutes)
        for callback in [c for c in self._callbacks if c.due_at <= now]:
            run = self.campaigns[callback.campaign]
            if not run.open:
                continue
            if callback.entry is None:
                callback.entry = self.store.entry_for(
                    run.info, callback.household_id, now, self.settings.lease_seconds
                )
                if callback.entry is None:
                    self._close_callback(callback)
                    continue
            key: PoolKey = (callback.campaign, "es" if callback.entry.language == "es" else "en")
            agent = self._callback_agent(callback, key, now >= callback.due_at + window)
            if agent is None:
                continue
            self._close_callback(callback)
            if self._gate(callback.entry, run.info.model, now, requested=True):
                self._launch(self.pools[key], run, [callback.entry], "callback", [agent])

    def _callback_agent(
        self, callback: CallbackDue, key: PoolKey, anyone: bool
    ) -> AgentRuntime | None:
        owner = self.agents.get(callback.agent_id) if callback.agent_id is not None else None
        if owner is not None and owner.state is AgentState.ready:
            return owner
        if not anyone:
            return None
        ready = [a for a in self.agents.values() if a.state is AgentState.ready and a.serves(key)]
        return min(ready, key=lambda a: (a.since or self.clock.now(), a.id)) if ready else None

    def _close_callback(self, callback: CallbackDue) -> None:
        self._callbacks.remove(callback)
        self.store.close_callback(callback.id, self.clock.now())

    # Preview ---------------------------------------------------------------------------------

    def _offer(self, agent: AgentRuntime, pool: Pool, entry: ClaimedEntry) -> None:
        """Show a PSR the entry they are about to call (preview dialing)."""
        self._previews[agent.id] = (pool.key, entry)
        self._set_state(agent, AgentState.previewing)

    def previewed(self, agent_id: int) -> ClaimedEntry | None:
        """The entry a previewing PSR is looking at."""
        offer = self._previews.get(agent_id)
        return offer[1] if offer else None

    def dial_preview(self, agent_id: int) -> None:
        """The PSR starts the call they previewed (the line is theirs)."""
        offer = self._previews.pop(agent_id, None)
        agent = self.agents.get(agent_id)
        if offer is None or agent is None:
            return
        key, entry = offer
        pool, run = self.pools[key], self.campaigns[key[0]]
        self._launch(pool, run, [entry], "preview", [agent])
        if agent.state is AgentState.previewing:  # the number was blocked at the last check
            self._free_agent(agent)
        self.dispatch()

    def skip_preview(self, agent_id: int) -> None:
        """The PSR passes on the previewed entry: it goes back to the list and is offered
        again ``preview_skip_minutes`` later (to any PSR of its pool)."""
        offer = self._previews.pop(agent_id, None)
        if offer is not None:
            later = self.clock.now() + timedelta(minutes=self.settings.preview_skip_minutes)
            self.store.release(offer[1].household_id, next_attempt_at=later)
        agent = self.agents.get(agent_id)
        if agent is not None and agent.state is AgentState.previewing:
            self._free_agent(agent)
            self.dispatch()

    def _take(self, pool: Pool, run: CampaignRun, wanted: int) -> list[ClaimedEntry]:
        """Up to ``wanted`` entries that pass the gate now; refused ones are given back."""
        now = self.clock.now()
        taken: list[ClaimedEntry] = []
        while len(taken) < wanted:
            if not pool.supply and not self._refill(pool, run, wanted - len(taken)):
                break
            entry = pool.supply.popleft()
            if self._gate(entry, run.info.model, now):
                taken.append(entry)
        return taken

    def _refill(self, pool: Pool, run: CampaignRun, needed: int) -> bool:
        now = self.clock.now()
        if pool.empty_until is not None and now < pool.empty_until:
            return False
        batch = self.store.claim(
            run.info,
            pool.key[1],
            max(needed, self.settings.claim_batch),
            now,
            self.settings.lease_seconds,
        )
        if not batch:
            pool.empty_until = now + timedelta(seconds=self.settings.empty_pool_retry_seconds)
            self._reallocate()  # its PSRs go where there is work
            return False
        pool.empty_until = None
        pool.supply.extend(batch)
        return True

    def _gate(
        self,
        entry: ClaimedEntry,
        campaign: CampaignModel,
        now: datetime,
        *,
        requested: bool = False,
    ) -> bool:
        """The compliance gate; a refused entry is released with its next possible time."""
        if entry.phone is None:
            self.store.release(entry.household_id, done=True, final_code="no_valid_phone")
            return False
        verdict = self._check(entry, campaign, now, entry.phone_attempts, requested=requested)
        if verdict.allowed:
            return True
        self._refuse(entry, verdict)
        return False

    def _check(
        self,
        entry: ClaimedEntry,
        campaign: CampaignModel,
        now: datetime,
        phone_attempts: list[datetime],
        *,
        requested: bool,
    ) -> Verdict:
        request = DialRequest(
            phone=entry.phone or "",
            phone_kind=entry.phone_kind,  # type: ignore[arg-type]
            zones=entry.zones,
            states=entry.states,
            has_consent=entry.has_consent,
            on_dnc=False,
            household_attempts=tuple(entry.household_attempts),
            phone_attempts=tuple(phone_attempts),
            next_attempt_at=entry.next_attempt_at,
            requested=requested,
        )
        return check_dial(request, campaign, now, self.rules)

    def _phone_check(self, campaign: CampaignModel) -> Callable[[Launch, list[datetime]], Verdict]:
        """The check at launch, with the phone's calls as the store has them at that moment:
        the per-phone caps (cheap), and the whole gate for the verdict when they refuse."""

        def check(launch: Launch, calls: list[datetime]) -> Verdict:
            entry, requested = launch.entry, launch.mode == "callback"
            clears = phone_cap_clears_at(
                calls, entry.states, launch.started_at, self.rules, requested=requested
            )
            if clears is None:
                return ALLOWED
            return self._check(entry, campaign, launch.started_at, calls, requested=requested)

        return check

    def _refuse(self, entry: ClaimedEntry, verdict: Verdict) -> None:
        """Give a refused entry back with its next possible time, or close it."""
        if verdict.not_before is not None:
            self.store.release(entry.household_id, next_attempt_at=verdict.not_before)
        else:
            self.store.release(
                entry.household_id,
                done=True,
                final_code=str(verdict.reason.value if verdict.reason else "refused"),
            )

    def _launch(
        self,
        pool: Pool,
        run: CampaignRun,
        entries: list[ClaimedEntry],
        mode: str,
        owners: list[AgentRuntime],
    ) -> None:
        if not entries:
            return
        now = self.clock.now()
        launches = [
            Launch(entry, mode, now, owners[i].id if i < len(owners) else None)
            for i, entry in enumerate(entries)
        ]
        results = self.store.launch(
            launches,
            run.info.model.name,
            self.settings.lease_seconds,
            self._phone_check(run.info.model),
            renew_below_seconds=self.settings.upkeep_seconds + LEASE_SLACK_SECONDS,
        )
        for launch, result in zip(launches, results, strict=True):
            entry = launch.entry
            if result.lease_lost:  # another node holds the household now: it is theirs
                continue
            if result.verdict is not None:  # a call to the phone since the claim hit a cap
                self._refuse(entry, result.verdict)
                continue
            if result.attempt_id is None:  # do-not-call or retired at the last check
                self._next_phone_or_done(
                    entry, "no_valid_phone" if result.retired else "do_not_call"
                )
                continue
            self._place(pool, run, launch, result.attempt_id)

    def _place(self, pool: Pool, run: CampaignRun, launch: Launch, attempt_id: int) -> None:
        now = self.clock.now()
        entry = launch.entry
        call = Call(attempt_id, CallStatus.dialing, placed_at=now)
        owner = self.agents.get(launch.agent_id) if launch.agent_id is not None else None
        self.lines[attempt_id] = Line(
            call,
            pool.key,
            entry,
            launch.mode,
            reserved_for=owner.id if owner else None,
            placed_us=self._micros(now),
        )
        if owner is not None:
            owner.attempt_id = attempt_id
            self._set_state(owner, AgentState.reserved, attempt_id=attempt_id)
        else:
            pool.lines.add(attempt_id)
            self._changes += 1
        entry.phone_attempts.append(now)
        entry.household_attempts.append(now)
        self.store.note_household(
            entry.household_id, attempts=entry.attempts + 1, last_attempt_at=now
        )
        clinic = run.info.clinics.get(entry.clinic_id)
        caller_id = run.info.model.dialing.caller_id
        if caller_id == "clinic":
            caller_id = clinic.phone if clinic and clinic.phone else ""
        call_id = self.provider.place_call(
            CallRequest(
                attempt_id, entry.phone or "", caller_id, self.settings.ring_timeout_seconds
            )
        )
        self.store.note_attempt(attempt_id, provider_call_id=call_id)

    # Events --------------------------------------------------------------------------------

    def on_event(self, event: CallEvent) -> None:
        """Apply a provider event, act on it, and dispatch."""
        line = self.lines.get(event.attempt_id) or self._ended_lines.get(event.attempt_id)
        if line is None:
            return  # a late event for a call finished long ago: nothing can move it
        new, effects = apply(line.call, Step.of(event))
        if new is line.call:
            return  # seen before
        line.call = new
        self.store.note_event(event.attempt_id, event.event_id, event.kind.value, event.at)
        self._effects(line, effects)
        if effects or event.kind not in PROGRESS_ONLY:
            self.dispatch()

    def _command(self, line: Line, command: Command, agent_id: int | None = None) -> None:
        now = self.clock.now()
        step = Step(f"engine:{next(self._seq)}", now, command, agent_id)
        line.call, effects = apply(line.call, step)
        self._effects(line, effects)

    def _effects(self, line: Line, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            if effect is Effect.need_agent:
                self._person(line)
            elif effect is Effect.machine:
                self._machine(line)
            elif effect is Effect.bridge:
                self._bridged(line)
            elif effect is Effect.play_safe_harbor:
                self._safe_harbor(line)
            elif effect is Effect.play_voicemail:
                self._voicemail(line)
            elif effect is Effect.hang_up:
                self.provider.hangup(line.call.attempt_id)
            elif effect is Effect.opt_out:
                self._opt_out(line)
            elif effect is Effect.ended:
                self._ended(line)

    def _observe(self, line: Line, live: bool) -> None:
        if line.observed or (line.reserved_for is not None and line.mode == "preview"):
            return
        line.observed = True
        now = self.clock.now()
        placed = line.call.placed_at or now
        self.pools[line.pool].pacer.observe_line((now - placed).total_seconds(), live, now)
        self.pools[line.pool].lines.discard(line.call.attempt_id)
        self._changes += 1

    def _person(self, line: Line) -> None:
        self._observe(line, True)
        owner = self.agents.get(line.reserved_for) if line.reserved_for is not None else None
        if owner is not None:
            self._command(line, Command.bridge, owner.id)
            return
        pool = self.pools[line.pool]
        agent = self._ready_agent(pool)
        if agent is not None:
            self._command(line, Command.bridge, agent.id)
            return
        pool.waiting.append(line.call.attempt_id)
        self._changes += 1
        detected = line.call.person_detected_at or self.clock.now()
        self._at(
            detected + timedelta(seconds=self.settings.grace_seconds), "grace", line.call.attempt_id
        )

    def _ready_agent(self, pool: Pool) -> AgentRuntime | None:
        """The pool's longest-ready PSR, else any ready PSR who can serve the pool."""
        ready = [a for a in self.agents.values() if a.state is AgentState.ready]
        own = [a for a in ready if a.pool == pool.key]
        others = [a for a in ready if a.pool != pool.key and a.serves(pool.key)]
        for group in (own, others):
            if group:
                return min(group, key=lambda a: (a.since or self.clock.now(), a.id))
        return None

    def _serve_waiting(self, agent: AgentRuntime) -> None:
        """A PSR just became ready: take the oldest waiting person they can serve."""
        pools = sorted(
            (p for p in self.pools.values() if p.waiting and agent.serves(p.key)),
            key=lambda p: (p.key != agent.pool, p.key),
        )
        for pool in pools:
            while pool.waiting:
                attempt_id = pool.waiting.popleft()
                self._changes += 1
                line = self.lines.get(attempt_id)
                if line is not None and line.call.status is CallStatus.person:
                    self._command(line, Command.bridge, agent.id)
                    return

    def _grace_over(self, attempt_id: int) -> None:
        line = self.lines.get(attempt_id)
        if line is None or line.call.status is not CallStatus.person:
            return
        pool = self.pools[line.pool]
        if attempt_id in pool.waiting:
            pool.waiting.remove(attempt_id)
            self._changes += 1
        self._command(line, Command.abandon)

    def _bridged(self, line: Line) -> None:
        now = self.clock.now()
        agent = self.agents[line.call.agent_id or 0]
        agent.attempt_id, agent.connected_at = line.call.attempt_id, now
        agent.connected_us = self._micros(now)
        self._set_state(agent, AgentState.on_call, attempt_id=line.call.attempt_id)
        self.provider.bridge(line.call.attempt_id, agent.id)
        self._record_person(line, abandoned=False)
        self.store.note_attempt(line.call.attempt_id, agent_id=agent.id)

    def _record_person(self, line: Line, *, abandoned: bool) -> None:
        detected = line.call.person_detected_at or self.clock.now()
        self.campaigns[line.pool[0]].ledger.record(detected, abandoned)
        self.pools[line.pool].pacer.observe_abandon(abandoned, detected)
        self._changes += 1

    def _safe_harbor(self, line: Line) -> None:
        self._record_person(line, abandoned=True)
        text, language = self._message(line, "safe_harbor")
        self.provider.play_message(line.call.attempt_id, text, language, opt_out_digit="9")

    def _machine(self, line: Line) -> None:
        self._observe(line, False)
        self._release_reservation(line)
        leave = self.campaigns[line.pool[0]].info.model.dialing.voicemail == "leave_message"
        self._command(line, Command.leave_message if leave else Command.hang_up)

    def _voicemail(self, line: Line) -> None:
        text, language = self._message(line, "voicemail")
        self.provider.play_message(line.call.attempt_id, text, language, opt_out_digit=None)

    def _message(self, line: Line, kind: str) -> tuple[str, str]:
        """A recorded message in the household's language, naming the clinic (no patient data)."""
        model = self.campaigns[line.pool[0]].info.model
        texts = getattr(model.messages, kind)
        language = line.entry.language if line.entry.language in texts else "en"
        clinic = self.campaigns[line.pool[0]].info.clinics.get(line.entry.clinic_id)
        number = model.dialing.callback_number
        if number == "clinic":
            number = clinic.phone if clinic and clinic.phone else ""
        name = clinic.name if clinic else ""
        text = texts.get(language) or next(iter(texts.values()))
        return text.format(clinic_name=name, callback_number=number), language

    def _opt_out(self, line: Line) -> None:
        if line.entry.phone:
            self.store.add_dnc(
                line.entry.phone,
                source="keypress",
                reason="opt-out key pressed",
                now=self.clock.now(),
            )
        self.store.note_attempt(line.call.attempt_id, opted_out=True)

    def _release_reservation(self, line: Line) -> None:
        if line.reserved_for is None:
            return
        agent = self.agents.get(line.reserved_for)
        line.reserved_for = None
        if agent is not None and agent.state is AgentState.reserved:
            self._free_agent(agent)

    def _ended(self, line: Line) -> None:
        call = line.call
        outcome = call.outcome or Outcome.failed
        if outcome in (Outcome.no_answer, Outcome.busy, Outcome.failed):
            self._observe(line, False)
        lines = self.pools[line.pool].lines
        if call.attempt_id in lines:
            lines.discard(call.attempt_id)
            self._changes += 1
        self._release_reservation(line)
        if outcome is Outcome.abandoned and call.status is CallStatus.ended:
            pool = self.pools[line.pool]
            if call.attempt_id in pool.waiting:  # hung up inside the grace, unserved
                pool.waiting.remove(call.attempt_id)
                self._changes += 1
                self._record_person(line, abandoned=True)
        self.store.note_attempt(
            call.attempt_id,
            ringing_at=call.ringing_at,
            answered_at=call.answered,
            person_detected_at=call.person_detected_at,
            machine_detected_at=call.machine_detected_at,
            connected_at=call.bridged_at,
            ended_at=call.ended_at,
            outcome=outcome.value,
            abandoned=outcome is Outcome.abandoned,
        )
        if outcome is Outcome.connected and call.agent_id in self.agents:
            agent = self.agents[call.agent_id]
            self._set_state(agent, AgentState.wrap_up, attempt_id=call.attempt_id)
            self._wrap_attempt[agent.id] = call.attempt_id
            self._at(
                self.clock.now() + timedelta(seconds=self.settings.wrap_timeout_seconds),
                "wrap",
                call.attempt_id,
            )
            return  # the disposition decides what happens to the household
        self._forget(call.attempt_id)
        self._schedule_next(line.entry, line.pool[0], outcome.value, call.ended_at)

    # Dispositions ------------------------------------------------------------------------------

    def dispose(
        self,
        agent_id: int,
        disposition: Disposition,
        *,
        callback_at: datetime | None = None,
        appointment_ids: str | None = None,
        notes: str | None = None,
    ) -> None:
        """The PSR records the outcome of their call and ends wrap-up."""
        attempt_id = self._wrap_attempt.pop(agent_id, None)
        if attempt_id is None:
            return
        line = self.lines[attempt_id]
        self._forget(attempt_id)
        now = self.clock.now()
        campaign = self.campaigns[line.pool[0]]
        kind = campaign.info.model.kind
        self.store.note_attempt(
            attempt_id,
            disposition=disposition.value,
            disposition_at=now,
            wrap_ended_at=now,
            is_contact=flags(disposition).contact,
            is_conversion=is_conversion(disposition, kind),
            callback_at=callback_at,
            appointment_ids=appointment_ids,
            notes=notes,
        )
        self._apply_disposition(line, campaign, disposition, callback_at, agent_id)
        self.pools[line.pool].pacer.observe_handle(
            (now - (line.call.bridged_at or now)).total_seconds(), now
        )
        self._changes += 1
        agent = self.agents.get(agent_id)
        if agent is not None:
            self._free_agent(agent)
        self.dispatch()

    def _apply_disposition(
        self,
        line: Line,
        run: CampaignRun,
        disposition: Disposition,
        callback_at: datetime | None,
        agent_id: int,
    ) -> None:
        now = self.clock.now()
        entry = line.entry
        if disposition is Disposition.do_not_call and entry.phone:
            self.store.add_dnc(
                entry.phone, source="disposition", reason="asked on the phone", now=now
            )
        if disposition is Disposition.wrong_number and entry.phone:
            self.store.retire_phone(entry.phone, reason="wrong_number", now=now)
            self._next_phone_or_done(entry, "wrong_number", at=now)
            return
        if disposition is Disposition.callback and callback_at is not None:
            callback_id = self.store.add_callback(
                run.info.id, entry.household_id, agent_id, line.call.attempt_id, callback_at, now
            )
            # The callback path places it; the household's own retry is only a fallback.
            self.store.release(entry.household_id, next_attempt_at=callback_at + timedelta(days=1))
            self._add_callback(
                CallbackDue(
                    callback_id, run.info.model.name, entry.household_id, agent_id, callback_at
                )
            )
            return
        if is_conversion(disposition, run.info.model.kind):
            self.store.note_household(entry.household_id, last_converted_at=now)
        self._schedule_next(entry, line.pool[0], disposition.value, now)

    def _forget(self, attempt_id: int) -> None:
        """A call is done with; keep it a while for late reports."""
        line = self.lines.pop(attempt_id)
        self._ended_lines[attempt_id] = line
        while len(self._ended_lines) > RECENT_CALLS:
            self._ended_lines.popitem(last=False)

    def _wrap_timeout(self, attempt_id: int) -> None:
        """Wrap-up ran out for this call: it gets ``no_disposition`` (if still open)."""
        for agent_id, wrapping in list(self._wrap_attempt.items()):
            if wrapping == attempt_id:
                self.dispose(agent_id, Disposition.no_disposition)

    def _schedule_next(
        self, entry: ClaimedEntry, campaign: str, code: str, ended_at: datetime | None
    ) -> None:
        """After an attempt: final, or released until the campaign's retry delay."""
        when = ended_at or self.clock.now()
        if flags(code).final:
            self.store.release(entry.household_id, done=True, final_code=code)
            return
        model = self.campaigns[campaign].info.model
        if entry.attempts + 1 >= model.calling.max_attempts:
            # Capped: nothing is due (a raised cap brings it back through the fresh entries
            # the next time the list is dialed from the start).
            self.store.release(entry.household_id, next_attempt_at=None)
            return
        self.store.release(entry.household_id, next_attempt_at=retry_time(model, code, when))

    def _next_phone_or_done(
        self, entry: ClaimedEntry, code: str, *, at: datetime | None = None
    ) -> None:
        """Move the household to its next phone, or finish it when none is left."""
        next_index = entry.phone_index + 1
        if next_index < len(entry.phones):
            self.store.release(
                entry.household_id, phone_index=next_index, next_attempt_at=at or self.clock.now()
            )
        else:
            self.store.release(
                entry.household_id, phone_index=next_index, done=True, final_code=code
            )
