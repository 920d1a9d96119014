"""The dispatcher against the real store, on SQLite and PostgreSQL.

A small practice is imported with the library and its recall list built (see
``tests/lists_fixtures.py``); the real :class:`Dispatcher` and :class:`EngineStore` dial it on a
virtual clock through :class:`ScriptedNetwork`, a fake provider at the network edge that records
what the engine asks of it and lets each test say what the network reports back. Every test
asserts what lands in the store. Time starts on Monday 2026-11-30 at 10:00 in Portland, where
every test patient lives (PST, UTC-8); the campaigns call every day 08:00-21:00 callee-local.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from dialer.campaigns import CampaignModel
from dialer.clock import VirtualClock
from dialer.dispatch import Dispatcher, EngineSettings
from dialer.outcomes import Disposition
from dialer.staterules import load_state_rules
from dialer.store.attempts import ORPHAN_NOTE, EngineStore
from dialer.store.db import create_store_engine
from dialer.store.models import (
    Attempt,
    Callback,
    Campaign,
    CampaignHousehold,
    DncEntry,
    RetiredPhone,
)
from dialer.telephony.base import CallEvent, CallRequest, EventKind
from tests.lists_fixtures import Practice, local, overdue, own_mobile, patient

START = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # Monday 10:00 in Portland
EVERY_DAY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "08:00", "end": "21:00"}
]
PORTLAND_CLINIC = "+15035550100"
MakeCampaign = Callable[..., CampaignModel]


@dataclass
class Placed:
    """A call the engine asked the network to place, and its attempt row as another connection
    saw it at that moment."""

    request: CallRequest
    at: datetime
    row: dict[str, Any]


@dataclass
class ScriptedNetwork:
    """A fake telephony provider: records every request; the test delivers the reports."""

    engine: Engine
    clock: VirtualClock
    placed: list[Placed] = field(default_factory=list)
    bridged: list[tuple[int, int]] = field(default_factory=list)
    messages: list[tuple[int, str, str, str | None]] = field(default_factory=list)
    hangups: list[int] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def place_call(self, request: CallRequest) -> str:
        """Record the call and the attempt row committed for it (read on its own connection)."""
        with self.engine.connect() as conn:
            found = (
                conn.execute(sa.select(Attempt).where(Attempt.id == request.attempt_id))
                .mappings()
                .first()
            )
        # An attempt is committed before its call is placed: every test checks it here.
        assert found is not None, f"attempt {request.attempt_id} placed before it was committed"
        row = {str(k).split(".")[-1]: v for k, v in found.items()}
        self.placed.append(Placed(request, self.clock.now(), row))
        return f"CA{request.attempt_id:08d}"

    def bridge(self, attempt_id: int, agent_id: int) -> None:
        """Record the join into the PSR's room."""
        self.bridged.append((attempt_id, agent_id))

    def play_message(
        self, attempt_id: int, text: str, language: str, *, opt_out_digit: str | None
    ) -> None:
        """Record the message."""
        self.messages.append((attempt_id, text, language, opt_out_digit))

    def hangup(self, attempt_id: int) -> None:
        """Record the hang-up."""
        self.hangups.append(attempt_id)

    def report(
        self, dispatcher: Dispatcher, attempt_id: int, *kinds: str, digits: str | None = None
    ) -> None:
        """Deliver reports about a call, now, in order."""
        for kind in kinds:
            event = CallEvent(
                f"ev-{next(self._ids)}", attempt_id, EventKind(kind), self.clock.now(), digits
            )
            dispatcher.on_event(event)


SETTINGS = EngineSettings(empty_pool_retry_seconds=1.0)  # an empty pool is asked again at once


