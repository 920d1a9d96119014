"""Importing an Open Dental database directly (``dialer import opendental``).

Seven tables (patient, appointment, recall, recalltype, clinic, definition, preference) are read
with SQLAlchemy Core in one read transaction, only the columns below (no SSN, notes or balances),
and turned into the canonical cells of the CSV importer so the same checks apply. The store is
written in ONE transaction (clinics, patients, appointments, recalls): all or nothing. Each table
is a snapshot of source ``opendental``: its rows that are gone from Open Dental, or that Open
Dental marks deleted, are marked deleted; rows of other sources are never touched.

Mapping, and the decisions behind it:

- Ids are the Open Dental keys as decimal strings. ``0001-01-01`` (with or without a time) and
  MySQL's ``0000-00-00`` are null, birthdates included; a value that is no date at all is passed
  on so the canonical check rejects its row rather than guess.
- Patients: Guarantor is the household. PatStatus 0 active, 1 non_patient, 2 inactive, 3
  archived, 5 deceased, 6 prospective; 4 (deleted) is skipped, and being absent from the
  snapshot it becomes deleted here. HmPhone/WkPhone/WirelessPhone are home/work/mobile.
  Do-not-call when PreferContactMethod, PreferConfirmMethod, PreferRecallMethod or
  PreferContactConfidential is 1 (DoNotCall): the last uses the same enum, and a patient who said
  "do not call" anywhere is not called (the compliance-safe reading). The preferred phone: the
  store keeps one for every campaign kind, so the general PreferContactMethod wins, and
  PreferConfirmMethod, then PreferRecallMethod, only fill in when the ones before name no phone
  (2 HmPhone, 3 WkPhone, 4 WirelessPh) that the patient has. First name is FName (PSRs verify
  identity by it; the nickname is not stored). Language as given (eng/spa become en/es). The
  last visit is left blank: the store derives it from completed appointments.
- Appointments: AptStatus 1 scheduled, 2 completed, 5 broken; 3, 6, 7, 8 (unscheduled list,
  planned, notes) are not appointments and are skipped; 0 and the retired 4 (ASAP) are rejected.
  A scheduled appointment is confirmed when its Confirmed definition (Category 2) is the one the
  preference ApptEConfirmStatusAccepted names (set when a patient eConfirms), or is named exactly
  "Appointment Confirmed" (the default list's item, set by staff) or "Confirmed", as whole names
  in any case, so "Unconfirmed" never counts. Minutes are len(Pattern) * 5 (patterns are stored
  in 5-minute slots). Kind is hygiene when IsHygiene is 1, else other: ProcDescript holds
  office-defined abbreviations, and reading kinds from them would be guessing. booked_at is
  SecDateTEntry; times are clinic-local.
- Recalls: one per (patient, type), the type being recalltype.Description in lower case with
  spaces as underscores (Child Prophy is child_prophy). Several rows for one pair reject all of
  them (never guess which); recalls of skipped or rejected patients are rejected with the reason.
- Clinics: every clinic row, hidden ones too (they still have patients; campaigns choose their
  clinics). The zone is TimeZone when it is an IANA name, else the Zip's, else that of a State
  with a single zone, else the row is rejected saying what to set (Windows names such as "Eastern
  Standard Time" are not mapped: the Zip says where the office is). When a kept patient or
  appointment has ClinicNum 0, the practice is clinic ``0``, from the preferences PracticeTitle,
  PracticeZip, PracticePhone and PracticeST.

Rejected rows go, with their source columns plus ``line`` (1-based position in the table ordered
by key; the practice row is 0) and ``error``, to ``opendental-<table>.rejects.csv`` in the working
directory: owner-only, published only after the commit; a table with no rejects removes its old
file. Messages name the table, key and problem, never a cell value; the source URL is shown
only with its password masked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
import zipcodes
from sqlalchemy import Connection, Engine

from dialer import geo
from dialer.ingest import canonical
from dialer.ingest import values as v
from dialer.ingest.canonical import Checked, Lookups
from dialer.ingest.importer import (
    ImportResult,
    load_lookups,
    lock_imports,
    log_run,
    publish_rejects,
    stage_rejects,
)
from dialer.ingest.mapping import Mapping
from dialer.ingest.odsource import (
    CONFIRMED_PREFERENCE,
    read_source,
)
from dialer.ingest.reading import RawTable
from dialer.ingest.writing import (
    FileRows,
    chunks,
    write_appointments,
    write_clinics,
    write_patients,
)
from dialer.store.models import AppointmentStatus, PatientStatus, Recall

SOURCE = "opendental"
KEYS = {"clinic": "ClinicNum", "patient": "PatNum", "appointment": "AptNum", "recall": "RecallNum"}

PAT_STATUS = {
    "0": "active",
    "1": "non_patient",
    "2": "inactive",
    "3": "archived",
    "5": "deceased",
    "6": "prospective",
}
PAT_DELETED = "4"
APT_STATUS = {"1": "scheduled", "2": "completed", "5": "broken"}
NOT_APPOINTMENTS = frozenset({"3", "6", "7", "8"})
DO_NOT_CALL = "1"
PHONE_METHODS = {"2": "home", "3": "work", "4": "mobile"}
PHONE_COLUMNS = {"home": "HmPhone", "work": "WkPhone", "mobile": "WirelessPhone"}
PREFERRED_ORDER = ("PreferContactMethod", "PreferConfirmMethod", "PreferRecallMethod")
DNC_COLUMNS = (*PREFERRED_ORDER, "PreferContactConfidential")
CONFIRMED_NAMES = frozenset({"appointment confirmed", "confirmed"})
PRACTICE_CLINIC = "0"
# Store widths that Open Dental's wider columns could overflow (PostgreSQL enforces them):
# canonical cell -> (Open Dental column, characters).
MAX_LENGTHS = {
    "language": ("Language", 32),
    "postal_code": ("Zip", 16),
    "name": ("Description", 200),
    "recall_type": ("recalltype.Description", 64),
}

MAPPING = Mapping()  # canonical ISO formats: the cells below are written in them

# Canonical messages whose advice ("import patients first") does not fit a database import;
# they are replaced by the Open Dental reason. The tests pin both texts.
NO_PATIENT = "patient_id: no patient with this id; import patients first"
NO_CLINIC = "clinic_id: no clinic with this id; import clinics first"
NO_GUARANTOR = "guarantor_id: no patient with this id in the file or the store"
GUARANTOR_REJECTED = "guarantor_id: the guarantor's own row is rejected"
BAD_ZONE = "timezone: expected an IANA time zone such as America/Chicago"
BAD_PAT_STATUS = f"status: expected one of {', '.join(s.value for s in PatientStatus)}"
BAD_APT_STATUS = f"status: expected one of {', '.join(s.value for s in AppointmentStatus)}"
ZONE_HELP = (
    "TimeZone: not an IANA zone, and neither Zip nor State gives one; set a US Zip or "
    "State, or an IANA TimeZone such as America/New_York"
)
PRACTICE_ZONE_HELP = (
    "TimeZone: the practice (ClinicNum 0) has no zone; set the preference "
    "PracticeZip (or PracticeST) to a US ZIP code (or state)"
)


@dataclass
class OpenDentalResult(ImportResult):
    """Counts of one Open Dental table (``rows`` leaves out the skipped rows)."""

    table: str = ""

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` shape of one table."""
        names = (
            "rows",
            "inserted",
            "updated",
            "unchanged",
            "rejected",
            "skipped",
            "deleted",
            "rejects_file",
        )
        return {"table": self.table, **{name: getattr(self, name) for name in names}}


