"""Dial lists: exclusions, timing per kind, households, do-not-call, order, stable entry ids,
the ``dialer lists`` commands, and invariants over random populations.

Every case loads canonical CSVs through ``import_file`` into the ``store`` fixture (SQLite, and
PostgreSQL when configured) and builds with ``build_list``; see ``tests/lists_fixtures.py``.
The as-of date is Saturday 2026-11-28 throughout.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from dialer.campaigns import CampaignModel, parse_campaign
from dialer.cli import cli
from dialer.entries import HouseholdPhones, assemble_entries
from dialer.ingest.importer import import_file
from dialer.lists import Population, exclusion_reasons
from dialer.store.db import open_store
from dialer.store.dial_lists import build_list
from dialer.store.models import CampaignHousehold, DialListEntry, DialListPatient
from tests.lists_fixtures import (
    AS_OF,
    INVALID,
    PATIENT_COLUMNS,
    TOLL_FREE,
    Built,
    Practice,
    appointment,
    csv_text,
    local,
    overdue,
    own_mobile,
    patient,
)

MakeCampaign = Callable[..., CampaignModel]
KINDS = ("recall", "reminder", "reactivation")
LA, CHICAGO = "America/Los_Angeles", "America/Chicago"


@pytest.fixture
def practice(store: Engine, write_csv: Callable[..., Path], now: datetime) -> Practice:
    """The store with clinics C1 (Portland), C2 (Chicago), C3 (Spanish default), C4 (Alaska)."""
    return Practice(store, write_csv, now)


def recall_campaign(make_campaign: MakeCampaign, **audience: Any) -> CampaignModel:
    """A recall campaign with the issue's defaults plus audience overrides."""
    return make_campaign("recall", audience=audience)


def assert_counts_add_up(built: Built, kind: str) -> None:
    """Every reason of the kind present (zeros included) and candidates = eligible + excluded."""
    summary = built.summary
    assert list(summary["excluded"]) == exclusion_reasons(kind)
    assert summary["candidates"] == summary["eligible_patients"] + sum(summary["excluded"].values())
    assert summary["eligible_patients"] == sum(e["patient_count"] for e in built.entries)
    assert [e["rank"] for e in built.entries] == list(range(1, len(built.entries) + 1))


# --- 1. exclusion reasons --------------------------------------------------------------------


def test_reasons_of_each_kind_in_order() -> None:
    statuses = ["deceased", "inactive", "archived", "non_patient", "prospective"]
    tail = ["recently_converted", "max_attempts_reached", "do_not_call", "no_valid_phone"]
    assert exclusion_reasons("recall") == [
        *statuses,
        "outside_ages",
        "language",
        "not_due",
        "has_future_appointment",
        *tail,
        "unknown_timezone",
    ]
    assert exclusion_reasons("reminder") == [
        *statuses,
        "outside_ages",
        "language",
        "no_appointment_in_window",
        *tail,
        "unknown_timezone",
    ]
    assert exclusion_reasons("reactivation") == [
        *statuses,
        "outside_ages",
        "language",
        "seen_recently",
        "has_future_appointment",
        *tail,
        "unknown_timezone",
    ]