class Floor:
    """The practice's store, a clock, the scripted network, and dispatchers (nodes) over them."""

    def __init__(self, practice: Practice, make_campaign: MakeCampaign) -> None:
        self.practice = practice
        self.engine = practice.store
        self.make_campaign = make_campaign
        self.clock = VirtualClock(START)
        self.network = ScriptedNetwork(self.engine, self.clock)
        self.rules = load_state_rules()
        self.nodes: list[Dispatcher] = []

    # Set-up ---------------------------------------------------------------------------------

    def campaign(
        self, name: str = "test-recall", *, dialing: dict[str, Any] | None = None, **calling: Any
    ) -> CampaignModel:
        """A progressive recall campaign calling every day 08:00-21:00, with overrides."""
        return self.make_campaign(
            "recall",
            name=name,
            calling={"windows": EVERY_DAY, **calling},
            dialing={"mode": "progressive", **(dialing or {})},
        )

    def patients(self, *ids: str, **fields: Any) -> None:
        """Import patients of C1 in Portland, 30 days overdue for their recall."""
        self.practice.patients(*(patient(i, recall_due_date=overdue(30), **fields) for i in ids))

    def build(self, campaign: CampaignModel) -> dict[str, int]:
        """Build the campaign's list; its household (entry) ids by patient id."""
        built = self.practice.build(campaign)
        return {p: int(e["entry_id"]) for e in built.entries for p in e["patient_ids"]}

    def node(self, name: str = "local", settings: EngineSettings = SETTINGS) -> Dispatcher:
        """A dispatcher with its own store connection, as one node of the call center."""
        dispatcher = Dispatcher(
            EngineStore(self.engine, node=name), self.network, self.clock, self.rules, settings
        )
        self.nodes.append(dispatcher)
        return dispatcher

    def psr(
        self,
        dispatcher: Dispatcher,
        name: str,
        languages: tuple[str, ...] = ("en",),
        *,
        ready: bool = True,
        campaigns: frozenset[str] | None = None,
    ) -> int:
        """A PSR logs in (and goes ready)."""
        spoken = frozenset(languages)
        agent_id = dispatcher.store.register_agent(name, spoken, self.clock.now())
        dispatcher.login(agent_id, name, spoken, campaigns=campaigns)
        if ready:
            dispatcher.ready(agent_id)
        return agent_id

    def history(self, campaign: CampaignModel, persons: int = 100) -> None:
        """The campaign reached ``persons`` people yesterday and abandoned none of them."""
        at = START - timedelta(days=1)
        with self.engine.begin() as conn:
            cid = conn.execute(
                sa.select(Campaign.id).where(Campaign.name == campaign.name)
            ).scalar_one()
            hid = conn.execute(
                sa.insert(CampaignHousehold)
                .values(campaign_id=cid, household_key="yesterday", created_at=at, done=True)
                .returning(CampaignHousehold.id)
            ).scalar_one()
            conn.execute(
                sa.insert(Attempt),
                [
                    {
                        "campaign_id": cid,
                        "household_id": hid,
                        "attempt_number": 1,
                        "phone": f"+1503555{3000 + i:04d}",
                        "language": "en",
                        "timezones": "America/Los_Angeles",
                        "mode": "ratio",
                        "started_at": at,
                        "person_detected_at": at + timedelta(seconds=8),
                        "connected_at": at + timedelta(seconds=8),
                        "ended_at": at + timedelta(minutes=3),
                        "outcome": "connected",
                    }
                    for i in range(persons)
                ],
            )

    # Time and the network -------------------------------------------------------------------

    def advance(self, to: datetime | timedelta, *nodes: Dispatcher) -> None:
        """Move the clock to ``to`` (or by it), running every timer due on the way, then tick
        every node there. A longer jump first lets the periodic tick run for a few seconds, as
        it would live, so queued writes reach the store (they are flushed by a tick once they
        have waited ``flush_seconds``)."""
        target = self.clock.now() + to if isinstance(to, timedelta) else to
        nodes = nodes or tuple(self.nodes)
        settled = self.clock.now() + timedelta(seconds=SETTINGS.flush_seconds + 1)
        if target > settled:
            self._advance(self.clock.now() + timedelta(seconds=1), nodes)
            self._advance(settled, nodes)
        self._advance(target, nodes)

    def _advance(self, target: datetime, nodes: tuple[Dispatcher, ...]) -> None:
        while True:
            due = [(d.next_deadline(), i) for i, d in enumerate(nodes)]
            pending = [(at, i) for at, i in due if at is not None and at < target]
            if not pending:
                break
            at, index = min(pending)
            self.clock.advance_to(max(self.clock.now(), at))
            nodes[index].tick()
        self.clock.advance_to(target)
        for dispatcher in nodes:
            dispatcher.tick()

    def run(self, seconds: int) -> None:
        """Let ``seconds`` pass with the periodic tick every second."""
        for _ in range(seconds):
            self.advance(timedelta(seconds=1))

    def report(self, attempt_id: int, *kinds: str, digits: str | None = None) -> None:
        """The network reports on a call, now (to the node that placed it)."""
        node = next(
            (d for d in self.nodes if attempt_id in d.lines), self.nodes[-1] if self.nodes else None
        )
        assert node is not None
        self.network.report(node, attempt_id, *kinds, digits=digits)

    def answer(self, attempt_id: int) -> None:
        """A person picks up."""
        self.report(attempt_id, "ringing", "answered", "person_detected")

    def converse(
        self,
        dispatcher: Dispatcher,
        attempt_id: int,
        agent_id: int,
        disposition: Disposition,
        *,
        callback_at: datetime | None = None,
    ) -> None:
        """A person answers, talks with the PSR for a minute, and the PSR records the outcome
        after ten seconds of wrap-up."""
        self.answer(attempt_id)
        assert (attempt_id, agent_id) in self.network.bridged
        self.advance(timedelta(seconds=60))
        self.report(attempt_id, "hangup")
        self.advance(timedelta(seconds=10))
        dispatcher.dispose(agent_id, disposition, callback_at=callback_at)

    @property
    def calls(self) -> list[tuple[int, str, datetime]]:
        """Every call placed so far: attempt id, number, when."""
        return [(p.request.attempt_id, p.request.to, p.at) for p in self.network.placed]

    def last_call(self) -> int:
        """The attempt id of the latest call placed."""
        return self.network.placed[-1].request.attempt_id

    # The store --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every node's queued changes."""
        for dispatcher in self.nodes:
            dispatcher.store.flush()

    def rows(self, query: Any) -> list[dict[str, Any]]:
        """Rows of a query on its own connection, as dicts."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def attempts(self) -> list[dict[str, Any]]:
        """Every attempt of the list's households (queued writes flushed), in order."""
        self.flush()
        return self.rows(
            sa.select(Attempt)
            .join(CampaignHousehold, CampaignHousehold.id == Attempt.household_id)
            .where(CampaignHousehold.household_key != "yesterday")
            .order_by(Attempt.id)
        )

    def household(self, household_id: int) -> dict[str, Any]:
        """A campaign household (queued writes flushed)."""
        self.flush()
        (row,) = self.rows(sa.select(CampaignHousehold).where(CampaignHousehold.id == household_id))
        return row

    def dnc(self) -> list[tuple[str, str, str, str | None, datetime]]:
        """The do-not-call entries as they are in the store now (nothing flushed)."""
        return [
            (r["phone"], r["scope"], r["source"], r["reason"], r["added_at"])
            for r in self.rows(sa.select(DncEntry).order_by(DncEntry.id))
        ]

    def close(self) -> None:
        """Give back the nodes' driver connections."""
        for dispatcher in self.nodes:
            dispatcher.store.fast.close()


@pytest.fixture
def floor(
    store: Engine, write_csv: Callable[..., Path], now: datetime, make_campaign: MakeCampaign
) -> Iterator[Floor]:
    """An empty call floor over a store holding the four clinics of ``lists_fixtures``."""
    built = Floor(Practice(store, write_csv, now), make_campaign)
    yield built
    built.close()


def phone(patient_id: str) -> str:
    """A test patient's own mobile (E.164)."""
    return own_mobile(patient_id)


# --- an attempt's life ----------------------------------------------------------------------


def test_an_attempt_is_committed_before_its_call_is_placed_and_records_the_whole_call(
    floor: Floor,
) -> None:
    floor.patients("1")
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")

    (placed,) = floor.network.placed
    assert placed.request == CallRequest(placed.row["id"], phone("1"), PORTLAND_CLINIC, 30)
    assert placed.at == START
    committed = {k: placed.row[k] for k in ("household_id", "attempt_number", "phone", "mode")}
    assert committed == {
        "household_id": households["1"],
        "attempt_number": 1,
        "phone": phone("1"),
        "mode": "progressive",
    }
    assert (placed.row["agent_id"], placed.row["started_at"]) == (ana, START)
    assert (placed.row["ended_at"], placed.row["outcome"]) == (None, None)

    floor.advance(timedelta(seconds=4))
    floor.converse(dispatcher, placed.row["id"], ana, Disposition.booked)
    (attempt,) = floor.attempts()
    detected = START + timedelta(seconds=4)
    assert {k: attempt[k] for k in ("ringing_at", "answered_at", "person_detected_at")} == {
        "ringing_at": detected,
        "answered_at": detected,
        "person_detected_at": detected,
    }
    assert attempt["connected_at"] == detected
    assert attempt["ended_at"] == detected + timedelta(seconds=60)
    assert attempt["wrap_ended_at"] == detected + timedelta(seconds=70)
    assert attempt["provider_call_id"] == f"CA{attempt['id']:08d}"
    assert (attempt["outcome"], attempt["disposition"]) == ("connected", "booked")
    assert (attempt["is_contact"], attempt["is_conversion"], attempt["abandoned"]) == (
        True,
        True,
        False,
    )
    household = floor.household(households["1"])
    assert (household["done"], household["final_code"], household["attempts"]) == (
        True,
        "booked",
        1,
    )
    assert household["last_converted_at"] == detected + timedelta(seconds=70)
    assert household["claimed_by"] is None
    floor.advance(timedelta(days=7))
    assert len(floor.network.placed) == 1


# --- retries and caps -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    """How a call ends: the reports after it rings, the outcome, its retry_after override."""

    reports: tuple[str, ...]
    outcome: str
    retry_after: str
    delay: timedelta
    voicemail: str = "leave_message"