@dataclass
class Prepared:
    """Canonical tables ready to check, with what was skipped and why."""

    tables: dict[str, RawTable]
    skipped: dict[str, int]
    deleted_patients: set[str]
    recall_types: dict[str, str]  # RecallTypeNum -> recall type ("" when it has no name)


@dataclass
class Outcome:
    """What the run has decided so far, to explain references to rejected or deleted rows."""

    prepared: Prepared
    rejected: dict[str, set[str]] = field(default_factory=dict)

    def patient_reason(self, column: str, pat_num: str) -> str:
        """Why patient ``pat_num`` is not in the store."""
        if pat_num in self.prepared.deleted_patients:
            return f"{column}: patient {pat_num} is deleted in Open Dental (PatStatus 4)"
        if pat_num in self.rejected.get("patient", set()):
            return f"{column}: patient {pat_num} is rejected (see {rejects_name('patient')})"
        return f"{column}: no patient {pat_num} in the patient table"

    def clinic_reason(self, clinic_num: str) -> str:
        """Why clinic ``clinic_num`` is not in the store."""
        if clinic_num in self.rejected.get("clinic", set()):
            return f"ClinicNum: clinic {clinic_num} is rejected (see {rejects_name('clinic')})"
        return f"ClinicNum: no clinic {clinic_num} in the clinic table"