@dataclass
class Spec:
    """What patient 1 (and the campaign) look like in one exclusion case."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    audience: dict[str, Any] = field(default_factory=dict)
    appointments: list[dict[str, str]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)
    forget_zone: str | None = None


def eligible_spec(kind: str) -> Spec:
    """Patient 1, eligible for a campaign of ``kind`` with the default audience."""
    if kind == "recall":
        return Spec(kind, fields={"recall_due_date": overdue(30)})
    if kind == "reminder":
        return Spec(kind, appointments=[appointment("A1", "1", "2026-11-30 10:00")])
    return Spec(kind, fields={"last_visit_date": "2024-11-01"})


def _status(name: str) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        spec.fields["status"] = name

    return apply


def _outside_ages(spec: Spec) -> None:
    spec.audience["ages"] = [18, 120]
    spec.fields["birth_date"] = "2015-03-01"


def _language(spec: Spec) -> None:
    spec.audience["languages"] = ["es"]


def _timing(spec: Spec) -> None:
    if spec.kind == "recall":
        spec.fields["recall_due_date"] = ""
    elif spec.kind == "reminder":
        spec.appointments = [a for a in spec.appointments if a["appointment_id"] != "A1"]
    else:
        spec.fields["last_visit_date"] = "2026-05-28"


def _future_appointment(spec: Spec) -> None:
    spec.appointments.append(appointment("F1", "1", "2026-12-10 09:00"))


def _recently_converted(spec: Spec) -> None:
    spec.counters["last_converted_at"] = timedelta(days=2)


def _max_attempts(spec: Spec) -> None:
    spec.counters["attempts"] = 4


def _flagged(spec: Spec) -> None:
    spec.fields["do_not_call"] = "yes"


def _no_valid_phone(spec: Spec) -> None:
    spec.fields["mobile_phone"] = INVALID


def _unknown_timezone(spec: Spec) -> None:
    # No ZIP, a toll-free number (no area-code zone) and a clinic whose zone is unknown.
    spec.fields.update(clinic_id="C4", postal_code="", state="AK")
    spec.fields.setdefault("mobile_phone", TOLL_FREE.format(1))
    spec.forget_zone = "C4"


FACTS: dict[str, Callable[[Spec], None]] = {
    **{s: _status(s) for s in ("deceased", "inactive", "archived", "non_patient", "prospective")},
    "outside_ages": _outside_ages,
    "language": _language,
    "not_due": _timing,
    "no_appointment_in_window": _timing,
    "seen_recently": _timing,
    "has_future_appointment": _future_appointment,
    "recently_converted": _recently_converted,
    "max_attempts_reached": _max_attempts,
    "do_not_call": _flagged,
    "no_valid_phone": _no_valid_phone,
    "unknown_timezone": _unknown_timezone,
}


def build_spec(practice: Practice, make_campaign: MakeCampaign, spec: Spec, now: datetime) -> Built:
    """Load patient 1 as ``spec`` says and build the campaign."""
    campaign = make_campaign(spec.kind, audience=spec.audience)
    practice.patients(patient("1", **spec.fields))
    if spec.appointments:
        practice.appointments(*spec.appointments)
    if spec.forget_zone:
        practice.forget_clinic_timezone(spec.forget_zone)
    if spec.counters:
        converted = spec.counters.get("last_converted_at")
        practice.household_counters(
            campaign,
            "1",
            attempts=spec.counters.get("attempts", 0),
            last_converted_at=now - converted if converted else None,
        )
    return practice.build(campaign)


@pytest.mark.parametrize("kind", KINDS)
def test_base_patient_is_eligible(
    practice: Practice, make_campaign: MakeCampaign, now: datetime, kind: str
) -> None:
    built = build_spec(practice, make_campaign, eligible_spec(kind), now)
    assert built.reasons == {"1": None}
    assert_counts_add_up(built, kind)


SINGLE_CASES = [
    pytest.param(kind, reason, id=f"{kind}-{reason}")
    for kind in KINDS
    for reason in exclusion_reasons(kind)
]


@pytest.mark.parametrize(("kind", "reason"), SINGLE_CASES)
def test_each_reason_excludes(
    practice: Practice, make_campaign: MakeCampaign, now: datetime, kind: str, reason: str
) -> None:
    spec = eligible_spec(kind)
    FACTS[reason](spec)
    built = build_spec(practice, make_campaign, spec, now)
    assert built.reasons == {"1": reason}
    assert built.entries == []
    assert built.summary["excluded"] == {r: int(r == reason) for r in exclusion_reasons(kind)}
    assert_counts_add_up(built, kind)


FIRST_WINS = [
    ("recall", ["no_valid_phone", "do_not_call", "deceased"], "deceased"),
    ("recall", ["inactive", "outside_ages", "language"], "inactive"),
    ("recall", ["archived", "language", "not_due"], "archived"),
    ("reactivation", ["non_patient", "seen_recently", "no_valid_phone"], "non_patient"),
    ("reminder", ["prospective", "outside_ages", "no_appointment_in_window"], "prospective"),
    ("recall", ["outside_ages", "language", "not_due"], "outside_ages"),
    ("reminder", ["language", "no_appointment_in_window", "do_not_call"], "language"),
    ("recall", ["not_due", "has_future_appointment", "max_attempts_reached"], "not_due"),
    ("reactivation", ["seen_recently", "has_future_appointment"], "seen_recently"),
    (
        "reminder",
        ["no_appointment_in_window", "recently_converted", "do_not_call"],
        "no_appointment_in_window",
    ),
    (
        "recall",
        ["has_future_appointment", "recently_converted", "do_not_call"],
        "has_future_appointment",
    ),
    ("reactivation", ["recently_converted", "max_attempts_reached"], "recently_converted"),
    ("recall", ["max_attempts_reached", "do_not_call", "no_valid_phone"], "max_attempts_reached"),
    ("reminder", ["no_valid_phone", "do_not_call"], "do_not_call"),
    ("recall", ["unknown_timezone", "no_valid_phone"], "no_valid_phone"),
]


@pytest.mark.parametrize(
    ("kind", "facts", "expected"),
    [pytest.param(k, f, e, id=f"{k}-{'+'.join(f)}") for k, f, e in FIRST_WINS],
)
def test_first_applicable_reason_wins(
    practice: Practice,
    make_campaign: MakeCampaign,
    now: datetime,
    kind: str,
    facts: list[str],
    expected: str,
) -> None:
    spec = eligible_spec(kind)
    for fact in facts:
        FACTS[fact](spec)
    built = build_spec(practice, make_campaign, spec, now)
    assert built.reasons == {"1": expected}
    assert_counts_add_up(built, kind)


def test_every_status_is_a_candidate_and_counts_add_up(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    statuses = ["active", "inactive", "archived", "deceased", "non_patient", "prospective"]
    practice.patients(
        *[
            patient(str(i), status=s, recall_due_date=overdue(30))
            for i, s in enumerate(statuses, 1)
        ],
        patient("7", clinic_id="C2", postal_code="60601", state="IL"),
    )
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons == {
        "1": None,
        "2": "inactive",
        "3": "archived",
        "4": "deceased",
        "5": "non_patient",
        "6": "prospective",
        "7": "not_due",
    }
    assert built.summary["candidates"] == 7
    assert built.summary["eligible_patients"] == 1
    assert_counts_add_up(built, "recall")


def test_candidates_are_the_campaigns_clinics_live_patients(
    practice: Practice, make_campaign: MakeCampaign, write_csv: Callable[..., Path]
) -> None:
    practice.patients(
        patient("1", recall_due_date=overdue(30)),
        patient("2", recall_due_date=overdue(30)),
        patient("3", clinic_id="C2", recall_due_date=overdue(30)),
    )
    campaign = make_campaign("recall", clinics=["C1"])
    assert sorted(practice.build(campaign).reasons) == ["1", "2"]
    # A snapshot without patient 2 deletes them: no longer a candidate.
    rows = [patient("1", recall_due_date=overdue(30)), patient("3", clinic_id="C2")]
    path = write_csv("snapshot.csv", csv_text(PATIENT_COLUMNS, rows))
    assert import_file(practice.store, "patients", path, snapshot=True, now=practice.now).deleted
    assert sorted(practice.build(campaign).reasons) == ["1"]


def test_as_of_defaults_to_today_in_each_clinics_zone(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    # 06:30 UTC on 29 November: still the 28th in Portland and Anchorage, the 29th in Chicago.
    now = datetime(2026, 11, 29, 6, 30, tzinfo=UTC)
    practice.patients(
        patient("1", recall_due_date=overdue(730)),
        patient("2", clinic_id="C2", recall_due_date=overdue(730)),
    )
    result, _ = build_list(practice.store, recall_campaign(make_campaign), None, now=now)
    by_clinic = {c: result.as_of_by_clinic[practice.clinic_id(c)] for c in ("C1", "C2", "C4")}
    assert by_clinic == {"C1": AS_OF, "C2": AS_OF + timedelta(days=1), "C4": AS_OF}
    reasons = dict(zip(result.candidates["external_id"], result.candidates["reason"], strict=True))
    assert pd.isna(reasons["1"])
    assert reasons["2"] == "not_due"


# --- 2. timing per kind -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "days_overdue", "expected"),
    [
        pytest.param({}, 730, 730, id="overdue-high-bound-inclusive"),
        pytest.param({}, 731, "not_due", id="one-day-past-high-bound"),
        pytest.param({}, 0, 0, id="due-today"),
        pytest.param({}, -14, -14, id="due-within-bound-inclusive"),
        pytest.param({}, -15, "not_due", id="due-one-day-too-late"),
        pytest.param({"overdue_days": [30, 60], "due_within_days": 7}, 30, 30, id="low-bound"),
        pytest.param({"overdue_days": [30, 60], "due_within_days": 7}, 60, 60, id="high-bound"),
        pytest.param(
            {"overdue_days": [30, 60], "due_within_days": 7}, 29, "not_due", id="below-low-bound"
        ),
        pytest.param(
            {"overdue_days": [30, 60], "due_within_days": 7}, 61, "not_due", id="above-high"
        ),
        pytest.param({"overdue_days": [30, 60], "due_within_days": 7}, -7, -7, id="within-7"),
        pytest.param(
            {"overdue_days": [30, 60], "due_within_days": 7}, -8, "not_due", id="within-7-plus-1"
        ),
        pytest.param({"overdue_days": [30, 60], "due_within_days": 7}, 0, 0, id="due-today-gap"),
        pytest.param({"due_within_days": 0}, -1, "not_due", id="due-tomorrow-no-within"),
    ],
)
def test_recall_window_bounds_are_inclusive(
    practice: Practice,
    make_campaign: MakeCampaign,
    audience: dict[str, Any],
    days_overdue: int,
    expected: int | str,
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(days_overdue)))
    built = practice.build(recall_campaign(make_campaign, **audience))
    if isinstance(expected, str):
        assert built.reasons == {"1": expected}
    else:
        assert built.reasons == {"1": None}
        assert built.priority("1") == {"overdue_days": expected}


@pytest.mark.parametrize(
    ("other", "audience", "expected"),
    [
        pytest.param({"recall_type": "perio", "due": overdue(200)}, {}, 200, id="earlier-counts"),
        pytest.param({"recall_type": "perio", "due": overdue(5)}, {}, 40, id="later-ignored"),
        pytest.param(
            {"recall_type": "child_prophy", "due": overdue(100)}, {}, 100, id="child-prophy"
        ),
        pytest.param(
            {"recall_type": "fluoride", "due": overdue(200)}, {}, 40, id="type-not-in-campaign"
        ),
        pytest.param(
            {"recall_type": "perio", "due": overdue(200)},
            {"recall_types": ["prophy"]},
            40,
            id="campaign-types-restrict",
        ),
        pytest.param(
            {"recall_type": "perio", "due": overdue(200), "disabled": True},
            {},
            40,
            id="disabled",
        ),
        pytest.param(
            {
                "recall_type": "perio",
                "due": overdue(200),
                "disabled": True,
                "disabled_until": AS_OF - timedelta(days=10),
            },
            {},
            40,
            id="disabled-flag-wins-over-past-until",
        ),
        pytest.param(
            {
                "recall_type": "perio",
                "due": overdue(200),
                "disabled_until": AS_OF + timedelta(days=1),
            },
            {},
            40,
            id="disabled-until-tomorrow",
        ),
        pytest.param(
            {"recall_type": "perio", "due": overdue(200), "disabled_until": AS_OF},
            {},
            40,
            id="disabled-until-as-of",
        ),
        pytest.param(
            {
                "recall_type": "perio",
                "due": overdue(200),
                "disabled_until": AS_OF - timedelta(days=1),
            },
            {},
            200,
            id="disabled-until-yesterday-is-enabled",
        ),
        pytest.param(
            {"recall_type": "perio", "due": overdue(200), "scheduled": AS_OF + timedelta(days=5)},
            {},
            40,
            id="scheduled-ignored",
        ),
    ],
)
def test_earliest_enabled_unscheduled_recall_of_the_campaigns_types(
    practice: Practice,
    make_campaign: MakeCampaign,
    other: dict[str, Any],
    audience: dict[str, Any],
    expected: int,
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(40)))
    other = dict(other)
    practice.recall("1", other.pop("recall_type"), other.pop("due"), **other)
    built = practice.build(recall_campaign(make_campaign, **audience))
    assert built.priority("1") == {"overdue_days": expected}


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"scheduled": AS_OF + timedelta(days=5)}, id="scheduled"),
        pytest.param({"disabled": True}, id="disabled"),
        pytest.param({"disabled_until": AS_OF + timedelta(days=30)}, id="disabled-until"),
    ],
)
def test_a_patient_whose_only_recall_is_not_open_is_not_due(
    practice: Practice, make_campaign: MakeCampaign, other: dict[str, Any]
) -> None:
    practice.patients(patient("1"))
    practice.recall("1", "perio", overdue(100), **other)
    assert practice.build(recall_campaign(make_campaign)).reasons == {"1": "not_due"}


@pytest.mark.parametrize(
    ("start_at", "clinic", "expected"),
    [
        pytest.param("2026-11-28 16:00", "C1", "no_appointment_in_window", id="today"),
        pytest.param(
            "2026-11-28 23:30",
            "C1",
            "no_appointment_in_window",
            id="today-23:30-local-is-tomorrow-in-utc",
        ),
        pytest.param("2026-11-29 00:00", "C1", 1, id="tomorrow-midnight"),
        pytest.param("2026-12-01 23:30", "C1", 3, id="day-3-at-23:30-local"),
        pytest.param("2026-12-01 23:30", "C2", 3, id="day-3-at-23:30-chicago"),
        pytest.param("2026-12-02 00:30", "C1", "no_appointment_in_window", id="day-4"),
        pytest.param("2026-11-27 10:00", "C1", "no_appointment_in_window", id="yesterday"),
    ],
)
def test_reminder_days_ahead_are_clinic_local_and_inclusive(
    practice: Practice,
    make_campaign: MakeCampaign,
    start_at: str,
    clinic: str,
    expected: int | str,
) -> None:
    practice.patients(patient("1", clinic_id=clinic))
    practice.appointments(appointment("A1", "1", start_at, clinic_id=clinic))
    built = practice.build(make_campaign("reminder"))
    if isinstance(expected, str):
        assert built.reasons == {"1": expected}
    else:
        assert built.reasons == {"1": None}
        assert built.priority("1") == {"days_until_appointment": expected}


def test_reminder_days_ahead_zero_means_today(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1"))
    practice.appointments(appointment("A1", "1", "2026-11-28 23:30"))
    built = practice.build(make_campaign("reminder", audience={"days_ahead": [0, 0]}))
    assert built.priority("1") == {"days_until_appointment": 0}


@pytest.mark.parametrize(
    ("status", "statuses", "eligible"),
    [
        pytest.param("scheduled", ["scheduled"], True, id="scheduled"),
        pytest.param("confirmed", ["scheduled"], False, id="confirmed-not-reminded"),
        pytest.param("confirmed", ["scheduled", "confirmed"], True, id="confirmed-reminded"),
        pytest.param("cancelled", ["scheduled", "confirmed"], False, id="cancelled"),
        pytest.param("broken", ["scheduled", "confirmed"], False, id="broken"),
        pytest.param("no_show", ["scheduled", "confirmed"], False, id="no-show"),
        pytest.param("completed", ["scheduled", "confirmed"], False, id="completed"),
    ],
)
def test_reminder_statuses(
    practice: Practice,
    make_campaign: MakeCampaign,
    status: str,
    statuses: list[str],
    eligible: bool,
) -> None:
    practice.patients(patient("1"))
    practice.appointments(appointment("A1", "1", "2026-11-30 10:00", status=status))
    built = practice.build(make_campaign("reminder", audience={"statuses": statuses}))
    assert built.reasons == {"1": None if eligible else "no_appointment_in_window"}


@pytest.mark.parametrize(
    ("moved_by", "statuses", "eligible"),
    [
        pytest.param(timedelta(0), ["scheduled"], False, id="confirmed-slot-not-reminded"),
        pytest.param(timedelta(0), ["confirmed"], True, id="confirmed-slot-counts-as-confirmed"),
        pytest.param(-timedelta(days=1), ["scheduled"], True, id="confirmed-an-earlier-slot"),
    ],
)
def test_dialer_confirmation_of_the_same_slot_makes_it_confirmed(
    practice: Practice,
    make_campaign: MakeCampaign,
    moved_by: timedelta,
    statuses: list[str],
    eligible: bool,
) -> None:
    practice.patients(patient("1"))
    practice.appointments(appointment("A1", "1", "2026-11-30 10:00"))
    practice.confirm("A1", moved_by=moved_by)
    built = practice.build(make_campaign("reminder", audience={"statuses": statuses}))
    assert built.reasons == {"1": None if eligible else "no_appointment_in_window"}


def test_reminder_takes_the_soonest_reminded_appointment(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1"), patient("2"))
    practice.appointments(
        appointment("A1", "1", "2026-12-01 09:00"),
        appointment("A2", "1", "2026-11-30 09:00"),
        appointment("A3", "2", "2026-11-29 09:00", status="confirmed"),
        appointment("A4", "2", "2026-12-01 09:00"),
    )
    built = practice.build(make_campaign("reminder"))
    assert built.priority("1") == {"days_until_appointment": 2}
    assert built.priority("2") == {"days_until_appointment": 3}


@pytest.mark.parametrize(
    ("last_visit", "expected"),
    [
        pytest.param("2025-05-29", "seen_recently", id="17-months"),
        pytest.param("2025-05-28", 18, id="18-months"),
        pytest.param("2021-11-28", 60, id="60-months"),
        pytest.param("2021-10-29", 60, id="60-months-and-30-days"),
        pytest.param("2021-10-28", "seen_recently", id="61-months"),
        pytest.param("2024-05-31", 29, id="month-end-not-yet-reached"),
        pytest.param("", "seen_recently", id="never-seen"),
    ],
)
def test_reactivation_counts_calendar_months(
    practice: Practice, make_campaign: MakeCampaign, last_visit: str, expected: int | str
) -> None:
    practice.patients(patient("1", last_visit_date=last_visit))
    built = practice.build(make_campaign("reactivation"))
    if isinstance(expected, str):
        assert built.reasons == {"1": expected}
    else:
        assert built.priority("1") == {"months_since_visit": expected}


@pytest.mark.parametrize(
    ("last_visit", "visit", "expected"),
    [
        pytest.param(
            "2024-01-01", ("2026-01-10 10:00", "completed"), "seen_recently", id="appt-later"
        ),
        pytest.param(
            "2026-01-01", ("2024-01-10 10:00", "completed"), "seen_recently", id="date-later"
        ),
        pytest.param("", ("2024-11-10 10:00", "completed"), 24, id="appointment-only"),
        pytest.param("2024-11-10", ("2026-10-01 10:00", "cancelled"), 24, id="cancelled-no-visit"),
        pytest.param("2024-11-10", ("2026-10-01 10:00", "no_show"), 24, id="no-show-no-visit"),
        pytest.param("", ("2025-05-28 23:30", "completed"), 18, id="completed-23:30-local-day"),
    ],
)
def test_last_visit_is_the_later_of_date_and_completed_appointment(
    practice: Practice,
    make_campaign: MakeCampaign,
    last_visit: str,
    visit: tuple[str, str],
    expected: int | str,
) -> None:
    practice.patients(patient("1", last_visit_date=last_visit))
    practice.appointments(appointment("V1", "1", visit[0], status=visit[1]))
    built = practice.build(make_campaign("reactivation"))
    if isinstance(expected, str):
        assert built.reasons == {"1": expected}
    else:
        assert built.priority("1") == {"months_since_visit": expected}


@pytest.mark.parametrize(
    ("start_at", "status", "has_future"),
    [
        pytest.param("2026-11-28 16:00", "scheduled", True, id="later-today"),
        pytest.param("2026-11-28 00:30", "scheduled", True, id="early-on-as-of-local"),
        pytest.param("2026-12-28 09:00", "confirmed", True, id="confirmed-next-month"),
        pytest.param("2026-12-08 09:00", "cancelled", False, id="cancelled-future"),
        pytest.param("2026-12-08 09:00", "broken", False, id="broken-future"),
        pytest.param("2026-11-27 23:30", "scheduled", False, id="yesterday-23:30-local"),
        pytest.param("2024-06-01 09:00", "completed", False, id="past-completed"),
    ],
)
@pytest.mark.parametrize("kind", ["recall", "reactivation"])
def test_has_future_appointment(
    practice: Practice,
    make_campaign: MakeCampaign,
    kind: str,
    start_at: str,
    status: str,
    has_future: bool,
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30), last_visit_date="2024-05-01"))
    practice.appointments(appointment("A1", "1", start_at, status=status))
    built = practice.build(make_campaign(kind))
    assert built.reasons == {"1": "has_future_appointment" if has_future else None}


@pytest.mark.parametrize(
    ("birth_date", "ages", "eligible"),
    [
        pytest.param("2008-11-28", [18, 65], True, id="18th-birthday-today"),
        pytest.param("2008-11-29", [18, 65], False, id="18-tomorrow"),
        pytest.param("1961-11-28", [18, 65], True, id="65-today"),
        pytest.param("1960-11-29", [18, 65], True, id="66-tomorrow"),
        pytest.param("1960-11-28", [18, 65], False, id="66-today"),
        pytest.param("", [0, 120], False, id="unknown-birth-date-fails-ages"),
        pytest.param("", None, True, id="unknown-birth-date-without-ages"),
    ],
)
def test_ages_are_inclusive(
    practice: Practice,
    make_campaign: MakeCampaign,
    birth_date: str,
    ages: list[int] | None,
    eligible: bool,
) -> None:
    practice.patients(patient("1", birth_date=birth_date, recall_due_date=overdue(30)))
    audience = {} if ages is None else {"ages": ages}
    built = practice.build(recall_campaign(make_campaign, **audience))
    assert built.reasons == {"1": None if eligible else "outside_ages"}


@pytest.mark.parametrize(
    ("counters", "max_attempts", "expected"),
    [
        pytest.param({"attempts": 3}, 4, None, id="3-of-4-attempts"),
        pytest.param({"attempts": 4}, 4, "max_attempts_reached", id="4-of-4-attempts"),
        pytest.param({"attempts": 2}, 2, "max_attempts_reached", id="2-of-2-attempts"),
        pytest.param({"converted_days_ago": 2}, 4, "recently_converted", id="converted-2d"),
        pytest.param({"converted_days_ago": 6.9}, 4, "recently_converted", id="converted-6.9d"),
        pytest.param({"converted_days_ago": 8}, 4, None, id="converted-8d-ago"),
    ],
)
def test_household_counters_exclude_the_whole_household(
    practice: Practice,
    make_campaign: MakeCampaign,
    now: datetime,
    counters: dict[str, Any],
    max_attempts: int,
    expected: str | None,
) -> None:
    practice.patients(
        patient("10", recall_due_date=overdue(30)),
        patient("11", guarantor_id="10", mobile_phone="", recall_due_date=overdue(30)),
        patient("12", recall_due_date=overdue(30)),
    )
    campaign = make_campaign("recall", calling={"max_attempts": max_attempts})
    days = counters.get("converted_days_ago")
    practice.household_counters(
        campaign,
        "10",
        attempts=counters.get("attempts", 0),
        last_converted_at=now - timedelta(days=days) if days else None,
    )
    built = practice.build(campaign)
    assert built.reasons == {"10": expected, "11": expected, "12": None}


def test_another_campaigns_counters_do_not_count(
    practice: Practice, make_campaign: MakeCampaign, now: datetime
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30)))
    other = make_campaign("recall", name="other-recall")
    practice.household_counters(other, "1", attempts=9, last_converted_at=now)
    assert practice.build(recall_campaign(make_campaign)).reasons == {"1": None}


# --- 3. households ----------------------------------------------------------------------------


@pytest.mark.parametrize("guarantor_due", [False, True], ids=["guarantor-not-due", "guarantor-due"])
def test_siblings_are_one_entry_and_the_guarantor_only_when_eligible(
    practice: Practice, make_campaign: MakeCampaign, guarantor_due: bool
) -> None:
    practice.patients(
        patient("10", recall_due_date=overdue(20) if guarantor_due else ""),
        patient("11", guarantor_id="10", mobile_phone="", recall_due_date=overdue(40)),
        patient("12", guarantor_id="10", recall_due_date=overdue(100)),
    )
    built = practice.build(recall_campaign(make_campaign))
    members = ["10", "11", "12"] if guarantor_due else ["11", "12"]
    assert built.reasons == {"10": None if guarantor_due else "not_due", "11": None, "12": None}
    [entry] = built.entries
    assert entry["household_key"] == "10"
    assert entry["patient_ids"] == members
    assert entry["patient_count"] == len(members)
    assert entry["phone"] == own_mobile("10")
    assert entry["phones"] == [own_mobile("10"), own_mobile("12")]
    assert entry["priority"] == {"overdue_days": 100}


@pytest.mark.parametrize("status", ["non_patient", "inactive", "archived", "deceased"])
def test_a_guarantors_own_status_never_blocks_their_phone(
    practice: Practice, make_campaign: MakeCampaign, status: str
) -> None:
    practice.patients(
        patient("20", status=status),
        patient("21", guarantor_id="20", mobile_phone="", recall_due_date=overdue(30)),
    )
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons == {"20": status, "21": None}
    [entry] = built.entries
    assert (entry["household_key"], entry["phone"], entry["patient_ids"]) == (
        "20",
        own_mobile("20"),
        ["21"],
    )


def test_a_guarantor_outside_the_campaigns_clinics_still_reaches_the_child(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    mobile = local(3000, "312")
    practice.patients(
        patient("30", clinic_id="C2", mobile_phone=mobile[0], postal_code="60601", state="IL"),
        patient("31", guarantor_id="30", mobile_phone="", recall_due_date=overdue(30)),
    )
    built = practice.build(make_campaign("recall", clinics=["C1"]))
    assert built.reasons == {"31": None}
    [entry] = built.entries
    assert (entry["phone"], entry["timezones"], entry["timezone_source"]) == (
        mobile[1],
        [CHICAGO],
        "area_code+zip",
    )


GUARANTOR_PHONES = {"mobile": local(401), "home": local(402), "work": local(403)}
CHILD_8 = {"mobile": local(801)}
CHILD_41 = {"mobile": local(4101), "home": local(4102)}


@pytest.mark.parametrize(
    ("preferred", "kinds", "expected"),
    [
        pytest.param(
            "",
            ["mobile", "home", "work"],
            ["g-mobile", "g-home", "g-work", "8", "41m", "41h"],
            id="campaign-order",
        ),
        pytest.param(
            "work",
            ["mobile", "home", "work"],
            ["g-work", "g-mobile", "g-home", "8", "41m", "41h"],
            id="preferred-first",
        ),
        pytest.param(
            "home",
            ["mobile", "work"],
            ["g-mobile", "g-work", "8", "41m"],
            id="preferred-kind-not-allowed",
        ),
        pytest.param(
            "",
            ["home", "mobile"],
            ["g-home", "g-mobile", "8", "41h", "41m"],
            id="campaign-order-home-first",
        ),
        pytest.param("work", ["work"], ["g-work"], id="only-work"),
    ],
)
def test_household_phone_order(
    practice: Practice,
    make_campaign: MakeCampaign,
    preferred: str,
    kinds: list[str],
    expected: list[str],
) -> None:
    names = {
        "g-mobile": GUARANTOR_PHONES["mobile"][1],
        "g-home": GUARANTOR_PHONES["home"][1],
        "g-work": GUARANTOR_PHONES["work"][1],
        "8": CHILD_8["mobile"][1],
        "41m": CHILD_41["mobile"][1],
        "41h": CHILD_41["home"][1],
    }
    practice.patients(
        patient(
            "40",
            mobile_phone=GUARANTOR_PHONES["mobile"][0],
            home_phone=GUARANTOR_PHONES["home"][0],
            work_phone=GUARANTOR_PHONES["work"][0],
            preferred_phone=preferred,
        ),
        patient(
            "41",
            guarantor_id="40",
            mobile_phone=CHILD_41["mobile"][0],
            home_phone=CHILD_41["home"][0],
            recall_due_date=overdue(30),
        ),
        patient(
            "8", guarantor_id="40", mobile_phone=CHILD_8["mobile"][0], recall_due_date=overdue(30)
        ),
    )
    built = practice.build(make_campaign("recall", calling={"phones": kinds}))
    [entry] = built.entries
    assert entry["phones"] == [names[n] for n in expected]
    assert entry["phone"] == names[expected[0]]
    assert entry["patient_ids"] == ["8", "41"]


@pytest.mark.parametrize(
    "spoil",
    ["invalid", "retired", "global-dnc", "clinic-dnc", "campaign-dnc"],
)
def test_unusable_numbers_are_skipped(
    practice: Practice, make_campaign: MakeCampaign, spoil: str
) -> None:
    mobile, home, child = local(501), local(502), local(511)
    practice.patients(
        patient(
            "50",
            mobile_phone=INVALID if spoil == "invalid" else mobile[0],
            home_phone=home[0],
            preferred_phone="mobile",
        ),
        patient("51", guarantor_id="50", mobile_phone=child[0], recall_due_date=overdue(30)),
    )
    campaign = recall_campaign(make_campaign)
    if spoil == "retired":
        practice.retire(mobile[1])
    elif spoil == "global-dnc":
        practice.dnc(mobile[1])
    elif spoil == "clinic-dnc":
        practice.dnc(mobile[1], "clinic", clinic="C1")
    elif spoil == "campaign-dnc":
        practice.dnc(mobile[1], "campaign", campaign=campaign.name)
    built = practice.build(campaign)
    [entry] = built.entries
    assert entry["phones"] == [home[1], child[1]]


def test_a_restored_retired_number_is_usable_again(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30)))
    practice.retire(own_mobile("1"), restored=True)
    built = practice.build(recall_campaign(make_campaign))
    assert built.entries[0]["phones"] == [own_mobile("1")]


@pytest.mark.parametrize(
    ("phones", "kinds", "expected"),
    [
        pytest.param(
            {"mobile_phone": INVALID}, ["mobile", "home", "work"], "no_valid_phone", id="invalid"
        ),
        pytest.param({"mobile_phone": ""}, ["mobile", "home", "work"], "no_valid_phone", id="none"),
        pytest.param(
            {"mobile_phone": "", "work_phone": local(9)[0]},
            ["mobile", "home"],
            "no_valid_phone",
            id="only-a-kind-the-campaign-does-not-dial",
        ),
    ],
)
def test_no_valid_phone(
    practice: Practice,
    make_campaign: MakeCampaign,
    phones: dict[str, str],
    kinds: list[str],
    expected: str,
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30), **phones))
    built = practice.build(make_campaign("recall", calling={"phones": kinds}))
    assert built.reasons == {"1": expected}


def test_a_retired_only_number_leaves_no_valid_phone(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30)))
    practice.retire(own_mobile("1"))
    assert practice.build(recall_campaign(make_campaign)).reasons == {"1": "no_valid_phone"}


@pytest.mark.parametrize(
    ("home", "required", "expected_phones", "reason"),
    [
        pytest.param(True, False, ["mobile", "home"], None, id="consent-not-required"),
        pytest.param(True, True, ["home"], None, id="required-mobile-skipped"),
        pytest.param(False, True, [], "no_valid_phone", id="required-only-mobile"),
    ],
)
def test_require_consent_for_mobile(
    practice: Practice,
    make_campaign: MakeCampaign,
    home: bool,
    required: bool,
    expected_phones: list[str],
    reason: str | None,
) -> None:
    numbers = {"mobile": own_mobile("1"), "home": local(12)[1]}
    practice.patients(
        patient("1", home_phone=local(12)[0] if home else "", recall_due_date=overdue(30)),
        patient("2", recall_due_date=overdue(30)),  # keeps the consent recorded on import
    )
    practice.drop_consent("1", "mobile")
    built = practice.build(
        make_campaign("recall", calling={"require_consent_for_mobile": required})
    )
    assert built.reasons == {"1": reason, "2": None}
    entry = built.entry_of("1")
    assert (entry["phones"] if entry else []) == [numbers[k] for k in expected_phones]


def test_households_sharing_a_first_phone_merge_into_the_smallest_household(
    practice: Practice, make_campaign: MakeCampaign, store: Engine
) -> None:
    shared, home = local(700), local(702)
    practice.patients(
        patient("10", mobile_phone=shared[0], recall_due_date=overdue(30)),
        patient("11", guarantor_id="10", mobile_phone="", recall_due_date=overdue(300)),
        patient("2", mobile_phone=shared[0], home_phone=home[0], recall_due_date=overdue(60)),
        patient("3", recall_due_date=overdue(10)),
    )
    campaign = make_campaign(
        "recall",
        priority=[{"field": "household_size", "order": "desc"}],
    )
    built = practice.build(campaign)
    assert len(built.entries) == 2
    merged = built.entry_of("10")
    assert merged is built.entry_of("2") is built.entry_of("11")
    assert merged is not None
    assert merged["household_key"] == "2"
    assert merged["patient_ids"] == ["2", "10", "11"]
    assert merged["patient_count"] == 3
    assert merged["priority"] == {"household_size": 3}
    assert merged["phones"] == [shared[1], home[1]]
    with store.connect() as conn:
        ids = dict(
            conn.execute(sa.select(CampaignHousehold.household_key, CampaignHousehold.id)).all()
        )
    assert merged["entry_id"] == ids["2"]
    assert [e["household_key"] for e in built.entries] == ["2", "3"]


def test_households_sharing_only_a_later_phone_stay_apart(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    shared = local(700)
    practice.patients(
        patient("1", home_phone=shared[0], recall_due_date=overdue(30)),
        patient("2", home_phone=shared[0], recall_due_date=overdue(30)),
    )
    built = practice.build(recall_campaign(make_campaign))
    assert [e["patient_ids"] for e in built.entries] == [["1"], ["2"]]


def test_a_merged_entry_at_max_attempts_is_not_offered_again_through_its_other_household(
    practice: Practice, make_campaign: MakeCampaign, store: Engine
) -> None:
    """Attempts are recorded against the entry's household (the smallest id); the merged
    household was called as often, through the same number."""
    shared = local(700)
    practice.patients(
        patient("2", mobile_phone=shared[0], recall_due_date=overdue(30)),
        patient("10", mobile_phone=shared[0], recall_due_date=overdue(30)),
    )
    campaign = recall_campaign(make_campaign)
    [entry] = practice.build(campaign).entries
    with store.begin() as conn:
        conn.execute(
            sa.update(CampaignHousehold)
            .where(CampaignHousehold.id == entry["entry_id"])
            .values(attempts=campaign.calling.max_attempts)
        )
    built = practice.build(campaign)
    assert built.reasons == {"2": "max_attempts_reached", "10": "max_attempts_reached"}
    assert all(shared[1] not in e["phones"] for e in built.entries)


@pytest.mark.parametrize("listing", ["clinic-dnc", "flagged-guarantor"])
def test_a_merged_entry_carries_no_number_that_is_dnc_for_one_of_its_households(
    practice: Practice, make_campaign: MakeCampaign, listing: str
) -> None:
    """Household 1 and household 2 share their first phone S, so one call covers both; a
    number that is do-not-call for household 1 must not ride along as household 2's alternate."""
    shared, other = local(700), local(701)
    if listing == "clinic-dnc":
        rows = [
            patient("1", clinic_id="C1", mobile_phone=shared[0], recall_due_date=overdue(30)),
            patient(
                "2",
                clinic_id="C2",
                mobile_phone=shared[0],
                home_phone=other[0],
                recall_due_date=overdue(30),
            ),
        ]
    else:
        rows = [
            patient("1", mobile_phone="", home_phone=other[0], do_not_call="yes"),
            patient("3", guarantor_id="1", mobile_phone=shared[0], recall_due_date=overdue(30)),
            patient("2", mobile_phone=shared[0], home_phone=other[0], recall_due_date=overdue(30)),
        ]
    practice.patients(*rows)
    if listing == "clinic-dnc":
        practice.dnc(other[1], "clinic", clinic="C1")
    built = practice.build(recall_campaign(make_campaign))
    [entry] = built.entries
    assert entry["household_key"] == "1"
    assert entry["phones"] == [shared[1]]


