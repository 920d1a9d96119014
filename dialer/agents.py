"""PSRs as the engine sees them: states, and the allocator that shares them among pools.

A pool is a (campaign, language) pair: Spanish-speaking households go only to PSRs who speak
Spanish (``es`` pool); every other household is in the ``en`` pool. The allocator assigns each
PSR who holds no call to one pool, in proportion to the campaigns' weights and the pools'
remaining work, filling the pools only some PSRs can serve (Spanish) from those PSRs first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

PoolKey = tuple[str, str]  # (campaign name, language)


class AgentState(str, Enum):
    """A PSR's state (stored with its history)."""

    logged_out = "logged_out"
    ready = "ready"  # waiting for a call
    previewing = "previewing"  # looking at an offered entry before starting the call (preview)
    reserved = "reserved"  # a line is ringing for this PSR (progressive, preview, callback)
    on_call = "on_call"
    wrap_up = "wrap_up"
    paused = "paused"  # with a reason


BUSY = frozenset({AgentState.on_call, AgentState.wrap_up})
HOLDING = frozenset({AgentState.previewing, AgentState.reserved})  # holding an entry or a line


@dataclass
class AgentRuntime:
    """One logged-in PSR."""

    id: int
    name: str
    languages: frozenset[str]
    state: AgentState = AgentState.logged_out
    since: datetime | None = None
    connected_at: datetime | None = None  # start of the current connect (talk + wrap-up)
    connected_us: int = 0  # the same as clock.micros (pacing reads it every second)
    attempt_id: int | None = None  # the call reserved for or bridged to this PSR
    pool: PoolKey | None = None
    campaigns: frozenset[str] | None = None  # None: every campaign
    pause_reason: str | None = None
    pause_pending: str | None = None  # asked to pause while busy: paused when the call ends
    logout_pending: bool = False

    def serves(self, pool: PoolKey) -> bool:
        """Can this PSR take calls of ``pool``?"""
        campaign, language = pool
        if self.campaigns is not None and campaign not in self.campaigns:
            return False
        return language in self.languages or (language == "en" and not self.languages)


@dataclass(frozen=True)
class PoolDemand:
    """A pool as the allocator sees it."""

    key: PoolKey
    weight: float  # campaign weight x the pool's share of the campaign's work
    assigned_busy: int  # PSRs of the pool holding a call (they stay)


def allocate(free: list[AgentRuntime], pools: list[PoolDemand]) -> dict[int, PoolKey]:
    """Assign each free PSR to a pool: the servable pool with the largest shortfall against its
    weighted share, PSRs who can serve fewer pools choosing first. Deterministic."""
    pools = [p for p in pools if p.weight > 0]
    if not pools:
        return {}
    total_agents = len(free) + sum(p.assigned_busy for p in pools)
    total_weight = sum(p.weight for p in pools)
    target = {p.key: total_agents * p.weight / total_weight for p in pools}
    assigned = {p.key: float(p.assigned_busy) for p in pools}
    options = {a.id: [p.key for p in pools if a.serves(p.key)] for a in free}
    # How many free PSRs could still go to each pool: among equal shortfalls, the pool fewer
    # PSRs can serve (Spanish) is filled first, so a bilingual PSR is not spent on English.
    able = {p.key: sum(1 for a in free if p.key in options[a.id]) for p in pools}
    result: dict[int, PoolKey] = {}
    for agent in sorted(free, key=lambda a: (len(options[a.id]), a.id)):
        choices = options[agent.id]
        for key in choices:
            able[key] -= 1
        if not choices:
            continue
        best = max(choices, key=lambda k: (target[k] - assigned[k], -able[k], -choices.index(k)))
        result[agent.id] = best
        assigned[best] += 1
    return result