def rejects_name(table: str) -> str:
    """The file name of a table's rejected rows."""
    return f"opendental-{table}.rejects.csv"


# Source tables -> canonical cells --------------------------------------------------------


def raw_table(name: str, original: pd.DataFrame, cells: pd.DataFrame) -> RawTable:
    """A :class:`RawTable` over source rows (whose index is the row number), for the canonical
    checks and the rejects file."""
    return RawTable(
        path=Path(f"{SOURCE}:{name}"),
        encoding="",
        original_columns=list(original.columns),
        original=original.reset_index(drop=True),
        cells=cells.reset_index(drop=True),
        lines=original.index.to_numpy(dtype=np.int64),
        shape_errors=pd.Series("", index=range(len(original)), dtype=object),
    )


def prepare(frames: dict[str, pd.DataFrame]) -> Prepared:
    """Every table as canonical cells; skipped rows left out and counted."""
    patients, appointments = frames["patient"], frames["appointment"]
    deleted = patients["PatStatus"].eq(PAT_DELETED)
    not_appointments = appointments["AptStatus"].isin(NOT_APPOINTMENTS)
    patients, appointments = patients[~deleted], appointments[~not_appointments]
    uses_practice = PRACTICE_CLINIC in set(patients["ClinicNum"]) | set(appointments["ClinicNum"])
    prefs = dict(
        zip(frames["preference"]["PrefName"], frames["preference"]["ValueString"], strict=True)
    )
    confirmed = confirmed_statuses(frames["definition"], prefs)
    types = recall_types(frames["recalltype"])
    tables = {
        "clinic": clinic_table(frames["clinic"], prefs if uses_practice else None),
        "patient": raw_table("patient", patients, patient_cells(patients)),
        "appointment": raw_table(
            "appointment", appointments, appointment_cells(appointments, confirmed)
        ),
        "recall": recall_table(frames["recall"], types),
    }
    skipped = {
        "clinic": 0,
        "patient": int(deleted.sum()),
        "appointment": int(not_appointments.sum()),
        "recall": 0,
    }
    return Prepared(
        tables=tables,
        skipped=skipped,
        recall_types=types,
        deleted_patients=set(frames["patient"].loc[deleted, "PatNum"]),
    )


def clinic_table(clinics: pd.DataFrame, prefs: dict[str, str] | None) -> RawTable:
    """Clinic rows, and the practice as clinic 0 (row 0) from ``prefs`` when it is used."""
    if prefs is not None:
        practice = {
            "ClinicNum": PRACTICE_CLINIC,
            "Description": prefs.get("PracticeTitle", ""),
            "State": prefs.get("PracticeST", ""),
            "Zip": prefs.get("PracticeZip", ""),
            "Phone": prefs.get("PracticePhone", ""),
            "TimeZone": "",
        }
        clinics = pd.concat([pd.DataFrame([practice], index=[0], dtype=object), clinics])
    zones = [
        clinic_zone(tz, zip_code, state)
        for tz, zip_code, state in zip(
            clinics["TimeZone"], clinics["Zip"], clinics["State"], strict=True
        )
    ]
    cells = pd.DataFrame(
        {
            "clinic_id": clinics["ClinicNum"],
            "name": clinics["Description"],
            "timezone": pd.Series(zones, index=clinics.index, dtype=object),
            "state": clinics["State"],
            "phone": clinics["Phone"],
        }
    )
    return raw_table("clinic", clinics, cells)


def clinic_zone(timezone: str, zip_code: str, state: str) -> str:
    """TimeZone when IANA, else the Zip's zone, else the zone of a one-zone state, else ""."""
    if geo.is_timezone(timezone):
        return timezone
    return geo.zip_timezone(zip_code) or state_zones().get(state.strip().upper(), "")


