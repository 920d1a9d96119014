"""A small practice for the dial-list tests, loaded the way users load theirs.

Patients and appointments are written as canonical CSV files and imported with
``import_file``; facts the CSV cannot carry (recalls other than prophy, do-not-call entries,
retired numbers, dialer confirmations, per-campaign household counters, missing consent) are
written with the store's own functions or plain SQLAlchemy inserts. ``Practice.build`` builds a
campaign's list through ``build_list`` and returns the stored view of it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from dialer.campaigns import CampaignModel
from dialer.ingest.importer import ImportResult, import_file
from dialer.lists import DialListResult
from dialer.store.dial_lists import build_list, latest_list, list_entries, sync_campaign
from dialer.store.dnc import Scope, add_dnc, remove_dnc
from dialer.store.models import (
    Appointment,
    AppointmentConfirmation,
    CampaignHousehold,
    Clinic,
    Patient,
    Phone,
    Recall,
    RetiredPhone,
)

AS_OF = date(2026, 11, 28)
CLINICS_CSV = """clinic_id,name,timezone,state,phone,language
C1,Bright Smiles Portland,America/Los_Angeles,OR,(503) 555-0100,
C2,Bright Smiles Chicago,America/Chicago,IL,(312) 555-0100,
C3,Clínica Sonrisa,America/Chicago,TX,(210) 555-0100,es
C4,Bright Smiles Anchorage,America/Anchorage,AK,(907) 555-0100,
"""
PATIENT_COLUMNS = [
    "patient_id",
    "clinic_id",
    "first_name",
    "last_name",
    "birth_date",
    "guarantor_id",
    "language",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "postal_code",
    "state",
    "preferred_phone",
    "do_not_call",
    "status",
    "last_visit_date",
    "recall_due_date",
]
APPOINTMENT_COLUMNS = [
    "appointment_id",
    "patient_id",
    "clinic_id",
    "start_at",
    "duration_minutes",
    "status",
    "kind",
]
OWN = "own"  # a patient's own mobile, derived from their id (see own_mobile)
INVALID = "555-01"  # does not parse as a phone: stored as invalid
TOLL_FREE = "(800) 555-{:04d}"  # valid, but its area code says nothing about a time zone


def own_mobile(patient_id: str) -> str:
    """The E.164 mobile every test patient has unless told otherwise (503 is Portland)."""
    return f"+1503555{2000 + int(patient_id):04d}"


def local(number: int, area: str = "503") -> tuple[str, str]:
    """(as typed, E.164) of a 555 number in an area code."""
    return f"({area}) 555-{number:04d}", f"+1{area}555{number:04d}"


def overdue(days: int, as_of: date = AS_OF) -> str:
    """The ISO date a recall was due to be ``days`` overdue on ``as_of`` (negative: due later)."""
    return (as_of - timedelta(days=days)).isoformat()


def patient(patient_id: str, **fields: Any) -> dict[str, str]:
    """A canonical patients.csv row: an active adult of C1 in Portland with their own mobile."""
    row = {
        "patient_id": patient_id,
        "clinic_id": "C1",
        "first_name": f"First{patient_id}",
        "last_name": f"Last{patient_id}",
        "birth_date": "1980-06-15",
        "guarantor_id": "",
        "language": "en",
        "mobile_phone": OWN,
        "home_phone": "",
        "work_phone": "",
        "postal_code": "97201",
        "state": "OR",
        "preferred_phone": "",
        "do_not_call": "",
        "status": "",
        "last_visit_date": "",
        "recall_due_date": "",
    }
    unknown = set(fields) - set(row)
    assert not unknown, f"unknown patient fields {unknown}"
    row.update({k: "" if v is None else str(v) for k, v in fields.items()})
    if row["mobile_phone"] == OWN:
        row["mobile_phone"] = own_mobile(patient_id)
    return row


def appointment(
    appointment_id: str,
    patient_id: str,
    start_at: str,
    status: str = "scheduled",
    clinic_id: str = "C1",
) -> dict[str, str]:
    """A canonical appointments.csv row; ``start_at`` is clinic-local ``YYYY-MM-DD HH:MM``."""
    return {
        "appointment_id": appointment_id,
        "patient_id": patient_id,
        "clinic_id": clinic_id,
        "start_at": start_at,
        "duration_minutes": "60",
        "status": status,
        "kind": "hygiene",
    }


def csv_text(columns: list[str], rows: list[dict[str, str]]) -> str:
    """Rows as CSV text with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@dataclass