# Every delay here is longer than the federal per-phone cap (one call in 24 h), so the retry
# time, not the cap, decides when the household is called again.
ENDINGS = {
    "no_answer": Ending(("no_answer",), "no_answer", "26h", timedelta(hours=26)),
    "busy": Ending(("busy",), "busy", "30h", timedelta(hours=30)),
    "failed": Ending(("failed",), "failed", "1d2h", timedelta(hours=26)),
    # The engine hangs up on the machine (the campaign leaves no message); the network says so.
    "machine": Ending(
        ("answered", "machine_detected", "hangup"), "machine", "28h", timedelta(hours=28), "hang_up"
    ),
    "left_message": Ending(
        ("answered", "machine_detected", "message_done"), "left_message", "2d", timedelta(days=2)
    ),
}


@pytest.mark.parametrize("name", list(ENDINGS))
def test_a_retry_waits_for_the_campaigns_retry_after_for_the_outcome(
    floor: Floor, name: str
) -> None:
    ending = ENDINGS[name]
    floor.patients("1")
    campaign = floor.campaign(
        retry_after={ending.outcome: ending.retry_after},
        dialing={"voicemail": ending.voicemail},
    )
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")
    first = floor.last_call()
    floor.advance(timedelta(seconds=20))
    floor.report(first, "ringing", *ending.reports)
    ended = START + timedelta(seconds=20)
    due = ended + ending.delay

    (attempt,) = floor.attempts()
    assert (attempt["outcome"], attempt["ended_at"]) == (ending.outcome, ended)
    assert floor.household(households["1"])["next_attempt_at"] == due
    assert floor.network.hangups == ([first] if name == "machine" else [])
    voicemail = (
        "Hello, this is Bright Smiles Portland calling about your dental care. Please call us "
        f"back at {PORTLAND_CLINIC}. Thank you."
    )
    assert floor.network.messages == (
        [(first, voicemail, "en", None)] if name == "left_message" else []
    )
    floor.advance(due - timedelta(seconds=1))
    assert len(floor.network.placed) == 1
    floor.advance(due)
    assert floor.calls[1][1:] == (phone("1"), due)
    assert floor.network.placed[1].row["attempt_number"] == 2


def test_the_household_cap_stops_the_campaign_after_max_attempts(floor: Floor) -> None:
    floor.patients("1")
    campaign = floor.campaign(max_attempts=2, retry_after={"no_answer": "26h"})
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")
    floor.report(floor.last_call(), "ringing", "no_answer")
    second = START + timedelta(hours=26)
    floor.advance(second)
    assert [at for _, _, at in floor.calls] == [START, second]
    floor.report(floor.last_call(), "ringing", "no_answer")
    for day in range(2, 10):
        floor.advance(START + timedelta(days=day))
    assert len(floor.network.placed) == 2
    household = floor.household(households["1"])
    assert household["attempts"] == 2
    assert household["claimed_by"] is None
    assert [a["attempt_number"] for a in floor.attempts()] == [1, 2]


def test_the_daily_cap_counts_attempts_on_the_callee_local_day(floor: Floor) -> None:
    """Two attempts a day: the second phone is called at once after a wrong number, the third
    waits for the next day in Portland (UTC has turned over already: not that day)."""
    home, work = local(1001), local(1002)
    floor.patients("1", home_phone=home[0], work_phone=work[0])
    campaign = floor.campaign(max_attempts_per_day=2)
    households = floor.build(campaign)
    dispatcher = floor.node()
    floor.clock.advance_to(datetime(2026, 11, 30, 23, 50, tzinfo=UTC))  # 15:50 in Portland
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")
    floor.converse(dispatcher, floor.last_call(), ana, Disposition.wrong_number)
    floor.run(10)
    floor.converse(dispatcher, floor.last_call(), ana, Disposition.wrong_number)
    floor.run(10)
    assert [number for _, number, _ in floor.calls] == [phone("1"), home[1]]
    assert floor.calls[1][2] - floor.calls[0][2] < timedelta(minutes=2)  # at once, same day
    tomorrow = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 08:00 in Portland
    assert floor.household(households["1"])["next_attempt_at"] == tomorrow
    floor.advance(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))  # a new day in UTC, not there
    floor.advance(tomorrow - timedelta(seconds=1))
    assert len(floor.network.placed) == 2
    floor.advance(tomorrow)
    assert floor.calls[2][1:] == (work[1], tomorrow)
    assert [a["attempt_number"] for a in floor.attempts()] == [1, 2, 3]


def test_the_per_phone_caps_count_every_campaigns_calls(floor: Floor) -> None:
    """One a day and three a week to a phone (federal healthcare limits), whichever campaign
    calls: each call is refused until the cap clears, then placed at that instant."""
    floor.patients("1")
    first = floor.campaign("recall-a", retry_after={"no_answer": "2d"})
    second = floor.campaign("recall-b")
    households = {"recall-a": floor.build(first)["1"], "recall-b": floor.build(second)["1"]}
    dispatcher = floor.node()
    dispatcher.open_campaign(first)
    dispatcher.open_campaign(second)
    floor.psr(dispatcher, "Ana", campaigns=frozenset({"recall-a"}))
    floor.psr(dispatcher, "Ben", campaigns=frozenset({"recall-b"}))
    assert floor.calls == [(1, phone("1"), START)]
    # recall-b was refused at once: its first try waits for the daily cap.
    assert floor.household(households["recall-b"])["next_attempt_at"] == START + timedelta(days=1)

    def unanswered() -> None:
        floor.report(floor.last_call(), "ringing", "no_answer")

    unanswered()
    expected = [(START, "recall-a")]
    for days, campaign in [(1, "recall-b"), (2, "recall-a"), (7, "recall-a"), (8, "recall-b")]:
        due = START + timedelta(days=days)
        floor.advance(due - timedelta(seconds=1))
        assert len(floor.network.placed) == len(expected)
        if days == 7:  # three calls in a week: both wait until the first is a week old
            assert {floor.household(h)["next_attempt_at"] for h in households.values()} == {due}
        floor.advance(due)
        expected.append((due, campaign))
        assert len(floor.network.placed) == len(expected)
        unanswered()
    calls = [(a["started_at"], a["household_id"]) for a in floor.attempts()]
    assert calls == [(at, households[name]) for at, name in expected]
    assert {number for _, number, _ in floor.calls} == {phone("1")}


def test_a_call_placed_after_the_claim_counts_against_the_cap_at_the_last_check(
    floor: Floor,
) -> None:
    """Ben's node holds recall-b's second household, claimed with the phone's history of that
    moment; recall-a then calls that phone. When Ben frees up, the last check before the call
    reads the phone's calls again and refuses: the household waits for the daily cap."""
    floor.patients("1", "2")
    first = floor.campaign("recall-a")
    second = floor.campaign("recall-b")
    floor.build(first)
    held = floor.build(second)
    dispatcher = floor.node()
    dispatcher.open_campaign(first)
    dispatcher.open_campaign(second)
    floor.psr(dispatcher, "Ben", campaigns=frozenset({"recall-b"}))  # claims both, dials one
    ((_, dialed, _),) = floor.calls
    other = next(p for p in ("1", "2") if phone(p) != dialed)
    floor.psr(dispatcher, "Ana", campaigns=frozenset({"recall-a"}))  # dials the other phone
    assert floor.calls == [(1, dialed, START), (2, phone(other), START)]
    floor.advance(START + timedelta(seconds=30))
    floor.report(1, "ringing", "no_answer")  # Ben is free: his held entry is the other phone
    assert len(floor.calls) == 2
    assert floor.household(held[other])["next_attempt_at"] == START + timedelta(days=1)