@cache
def state_zones() -> dict[str, str]:
    """States whose every ZIP code has one and the same zone (from the bundled ZIP data)."""
    zones: dict[str, set[str]] = {}
    for row in zipcodes.list_all():  # type: ignore[no-untyped-call]
        zones.setdefault(row.get("state") or "", set()).add(row.get("timezone") or "")
    return {
        state: next(iter(found))
        for state, found in zones.items()
        if len(found) == 1 and geo.is_timezone(next(iter(found)))
    }


def patient_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical patient cells (unknown PatStatus values are passed on to be rejected)."""
    status = frame["PatStatus"].map(PAT_STATUS)
    dnc = frame[list(DNC_COLUMNS)].isin([DO_NOT_CALL]).any(axis=1)
    return pd.DataFrame(
        {
            "patient_id": frame["PatNum"],
            "clinic_id": frame["ClinicNum"],
            "first_name": frame["FName"],
            "last_name": frame["LName"],
            "birth_date": frame["Birthdate"],
            "guarantor_id": frame["Guarantor"].where(frame["Guarantor"].ne("0"), ""),
            "language": frame["Language"],
            "mobile_phone": frame["WirelessPhone"],
            "home_phone": frame["HmPhone"],
            "work_phone": frame["WkPhone"],
            "postal_code": frame["Zip"],
            "state": frame["State"],
            "preferred_phone": preferred_phones(frame),
            "do_not_call": dnc.map({True: "true", False: "false"}).astype(object),
            "status": status.where(status.notna(), frame["PatStatus"]).astype(object),
            "last_visit_date": "",
        }
    )


def preferred_phones(frame: pd.DataFrame) -> pd.Series:
    """The phone kind the first Prefer*Method naming a phone the patient has points to."""
    preferred = pd.Series("", index=frame.index, dtype=object)
    for column in reversed(PREFERRED_ORDER):  # earlier columns overwrite later ones
        kind = frame[column].map(PHONE_METHODS)
        for name, phone_column in PHONE_COLUMNS.items():
            preferred[kind.eq(name) & frame[phone_column].ne("")] = name
    return preferred


def confirmed_statuses(defs: pd.DataFrame, prefs: dict[str, str]) -> set[str]:
    """DefNums of the ApptConfirmed definitions that mean confirmed (see the module doc)."""
    names = defs["ItemName"].map(lambda name: " ".join(name.lower().split()))
    found = set(defs.loc[names.isin(CONFIRMED_NAMES), "DefNum"])
    accepted = prefs.get(CONFIRMED_PREFERENCE, "")
    if accepted in set(defs["DefNum"]):  # only an existing Category 2 definition counts
        found.add(accepted)
    return found


def appointment_cells(frame: pd.DataFrame, confirmed: set[str]) -> pd.DataFrame:
    """Canonical appointment cells (unknown AptStatus values are passed on to be rejected)."""
    status = frame["AptStatus"].map(APT_STATUS)
    status = status.where(status.notna(), frame["AptStatus"]).astype(object)
    status[status.eq("scheduled") & frame["Confirmed"].isin(confirmed)] = "confirmed"
    minutes = frame["Pattern"].str.len().mul(5).astype(str)
    return pd.DataFrame(
        {
            "appointment_id": frame["AptNum"],
            "patient_id": frame["PatNum"],
            "clinic_id": frame["ClinicNum"],
            "start_at": frame["AptDateTime"],
            "duration_minutes": minutes.where(frame["Pattern"].ne(""), ""),
            "status": status,
            "kind": np.where(frame["IsHygiene"].eq("1"), "hygiene", "other"),
            "booked_at": frame["SecDateTEntry"],
        }
    )


def recall_types(frame: pd.DataFrame) -> dict[str, str]:
    """RecallTypeNum -> Description in lower case with spaces as underscores."""
    return {
        num: "_".join(desc.lower().split())
        for num, desc in zip(frame["RecallTypeNum"], frame["Description"], strict=True)
    }


def recall_table(frame: pd.DataFrame, types: dict[str, str]) -> RawTable:
    """Recall cells under the store's column names."""
    cells = pd.DataFrame(
        {
            "recall_id": frame["RecallNum"],
            "patient_id": frame["PatNum"],
            "type_num": frame["RecallTypeNum"],
            "recall_type": frame["RecallTypeNum"].map(types).fillna("").astype(object),
            "due_date": frame["DateDue"],
            "disabled": frame["IsDisabled"],
            "disabled_until": frame["DisableUntilDate"],
            "scheduled_date": frame["DateScheduled"],
        }
    )
    return raw_table("recall", frame, cells)