class Built:
    """A build as a user sees it: the summary, each patient's fate and the stored entries."""

    result: DialListResult
    list_id: int
    entries: list[dict[str, Any]]

    @property
    def reasons(self) -> dict[str, str | None]:
        """Every candidate's reason by external id (None: on the list)."""
        cand = self.result.candidates
        return {
            str(ext): (None if pd.isna(reason) else str(reason))
            for ext, reason in zip(cand["external_id"], cand["reason"], strict=True)
        }

    def reason(self, patient_id: str) -> str | None:
        """One candidate's reason (None when on the list)."""
        return self.reasons[patient_id]

    @property
    def eligible(self) -> list[str]:
        """External ids of the candidates on the list, sorted as text."""
        return sorted(p for p, r in self.reasons.items() if r is None)

    def entry_of(self, patient_id: str) -> dict[str, Any] | None:
        """The stored entry covering a patient, or None."""
        found = [e for e in self.entries if patient_id in e["patient_ids"]]
        assert len(found) <= 1, f"patient {patient_id} is on {len(found)} entries"
        return found[0] if found else None

    @property
    def summary(self) -> dict[str, Any]:
        """The counts ``lists build --json`` prints (without campaign and as_of)."""
        return {
            "candidates": len(self.result.candidates),
            "eligible_patients": self.result.eligible_patients,
            "entries": len(self.result.entries),
            "excluded": self.result.excluded,
        }

    def priority(self, patient_id: str) -> dict[str, Any]:
        """The priority values of the entry covering a patient."""
        entry = self.entry_of(patient_id)
        assert entry is not None, f"patient {patient_id} is not on the list"
        return dict(entry["priority"])


