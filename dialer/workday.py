"""One simulated working day of the real engine over built lists (the demo's day).

PSRs log in for the day in the call center's zone, every campaign dials its latest list through
the dispatcher (the allocator shares the PSRs by campaign weight and language), the simulated
network plays the callees, and simulated PSRs record dispositions typical of each campaign kind.
Everything the engine writes lands in the store, so reports afterwards read a real day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import Engine, case, func, select

from dialer.campaigns import CampaignModel
from dialer.clock import VirtualClock
from dialer.dispatch import Dispatcher
from dialer.outcomes import Disposition
from dialer.simloop import ACTION, CLOSE, EventLoop, choose
from dialer.staterules import load_state_rules
from dialer.store.attempts import EngineStore
from dialer.store.models import Attempt
from dialer.telephony.simulated import CalleeModel, Distribution, SimulatedNetwork

# What PSRs record, by campaign kind (shares; callbacks come back two hours later).
DISPOSITIONS: dict[str, dict[str, float]] = {
    "reminder": {
        "confirmed": 0.60,
        "rescheduled": 0.10,
        "cancelled": 0.05,
        "declined": 0.12,
        "callback": 0.08,
        "wrong_number": 0.04,
        "do_not_call": 0.01,
    },
    "recall": {
        "booked": 0.32,
        "declined": 0.38,
        "callback": 0.12,
        "cancelled": 0.10,
        "wrong_number": 0.06,
        "do_not_call": 0.02,
    },
    "reactivation": {
        "booked": 0.22,
        "declined": 0.50,
        "callback": 0.12,
        "wrong_number": 0.10,
        "do_not_call": 0.06,
    },
}
CALLBACK_AFTER = timedelta(hours=2)
TICK_SECONDS = 2.0  # the adaptive baseline's clock (the predictive pacer keeps its own)


def callee_model(rate: float = 0.28) -> CalleeModel:
    """Callees as the reference figures describe them (domain-facts §3.5, pacing-notes S2)."""
    return CalleeModel(
        live_rate=lambda _: rate,
        live_delay=Distribution("lognormal", 9, 4),
        fast_fail_share=0.25,
        fast_fail_delay=Distribution("uniform", 1, 5),
        no_answer_share=0.45,
        no_answer_delay=Distribution("fixed", 24),
        machine_share=0.30,
        machine_delay=Distribution("lognormal", 12, 4),
        talk=Distribution("lognormal", 150, 90),
    )


def next_workday(after: date) -> date:
    """The next weekday after ``after`` that is not a US federal holiday."""
    day = after + timedelta(days=1)
    federal = holidays.country_holidays("US", years=[day.year, day.year + 1])
    while day.weekday() >= 5 or day in federal:
        day += timedelta(days=1)
    return day


@dataclass
class CampaignDay:
    """What one campaign did in the day."""

    name: str
    kind: str
    entries: int
    attempts: int = 0
    live_answers: int = 0
    contacts: int = 0
    conversions: int = 0
    abandon_rate: float = 0.0
    occupancy: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The demo's per-campaign JSON."""
        return dict(self.__dict__)


@dataclass
class Workday:
    """The day's set-up."""

    day: date
    zone: str
    agents: int = 12
    bilingual: int = 4
    start: time = time(8, 0)
    end: time = time(17, 0)
    seed: int = 7


def run_workday(
    engine: Engine, campaigns: list[tuple[CampaignModel, int]], workday: Workday
) -> list[CampaignDay]:
    """Dial the campaigns' latest lists for one simulated day; ``campaigns`` pairs each
    definition with its list's entry count."""
    zone = ZoneInfo(workday.zone)
    start = datetime.combine(workday.day, workday.start, zone).astimezone(UTC)
    end = datetime.combine(workday.day, workday.end, zone).astimezone(UTC)
    clock = VirtualClock(start - timedelta(minutes=1))
    rng = random.Random(workday.seed)
    store = EngineStore(engine, node="demo")

    def disposition(kind: str) -> tuple[Disposition, datetime | None]:
        code = Disposition(choose(DISPOSITIONS[kind], rng))
        return code, clock.now() + CALLBACK_AFTER if code is Disposition.callback else None

    loop = EventLoop(clock, rng, Distribution("lognormal", 25, 15), disposition)
    network = SimulatedNetwork(callee_model(), random.Random(workday.seed + 1), clock, loop.deliver)
    dispatcher = Dispatcher(store, network, clock, load_state_rules())
    loop.attach(dispatcher)
    for campaign, _ in campaigns:
        dispatcher.open_campaign(campaign, weight=campaign.dialing.weight)
    for index in range(workday.agents):
        name = f"PSR {index + 1:02d}"
        languages = frozenset({"en", "es"}) if index < workday.bilingual else frozenset({"en"})
        agent_id = store.register_agent(name, languages, clock.now())
        loop.push(start, ACTION, "login", (agent_id, name, languages))
        loop.push(end, ACTION, "logout", agent_id)

    def login(args: tuple[int, str, frozenset[str]]) -> None:
        dispatcher.login(*args)
        dispatcher.ready(args[0])

    def close(_: object) -> None:
        for campaign, _entries in campaigns:
            dispatcher.close_campaign(campaign.name)

    loop.handlers.update(login=login, logout=dispatcher.logout, close=close)
    loop.push(end, CLOSE, "close")
    if any(pool.pacer.mode == "adaptive" for pool in dispatcher.pools.values()):
        loop.every(start, end, TICK_SECONDS)  # that baseline's fixed clock (see AdaptivePacer)
    loop.run()
    store.flush()
    return summarise(engine, campaigns, dispatcher, workday)


def summarise(
    engine: Engine,
    campaigns: list[tuple[CampaignModel, int]],
    dispatcher: Dispatcher,
    workday: Workday,
) -> list[CampaignDay]:
    """Per campaign: attempts, live answers, contacts, conversions, abandonment, and its share
    of the PSRs' logged-in time spent talking or wrapping up (the shares add up to occupancy)."""
    logged_in = (
        workday.agents
        * (
            datetime.combine(workday.day, workday.end)
            - datetime.combine(workday.day, workday.start)
        ).total_seconds()
    )
    days = []
    a = Attempt
    with engine.connect() as conn:
        for campaign, entries in campaigns:
            cid = dispatcher.campaigns[campaign.name].info.id
            row = conn.execute(
                select(
                    func.count(),
                    func.count(a.person_detected_at),
                    func.sum(case((a.is_contact, 1), else_=0)),
                    func.sum(case((a.is_conversion, 1), else_=0)),
                    func.sum(case((a.abandoned, 1), else_=0)),
                ).where(a.campaign_id == cid)
            ).one()
            busy = _busy_seconds(conn, cid)
            attempts, live, contacts, conversions, abandoned = (int(v or 0) for v in row)
            days.append(
                CampaignDay(
                    campaign.name,
                    campaign.kind,
                    entries,
                    attempts,
                    live,
                    contacts,
                    conversions,
                    round(abandoned / live, 4) if live else 0.0,
                    round(busy / logged_in, 4) if logged_in else 0.0,
                )
            )
    return days


def _busy_seconds(conn: Any, campaign_id: int) -> float:
    """Talk plus wrap-up seconds of a campaign's connected calls."""
    rows = conn.execute(
        select(Attempt.connected_at, Attempt.wrap_ended_at, Attempt.ended_at).where(
            Attempt.campaign_id == campaign_id, Attempt.connected_at.is_not(None)
        )
    ).all()
    return float(
        sum(((wrap or end) - start).total_seconds() for start, wrap, end in rows if wrap or end)
    )