# Checks ----------------------------------------------------------------------------------


def add_errors(errors: pd.Series, mask: pd.Series, message: str | pd.Series) -> pd.Series:
    """Append ``message`` (one for all, or one per row) to the errors of the rows in ``mask``."""
    messages = message if isinstance(message, pd.Series) else pd.Series(message, index=errors.index)
    out = errors.copy()
    hit = mask.reindex(errors.index, fill_value=False).astype(bool)
    out[hit] = [
        f"{old}; {new}" if old else new for old, new in zip(out[hit], messages[hit], strict=True)
    ]
    return out


def explain(
    errors: pd.Series, message: str, refs: pd.Series, reason: Callable[[str], str]
) -> pd.Series:
    """Replace a canonical ``message`` by the Open Dental reason for each row's reference."""
    out = errors.copy()
    hit = out.str.contains(message, regex=False)
    out[hit] = [
        error.replace(message, reason(ref)) for error, ref in zip(out[hit], refs[hit], strict=True)
    ]
    return out


def too_long(errors: pd.Series, cells: pd.DataFrame) -> pd.Series:
    """Reject values longer than the store's columns (PostgreSQL would refuse them)."""
    for column, (name, limit) in MAX_LENGTHS.items():
        if column in cells.columns:
            too = cells[column].str.len().gt(limit)
            errors = add_errors(errors, too, f"{name}: longer than {limit} characters")
    return errors


def check_clinics(table: RawTable) -> Checked:
    """The canonical clinic check, saying which Open Dental fields give the zone."""
    checked = canonical.check_clinics(table, MAPPING)
    errors = explain(
        checked.errors,
        BAD_ZONE,
        table.cells["clinic_id"],
        lambda clinic: PRACTICE_ZONE_HELP if clinic == PRACTICE_CLINIC else ZONE_HELP,
    )
    checked.errors = too_long(errors, table.cells)
    return checked


def check_patients(table: RawTable, lookups: Lookups, outcome: Outcome) -> Checked:
    """The canonical patient and household checks, with Open Dental reasons."""
    cells = table.cells
    checked = canonical.check_patients(table, MAPPING, lookups)
    checked.errors = too_long(checked.errors, cells)  # before the households: they count it
    canonical.check_households(checked, lookups, snapshot=True)
    errors = explain(
        checked.errors,
        BAD_PAT_STATUS,
        cells["status"],
        lambda s: f"PatStatus: {s or 'blank'} is not a patient status (0-6)",
    )
    errors = explain(errors, NO_CLINIC, cells["clinic_id"], outcome.clinic_reason)
    errors = explain(
        errors,
        NO_GUARANTOR,
        cells["guarantor_id"],
        lambda p: outcome.patient_reason("Guarantor", p),
    )
    # Patients of this table are not in ``outcome`` yet: the canonical check knows this one.
    checked.errors = explain(
        errors,
        GUARANTOR_REJECTED,
        cells["guarantor_id"],
        lambda p: f"Guarantor: patient {p} is rejected (see {rejects_name('patient')})",
    )
    return checked


def check_appointments(table: RawTable, lookups: Lookups, outcome: Outcome) -> Checked:
    """The canonical appointment check, with Open Dental reasons."""
    cells = table.cells
    checked = canonical.check_appointments(table, MAPPING, lookups)
    errors = explain(
        checked.errors,
        BAD_APT_STATUS,
        cells["status"],
        lambda s: (
            f"AptStatus: {s or 'blank'} is not 1 (scheduled), 2 (complete) "
            "or 5 (broken), nor 3, 6, 7 or 8 (not appointments)"
        ),
    )
    errors = explain(errors, NO_CLINIC, cells["clinic_id"], outcome.clinic_reason)
    errors = explain(
        errors, NO_PATIENT, cells["patient_id"], lambda p: outcome.patient_reason("PatNum", p)
    )
    checked.errors = errors
    return checked