class Practice:
    """A store being filled for one test, with the three clinics of ``CLINICS_CSV``."""

    def __init__(self, store: Engine, write_csv: Callable[..., Path], now: datetime) -> None:
        self.store = store
        self.write_csv = write_csv
        self.now = now
        self._files = 0
        self.load("clinics", CLINICS_CSV)

    def load(self, kind: str, text: str) -> ImportResult:
        """Import one canonical file; every row must be accepted."""
        self._files += 1
        path = self.write_csv(f"{kind}-{self._files}.csv", text)
        result = import_file(self.store, kind, path, now=self.now)
        assert result.rejected == 0, result.messages
        return result

    def patients(self, *rows: dict[str, str]) -> None:
        """Import patients (upsert by id)."""
        self.load("patients", csv_text(PATIENT_COLUMNS, list(rows)))

    def appointments(self, *rows: dict[str, str]) -> None:
        """Import appointments (upsert by id)."""
        self.load("appointments", csv_text(APPOINTMENT_COLUMNS, list(rows)))

    def patient_id(self, external_id: str) -> int:
        """A patient's store id."""
        with self.store.connect() as conn:
            return int(
                conn.execute(
                    sa.select(Patient.id).where(Patient.external_id == external_id)
                ).scalar_one()
            )

    def clinic_id(self, external_id: str) -> int:
        """A clinic's store id."""
        with self.store.connect() as conn:
            return int(
                conn.execute(sa.select(Clinic.id).where(Clinic.external_id == external_id)).one()[0]
            )

    def recall(
        self,
        patient_id: str,
        recall_type: str,
        due: str | None,
        *,
        disabled: bool = False,
        disabled_until: date | None = None,
        scheduled: date | None = None,
    ) -> None:
        """A recall of any type, as the Open Dental importer would store it."""
        with self.store.begin() as conn:
            conn.execute(
                sa.insert(Recall).values(
                    external_id=f"{patient_id}:{recall_type}",
                    patient_id=self.patient_id(patient_id),
                    recall_type=recall_type,
                    due_date=date.fromisoformat(due) if due else None,
                    disabled=disabled,
                    disabled_until=disabled_until,
                    scheduled_date=scheduled,
                    source="opendental",
                    source_hash="",
                    created_at=self.now,
                    updated_at=self.now,
                )
            )

    def dnc(
        self,
        phone: str,
        scope: str = "global",
        *,
        clinic: str | None = None,
        campaign: str | None = None,
    ) -> Scope:
        """List a number (E.164) on a do-not-call list."""
        where = Scope(
            scope, clinic_id=self.clinic_id(clinic) if clinic else None, campaign=campaign
        )
        with self.store.begin() as conn:
            add_dnc(conn, phone, where, source="manual", reason="asked", now=self.now)
        return where

    def remove_dnc(self, phone: str, scope: Scope) -> None:
        """Take a number off a do-not-call list (the entry stays, marked removed)."""
        with self.store.begin() as conn:
            assert remove_dnc(conn, phone, scope, self.now) == 1

    def retire(self, phone: str, *, restored: bool = False) -> None:
        """Retire a number as a wrong number (optionally restored since)."""
        with self.store.begin() as conn:
            conn.execute(
                sa.insert(RetiredPhone).values(
                    phone=phone,
                    reason="wrong_number",
                    retired_at=self.now - timedelta(days=3),
                    restored_at=self.now - timedelta(days=1) if restored else None,
                )
            )

    def confirm(self, appointment_id: str, *, moved_by: timedelta = timedelta(0)) -> None:
        """A dialer confirmation of an appointment's slot (``moved_by``: of another slot)."""
        with self.store.begin() as conn:
            appt_id, start_at = conn.execute(
                sa.select(Appointment.id, Appointment.start_at).where(
                    Appointment.external_id == appointment_id
                )
            ).one()
            conn.execute(
                sa.insert(AppointmentConfirmation).values(
                    appointment_id=appt_id,
                    start_at=start_at + moved_by,
                    confirmed_at=self.now - timedelta(days=1),
                )
            )

    def household_counters(
        self,
        campaign: CampaignModel,
        household: str,
        *,
        attempts: int = 0,
        last_converted_at: datetime | None = None,
    ) -> None:
        """What the campaign has done with a household so far (attempts, last conversion)."""
        with self.store.begin() as conn:
            cid = sync_campaign(conn, campaign, None, self.now)
            conn.execute(
                sa.insert(CampaignHousehold).values(
                    campaign_id=cid,
                    household_key=household,
                    attempts=attempts,
                    last_converted_at=last_converted_at,
                    created_at=self.now,
                )
            )

    def drop_consent(self, patient_id: str, kind: str) -> None:
        """Forget the consent record of one of a patient's phones."""
        with self.store.begin() as conn:
            conn.execute(
                sa.update(Phone)
                .where(Phone.patient_id == self.patient_id(patient_id), Phone.kind == kind)
                .values(consent_source=None, consent_date=None)
            )

    def forget_clinic_timezone(self, clinic: str) -> None:
        """A clinic whose time zone is unknown (possible with Open Dental data)."""
        with self.store.begin() as conn:
            conn.execute(
                sa.update(Clinic).where(Clinic.external_id == clinic).values(timezone=None)
            )

    def build(self, campaign: CampaignModel, as_of: date | None = AS_OF) -> Built:
        """Build and save the campaign's list; the stored entries in rank order."""
        result, list_id = build_list(self.store, campaign, None, as_of=as_of, now=self.now)
        return Built(result=result, list_id=list_id, entries=self.stored_entries(campaign))

    def stored_entries(self, campaign: CampaignModel) -> list[dict[str, Any]]:
        """The campaign's latest stored entries, with lists split and priority named."""
        with self.store.connect() as conn:
            built = latest_list(conn, campaign.name)
            frame = list_entries(conn, built.id)
            fields = list(built.priority_fields)
        entries: list[dict[str, Any]] = []
        for row in frame.to_dict("records"):
            entries.append(
                {
                    **{str(k): v for k, v in row.items()},
                    "entry_id": int(row["entry_id"]),
                    "rank": int(row["rank"]),
                    "patient_count": int(row["patient_count"]),
                    "phones": row["phones"].split(),
                    "timezones": row["timezones"].split(),
                    "patient_ids": row["patient_ids"].split(";"),
                    "priority": dict(zip(fields, row["priority"], strict=True)),
                }
            )
        return entries