def test_a_skipped_preview_is_offered_again_after_30_minutes(floor: Floor) -> None:
    floor.patients("1", "2")
    campaign = floor.campaign(dialing={"mode": "preview"})
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")

    def shown() -> str | None:
        entry = dispatcher.previewed(ana)
        return entry.patient_ids if entry else None

    first = shown()
    assert first is not None
    dispatcher.skip_preview(ana)
    second = shown()
    assert second not in (None, first)
    dispatcher.dial_preview(ana)
    assert floor.calls == [(1, phone(second or ""), START)]
    floor.report(1, "ringing", "no_answer")
    assert shown() is None
    floor.advance(START + timedelta(minutes=30) - timedelta(seconds=1))
    assert shown() is None
    floor.advance(START + timedelta(minutes=30))
    assert shown() == first


# --- callbacks ----------------------------------------------------------------------------------


def callbacks(floor: Floor) -> list[dict[str, Any]]:
    """The callbacks in the store."""
    return floor.rows(sa.select(Callback).order_by(Callback.id))


def asked_for_callback(
    floor: Floor, owner_languages: tuple[str, ...] = ("en",), **fields: Any
) -> tuple[Dispatcher, int, datetime]:
    """Patient 1 asks the PSR Ana to call back tomorrow at 11:00 Portland time (a day and a
    bit later, clear of the per-phone cap); the dispatcher, Ana's id and that time."""
    floor.patients("1", **fields)
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana", owner_languages)
    first = floor.last_call()
    due = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    floor.converse(dispatcher, first, ana, Disposition.callback, callback_at=due)
    (attempt,) = floor.attempts()
    assert (attempt["disposition"], attempt["callback_at"]) == ("callback", due)
    assert (attempt["is_contact"], attempt["is_conversion"]) == (True, False)
    (callback,) = callbacks(floor)
    expected = {"household_id": households["1"], "agent_id": ana, "attempt_id": first}
    assert {k: callback[k] for k in expected} == expected
    assert (callback["due_at"], callback["done_at"]) == (due, None)
    return dispatcher, ana, due


def test_a_callback_is_placed_at_the_requested_time_for_the_psr_who_took_it(
    floor: Floor,
) -> None:
    dispatcher, ana, due = asked_for_callback(floor)
    ben = floor.psr(dispatcher, "Ben")
    floor.advance(due - timedelta(seconds=1))
    assert len(floor.network.placed) == 1
    floor.advance(due)
    assert floor.calls[1][1:] == (phone("1"), due)
    row = floor.network.placed[1].row
    assert (row["mode"], row["agent_id"], row["attempt_number"]) == ("callback", ana, 2)
    assert dispatcher.agents[ana].state.value == "reserved"
    assert dispatcher.agents[ben].state.value == "ready"
    assert callbacks(floor)[0]["done_at"] == due
    floor.answer(floor.last_call())
    assert floor.network.bridged[-1] == (floor.last_call(), ana)


def test_a_callback_goes_to_another_psr_when_its_owner_is_not_ready_within_15_minutes(
    floor: Floor,
) -> None:
    dispatcher, ana, due = asked_for_callback(floor)
    dispatcher.pause(ana, "lunch")
    ben = floor.psr(dispatcher, "Ben")
    floor.advance(due)
    floor.advance(due + timedelta(minutes=15) - timedelta(seconds=1))
    assert len(floor.network.placed) == 1
    assert callbacks(floor)[0]["done_at"] is None
    floor.advance(due + timedelta(minutes=15))
    assert floor.calls[1][1:] == (phone("1"), due + timedelta(minutes=15))
    assert (floor.network.placed[1].row["mode"], floor.network.placed[1].row["agent_id"]) == (
        "callback",
        ben,
    )


def test_a_callback_waits_for_its_owner_who_is_ready_within_15_minutes(floor: Floor) -> None:
    dispatcher, ana, due = asked_for_callback(floor)
    dispatcher.pause(ana, "meeting")
    floor.psr(dispatcher, "Ben")
    floor.advance(due + timedelta(minutes=10))
    assert len(floor.network.placed) == 1
    dispatcher.ready(ana)
    assert floor.calls[1][1:] == (phone("1"), due + timedelta(minutes=10))
    assert floor.network.placed[1].row["agent_id"] == ana


def test_a_spanish_callback_is_offered_only_to_a_psr_who_speaks_spanish(floor: Floor) -> None:
    dispatcher, ana, due = asked_for_callback(floor, ("en", "es"), language="es")
    dispatcher.pause(ana, "training")
    floor.psr(dispatcher, "Ben")  # English only, ready all along
    floor.advance(due + timedelta(minutes=30))
    assert len(floor.network.placed) == 1
    assert callbacks(floor)[0]["done_at"] is None
    lucia = floor.psr(dispatcher, "Lucía", ("en", "es"))
    at = due + timedelta(minutes=30)
    assert floor.calls[1][1:] == (phone("1"), at)
    assert floor.network.placed[1].row["agent_id"] == lucia
    assert floor.network.placed[1].row["language"] == "es"


# --- language routing ---------------------------------------------------------------------------


def test_a_spanish_household_is_only_dialed_for_a_psr_who_speaks_spanish(floor: Floor) -> None:
    floor.patients("1", "3")
    floor.patients("2", language="es")
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ben = floor.psr(dispatcher, "Ben")
    for _ in range(2):
        floor.converse(dispatcher, floor.last_call(), ben, Disposition.declined)
    floor.advance(timedelta(minutes=30))
    assert [number for _, number, _ in floor.calls] == [phone("1"), phone("3")]
    lucia = floor.psr(dispatcher, "Lucía", ("en", "es"))
    assert floor.calls[2][1:] == (phone("2"), START + timedelta(seconds=140, minutes=30))
    attempt = floor.network.placed[2].row
    assert (attempt["household_id"], attempt["language"], attempt["agent_id"]) == (
        households["2"],
        "es",
        lucia,
    )


def test_a_bilingual_psr_turns_to_spanish_households_when_the_english_ones_run_out(
    floor: Floor,
) -> None:
    floor.patients("1")
    floor.patients("2", language="es")
    campaign = floor.campaign()
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    lucia = floor.psr(dispatcher, "Lucía", ("en", "es"))
    floor.converse(dispatcher, floor.last_call(), lucia, Disposition.booked)
    floor.run(10)
    assert [number for _, number, _ in floor.calls] == [phone("1"), phone("2")]


def test_a_same_day_callback_is_placed_at_the_requested_time(floor: Floor) -> None:
    floor.patients("1")
    campaign = floor.campaign()
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")
    due = START + timedelta(hours=2)
    floor.converse(dispatcher, floor.last_call(), ana, Disposition.callback, callback_at=due)
    floor.advance(due)
    assert floor.calls[1][1:] == (phone("1"), due)


# --- do-not-call and wrong numbers ---------------------------------------------------------------