def check_recalls(table: RawTable, lookups: Lookups, outcome: Outcome) -> Checked:
    """Recalls: a live patient, a named recall type, dates, and one row per (patient, type)."""
    cells, types = table.cells, outcome.prepared.recall_types
    values = pd.DataFrame(
        {
            "external_id": cells["recall_id"],
            "recall_type": cells["recall_type"],
            "patient_id": cells["patient_id"].map(lookups.patients),
        }
    )
    masks: list[tuple[pd.Series, str]] = []
    for column, name in (
        ("due_date", "DateDue"),
        ("disabled_until", "DisableUntilDate"),
        ("scheduled_date", "DateScheduled"),
    ):
        values[column], bad = v.parse_dates(cells[column], MAPPING.date_format)
        masks.append((bad, f"{name}: expected a date as YYYY-MM-DD"))
    disabled, bad = v.parse_booleans(cells["disabled"])
    values["disabled"] = disabled.fillna(False).astype(bool)
    errors = v.join_errors([*masks, (bad, "IsDisabled: expected 0 or 1")], cells.index)
    errors = add_errors(
        errors,
        values["patient_id"].isna(),
        cells["patient_id"].map(lambda p: outcome.patient_reason("PatNum", p)),
    )
    known = cells["type_num"].isin(types.keys())
    reasons = cells["type_num"].map(
        lambda n: (
            f"RecallTypeNum: recall type {n} has no Description"
            if n in types
            else f"RecallTypeNum: no recall type {n} in recalltype"
        )
    )
    errors = add_errors(errors, ~known | cells["recall_type"].eq(""), reasons)
    errors = add_errors(too_long(errors, cells), *duplicate_recalls(cells))
    return Checked(values=values, errors=errors, repeat=pd.Series(False, index=cells.index))