@pytest.mark.parametrize(
    ("guarantor", "children", "clinic", "expected"),
    [
        pytest.param("en", ["es", "en"], "C1", "en", id="guarantor-explicit-wins"),
        pytest.param("Spanish", ["en"], "C1", "es", id="guarantor-spanish-normalised"),
        pytest.param("", ["en", "es"], "C1", "es", id="any-member-es"),
        pytest.param("", ["", "pt", "fr"], "C1", "pt", id="first-member-explicit-by-id"),
        pytest.param("", ["", ""], "C1", "en", id="clinic-default-en"),
        pytest.param("", ["", ""], "C3", "es", id="clinic-default-es"),
    ],
)
def test_household_language(
    practice: Practice,
    make_campaign: MakeCampaign,
    guarantor: str,
    children: list[str],
    clinic: str,
    expected: str,
) -> None:
    practice.patients(
        patient("10", clinic_id=clinic, language=guarantor),
        *[
            patient(
                str(11 + i),
                clinic_id=clinic,
                guarantor_id="10",
                language=lang,
                recall_due_date=overdue(30) if i == 0 else "",
            )
            for i, lang in enumerate(children)
        ],
    )
    built = practice.build(recall_campaign(make_campaign))
    assert built.eligible == ["11"]
    assert built.entries[0]["language"] == expected


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        pytest.param(["es"], None, id="household-es-called-in-es-campaign"),
        pytest.param(["en"], "language", id="household-es-excluded-from-en-campaign"),
    ],
)
def test_language_exclusion_tests_the_household_language(
    practice: Practice, make_campaign: MakeCampaign, languages: list[str], expected: str | None
) -> None:
    practice.patients(
        patient("10", language=""),
        patient("11", guarantor_id="10", language="es"),  # not due, but their language counts
        patient("12", guarantor_id="10", language="en", recall_due_date=overdue(30)),
    )
    built = practice.build(recall_campaign(make_campaign, languages=languages))
    assert built.reasons["12"] == expected