def two_campaigns(floor: Floor, **fields: Any) -> tuple[Dispatcher, int, dict[str, int]]:
    """recall-a (Ana dials it now) and recall-b (nobody yet) over patient 1, two attempts a
    day each: the dispatcher, Ana, and patient 1's household in each campaign."""
    floor.patients("1", **fields)
    first = floor.campaign("recall-a", max_attempts_per_day=2)
    second = floor.campaign("recall-b", max_attempts_per_day=2)
    households = {"recall-a": floor.build(first)["1"], "recall-b": floor.build(second)["1"]}
    dispatcher = floor.node()
    dispatcher.open_campaign(first)
    dispatcher.open_campaign(second)
    ana = floor.psr(dispatcher, "Ana", campaigns=frozenset({"recall-a"}))
    return dispatcher, ana, households


def test_a_do_not_call_disposition_lists_the_number_at_once_for_every_campaign(
    floor: Floor,
) -> None:
    dispatcher, ana, households = two_campaigns(floor)
    floor.converse(dispatcher, floor.last_call(), ana, Disposition.do_not_call)
    said = START + timedelta(seconds=70)
    # Written at once, before any queued write reaches the store.
    assert floor.dnc() == [(phone("1"), "global", "disposition", "asked on the phone", said)]
    ben = floor.psr(dispatcher, "Ben", campaigns=frozenset({"recall-b"}))
    for day in range(1, 8):
        floor.advance(START + timedelta(days=day))
    assert floor.calls == [(1, phone("1"), START)]
    (attempt,) = floor.attempts()
    assert (attempt["disposition"], attempt["is_contact"]) == ("do_not_call", True)
    first, second = (floor.household(households[n]) for n in ("recall-a", "recall-b"))
    assert (first["done"], first["final_code"]) == (True, "do_not_call")
    assert (second["done"], second["final_code"], second["attempts"]) == (True, "do_not_call", 0)
    assert dispatcher.agents[ben].state.value == "ready"


def test_a_wrong_number_is_retired_everywhere_and_the_household_moves_to_its_next_phone(
    floor: Floor,
) -> None:
    home = local(1001)
    dispatcher, ana, households = two_campaigns(floor, home_phone=home[0])
    floor.converse(dispatcher, floor.last_call(), ana, Disposition.wrong_number)
    said = START + timedelta(seconds=70)
    retired = floor.rows(
        sa.select(RetiredPhone.phone, RetiredPhone.reason, RetiredPhone.retired_at)
    )
    assert retired == [{"phone": phone("1"), "reason": "wrong_number", "retired_at": said}]
    floor.run(10)
    assert [number for _, number, _ in floor.calls] == [phone("1"), home[1]]
    assert floor.network.placed[1].row["household_id"] == households["recall-a"]
    floor.report(floor.last_call(), "ringing", "no_answer")
    floor.psr(dispatcher, "Ben", campaigns=frozenset({"recall-b"}))
    for day in range(1, 4):
        floor.advance(START + timedelta(days=day))
    numbers = [(a["household_id"], a["phone"]) for a in floor.attempts()]
    assert (households["recall-b"], phone("1")) not in numbers
    assert (households["recall-b"], home[1]) in numbers  # its next phone, on its own day
    assert [n for _, n, _ in floor.calls].count(phone("1")) == 1
    assert floor.household(households["recall-b"])["phone_index"] == 1


# --- abandonment ----------------------------------------------------------------------------------


