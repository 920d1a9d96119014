"""Writing validated rows into the store: classify, bulk insert, bulk update, snapshot deletes.

All functions run inside the caller's transaction and return (inserted, updated, deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pandas as pd
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import aliased

from dialer import geo
from dialer.ingest.canonical import Checked, row_hashes
from dialer.ingest.reading import RawTable
from dialer.store.models import Appointment, Clinic, Patient, Phone, PhoneKind, Recall

CHUNK = 20_000
CONSENT_SOURCE = "provided_to_practice"
PATIENT_FIELDS = [
    "external_id",
    "clinic_id",
    "guarantor_external_id",
    "first_name",
    "last_name",
    "birth_date",
    "language",
    "postal_code",
    "state",
    "preferred_phone",
    "do_not_call",
    "status",
    "last_visit_date",
]
CLINIC_FIELDS = ["external_id", "name", "timezone", "state", "phone", "default_language"]
APPOINTMENT_FIELDS = [
    "external_id",
    "patient_id",
    "clinic_id",
    "start_at",
    "duration_minutes",
    "status",
    "kind",
    "booked_at",
]
INT_FIELDS = ("clinic_id", "patient_id", "duration_minutes")


@dataclass
class FileRows:
    """The validated file being written."""

    checked: Checked
    table: RawTable
    now: datetime
    snapshot: bool
    source: str = "csv"  # rows of other sources are never touched by this one's snapshots
    progress: Callable[[str, int, int], None] | None = None  # (stage, rows done, rows)

    def advance(self, done: int) -> None:
        """Report ``done`` of the file's rows written."""
        if self.progress:
            self.progress("writing", done, len(self.checked.values))


@dataclass
class Plan:
    """Accepted rows split by what they do to the store."""

    new: pd.DataFrame
    changed: pd.DataFrame  # carries the store ``id``
    stale_ids: list[int]  # live rows absent from a snapshot file