@pytest.mark.parametrize(
    ("postal", "mobile", "clinic", "zones", "source"),
    [
        pytest.param("60601", local(1), "C1", [CHICAGO, LA], "area_code+zip", id="zip-and-area"),
        pytest.param("97201", local(1), "C1", [LA], "area_code+zip", id="zip-agrees"),
        pytest.param("", local(1), "C2", [LA], "area_code", id="area-code-only"),
        pytest.param(
            "60601",
            (TOLL_FREE.format(1), "+18005550001"),
            "C1",
            [CHICAGO],
            "zip",
            id="zip-only",
        ),
        pytest.param(
            "",
            (TOLL_FREE.format(1), "+18005550001"),
            "C2",
            [CHICAGO],
            "clinic",
            id="clinic-fallback",
        ),
        pytest.param(
            "99501",
            local(1, "907"),
            "C4",
            ["America/Adak", "America/Anchorage"],
            "area_code+zip",
            id="alaska-area-code-two-zones",
        ),
    ],
)
def test_timezone_candidates(
    practice: Practice,
    make_campaign: MakeCampaign,
    postal: str,
    mobile: tuple[str, str],
    clinic: str,
    zones: list[str],
    source: str,
) -> None:
    practice.patients(
        patient("1", clinic_id=clinic, postal_code=postal, mobile_phone=mobile[0]),
        patient("2", guarantor_id="1", mobile_phone="", postal_code="", recall_due_date=overdue(9)),
    )
    [entry] = practice.build(recall_campaign(make_campaign)).entries
    assert (entry["phone"], entry["timezones"], entry["timezone_source"]) == (
        mobile[1],
        zones,
        source,
    )