def duplicate_recalls(cells: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(mask, message) for every row of a (patient, recall type) pair that has several rows."""
    pair = cells["patient_id"] + "/" + cells["recall_type"]
    dup = pair.duplicated(keep=False) & cells["recall_type"].ne("")
    messages = pd.Series("", index=cells.index, dtype=object)
    for _, group in cells[dup].groupby(pair[dup]).groups.items():
        first = cells.loc[group[0]]
        nums = ", ".join(cells.loc[group, "recall_id"])
        messages[group] = (
            f"PatNum, RecallTypeNum: patient {first['patient_id']} has "
            f"{len(group)} {first['recall_type']} recalls (RecallNum {nums}); "
            "keep one in Open Dental"
        )
    return dup, messages


# Writing ---------------------------------------------------------------------------------

RECALL_FIELDS = [
    "patient_id",
    "recall_type",
    "external_id",
    "due_date",
    "disabled",
    "disabled_until",
    "scheduled_date",
]


def write_recalls(conn: Connection, rows: FileRows) -> tuple[int, int, int]:
    """Upsert recalls by (patient, recall type); mark this source's absent ones deleted."""
    checked, now = rows.checked, rows.now
    accepted = checked.values[checked.accepted].copy()
    accepted["patient_id"] = accepted["patient_id"].astype("int64")
    accepted["source_hash"] = canonical.row_hashes(accepted[RECALL_FIELDS])
    columns = ["patient_id", "recall_type", "id", "stored_hash", "deleted_at", "stored_source"]
    stored = pd.DataFrame(
        conn.execute(
            sa.select(
                Recall.patient_id,
                Recall.recall_type,
                Recall.id,
                Recall.source_hash,
                Recall.deleted_at,
                Recall.source,
            )
        ).all(),
        columns=columns,
    ).astype({"patient_id": "int64"})
    merged = accepted.merge(stored, on=["patient_id", "recall_type"], how="left")
    is_new = merged["id"].isna()
    same = (
        merged["stored_hash"].eq(merged["source_hash"])
        & merged["deleted_at"].isna()
        & merged["stored_source"].eq(rows.source)
    )
    changed = merged[~is_new & ~same]
    # Rows naming a live patient and a type are present, rejected ones too (as in the CSV
    # snapshot): only pairs gone from Open Dental, or whose patient is gone, are deleted.
    values = checked.values[checked.values["patient_id"].notna()]
    present = set(zip(values["patient_id"].astype("int64"), values["recall_type"], strict=True))
    live = stored[stored["deleted_at"].isna() & stored["stored_source"].eq(rows.source)]
    stale = [
        {"b_id": int(i), "d_at": now}
        for i, p, t in zip(live["id"], live["patient_id"], live["recall_type"], strict=True)
        if (p, t) not in present
    ]
    stamp = {"source": rows.source, "updated_at": now, "deleted_at": None}
    table = cast(sa.Table, Recall.__table__)
    by_id = sa.update(table).where(table.c.id == sa.bindparam("b_id"))
    for part in chunks([{**r, **stamp, "created_at": now} for r in recall_records(merged[is_new])]):
        conn.execute(sa.insert(table), part)
    for part in chunks(
        [
            {**r, **stamp, "b_id": int(i)}
            for r, i in zip(recall_records(changed), changed["id"], strict=True)
        ]
    ):
        conn.execute(by_id, part)
    for part in chunks(stale):
        conn.execute(by_id.values(deleted_at=sa.bindparam("d_at"), updated_at=now), part)
    return int(is_new.sum()), len(changed), len(stale)


def recall_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python values (None for missing) of the recall fields and hash."""
    names = [*RECALL_FIELDS, "source_hash"]
    out = frame[names].astype(object).where(frame[names].notna(), None)
    return [
        {str(k): (int(x) if k == "patient_id" else x) for k, x in row.items()}
        for row in out.to_dict("records")
    ]


Checker = Callable[[RawTable, Lookups, Outcome], Checked]
Writer = Callable[[Connection, FileRows], tuple[int, int, int]]


def steps() -> list[tuple[str, Checker, Writer]]:
    """The tables in the order they are written (each refers to the ones before it)."""
    return [
        ("clinic", lambda table, _lookups, _outcome: check_clinics(table), write_clinics),
        ("patient", check_patients, write_patients),
        ("appointment", check_appointments, write_appointments),
        ("recall", check_recalls, write_recalls),
    ]


def import_opendental(
    engine: Engine, source_url: str, *, now: datetime | None = None, rejects_dir: Path | None = None
) -> list[OpenDentalResult]:
    """Import an Open Dental database into the store in one transaction; counts per table.

    Rejected rows go to ``opendental-<table>.rejects.csv`` in ``rejects_dir`` (default: the
    working directory), written only after the commit.
    """
    now = now or datetime.now(UTC)
    folder = rejects_dir or Path.cwd()
    prepared = prepare(read_source(source_url))  # any source problem stops before writing
    staged: list[tuple[Path | None, Path]] = []
    try:
        with engine.begin() as conn:
            lock_imports(conn)
            results = write_all(conn, prepared, now, folder, staged)
    except BaseException:
        for pending, _ in staged:
            if pending is not None:
                pending.unlink(missing_ok=True)
        raise
    for pending, target in staged:
        publish_rejects(pending, target)
    return results


def write_all(
    conn: Connection,
    prepared: Prepared,
    now: datetime,
    folder: Path,
    staged: list[tuple[Path | None, Path]],
) -> list[OpenDentalResult]:
    """Check and write every table inside the caller's transaction, staging the rejects."""
    outcome = Outcome(prepared=prepared)
    results: list[OpenDentalResult] = []
    for name, check, writer in steps():
        table = prepared.tables[name]
        checked = check(table, load_lookups(conn), outcome)
        rows = FileRows(checked=checked, table=table, now=now, snapshot=True, source=SOURCE)
        counts = writer(conn, rows)
        bad = checked.errors.ne("")
        outcome.rejected[name] = set(table.original.loc[bad.to_numpy(), KEYS[name]])
        target = folder / rejects_name(name)
        pending = stage_rejects(table, checked.errors, target)
        staged.append((pending, target))
        result = table_result(name, table, checked, counts, prepared.skipped[name])
        result.rejects_file = str(target) if pending else None
        log_run(conn, result, now)
        results.append(result)
    return results


def table_result(
    name: str, table: RawTable, checked: Checked, counts: tuple[int, int, int], skipped: int
) -> OpenDentalResult:
    """Counts and reject messages of one table (messages never hold a cell value)."""
    bad = checked.errors.ne("")
    keys = table.original.loc[bad.to_numpy(), KEYS[name]]
    rows, rejected = len(table.cells), int(bad.sum())
    inserted, updated, deleted = counts
    return OpenDentalResult(
        file=str(table.path),
        table=name,
        kind=f"{name}s",
        rows=rows,
        inserted=inserted,
        updated=updated,
        unchanged=rows - inserted - updated - rejected,
        rejected=rejected,
        skipped=skipped,
        deleted=deleted,
        messages=[
            f"{name} {KEYS[name]} {key}: {error}"
            for key, error in zip(keys, checked.errors[bad], strict=True)
        ],
    )