def chunks(records: list[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    """Slices of ``records`` small enough for one statement."""
    for start in range(0, len(records), size):
        yield records[start : start + size]


def records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[str, Any]]:
    """Plain Python dicts (None for missing, int for integer ids) for SQLAlchemy."""
    columns = list(columns)
    out = frame[columns].astype(object).where(frame[columns].notna(), None)
    rows = cast(list[dict[str, Any]], out.to_dict("records"))
    for row in rows:
        for name in INT_FIELDS:
            if row.get(name) is not None:
                row[name] = int(row[name])
    return rows


def plan_rows(
    conn: Connection, table: Table, rows: FileRows, fields: list[str], source: str = "csv"
) -> Plan:
    """Compare accepted rows with the store by external id and normalised-value hash."""
    checked = rows.checked
    accepted = checked.values[checked.accepted].copy()
    accepted["source_hash"] = row_hashes(accepted[fields + _hash_extra(accepted)])
    stored = pd.DataFrame(
        conn.execute(
            select(
                table.c.external_id,
                table.c.id,
                table.c.source_hash,
                table.c.deleted_at,
                table.c.source,
            )
        ).all(),
        columns=["external_id", "id", "stored_hash", "deleted_at", "stored_source"],
    )
    merged = accepted.merge(stored, on="external_id", how="left")
    is_new = merged["id"].isna()
    same = (merged["stored_hash"] == merged["source_hash"]) & merged["deleted_at"].isna()
    stale: list[int] = []
    if rows.snapshot:
        present = set(checked.values["external_id"])
        live = stored[stored["deleted_at"].isna() & stored["stored_source"].eq(source)]
        stale = [int(i) for i in live.loc[~live["external_id"].isin(present), "id"]]
    return Plan(new=merged[is_new], changed=merged[~is_new & ~same], stale_ids=stale)


def _hash_extra(frame: pd.DataFrame) -> list[str]:
    extra = [c for c in frame.columns if c.endswith(("_raw", "_phone", "_valid"))]
    return [*extra, "recall_due_date"] if "recall_due_date" in frame.columns else extra


def apply_plan(
    conn: Connection, table: Table, plan: Plan, fields: list[str], rows: FileRows
) -> None:
    """Insert new rows, update changed ones (undeleting them), mark stale ones deleted."""
    stamp = {"source": rows.source, "updated_at": rows.now, "deleted_at": None}
    new = records(plan.new, [*fields, "source_hash"])
    for row in new:
        row.update(stamp, created_at=rows.now)
    changed = records(plan.changed, [*fields, "source_hash", "id"])
    for row in changed:
        row.update(stamp)
        row["b_id"] = int(row.pop("id"))
    statement = update(table).where(table.c.id == bindparam("b_id"))
    untouched = len(rows.checked.values) - len(new) - len(changed)
    done = untouched
    for part in chunks(new):
        conn.execute(insert(table), part)
        done += len(part)
        rows.advance(done)
    for part in chunks(changed):
        conn.execute(statement, part)
        done += len(part)
        rows.advance(done)
    stale = [{"b_id": i, "deleted_at": rows.now, "updated_at": rows.now} for i in plan.stale_ids]
    deleted = statement.values(
        deleted_at=bindparam("deleted_at"), updated_at=bindparam("updated_at")
    )
    for part in chunks(stale):
        conn.execute(deleted, part)


def write_clinics(conn: Connection, rows: FileRows) -> tuple[int, int, int]:
    """Upsert clinics."""
    table = Clinic.__table__
    plan = plan_rows(conn, table, rows, CLINIC_FIELDS, rows.source)  # type: ignore[arg-type]
    apply_plan(conn, table, plan, CLINIC_FIELDS, rows)  # type: ignore[arg-type]
    return len(plan.new), len(plan.changed), len(plan.stale_ids)


def write_appointments(conn: Connection, rows: FileRows) -> tuple[int, int, int]:
    """Upsert appointments."""
    table = Appointment.__table__
    plan = plan_rows(conn, table, rows, APPOINTMENT_FIELDS, rows.source)  # type: ignore[arg-type]
    apply_plan(conn, table, plan, APPOINTMENT_FIELDS, rows)  # type: ignore[arg-type]
    return len(plan.new), len(plan.changed), len(plan.stale_ids)


def write_patients(conn: Connection, rows: FileRows) -> tuple[int, int, int]:
    """Upsert patients, then their phones and prophy recall, then link guarantors."""
    table = Patient.__table__
    plan = plan_rows(conn, table, rows, PATIENT_FIELDS, rows.source)  # type: ignore[arg-type]
    apply_plan(conn, table, plan, PATIENT_FIELDS, rows)  # type: ignore[arg-type]
    touched = pd.concat([plan.new, plan.changed], ignore_index=True)
    ids = {ext: pid for ext, pid in conn.execute(select(Patient.external_id, Patient.id))}
    touched["patient_id"] = touched["external_id"].map(ids).astype("int64")
    replace_phones(conn, touched, rows.now)
    if "recall_due_date" in rows.table.cells.columns:
        replace_prophy_recalls(conn, touched, rows.now)
    link_guarantors(conn)
    return len(plan.new), len(plan.changed), len(plan.stale_ids)


def replace_phones(conn: Connection, touched: pd.DataFrame, now: datetime) -> None:
    """Replace the phones of touched patients, keeping consent dates of unchanged numbers."""
    patient_ids = [int(i) for i in touched["patient_id"]]
    kept: dict[tuple[int, str, str], tuple[str | None, Any]] = {}
    for part in _id_chunks(patient_ids):
        found = conn.execute(
            select(
                Phone.patient_id, Phone.kind, Phone.phone, Phone.consent_source, Phone.consent_date
            ).where(Phone.patient_id.in_(part))
        )
        for pid, kind, phone, source, when in found:
            kept[(pid, kind, phone or "")] = (source, when)
        conn.execute(delete(Phone).where(Phone.patient_id.in_(part)))
    new_rows: list[dict[str, Any]] = []
    for kind in PhoneKind:
        name = kind.value
        with_kind = touched[touched[f"{name}_raw"].ne("")]
        for pid, raw, e164, valid in zip(
            with_kind["patient_id"],
            with_kind[f"{name}_raw"],
            with_kind[f"{name}_phone"],
            with_kind[f"{name}_valid"],
            strict=True,
        ):
            e164 = e164 if isinstance(e164, str) else None  # NaN after pandas joins
            source, when = kept.get((int(pid), name, e164 or ""), (None, None))
            if valid and source is None:
                source, when = CONSENT_SOURCE, now.date()
            new_rows.append(
                {
                    "patient_id": int(pid),
                    "kind": name,
                    "raw": raw[:64],
                    "phone": e164,
                    "valid": bool(valid),
                    "consent_source": source,
                    "consent_date": when,
                    "timezones": " ".join(geo.phone_timezones(e164)) if e164 else None,
                }
            )
    for chunk in chunks(new_rows):
        conn.execute(insert(Phone), chunk)


def replace_prophy_recalls(conn: Connection, touched: pd.DataFrame, now: datetime) -> None:
    """The canonical file's ``recall_due_date`` is the patient's prophy recall."""
    patient_ids = [int(i) for i in touched["patient_id"]]
    for part in _id_chunks(patient_ids):
        conn.execute(
            delete(Recall).where(Recall.patient_id.in_(part), Recall.recall_type == "prophy")
        )
    due = touched[touched["recall_due_date"].notna()]
    new_rows = [
        {
            "patient_id": int(pid),
            "recall_type": "prophy",
            "due_date": when,
            "disabled": False,
            "external_id": f"{ext}:prophy",
            "source": "csv",
            "source_hash": "",
            "created_at": now,
            "updated_at": now,
        }
        for pid, ext, when in zip(
            due["patient_id"], due["external_id"], due["recall_due_date"], strict=True
        )
    ]
    for chunk in chunks(new_rows):
        conn.execute(insert(Recall), chunk)


def link_guarantors(conn: Connection) -> None:
    """Point ``guarantor_id`` at the live patient named by ``guarantor_external_id``."""
    guarantor = aliased(Patient)
    conn.execute(
        update(Patient)
        .values(guarantor_id=guarantor.id)
        .where(
            guarantor.external_id == Patient.guarantor_external_id,
            (Patient.guarantor_id.is_(None)) | (Patient.guarantor_id != guarantor.id),
        )
    )


def _id_chunks(ids: list[int], size: int = 5_000) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