def test_zones_come_from_the_guarantors_zip_and_the_first_phone_only(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(
        patient(
            "1", postal_code="", mobile_phone=TOLL_FREE.format(1), home_phone=local(1, "312")[0]
        ),
        patient("2", guarantor_id="1", postal_code="60601", recall_due_date=overdue(9)),
    )
    [entry] = practice.build(recall_campaign(make_campaign)).entries
    assert entry["phones"][0] == "+18005550001"
    assert (entry["timezones"], entry["timezone_source"]) == ([LA], "clinic")


# --- 4. do-not-call ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "where", "listed"),
    [
        pytest.param("global", {}, True, id="global"),
        pytest.param("clinic", {"clinic": "C1"}, True, id="patients-clinic"),
        pytest.param("clinic", {"clinic": "C2"}, False, id="another-clinic"),
        pytest.param("campaign", {"campaign": "test-recall"}, True, id="this-campaign"),
        pytest.param("campaign", {"campaign": "other"}, False, id="another-campaign"),
    ],
)
def test_dnc_scopes(
    practice: Practice,
    make_campaign: MakeCampaign,
    scope: str,
    where: dict[str, str],
    listed: bool,
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30)))
    practice.dnc(own_mobile("1"), scope, **where)
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons == {"1": "do_not_call" if listed else None}