def ratio_floor(floor: Floor, *spanish: str) -> tuple[Dispatcher, int]:
    """Patients 1-3 (and ``spanish`` ones) on a ratio-2 campaign that reached 100 people
    yesterday without abandoning any (so the guard lets it dial ahead); Ana logs in and two
    lines start for her."""
    floor.patients("1", "2", "3")
    if spanish:
        floor.patients(*spanish, language="es")
    campaign = floor.campaign(dialing={"mode": "ratio", "ratio": 2.0})
    floor.build(campaign)
    floor.history(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    return dispatcher, floor.psr(dispatcher, "Ana")


SAFE_HARBOR = (
    "Hello, this is Bright Smiles Portland calling. We are sorry we missed you. Please call us "
    f"at {PORTLAND_CLINIC}. To stop calls from us, press 9 now."
)


def test_a_person_not_bridged_within_2_seconds_is_abandoned_and_may_opt_out(
    floor: Floor,
) -> None:
    _, ana = ratio_floor(floor)
    assert [(p.row["mode"], p.row["agent_id"]) for p in floor.network.placed] == [
        ("ratio", None),
        ("ratio", None),
    ]
    first, second = (p.request.attempt_id for p in floor.network.placed)
    floor.advance(timedelta(seconds=5))
    floor.answer(first)
    assert floor.network.bridged == [(first, ana)]
    floor.advance(timedelta(seconds=1))
    detected = floor.clock.now()
    floor.answer(second)
    floor.advance(detected + timedelta(seconds=1.999))
    assert floor.network.messages == []
    floor.advance(detected + timedelta(seconds=2))
    assert floor.network.messages == [(second, SAFE_HARBOR, "en", "9")]
    floor.advance(timedelta(seconds=9))
    floor.report(second, "keypress", digits="9")
    pressed = floor.clock.now()
    assert floor.dnc() == [(phone("2"), "global", "keypress", "opt-out key pressed", pressed)]
    floor.advance(timedelta(seconds=3))
    floor.report(second, "message_done")
    attempt = floor.attempts()[1]
    assert (attempt["outcome"], attempt["abandoned"], attempt["opted_out"]) == (
        "abandoned",
        True,
        True,
    )
    assert (attempt["person_detected_at"], attempt["connected_at"]) == (detected, None)
    assert attempt["ended_at"] == pressed + timedelta(seconds=3)
    for day in range(1, 4):
        floor.advance(START + timedelta(days=day))
    assert [n for _, n, _ in floor.calls].count(phone("2")) == 1


def test_a_psr_who_frees_up_inside_the_grace_takes_the_waiting_person(floor: Floor) -> None:
    dispatcher, ana = ratio_floor(floor)
    first, second = (p.request.attempt_id for p in floor.network.placed)
    floor.answer(first)
    floor.advance(timedelta(seconds=30))
    floor.report(first, "hangup")
    floor.advance(timedelta(seconds=5))
    detected = floor.clock.now()
    floor.answer(second)
    floor.advance(detected + timedelta(seconds=1.5))
    dispatcher.dispose(ana, Disposition.declined)
    assert floor.network.bridged == [(first, ana), (second, ana)]
    floor.advance(detected + timedelta(seconds=30))
    floor.report(second, "hangup")
    assert floor.network.messages == []
    attempt = floor.attempts()[1]
    assert (attempt["connected_at"], attempt["abandoned"]) == (
        detected + timedelta(seconds=1.5),
        False,
    )


def test_a_person_who_hangs_up_inside_the_grace_unserved_is_abandoned(floor: Floor) -> None:
    _, ana = ratio_floor(floor)
    first, second = (p.request.attempt_id for p in floor.network.placed)
    floor.answer(first)
    floor.answer(second)
    assert floor.network.bridged == [(first, ana)]
    floor.advance(timedelta(seconds=1))
    floor.report(second, "hangup")
    floor.advance(timedelta(seconds=5))
    assert floor.network.messages == []
    attempt = floor.attempts()[1]
    assert (attempt["outcome"], attempt["abandoned"], attempt["ended_at"]) == (
        "abandoned",
        True,
        START + timedelta(seconds=1),
    )


def test_a_new_campaign_dials_progressively_until_its_ledger_allows_dialing_ahead(
    floor: Floor,
) -> None:
    floor.patients("1", "2", "3")
    campaign = floor.campaign(dialing={"mode": "ratio", "ratio": 2.0})
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")
    assert [(p.row["mode"], p.row["agent_id"]) for p in floor.network.placed] == [
        ("progressive", ana)
    ]


def test_a_predictive_pool_is_paced_again_2_seconds_after_its_last_decision(
    floor: Floor,
) -> None:
    floor.patients("1", "2", "3")
    campaign = floor.campaign(dialing={"mode": "predictive"})
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    assert dispatcher.next_deadline() is None  # no PSR: nothing to pace for
    floor.psr(dispatcher, "Ana")
    (first,) = floor.calls  # one safe line while the pacer has seen nothing
    paced = floor.clock.now()
    assert dispatcher.next_deadline() == paced + timedelta(seconds=2)
    floor.clock.advance_to(paced + timedelta(seconds=1))
    floor.report(first[0], "ringing")  # progress only: no decision
    assert dispatcher.next_deadline() == paced + timedelta(seconds=2)
    floor.clock.advance_to(paced + timedelta(seconds=1.5))
    floor.report(first[0], "no_answer")  # the line resolved: paced at once, and again 2 s on
    assert dispatcher.next_deadline() == paced + timedelta(seconds=3.5)
    floor.clock.advance_to(paced + timedelta(seconds=3.5))
    dispatcher.tick()
    assert dispatcher.next_deadline() == paced + timedelta(seconds=5.5)
    assert [at for _, _, at in floor.calls] == [paced, paced + timedelta(seconds=1.5)]
    dispatcher.close_campaign(campaign.name)
    # Closed: not paced any more; only the upkeep of the call still in progress is due.
    assert dispatcher.next_deadline() == START + timedelta(seconds=SETTINGS.upkeep_seconds)


def test_a_predictive_pool_is_paced_at_once_only_when_something_it_reads_changed(
    floor: Floor,
) -> None:
    """A PSR's hang-up (talking to wrapping up) changes nothing the pacer reads: its last
    answer stands until it goes stale. The PSR's disposition frees them: paced at once."""
    floor.patients("1", "2", "3")
    campaign = floor.campaign(dialing={"mode": "predictive"})
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")
    (first,) = floor.calls
    floor.clock.advance_to(START + timedelta(seconds=1))
    floor.answer(first[0])  # bridged to Ana: her state and the lines changed, paced at once
    bridged = floor.clock.now()
    assert dispatcher.next_deadline() == bridged + timedelta(seconds=2)
    floor.clock.advance_to(bridged + timedelta(seconds=1))
    floor.report(first[0], "hangup")  # Ana wraps up: still busy since the same connect
    assert dispatcher.next_deadline() == bridged + timedelta(seconds=2)
    floor.clock.advance_to(bridged + timedelta(seconds=1.5))
    dispatcher.dispose(ana, Disposition.declined)  # Ana is ready again: paced at once
    assert dispatcher.next_deadline() == bridged + timedelta(seconds=3.5)
    assert [at for _, _, at in floor.calls] == [START, bridged + timedelta(seconds=1.5)]


def test_a_progressive_pool_is_paced_on_events_only(floor: Floor) -> None:
    floor.patients("1")
    campaign = floor.campaign()
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")
    ((attempt_id, _, _),) = floor.calls
    floor.report(attempt_id, "no_answer")  # nothing in progress, no timer: nothing to wait for
    assert dispatcher.next_deadline() is None


def test_a_spanish_person_waits_for_a_spanish_speaker_never_an_english_only_psr(
    floor: Floor,
) -> None:
    floor.patients("4", "5", language="es")
    campaign = floor.campaign(dialing={"mode": "ratio", "ratio": 2.0})
    floor.build(campaign)
    floor.history(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ben = floor.psr(dispatcher, "Ben")
    lucia = floor.psr(dispatcher, "Lucía", ("en", "es"))
    first, second = (p.request.attempt_id for p in floor.network.placed)
    assert {p.request.to for p in floor.network.placed} == {phone("4"), phone("5")}
    floor.answer(first)
    floor.answer(second)
    assert dispatcher.agents[ben].state.value == "ready"
    floor.advance(timedelta(seconds=2))
    assert floor.network.bridged == [(first, lucia)]
    spanish = (
        "Hola, le llama Bright Smiles Portland. Lamentamos no haber podido atenderle. Por favor "
        f"llámenos al {PORTLAND_CLINIC}. Para no recibir más llamadas, oprima 9 ahora."
    )
    assert floor.network.messages == [(second, spanish, "es", "9")]


# --- the last check before a call is placed ------------------------------------------------------


@pytest.mark.parametrize(
    ("listing", "dialed"),
    [
        pytest.param("global", False, id="global-dnc"),
        pytest.param("clinic", False, id="clinic-dnc"),
        pytest.param("campaign", False, id="campaign-dnc"),
        pytest.param("other-campaign", True, id="another-campaigns-dnc"),
        pytest.param("retired", False, id="retired"),
    ],
)
def test_a_number_blocked_between_claim_and_call_is_not_dialed(
    floor: Floor, listing: str, dialed: bool
) -> None:
    floor.patients("1", "2")
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")
    # Both households are claimed; patient 2's waits for Ana's next line.
    assert floor.household(households["2"])["claimed_by"] == "local"
    number = phone("2")
    if listing == "retired":
        floor.practice.retire(number)
    elif listing == "clinic":
        floor.practice.dnc(number, "clinic", clinic="C1")
    elif listing == "campaign":
        floor.practice.dnc(number, "campaign", campaign="test-recall")
    elif listing == "other-campaign":
        floor.practice.dnc(number, "campaign", campaign="reactivation")
    else:
        floor.practice.dnc(number)
    floor.report(floor.last_call(), "ringing", "no_answer")
    assert [n for _, n, _ in floor.calls] == [phone("1"), *([number] if dialed else [])]
    household = floor.household(households["2"])
    if dialed:
        assert (household["attempts"], household["claimed_by"]) == (1, "local")
    else:  # its only phone is out: the household is finished, never attempted
        assert (household["attempts"], household["claimed_by"]) == (0, None)
        assert (household["done"], household["phone_index"]) == (True, 1)
    if listing in ("global", "clinic", "campaign"):
        assert household["final_code"] == "do_not_call"
    elif listing == "retired":  # a wrong number is not a do-not-call request
        assert household["final_code"] == "no_valid_phone"


# --- several nodes, and restarts ------------------------------------------------------------------


def test_two_nodes_claiming_at_the_same_time_never_claim_the_same_household(
    floor: Floor, db_url: str
) -> None:
    ids = [str(i) for i in range(1, 31)]
    floor.patients(*ids)
    campaign = floor.campaign()
    households = floor.build(campaign)
    second_engine = create_store_engine(db_url)
    stores = [EngineStore(floor.engine, "node-a"), EngineStore(second_engine, "node-b")]
    infos = [store.load_campaign(campaign, START) for store in stores]
    start = threading.Barrier(2)
    claimed: dict[str, list[int]] = {"node-a": [], "node-b": []}
    failures: list[BaseException] = []

    def claim_all(index: int) -> None:
        store = stores[index]
        try:
            start.wait()
            while batch := store.claim(infos[index], "en", 2, START, 900):
                claimed[store.node].extend(entry.household_id for entry in batch)
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.fast.close()
    second_engine.dispose()
    assert failures == []
    assert not set(claimed["node-a"]) & set(claimed["node-b"])
    assert sorted(claimed["node-a"] + claimed["node-b"]) == sorted(households.values())
    owners = {
        r["id"]: r["claimed_by"]
        for r in floor.rows(sa.select(CampaignHousehold.id, CampaignHousehold.claimed_by))
    }
    assert owners == {h: node for node, hs in claimed.items() for h in hs}


def test_two_dispatchers_on_one_store_dial_each_household_once(floor: Floor) -> None:
    ids = [str(i) for i in range(1, 13)]
    floor.patients(*ids)
    campaign = floor.campaign()
    households = floor.build(campaign)
    one_at_a_time = EngineSettings(empty_pool_retry_seconds=1.0, claim_batch=1)
    nodes = [floor.node("node-a", one_at_a_time), floor.node("node-b", one_at_a_time)]
    for node in nodes:
        node.open_campaign(campaign)
    for index, node in enumerate(nodes):
        floor.psr(node, f"Ana {index}")
        floor.psr(node, f"Ben {index}")
    dialed_by: dict[int, str] = {}
    while any(node.lines for node in nodes):
        for node in nodes:  # the nodes' calls end in turn, and each node dials again
            for attempt_id in list(node.lines):
                dialed_by[attempt_id] = node.store.node
                floor.report(attempt_id, "ringing", "no_answer")
    attempts = floor.attempts()
    assert sorted(a["household_id"] for a in attempts) == sorted(households.values())
    assert sorted(dialed_by) == [a["id"] for a in attempts]
    assert set(dialed_by.values()) == {"node-a", "node-b"}
    assert len(floor.calls) == len(ids)


def test_an_entry_held_past_its_lease_is_not_dialed_by_two_nodes(floor: Floor) -> None:
    floor.patients("1", "2", "3")
    campaign = floor.campaign()
    floor.build(campaign)
    first, second = floor.node("node-a"), floor.node("node-b")
    first.open_campaign(campaign)
    second.open_campaign(campaign)
    ana = floor.psr(first, "Ana")  # node-a claims every household, dials patient 1
    floor.converse(first, floor.last_call(), ana, Disposition.booked)  # quickly done
    floor.answer(floor.last_call())  # patient 2: a long conversation
    floor.advance(timedelta(minutes=20))
    floor.psr(second, "Ben")  # node-b: the lease on patient 3 ran out
    floor.report(floor.network.placed[1].request.attempt_id, "hangup")
    floor.advance(timedelta(seconds=10))
    first.dispose(ana, Disposition.declined)
    assert [n for _, n, _ in floor.calls].count(phone("3")) == 1


def test_a_launch_renews_the_lease_at_once_only_when_it_would_not_outlast_the_next_upkeep(
    floor: Floor,
) -> None:
    """Claimed at 10:00 for 15 minutes. A call at 10:02 has the lease outlast the next upkeep
    (5 minutes on) by more than a minute: its renewal is written with the queued writes. A
    call at 10:09:30 (5.5 minutes left) renews it in the launch's own transaction."""
    floor.patients("1", "2", "3")
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    ana = floor.psr(dispatcher, "Ana")  # claims the three households, dials patient 1
    lease = timedelta(seconds=SETTINGS.lease_seconds)

    def stored_lease(patient: str) -> datetime:
        with floor.engine.connect() as conn:  # as the store has it, queued writes unwritten
            return conn.execute(
                sa.select(CampaignHousehold.claimed_until).where(
                    CampaignHousehold.id == households[patient]
                )
            ).scalar_one()

    def next_call(at: datetime) -> None:
        dispatcher.pause(ana, "break")  # once the current call is over
        floor.report(floor.last_call(), "ringing", "no_answer")
        floor.advance(at)
        dispatcher.ready(ana)

    next_call(START + timedelta(minutes=2))
    assert floor.calls[-1][1:] == (phone("2"), START + timedelta(minutes=2))
    assert stored_lease("2") == START + lease  # the claim's, until the queued writes go
    assert floor.household(households["2"])["claimed_until"] == floor.calls[-1][2] + lease
    next_call(START + timedelta(minutes=9, seconds=30))
    assert floor.calls[-1][1:] == (phone("3"), START + timedelta(minutes=9, seconds=30))
    assert stored_lease("3") == floor.calls[-1][2] + lease  # renewed at once


def test_an_entry_whose_claim_was_taken_is_not_dialed_even_with_its_lease_unexpired(
    floor: Floor,
) -> None:
    """The check that the household is still this node's is part of the attempt's insert, so
    it holds when the launch does not renew the lease at once."""
    floor.patients("1", "2")
    campaign = floor.campaign()
    households = floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")  # claims both households, dials patient 1
    with floor.engine.begin() as conn:  # patient 2 claimed away behind this node's back
        conn.execute(
            sa.update(CampaignHousehold)
            .where(CampaignHousehold.id == households["2"])
            .values(claimed_by="other-node")
        )
    floor.report(floor.last_call(), "ringing", "no_answer")  # Ana is free: patient 2 is next
    floor.advance(timedelta(minutes=1))
    assert [n for _, n, _ in floor.calls] == [phone("1")]
    assert floor.household(households["2"])["claimed_by"] == "other-node"  # and left as it is


def test_giving_back_an_entry_held_past_its_lease_leaves_the_new_holder_s_claim(
    floor: Floor,
) -> None:
    """Node A holds patient 2's entry past its lease; node B claims and dials it. When A's
    gate then refuses its stale copy (the window has closed), A gives nothing back: B's claim
    stands, so B's upkeep keeps renewing it and no sweep takes B's live call for an orphan."""
    floor.patients("1", "2", "3")
    until_1030 = [{**EVERY_DAY[0], "end": "10:30"}]
    campaign = floor.campaign(windows=until_1030)
    households = floor.build(campaign)
    a, b = floor.node("node-a"), floor.node("node-b")
    a.open_campaign(campaign)
    b.open_campaign(campaign)
    ana = floor.psr(a, "Ana")  # A claims the three households, dials patient 1
    first = floor.last_call()
    floor.answer(first)  # a long conversation
    floor.advance(START + timedelta(minutes=20))
    floor.psr(b, "Ben")  # A's lease on patients 2 and 3 ran out: B claims them
    second = floor.last_call()
    assert floor.calls[-1][1] == phone("2")
    floor.answer(second)  # B is talking to patient 2
    floor.advance(START + timedelta(minutes=31))
    floor.report(first, "hangup")
    floor.advance(timedelta(seconds=5))
    a.dispose(ana, Disposition.declined)  # A's gate refuses its stale copies: window closed
    floor.advance(START + timedelta(minutes=45))
    held = floor.household(households["2"])
    assert (held["claimed_by"], held["claimed_until"] > floor.clock.now()) == ("node-b", True)
    (call,) = [a for a in floor.attempts() if a["id"] == second]
    assert (call["ended_at"], call["notes"]) == (None, None)  # still B's live call
    assert len(floor.calls) == 2


def test_a_node_starting_beside_a_live_one_leaves_its_calls_alone(floor: Floor) -> None:
    """Node A is on a call longer than the claim lease when node B starts on the same campaign:
    B's start and its sweeps leave the call alone (A renews the leases of its calls in
    progress), and A records the call's end as it happened."""
    floor.patients("1")
    campaign = floor.campaign()
    households = floor.build(campaign)
    a = floor.node("node-a")
    a.open_campaign(campaign)
    ana = floor.psr(a, "Ana")
    call = floor.last_call()
    floor.answer(call)
    b = floor.node("node-b")
    b.open_campaign(campaign)
    # The launch's lease alone ends at 15 minutes; B ticks first at every instant.
    floor.advance(START + timedelta(minutes=40), b, a)
    (attempt,) = floor.attempts()
    assert (attempt["outcome"], attempt["ended_at"], attempt["notes"]) == (None, None, None)
    assert floor.household(households["1"])["claimed_by"] == "node-a"
    floor.report(call, "hangup")
    ended = floor.clock.now()
    floor.advance(timedelta(seconds=10))
    a.dispose(ana, Disposition.booked)
    (attempt,) = floor.attempts()
    assert (attempt["outcome"], attempt["ended_at"], attempt["disposition"], attempt["notes"]) == (
        "connected",
        ended,
        "booked",
        None,
    )


def test_ending_an_orphaned_call_leaves_a_household_dialed_since_as_it_is(floor: Floor) -> None:
    """A node stops with a call in progress; before anyone ends that attempt, the household is
    dialed again (another node, once the lease lapsed) and given its next time. Ending the
    orphan must not make the household due now: only a household not dialed since is."""
    floor.patients("1", "2")
    campaign = floor.campaign()
    households = floor.build(campaign)
    crashed = floor.node()
    crashed.open_campaign(campaign)
    floor.psr(crashed, "Ana")
    floor.psr(crashed, "Ben")
    orphan, other = (p.request.attempt_id for p in floor.network.placed)
    crashed.store.flush()
    floor.nodes.remove(crashed)
    crashed.store.fast.close()
    retry_at = START + timedelta(days=2)
    (row,) = floor.rows(sa.select(Attempt).where(Attempt.id == orphan))
    since = {k: v for k, v in row.items() if k != "id"}
    since |= {
        "started_at": START + timedelta(minutes=20),
        "ended_at": START + timedelta(minutes=21),
    }
    since |= {"outcome": "no_answer"}
    with floor.engine.begin() as conn:  # what the other node did, and then stopped
        conn.execute(sa.insert(Attempt).values(**since))
        conn.execute(
            sa.update(CampaignHousehold)
            .where(CampaignHousehold.id == households["1"])
            .values(claimed_by=None, claimed_until=None, next_attempt_at=retry_at, attempts=2)
        )
    restart = START + timedelta(minutes=30)
    floor.clock.advance_to(restart)
    floor.node("node-b").open_campaign(campaign)
    ended = {a["id"]: (a["outcome"], a["ended_at"], a["notes"]) for a in floor.attempts()}
    assert ended[orphan] == ended[other] == ("failed", restart, ORPHAN_NOTE)
    assert floor.household(households["1"])["next_attempt_at"] == retry_at  # dialed since
    assert floor.household(households["2"])["next_attempt_at"] == restart  # due again now


def test_the_periodic_sweep_leaves_no_transaction_open(floor: Floor) -> None:
    """The upkeep's sweep reads the open attempts on the engine's own connection; left open,
    its transaction would hold PostgreSQL locks (and block a schema change) until the next
    launch."""
    floor.patients("1")
    campaign = floor.campaign()
    floor.build(campaign)
    dispatcher = floor.node()
    dispatcher.open_campaign(campaign)
    floor.psr(dispatcher, "Ana")
    assert len(floor.calls) == 1  # ringing through the sweep
    floor.advance(START + timedelta(seconds=SETTINGS.upkeep_seconds))
    driver = dispatcher.store.fast.driver
    if dispatcher.store.fast.sqlite:
        assert not driver.in_transaction
    else:
        assert driver.info.transaction_status.name == "IDLE"


@pytest.mark.parametrize("node", ["local", "new-host"])
def test_a_restarted_dispatcher_reconciles_the_calls_left_in_progress(
    floor: Floor, node: str
) -> None:
    """The node stops with two calls in progress (one of them bridged) and its queued writes
    lost. Restarted under its own name, it ends those attempts as failed, noted, at once and
    releases its claims; a new node leaves them to the old node's lease, and its sweep (every
    5 minutes) ends them once the lease has lapsed."""
    floor.patients("1", "2", "3")
    campaign = floor.campaign()
    households = floor.build(campaign)
    crashed = floor.node()
    crashed.open_campaign(campaign)
    ana = floor.psr(crashed, "Ana")
    floor.psr(crashed, "Ben")
    first, second = (p.request.attempt_id for p in floor.network.placed)
    floor.answer(first)
    assert floor.network.bridged == [(first, ana)]
    floor.nodes.remove(crashed)
    crashed.store.fast.close()  # gone, with whatever it had not written

    def ends() -> list[tuple[Any, ...]]:
        return [
            (a["outcome"], a["ended_at"], a["notes"])
            for a in floor.attempts()
            if a["id"] in (first, second)
        ]

    restart = START + timedelta(minutes=5)
    floor.clock.advance_to(restart)
    restarted = floor.node(node)
    restarted.open_campaign(campaign)
    held = [floor.household(households[p])["claimed_by"] for p in ("1", "2", "3")]
    if node == "local":
        assert ends() == [("failed", restart, ORPHAN_NOTE)] * 2
        assert held == [None] * 3
    else:
        assert ends() == [(None, None, None)] * 2
        assert held == ["local"] * 3
    floor.report(first, "hangup")  # a late report for the old call changes nothing
    assert floor.attempts()[0]["outcome"] == ("failed" if node == "local" else None)

    floor.psr(restarted, "Ana")
    lease_over = START + timedelta(seconds=SETTINGS.lease_seconds)
    if node != "local":
        floor.advance(lease_over)  # the lease holds through its last instant
        assert len(floor.network.placed) == 2
        floor.advance(lease_over + timedelta(seconds=1))
    expected = restart if node == "local" else lease_over + timedelta(seconds=1)
    assert floor.calls[2][1:] == (phone("3"), expected)
    if node != "local":
        assert ends() == [(None, None, None)] * 2  # the lease held through its last instant
        swept = lease_over + timedelta(seconds=SETTINGS.upkeep_seconds)
        floor.advance(swept)
        assert ends() == [("failed", swept, ORPHAN_NOTE)] * 2
    # The interrupted households are called again once the per-phone cap allows.
    floor.report(floor.last_call(), "ringing", "no_answer")
    floor.advance(START + timedelta(days=1) - timedelta(seconds=1))
    assert len(floor.network.placed) == 3
    floor.advance(START + timedelta(days=1))
    assert floor.calls[3][1:] == (phone("1"), START + timedelta(days=1))
