"""A hand-built call-center day with known answers, for the export and report tests.

Monday 2026-11-30. Two clinics (C1 Portland, UTC-8; C2 San Antonio, UTC-6), two campaigns
(``hygiene-recall``, a recall; ``reminders``), three PSRs (Ana, Ben, Cy) and eight attempts:

== ========= ==== ========== ================ =============================================
#  campaign  hh   start UTC  callee-local     what happened
== ========= ==== ========== ================ =============================================
1  recall    100  15:00      Mon 09:00 CST    Ana: booked two (appointments 12 and 9)
2  recall    200  16:10      Mon 10:10 CST    no answer (rang 25 s)
3  recall    200  19:00      Mon 13:00 CST    Ben: declined (2nd call that day: over cap)
4  recall    300  18:00      Mon 10:00 PST    Ben: booked (no appointment ids recorded)
5  recall    400  18:30      Mon 10:30 PST    abandoned; safe-harbor message played
6  recall    500  19:30      Mon 14:30 EST    left a message (ZIP zone New York)
7  reminders 600  Dec 1 05:30 Mon 23:30 CST   Cy: confirmed; outside the window; same
                                              phone as #1 within 24 h (over cap)
8  reminders 700  06:30      Sun 22:30 PST    busy; outside the window; on the global DNC
== ========= ==== ========== ================ =============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from dialer.campaigns import parse_campaign
from dialer.store.dial_lists import sync_campaign
from dialer.store.models import (
    Agent,
    AgentEvent,
    Attempt,
    CallEventRecord,
    CampaignHousehold,
    Clinic,
    DncEntry,
    Patient,
)

DAY = datetime(2026, 11, 30, tzinfo=UTC)
CREATED = datetime(2026, 11, 1, tzinfo=UTC)
NOTES = {
    1: '=HYPERLINK("http://example.test","x")',
    2: "\rcarriage return",
    3: "+1 call back",
    4: "-2 teeth",
    5: "@SUM(A1)",
    6: "\tindented",
    7: "Llamar después de las 5, señora Muñoz",
    8: "'=already quoted",
}


def at(hours: int, minutes: int = 0, seconds: float = 0, day: int = 0) -> datetime:
    """A time on the test day (``day`` days later), UTC."""
    return DAY + timedelta(days=day, hours=hours, minutes=minutes, seconds=seconds)


@dataclass
class Floor:
    """Ids of what was inserted."""

    campaigns: dict[str, int]
    agents: dict[str, int]
    attempts: dict[int, int]  # row number (1-8) -> attempt id


def _insert(conn: sa.Connection, table: Any, **values: Any) -> int:
    return int(conn.execute(sa.insert(table).values(**values).returning(table.id)).scalar_one())


def _clinics(conn: sa.Connection) -> dict[str, int]:
    common = {"source": "csv", "source_hash": "x", "created_at": CREATED, "updated_at": CREATED}
    return {
        "C1": _insert(
            conn,
            Clinic,
            external_id="C1",
            name="Bright Smiles Portland",
            timezone="America/Los_Angeles",
            state="OR",
            **common,
        ),
        "C2": _insert(
            conn,
            Clinic,
            external_id="C2",
            name="Clínica Sonrisa",
            timezone="America/Chicago",
            state="TX",
            **common,
        ),
    }


def _patients(conn: sa.Connection, clinics: dict[str, int]) -> None:
    common = {"source": "csv", "source_hash": "x", "created_at": CREATED, "updated_at": CREATED}
    rows = [  # external id, clinic, guarantor, postal code
        ("100", "C2", "100", "78205"),
        ("20", "C2", "100", "78205"),
        ("300", "C1", "300", "97201"),
        ("400", "C1", "400", "97201"),
        ("500", "C2", "500", "33101"),
        ("600", "C2", "600", "78205"),
        ("700", "C1", "700", "97201"),
    ]  # household 200 has no guarantor row: its zone is its first candidate
    for external, clinic, guarantor, postal in rows:
        _insert(
            conn,
            Patient,
            external_id=external,
            clinic_id=clinics[clinic],
            guarantor_external_id=guarantor,
            postal_code=postal,
            **common,
        )


def _agents(conn: sa.Connection) -> dict[str, int]:
    return {
        name: _insert(conn, Agent, name=name, languages="en es", created_at=CREATED)
        for name in ("Ana", "Ben", "Cy")
    }


AGENT_EVENTS = {
    "Ana": [
        (at(14), "paused", "login"),
        (at(14, 5), "ready", None),
        (at(15, 0, 11), "on_call", None),
        (at(15, 2, 11), "wrap_up", None),
        (at(15, 2, 41), "ready", None),
        (at(16), "paused", "lunch"),
        (at(16, 30), "ready", None),
        (at(17), "logged_out", None),
    ],
    "Ben": [
        (at(17, 30), "ready", None),
        (at(18, 0, 6), "on_call", None),
        (at(18, 3, 6), "wrap_up", None),
        (at(18, 3, 46), "ready", None),
        (at(19, 0, 9), "on_call", None),
        (at(19, 1, 9), "wrap_up", None),
        (at(19, 1, 29), "ready", None),
        (at(20, 30), "logged_out", None),
    ],
    "Cy": [
        (at(5, 20, day=1), "ready", None),
        (at(5, 30, 4, day=1), "on_call", None),
        (at(5, 31, 34, day=1), "wrap_up", None),
        (at(5, 31, 44, day=1), "ready", None),
        (at(5, 50, day=1), "logged_out", None),
    ],
}


def _call(
    started: datetime,
    ring: float | None,
    *,
    answer: bool = False,
    person: bool = False,
    talk: float | None = None,
    wrap: float | None = None,
    end_after: float = 0,
) -> dict[str, Any]:
    """Timestamps of a call: rings from started+1 s for ``ring`` seconds, then (answered)
    a person is bridged for ``talk`` s and wraps up for ``wrap`` s, or it ends ``end_after``
    seconds after the answer (or the ring)."""
    ringing = started + timedelta(seconds=1)
    out: dict[str, Any] = {"started_at": started, "ringing_at": ringing}
    answered = ringing + timedelta(seconds=ring or 0)
    if not answer:
        out["ended_at"] = answered + timedelta(seconds=end_after)
        return out
    out["answered_at"] = answered
    if person:
        out["person_detected_at"] = answered
    else:
        out["machine_detected_at"] = answered
    if talk is not None:
        out["connected_at"] = answered
        out["ended_at"] = answered + timedelta(seconds=talk)
        out["wrap_ended_at"] = out["ended_at"] + timedelta(seconds=wrap or 0)
        out["disposition_at"] = out["wrap_ended_at"]
    else:
        out["ended_at"] = answered + timedelta(seconds=end_after)
    return out


def build_floor(store: Engine) -> Floor:
    """Insert the day of the module doc into an empty store."""
    with store.begin() as conn:
        clinics = _clinics(conn)
        _patients(conn, clinics)
        agents = _agents(conn)
        campaigns = {
            name: sync_campaign(
                conn,
                parse_campaign({"name": name, "kind": kind, "audience": {}}, Path(name)),
                None,
                CREATED,
            )
            for name, kind in (("hygiene-recall", "recall"), ("reminders", "reminder"))
        }
        households = {
            key: _insert(
                conn,
                CampaignHousehold,
                campaign_id=campaigns["reminders" if key in ("600", "700") else "hygiene-recall"],
                household_key=key,
                attempts=0,
                created_at=CREATED,
            )
            for key in ("100", "200", "300", "400", "500", "600", "700")
        }
        for name, events in AGENT_EVENTS.items():
            for moment, state, reason in events:
                conn.execute(
                    sa.insert(AgentEvent).values(
                        agent_id=agents[name], state=state, reason=reason, at=moment
                    )
                )
        rows = _attempt_rows(clinics, agents)
        ids: dict[int, int] = {}
        for number, (household, clinic, values) in rows.items():
            campaign = "reminders" if household in ("600", "700") else "hygiene-recall"
            defaults: dict[str, Any] = {
                "campaign_id": campaigns[campaign],
                "household_id": households[household],
                "clinic_id": clinics[clinic],
                "attempt_number": 1,
                "phone": f"+1210555{int(household):04d}",
                "phone_kind": "mobile",
                "language": "en",
                "timezones": "America/Chicago" if clinic == "C2" else "America/Los_Angeles",
                "states": "TX" if clinic == "C2" else "OR",
                "patient_ids": household,
                "mode": "predictive",
                "is_contact": False,
                "is_conversion": False,
                "abandoned": False,
                "opted_out": False,
                "notes": NOTES[number],
            }
            ids[number] = _insert(conn, Attempt, **(defaults | values))
        conn.execute(
            sa.insert(CallEventRecord).values(
                attempt_id=ids[5], event_id="e5-done", kind="message_done", at=at(18, 30, 14)
            )
        )
        _dnc(conn, clinics)
    return Floor(campaigns=campaigns, agents=agents, attempts=ids)


def _dnc(conn: sa.Connection, clinics: dict[str, int]) -> None:
    entries = [
        # On the global list before call 8: counts.
        ("+12105550700", "global", None, None, at(0, day=-29), None),
        # Calls 1 and 7's number, listed after them (an opt-out on call 7): does not count.
        ("+12105550100", "global", None, None, at(5, 31, day=1), None),
        # Call 6's number, listed and removed before the call: does not count.
        ("+12105550500", "global", None, None, at(0, day=-10), at(0, day=-5)),
        # Call 4's number on the other clinic's list: does not apply.
        ("+12105550300", "clinic", clinics["C2"], None, at(0, day=-10), None),
    ]
    for phone, scope, clinic, campaign, added, removed in entries:
        conn.execute(
            sa.insert(DncEntry).values(
                phone=phone,
                scope=scope,
                clinic_id=clinic,
                campaign=campaign,
                source="manual",
                added_at=added,
                removed_at=removed,
            )
        )


def _attempt_rows(
    clinics: dict[str, int], agents: dict[str, int]
) -> dict[int, tuple[str, str, dict[str, Any]]]:
    booked = {"outcome": "connected", "is_contact": True}
    return {
        1: (
            "100",
            "C2",
            _call(at(15), 10, answer=True, person=True, talk=120, wrap=30)
            | booked
            | {
                "agent_id": agents["Ana"],
                "disposition": "booked",
                "is_conversion": True,
                "patient_ids": "100;20",
                "appointment_ids": "12;9",
                "mode": "progressive",
            },
        ),
        2: (
            "200",
            "C2",
            _call(at(16, 10), 25)
            | {
                "outcome": "no_answer",
                "language": "es",
                "timezones": "America/Chicago America/Denver",
            },
        ),
        3: (
            "200",
            "C2",
            _call(at(19), 8, answer=True, person=True, talk=60, wrap=20)
            | booked
            | {
                "agent_id": agents["Ben"],
                "attempt_number": 2,
                "disposition": "declined",
                "language": "es",
                "timezones": "America/Chicago America/Denver",
            },
        ),
        4: (
            "300",
            "C1",
            _call(at(18), 5, answer=True, person=True, talk=180, wrap=40)
            | booked
            | {"agent_id": agents["Ben"], "disposition": "booked", "is_conversion": True},
        ),
        5: (
            "400",
            "C1",
            _call(at(18, 30), 6, answer=True, person=True, end_after=7)
            | {"outcome": "abandoned", "abandoned": True},
        ),
        6: (
            "500",
            "C2",
            _call(at(19, 30), 12, answer=True, end_after=27)
            | {
                "outcome": "left_message",
                "phone_kind": "home",
                "timezones": "America/Chicago America/New_York",
                "states": "FL TX",
            },
        ),
        7: (
            "600",
            "C2",
            _call(at(5, 30, day=1), 3, answer=True, person=True, talk=90, wrap=10)
            | booked
            | {
                "agent_id": agents["Cy"],
                "disposition": "confirmed",
                "is_conversion": True,
                "appointment_ids": "55",
                "phone": "+12105550100",
                "language": "es",
            },
        ),
        8: ("700", "C1", _call(at(6, 30), 2) | {"outcome": "busy", "phone_kind": None}),
    }