def test_a_removed_dnc_entry_no_longer_applies(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1", recall_due_date=overdue(30)))
    scope = practice.dnc(own_mobile("1"))
    campaign = recall_campaign(make_campaign)
    assert practice.build(campaign).reasons == {"1": "do_not_call"}
    practice.remove_dnc(own_mobile("1"), scope)
    built = practice.build(campaign)
    assert built.reasons == {"1": None}
    assert built.entries[0]["phone"] == own_mobile("1")


def test_clinic_dnc_applies_to_households_with_a_member_of_that_clinic(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(
        patient("10", clinic_id="C2", postal_code="60601"),
        patient("11", guarantor_id="10", mobile_phone="", recall_due_date=overdue(30)),
        patient("20", clinic_id="C2", postal_code="60601", recall_due_date=overdue(30)),
        patient("21", guarantor_id="20", clinic_id="C2", mobile_phone="", recall_due_date=""),
    )
    practice.dnc(own_mobile("10"), "clinic", clinic="C1")
    practice.dnc(own_mobile("20"), "clinic", clinic="C1")
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons == {"10": "not_due", "11": "do_not_call", "20": None, "21": "not_due"}


@pytest.mark.parametrize("flagged", ["10", "11"], ids=["flagged-guarantor", "flagged-child"])
def test_a_flagged_persons_numbers_are_dnc_for_the_whole_household_when_they_are_eligible(
    practice: Practice, make_campaign: MakeCampaign, flagged: str
) -> None:
    practice.patients(
        patient("10", do_not_call="yes" if flagged == "10" else ""),
        patient(
            "11",
            guarantor_id="10",
            do_not_call="yes" if flagged == "11" else "",
            recall_due_date=overdue(30),
        ),
        patient("12", guarantor_id="10", recall_due_date=overdue(30)),
    )
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons["11"] == ("do_not_call" if flagged == "11" else None)
    entry = built.entry_of("12")
    assert entry is not None
    assert own_mobile(flagged) not in entry["phones"]
    assert entry["phones"][0] == own_mobile("11" if flagged == "10" else "10")


@pytest.mark.parametrize(
    "variant",
    ["flagged-child-not-due", "flagged-child-deceased", "flagged-guarantor-work-number"],
)
def test_a_flagged_persons_number_is_dnc_for_their_household_whatever_their_fate(
    practice: Practice, make_campaign: MakeCampaign, variant: str
) -> None:
    """Numbers of a person flagged do-not-call are do-not-call for their whole household,
    even when that person is excluded earlier or the number is of a kind not dialed."""
    shared = local(800)
    if variant == "flagged-guarantor-work-number":
        rows = [
            patient("10", mobile_phone="", work_phone=shared[0], do_not_call="yes"),
            patient("12", guarantor_id="10", mobile_phone=shared[0], recall_due_date=overdue(30)),
        ]
        kinds = ["mobile", "home"]
    else:
        status = "deceased" if variant == "flagged-child-deceased" else ""
        rows = [
            patient("10", mobile_phone="", home_phone=shared[0]),
            patient(
                "11", guarantor_id="10", mobile_phone=shared[0], do_not_call="yes", status=status
            ),
            patient("12", guarantor_id="10", mobile_phone="", recall_due_date=overdue(30)),
        ]
        kinds = ["mobile", "home", "work"]
    practice.patients(*rows)
    built = practice.build(make_campaign("recall", calling={"phones": kinds}))
    assert built.reasons["12"] == "do_not_call"
    assert all(shared[1] not in e["phones"] for e in built.entries)


def test_a_dnc_number_never_appears_in_any_entry(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    shared = local(900)
    practice.patients(
        patient("1", home_phone=shared[0], preferred_phone="home", recall_due_date=overdue(30)),
        patient("2", mobile_phone=shared[0], home_phone=local(902)[0], recall_due_date=overdue(40)),
        patient("3", guarantor_id="2", recall_due_date=overdue(50)),
    )
    practice.dnc(shared[1])
    built = practice.build(recall_campaign(make_campaign))
    assert built.reasons == {"1": None, "2": None, "3": None}
    assert [e["phones"] for e in built.entries] == [
        [local(902)[1], own_mobile("3")],
        [own_mobile("1")],
    ]
    assert all(shared[1] != e["phone"] and shared[1] not in e["phones"] for e in built.entries)


def test_a_flagged_patient_is_do_not_call_even_without_a_phone(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(patient("1", mobile_phone="", do_not_call="TRUE", recall_due_date=overdue(9)))
    assert practice.build(recall_campaign(make_campaign)).reasons == {"1": "do_not_call"}


# --- 5. order ---------------------------------------------------------------------------------


def test_an_entry_takes_its_most_urgent_members_whole_sort_key(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    practice.patients(
        patient("1", mobile_phone="", home_phone=local(1)[0]),
        patient("2", guarantor_id="1", mobile_phone="", recall_due_date=overdue(100)),
        patient("3", guarantor_id="1", mobile_phone="", recall_due_date=overdue(50)),
        patient("4", recall_due_date=overdue(100)),
    )
    no_shows = [
        appointment(f"N{i}", "3", f"2026-0{i}-10 09:00", status="no_show") for i in range(1, 6)
    ] + [appointment(f"M{i}", "4", f"2026-0{i}-10 09:00", status="no_show") for i in range(1, 4)]
    practice.appointments(*no_shows)
    campaign = make_campaign(
        "recall",
        priority=[
            {"field": "overdue_days", "order": "desc"},
            {"field": "no_show_count", "order": "desc"},
        ],
    )
    built = practice.build(campaign)
    # Household 1's key is member 2's (100, 0), not a mix with member 3's 5 no-shows.
    assert [(e["household_key"], e["priority"]) for e in built.entries] == [
        ("4", {"overdue_days": 100, "no_show_count": 3}),
        ("1", {"overdue_days": 100, "no_show_count": 0}),
    ]


@pytest.mark.parametrize(
    ("order", "expected"), [("desc", ["2", "3", "1"]), ("asc", ["1", "3", "2"])]
)
def test_priority_order_asc_and_desc(
    practice: Practice, make_campaign: MakeCampaign, order: str, expected: list[str]
) -> None:
    practice.patients(
        patient("1", recall_due_date=overdue(10)),
        patient("2", recall_due_date=overdue(50)),
        patient("3", recall_due_date=overdue(30)),
    )
    campaign = make_campaign("recall", priority=[{"field": "overdue_days", "order": order}])
    built = practice.build(campaign)
    assert [e["household_key"] for e in built.entries] == expected
    assert [e["rank"] for e in built.entries] == [1, 2, 3]


def test_ties_break_by_household_id_in_natural_order(
    practice: Practice, make_campaign: MakeCampaign
) -> None:
    ids = ["10", "B7", "2", "A9", "1"]
    practice.patients(
        *[
            patient(pid, mobile_phone=local(100 + n)[0], recall_due_date=overdue(30))
            for n, pid in enumerate(ids)
        ]
    )
    built = practice.build(recall_campaign(make_campaign))
    assert [e["household_key"] for e in built.entries] == ["1", "2", "10", "A9", "B7"]
    assert [e["rank"] for e in built.entries] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("order", "expected"), [("desc", ["3", "1", "2"]), ("asc", ["1", "3", "2"])]
)
def test_nulls_sort_last_in_both_directions(
    make_campaign: MakeCampaign, order: str, expected: list[str]
) -> None:
    """No built-in priority of an eligible patient is null today, so this drives the entry
    assembly directly with a missing value."""
    campaign = make_campaign("recall", priority=[{"field": "overdue_days", "order": order}])
    keys = ["1", "2", "3"]
    eligible = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "external_id": keys,
            "guarantor_key": keys,
            "sort_id": [0, 1, 2],
            "clinic_id": [1, 1, 1],
            "household_language": ["en"] * 3,
            "overdue_days": [5.0, float("nan"), 9.0],
            "no_show_count": [0.0] * 3,
        }
    )
    households = pd.DataFrame(
        {
            "phones": [[f"+1503555000{k}"] for k in keys],
            "zones": [(LA,)] * 3,
            "timezone_source": ["zip"] * 3,
            "states": ["CA"] * 3,
        },
        index=keys,
    )
    empty = pd.DataFrame()
    population = Population(
        patients=empty,
        clinics=empty,
        phones=empty,
        visits=empty,
        recalls=empty,
        appointments=empty,
        households=pd.DataFrame({"household_key": [], "attempts": []}),
        dnc=empty,
    )
    phones = HouseholdPhones(reason=pd.Series(dtype=object), households=households)
    entries, _ = assemble_entries(campaign, population, eligible, phones)
    assert list(entries["household_key"]) == expected
    assert list(entries["rank"]) == [1, 2, 3]


# --- 6. stable entry ids ----------------------------------------------------------------------


def stored_rows(store: Engine) -> tuple[int, int]:
    with store.connect() as conn:
        entries = conn.execute(sa.select(sa.func.count()).select_from(DialListEntry)).scalar()
        patients = conn.execute(sa.select(sa.func.count()).select_from(DialListPatient)).scalar()
    return int(entries or 0), int(patients or 0)


def test_entry_ids_are_stable_across_rebuilds_and_new_households_get_new_ones(
    practice: Practice, make_campaign: MakeCampaign, store: Engine
) -> None:
    practice.patients(
        patient("1", recall_due_date=overdue(30)), patient("2", recall_due_date=overdue(60))
    )
    campaign = recall_campaign(make_campaign)
    first = {e["household_key"]: e["entry_id"] for e in practice.build(campaign).entries}
    practice.patients(patient("3", recall_due_date=overdue(90)))
    second = {e["household_key"]: e["entry_id"] for e in practice.build(campaign).entries}
    assert {k: second[k] for k in first} == first
    assert second["3"] not in first.values()
    # Household 1 drops off (45 days earlier it was not yet due) and comes back.
    away = practice.build(campaign, as_of=AS_OF - timedelta(days=45))
    assert {e["household_key"] for e in away.entries} == {"2", "3"}
    back = practice.build(campaign)
    assert {e["household_key"]: e["entry_id"] for e in back.entries} == second


def test_a_rebuild_replaces_the_previous_entries(
    practice: Practice, make_campaign: MakeCampaign, store: Engine
) -> None:
    practice.patients(
        patient("1", recall_due_date=overdue(30)),
        patient("2", recall_due_date=overdue(60)),
        patient("3", recall_due_date=overdue(90)),
    )
    campaign = recall_campaign(make_campaign)
    assert len(practice.build(campaign).entries) == 3
    assert stored_rows(store) == (3, 3)
    practice.dnc(own_mobile("2"))
    built = practice.build(campaign)
    assert [e["household_key"] for e in built.entries] == ["3", "1"]
    assert stored_rows(store) == (2, 3)


# --- 7. the command line ----------------------------------------------------------------------

CLI_CAMPAIGN = """\
name: test-recall
kind: recall
audience:
  overdue_days: [0, 730]
  due_within_days: 14
priority:
  - {field: overdue_days, order: desc}
  - {field: household_size, order: desc}
"""


@dataclass
class Cli:
    """Runs ``dialer --db URL --campaigns DIR ...``."""

    db_url: str
    folder: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(
            cli, ["--db", self.db_url, "--campaigns", str(self.folder), *args]
        )


@pytest.fixture
def dialer_cli(practice: Practice, db_url: str, tmp_path: Path) -> Cli:
    """A practice with two households on the list and three patients off it, and the CLI."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "test-recall.yaml").write_text(CLI_CAMPAIGN, encoding="utf-8")
    practice.patients(
        patient("10", postal_code="60601", state="IL"),
        patient("9", guarantor_id="10", mobile_phone="", recall_due_date=overdue(100)),
        patient("11", guarantor_id="10", recall_due_date=overdue(40)),
        patient("2", recall_due_date=overdue(40)),
        patient("3", status="deceased", recall_due_date=overdue(40)),
        patient("4", recall_due_date=overdue(800)),
    )
    return Cli(db_url, folder)


def entry_ids(store: Engine) -> dict[str, int]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(CampaignHousehold.household_key, CampaignHousehold.id))
        return {str(k): int(v) for k, v in rows}


def test_cli_build_json(dialer_cli: Cli) -> None:
    out = dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28", "--json")
    assert out.exit_code == 0, out.output
    excluded = dict.fromkeys(exclusion_reasons("recall"), 0)
    excluded.update(deceased=1, not_due=2)
    assert json.loads(out.stdout) == {
        "campaign": "test-recall",
        "as_of": "2026-11-28",
        "candidates": 6,
        "eligible_patients": 3,
        "entries": 2,
        "excluded": excluded,
    }
    assert list(json.loads(out.stdout)["excluded"]) == exclusion_reasons("recall")


def test_cli_show_csv(dialer_cli: Cli, store: Engine) -> None:
    assert dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28").exit_code == 0
    out = dialer_cli("lists", "show", "test-recall", "--format", "csv")
    assert out.exit_code == 0, out.output
    ids = entry_ids(store)
    assert out.stdout.splitlines() == [
        "rank,entry_id,phone,timezones,language,household_id,patient_ids,overdue_days,"
        "household_size",
        f"1,{ids['10']},{own_mobile('10')},{CHICAGO} {LA},en,10,9;11,100,2",
        f"2,{ids['2']},{own_mobile('2')},{LA},en,2,2,40,1",
    ]
    limited = dialer_cli("lists", "show", "test-recall", "--format", "csv", "--limit", "1")
    assert limited.stdout.splitlines() == out.stdout.splitlines()[:2]


def test_cli_show_json_has_whole_numbers(dialer_cli: Cli, store: Engine) -> None:
    dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28")
    out = dialer_cli("lists", "show", "test-recall", "--format", "json", "--limit", "1")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == [
        {
            "rank": 1,
            "entry_id": entry_ids(store)["10"],
            "phone": own_mobile("10"),
            "timezones": f"{CHICAGO} {LA}",
            "language": "en",
            "household_id": "10",
            "patient_ids": "9;11",
            "overdue_days": 100,
            "household_size": 2,
        }
    ]


def test_cli_show_excluded(dialer_cli: Cli) -> None:
    dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28")
    out = dialer_cli("lists", "show", "test-recall", "--excluded", "--format", "csv")
    assert out.exit_code == 0, out.output
    header, *rows = list(csv.reader(io.StringIO(out.stdout)))
    assert header == ["patient_id", "household_id", "reason"]
    assert sorted(rows) == [["10", "10", "not_due"], ["3", "3", "deceased"], ["4", "4", "not_due"]]
    limited = dialer_cli(
        "lists", "show", "test-recall", "--excluded", "--format", "csv", "--limit", "2"
    )
    assert len(limited.stdout.splitlines()) == 3


def test_cli_explain_an_eligible_and_an_excluded_patient(dialer_cli: Cli, store: Engine) -> None:
    dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28")
    on = dialer_cli("lists", "explain", "test-recall", "11")
    assert on.exit_code == 0, on.output
    assert on.stdout == (
        "Patient 11 (household 10) is on the test-recall list built as of 2026-11-28: "
        f"entry {entry_ids(store)['10']}, rank 1, called on {own_mobile('10')} "
        f"(then {own_mobile('11')}) for patients 9, 11; time zones {CHICAGO}, {LA}; "
        "language en; overdue_days 100, household_size 2.\n"
    )
    off = dialer_cli("lists", "explain", "test-recall", "3")
    assert off.exit_code == 0, off.output
    assert off.stdout == (
        "Patient 3 (household 3) is not on the test-recall list built as of 2026-11-28: "
        "deceased: the patient is deceased.\n"
    )
    not_due = dialer_cli("lists", "explain", "test-recall", "4")
    assert not_due.stdout == (
        "Patient 4 (household 4) is not on the test-recall list built as of 2026-11-28: "
        "not_due: no enabled, unscheduled recall of the campaign's types is due in its "
        "window.\n"
    )


def test_cli_explain_a_patient_imported_after_the_build(
    dialer_cli: Cli, practice: Practice
) -> None:
    dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28")
    practice.patients(patient("5", recall_due_date=overdue(30)))
    out = dialer_cli("lists", "explain", "test-recall", "5")
    assert out.exit_code == 0, out.output
    assert out.stdout == (
        "Patient 5 (household 5) is not on the test-recall list built as of 2026-11-28: "
        "not_a_candidate: not a candidate of this build: the patient's clinic is not one of "
        "the campaign's clinics, or the patient was imported or deleted after the build; run "
        "`dialer lists build` again.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["lists", "build", "nope", "--as-of", "2026-11-28"],
            "Error: No campaign named 'nope' in {folder} (known: test-recall)\n",
            id="build-unknown-campaign",
        ),
        pytest.param(
            ["lists", "show", "nope"],
            "Error: No campaign named 'nope' in {folder} (known: test-recall)\n",
            id="show-unknown-campaign",
        ),
        pytest.param(
            ["lists", "show", "test-recall"],
            "Error: No list has been built for 'test-recall'; run "
            "`dialer lists build test-recall`\n",
            id="show-before-build",
        ),
        pytest.param(
            ["lists", "explain", "test-recall", "11"],
            "Error: No list has been built for 'test-recall'; run "
            "`dialer lists build test-recall`\n",
            id="explain-before-build",
        ),
    ],
)
def test_cli_errors(dialer_cli: Cli, args: list[str], message: str) -> None:
    out = dialer_cli(*args)
    assert out.exit_code == 1
    assert out.stderr == message.format(folder=dialer_cli.folder)
    assert out.stdout == ""


def test_cli_explain_unknown_patient(dialer_cli: Cli) -> None:
    dialer_cli("lists", "build", "test-recall", "--as-of", "2026-11-28")
    out = dialer_cli("lists", "explain", "test-recall", "999")
    assert out.exit_code == 1
    assert out.stderr == "Error: No patient with id '999'\n"


def test_cli_build_rejects_a_bad_date(dialer_cli: Cli) -> None:
    out = dialer_cli("lists", "build", "test-recall", "--as-of", "28/11/2026")
    assert out.exit_code == 2
    assert "expected a date as YYYY-MM-DD, got '28/11/2026'" in out.stderr


# --- 8. invariants over random populations (SQLite only) --------------------------------------

POOL = [local(n) for n in range(1, 5)]
STATUSES = ["active", "active", "active", "inactive", "deceased", "non_patient", "prospective"]
PROPERTY_CAMPAIGN = parse_campaign(
    {"name": "prop-recall", "kind": "recall", "audience": {}}, Path("prop-recall.yaml")
)


@st.composite
def populations(draw: st.DrawFn) -> dict[str, Any]:
    """Up to 8 patients in households, with shared, invalid and missing phones, DNC entries,
    retired numbers and recall dates around the window."""
    count = draw(st.integers(1, 8))
    phone = st.sampled_from(["", INVALID, *[raw for raw, _ in POOL]])
    rows: list[dict[str, str]] = []
    heads: list[str] = []
    for n in range(1, count + 1):
        pid = str(n)
        guarantor = draw(st.sampled_from(["", *heads])) if heads else ""
        if not guarantor:
            heads.append(pid)
        days = draw(st.one_of(st.none(), st.integers(-30, 800)))
        rows.append(
            patient(
                pid,
                clinic_id=draw(st.sampled_from(["C1", "C2"])),
                guarantor_id=guarantor,
                status=draw(st.sampled_from(STATUSES)),
                language=draw(st.sampled_from(["en", "es", ""])),
                mobile_phone=draw(phone),
                home_phone=draw(phone),
                preferred_phone=draw(st.sampled_from(["", "mobile", "home"])),
                do_not_call=draw(st.sampled_from(["", "", "", "yes"])),
                recall_due_date="" if days is None else overdue(days),
            )
        )
    scopes = st.sampled_from(
        [
            ("global", {}),
            ("clinic", {"clinic": "C1"}),
            ("clinic", {"clinic": "C2"}),
            ("campaign", {"campaign": "prop-recall"}),
            ("campaign", {"campaign": "other"}),
        ]
    )
    dnc = draw(st.lists(st.tuples(st.sampled_from([e for _, e in POOL]), scopes), max_size=4))
    retired = draw(st.lists(st.sampled_from([e for _, e in POOL]), max_size=1))
    return {"rows": rows, "dnc": dnc, "retired": retired}


@pytest.fixture(scope="module")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated empty SQLite store, copied for each example."""
    path = tmp_path_factory.mktemp("template") / "dialer.db"
    open_store(f"sqlite:///{path}", upgrade=True).dispose()
    yield path


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(population=populations())
def test_invariants_over_random_populations(
    template_store: Path, now: datetime, population: dict[str, Any]
) -> None:
    """Runs once, on SQLite (it does not take the two-database ``store`` fixture)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dialer.db"
        shutil.copy(template_store, path)
        engine = open_store(f"sqlite:///{path}", upgrade=True)
        try:
            _check_invariants(_build_random(engine, Path(folder), now, population), population)
        finally:
            engine.dispose()


def _build_random(engine: Engine, folder: Path, now: datetime, population: dict[str, Any]) -> Built:
    def write(name: str, text: str) -> Path:
        target = folder / name
        target.write_text(text, encoding="utf-8")
        return target

    practice = Practice(engine, write, now)
    practice.patients(*population["rows"])
    for phone, (scope, where) in population["dnc"]:
        practice.dnc(phone, scope, **where)
    for phone in population["retired"]:
        practice.retire(phone)
    return practice.build(PROPERTY_CAMPAIGN)


def _check_invariants(built: Built, population: dict[str, Any]) -> None:
    rows = {r["patient_id"]: r for r in population["rows"]}
    reasons = built.reasons
    kind = "recall"
    # Every candidate has exactly one fate and the counts add up.
    assert sorted(reasons) == sorted(rows)
    assert set(reasons.values()) <= {None, *exclusion_reasons(kind)}
    assert_counts_add_up(built, kind)
    covered = [p for e in built.entries for p in e["patient_ids"]]
    assert sorted(covered) == built.eligible
    cand = built.result.candidates
    assert (cand["reason"].isna() == cand["entry_key"].notna()).all()
    # A status or an open recall alone decides these reasons.
    for pid, row in rows.items():
        status = row["status"] or "active"
        if status != "active":
            assert reasons[pid] == status
        elif not row["recall_due_date"]:
            assert reasons[pid] == "not_due"
    # No entry carries a do-not-call, retired or invalid number.
    valid = {e for _, e in POOL}
    everywhere = {
        phone
        for phone, (scope, where) in population["dnc"]
        if scope == "global" or where.get("campaign") == "prop-recall"
    }
    by_clinic = {(p, w["clinic"]) for p, (s, w) in population["dnc"] if s == "clinic"}
    for entry in built.entries:
        assert entry["phone"] == entry["phones"][0]
        assert len(set(entry["phones"])) == len(entry["phones"])
        clinics = {rows[p]["clinic_id"] for p in entry["patient_ids"]}
        for number in entry["phones"]:
            assert number in valid
            assert number not in everywhere
            assert number not in population["retired"]
            assert not any((number, c) in by_clinic for c in clinics)
        for pid in entry["patient_ids"]:
            owners = [pid, rows[pid]["guarantor_id"] or pid]
            for owner in owners:
                if rows[owner]["do_not_call"]:
                    flagged = {rows[owner]["mobile_phone"], rows[owner]["home_phone"]}
                    assert not {_e164(n) for n in flagged} & set(entry["phones"])


def _e164(raw: str) -> str | None:
    return {r: e for r, e in POOL}.get(raw)
