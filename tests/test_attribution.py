"""Attribution: bookings made on calls matched to later PMS appointments, against a baseline.

The hand-built set: one Chicago clinic, calls on Monday 2026-11-30 from 10:00 local, bookings
whose later PMS appointments land in each result, and appointments of patients nobody called.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.errors import ConfigError, NotFound
from dialer.ingest.importer import import_file
from dialer.reports.attribution import (
    attribution_baseline,
    attribution_report,
    match_bookings,
)
from dialer.reports.filters import Filters
from dialer.store.bookings import BookedSlot, record_bookings
from dialer.store.models import Agent, Attempt, Campaign, CampaignHousehold

BEFORE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the first import
LATER = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)  # the follow-up import

CLINICS = "clinic_id,name,timezone,state,phone\nC1,Smiles,America/Chicago,TX,2105550100\n"
PATIENT_HEADER = (
    "patient_id,clinic_id,first_name,last_name,birth_date,guarantor_id,language,"
    "mobile_phone,home_phone,work_phone,postal_code,state\n"
)
APPOINTMENT_HEADER = (
    "appointment_id,patient_id,clinic_id,start_at,duration_minutes,status,kind,booked_at\n"
)
# Before any call: P6 already had an appointment on the slot it books later (not a match),
# P14 booked before the period (not in the baseline).
FIRST_APPOINTMENTS = [
    "A6,P6,C1,2026-12-07 09:00,60,scheduled,hygiene,",
    "A14,P14,C1,2026-12-04 09:00,60,completed,hygiene,2026-11-29 10:00",
]
# The later export. Times are Chicago (UTC-6); calls are at 16:00Z = 10:00 local.
FOLLOW_UP = [
    "F1,P1,C1,2026-12-07 09:00,60,completed,hygiene,2026-11-30 10:00",  # same minute: kept
    "F2,P2,C1,2026-12-10 09:00,60,broken,hygiene,",  # first seen now, 2 days off: broken
    "F3,P3,C1,2026-12-08 09:00,60,no_show,hygiene,2026-11-30 10:20",  # no-show: broken
    "F4,P4,C1,2026-12-09 11:00,60,cancelled,hygiene,2026-11-30 10:30",
    "F5,P5,C1,2026-12-09 13:00,60,scheduled,hygiene,2026-11-30 10:40",  # pending
    "F5b,P5,C1,2026-12-28 13:00,60,completed,hygiene,2026-11-30 10:41",  # called: no baseline
    "F6,P6,C1,2026-12-20 09:00,60,completed,hygiene,2026-11-30 10:50",  # 13 days off: unmatched
    "F7b,P7,C1,2026-12-15 09:00,60,completed,exam,2026-11-30 11:05",  # created second
    "F7a,P7,C1,2026-12-10 09:00,60,broken,exam,2026-11-30 11:02",  # created first: P7's match
    "F8,P8,C1,2026-12-11 09:00,60,completed,hygiene,2026-11-30 11:10",
    "F9,P9,C1,2026-12-11 10:00,60,completed,hygiene,2026-11-30 11:10",
    # Patients nobody called, appointments created on the call day (the baseline) ...
    "B11,P11,C1,2026-12-14 09:00,60,completed,hygiene,2026-11-30 09:00",
    "B12,P12,C1,2026-12-14 10:00,60,completed,hygiene,2026-11-30 12:00",
    "B13,P13,C1,2026-12-14 11:00,60,broken,hygiene,2026-11-30 13:00",
    "B16,P16,C1,2026-12-30 11:00,60,scheduled,hygiene,2026-11-30 14:00",
    "B15a,P15,C1,2026-12-15 11:00,60,cancelled,exam,2026-11-30 15:00",
    "B15b,P15,C1,2026-12-16 11:00,60,completed,exam,2026-11-30 16:00",
    # ... and P17, dialed without an answer: called, so not in the baseline.
    "B17,P17,C1,2026-12-16 12:00,60,completed,hygiene,2026-11-30 16:00",
    # Created the day after the call day: outside --to 2026-11-30, inside an open period.
    "B18,P18,C1,2026-12-17 12:00,60,broken,exam,2026-12-01 09:00",
]


def _patients() -> str:
    rows = [f"P{n},C1,Pat{n},Test,1980-01-01,,en,,210555{n:04d},,78201,TX" for n in range(1, 19)]
    return PATIENT_HEADER + "\n".join(rows) + "\n"


def _call(
    conn: sa.Connection,
    campaign_id: int,
    agent_id: int | None,
    patients: str,
    started: datetime,
    disposition: str | None,
) -> int:
    household = conn.execute(
        sa.insert(CampaignHousehold)
        .values(campaign_id=campaign_id, household_key=patients, created_at=BEFORE)
        .returning(CampaignHousehold.id)
    ).scalar_one()
    return int(
        conn.execute(
            sa.insert(Attempt)
            .values(
                campaign_id=campaign_id,
                household_id=household,
                clinic_id=1,
                attempt_number=1,
                phone="+12105550001",
                language="en",
                timezones="America/Chicago",
                patient_ids=patients,
                mode="predictive",
                agent_id=agent_id,
                started_at=started,
                outcome="connected" if disposition else "no_answer",
                disposition=disposition,
                is_contact=disposition is not None,
                is_conversion=disposition == "booked",
            )
            .returning(Attempt.id)
        ).scalar_one()
    )


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


CALL = datetime(2026, 11, 30, 16, 0, 30, tzinfo=UTC)


@pytest.fixture
def booked(store: Engine, write_csv: Callable[..., Path]) -> Iterator[Engine]:
    """The hand-built set: calls, bookings, and the follow-up import (see the module doc)."""
    import_file(store, "clinics", write_csv("c.csv", CLINICS), now=BEFORE)
    import_file(store, "patients", write_csv("p.csv", _patients()), now=BEFORE)
    first = APPOINTMENT_HEADER + "\n".join(FIRST_APPOINTMENTS) + "\n"
    import_file(store, "appointments", write_csv("a1.csv", first), now=BEFORE)
    with store.begin() as conn:
        campaigns = {}
        for name, kind in (("recall-a", "recall"), ("react-b", "reactivation")):
            campaigns[name] = conn.execute(
                sa.insert(Campaign)
                .values(name=name, kind=kind, definition={}, created_at=BEFORE, updated_at=BEFORE)
                .returning(Campaign.id)
            ).scalar_one()
        agents = {}
        for name in ("PSR A", "PSR B"):
            agents[name] = conn.execute(
                sa.insert(Agent).values(name=name, created_at=BEFORE).returning(Agent.id)
            ).scalar_one()
        recall, react = campaigns["recall-a"], campaigns["react-b"]
        a, b = agents["PSR A"], agents["PSR B"]
        plan: list[tuple[int, int, str, list[tuple[str, datetime, str | None]]]] = [
            (recall, a, "P1", [("P1", _at(7, 15), "hygiene")]),
            (recall, a, "P2", [("P2", _at(8, 15), "hygiene")]),
            (recall, b, "P3", [("P3", _at(8, 15), "hygiene")]),
            (recall, b, "P4", [("P4", _at(9, 17), "hygiene")]),
            (recall, b, "P5", [("P5", _at(9, 19), "hygiene")]),
            (recall, a, "P6", [("P6", _at(7, 15), "hygiene")]),
            (react, a, "P7", [("P7", _at(10, 15), "exam")]),
            (react, a, "P8;P9", [("P8", _at(11, 15), "hygiene"), ("P9", _at(11, 16), None)]),
        ]
        for campaign_id, agent_id, members, slots in plan:
            attempt = _call(conn, campaign_id, agent_id, members, CALL, "booked")
            record_bookings(
                conn, attempt, [BookedSlot(p, at, kind) for p, at, kind in slots], now=CALL
            )
        _call(conn, recall, None, "P17", CALL, None)
    later = APPOINTMENT_HEADER + "\n".join(FOLLOW_UP) + "\n"
    import_file(store, "appointments", write_csv("a2.csv", later), now=LATER)
    yield store


RECALL = {"bookings": 6, "kept": 1, "broken": 2, "cancelled": 1, "pending": 1, "unmatched": 1}
REACT = {"bookings": 3, "kept": 2, "broken": 1, "cancelled": 0, "pending": 0, "unmatched": 0}
HYGIENE_RATE = 2 / 3  # P11, P12 kept, P13 broken (P16 pending)
EXAM_RATE = 1 / 2  # P15: one cancelled, one kept (the day's only exams)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(row) for row in frame.to_dict("records")]


def test_each_booking_gets_the_first_appointment_created_after_the_call(booked: Engine) -> None:
    frame = match_bookings(booked)
    results = dict(zip(frame["patient_id"], frame["result"], strict=True))
    assert results == {
        "P1": "kept",
        "P2": "broken",
        "P3": "broken",
        "P4": "cancelled",
        "P5": "pending",
        "P6": "unmatched",
        "P7": "broken",
        "P8": "kept",
        "P9": "kept",
    }
    matched = dict(zip(frame["patient_id"], frame["appointment_id"], strict=True))
    assert matched["P7"] == "F7a"  # created first, though F7b is also within 7 days
    assert matched["P5"] == "F5"
    assert pd.isna(matched["P6"])  # A6 fits the slot but existed before the call
    p9 = frame[frame["patient_id"] == "P9"].iloc[0]
    assert p9["kind"] == "hygiene"  # booked without a kind: the appointment's
    assert p9["appointment_start_at"] == pd.Timestamp("2026-12-11 16:00", tz="UTC")
    assert list(frame.columns) == [
        "booking_id",
        "attempt_id",
        "campaign",
        "agent",
        "patient_id",
        "called_at",
        "slot_at",
        "kind",
        "appointment_id",
        "appointment_start_at",
        "appointment_status",
        "result",
    ]


def test_report_by_campaign_against_the_baseline(booked: Engine) -> None:
    rows = _rows(attribution_report(booked, by="campaign"))
    assert [row["campaign"] for row in rows] == ["react-b", "recall-a"]
    for row, counts in zip(rows, (REACT, RECALL), strict=True):
        assert {key: row[key] for key in counts} == counts
    assert rows[0]["kept_rate"] == pytest.approx(2 / 3)
    assert rows[1]["kept_rate"] == pytest.approx(1 / 4)
    # Open period (from the first call's day on): B18, an exam created the next day and
    # broken, joins the exam baseline (1 of 3 kept). Each booking weighs its own kind.
    assert rows[0]["baseline_kept_rate"] == pytest.approx((1 / 3 + 2 * HYGIENE_RATE) / 3)
    assert rows[1]["baseline_kept_rate"] == pytest.approx(HYGIENE_RATE)


def test_dates_bound_the_baseline_and_campaigns_the_bookings(booked: Engine) -> None:
    day = Filters(date_from=date(2026, 11, 30), date_to=date(2026, 11, 30))
    baseline = _rows(attribution_baseline(booked, day))
    assert baseline == [
        {
            "kind": "exam",
            "appointments": 2,
            "kept": 1,
            "broken": 0,
            "cancelled": 1,
            "pending": 0,
            "kept_rate": EXAM_RATE,
        },
        {
            "kind": "hygiene",
            "appointments": 4,
            "kept": 2,
            "broken": 1,
            "cancelled": 0,
            "pending": 1,
            "kept_rate": pytest.approx(HYGIENE_RATE),
        },
    ]
    only = Filters(campaigns=("react-b",), date_from=date(2026, 11, 30), date_to=date(2026, 11, 30))
    rows = _rows(attribution_report(booked, only))
    assert [(row["campaign"], row["bookings"]) for row in rows] == [("react-b", 3)]
    assert rows[0]["baseline_kept_rate"] == pytest.approx((EXAM_RATE + 2 * HYGIENE_RATE) / 3)
    next_day = Filters(date_from=date(2026, 12, 1))
    assert attribution_report(booked, next_day).empty
    assert attribution_baseline(booked, next_day).empty


def test_report_by_agent_and_by_both(booked: Engine) -> None:
    by_agent = _rows(attribution_report(booked, by="agent"))
    assert [
        (r["agent"], r["bookings"], r["kept"], r["broken"], r["cancelled"], r["pending"])
        for r in by_agent
    ] == [("PSR A", 6, 3, 2, 0, 0), ("PSR B", 3, 0, 1, 1, 1)]
    assert [r["unmatched"] for r in by_agent] == [1, 0]
    assert [r["kept_rate"] for r in by_agent] == [pytest.approx(3 / 5), 0.0]
    both = attribution_report(booked, by="campaign-agent")
    assert list(both.columns[:3]) == ["campaign", "agent", "bookings"]
    assert [(r["campaign"], r["agent"], r["bookings"]) for r in _rows(both)] == [
        ("react-b", "PSR A", 3),
        ("recall-a", "PSR A", 3),
        ("recall-a", "PSR B", 3),
    ]


def test_a_group_with_nothing_resolved_has_no_rate(booked: Engine) -> None:
    with booked.begin() as conn:
        conn.execute(sa.update(Attempt).where(Attempt.patient_ids == "P5").values(agent_id=None))
    rows = _rows(attribution_report(booked, by="agent"))
    assert [(r["agent"], r["bookings"], r["pending"]) for r in rows] == [
        ("(none)", 1, 1),
        ("PSR A", 6, 0),
        ("PSR B", 2, 0),
    ]
    assert rows[0]["kept_rate"] is None


def test_unknown_grouping_is_refused(booked: Engine) -> None:
    with pytest.raises(ConfigError, match="Cannot group attribution by 'clinic' "):
        attribution_report(booked, by="clinic")


def test_a_booking_must_name_a_member_the_call_covered(booked: Engine) -> None:
    with booked.begin() as conn:
        attempt = conn.execute(
            sa.select(Attempt.id).where(Attempt.patient_ids == "P8;P9")
        ).scalar_one()
        with pytest.raises(NotFound) as caught:
            record_bookings(conn, attempt, [BookedSlot("P1", _at(7, 15))], now=CALL)
        assert caught.value.message == f"Patient P1 was not covered by attempt {attempt}"
        with pytest.raises(ConfigError) as bad_kind:
            record_bookings(conn, attempt, [BookedSlot("P8", _at(7, 15), "cleaning")], now=CALL)
        assert bad_kind.value.message == (
            "No appointment kind 'cleaning' (one of emergency, exam, hygiene, other, treatment)"
        )
        with pytest.raises(NotFound, match="No attempt with id 999999"):
            record_bookings(conn, 999999, [], now=CALL)


def _cli(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", db_url, "report", "attribution", *args])
    return result.exit_code, result.output


def test_attribution_command_json_and_csv(booked: Engine, db_url: str) -> None:
    code, output = _cli(db_url, "--json", "--by", "agent")
    assert code == 0, output
    assert json.loads(output) == [
        {
            "agent": "PSR A",
            "bookings": 6,
            "kept": 3,
            "broken": 2,
            "cancelled": 0,
            "pending": 0,
            "unmatched": 1,
            "kept_rate": pytest.approx(3 / 5),
            "baseline_kept_rate": pytest.approx((1 / 3 + 5 * HYGIENE_RATE) / 6),
        },
        {
            "agent": "PSR B",
            "bookings": 3,
            "kept": 0,
            "broken": 1,
            "cancelled": 1,
            "pending": 1,
            "unmatched": 0,
            "kept_rate": 0.0,
            "baseline_kept_rate": pytest.approx(HYGIENE_RATE),
        },
    ]
    code, output = _cli(db_url, "--baseline", "--format", "csv")
    assert (code, output) == (
        0,
        "kind,appointments,kept,broken,cancelled,pending,kept_rate\n"
        "exam,3,1,1,1,0,0.3333333333333333\n"
        "hygiene,4,2,1,0,1,0.6666666666666666\n",
    )


def test_attribution_command_errors(booked: Engine, db_url: str) -> None:
    assert _cli(db_url, "--campaign", "nope") == (
        1,
        "Error: No campaign named 'nope' in the store (known: react-b, recall-a)\n",
    )
    code, output = _cli(db_url, "--by", "clinic")
    assert code == 2
    assert "Invalid value for '--by': 'clinic' is not one of 'campaign', 'agent', " in output
