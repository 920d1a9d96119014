"""The canonical import formats and their row-level validation (vectorised, no store access).

Every row ends up accepted, or rejected with an ``error`` naming each failing column and what
was expected. Rows are never guessed: a value that does not parse rejects its row, except
phones, which are kept and stored as invalid so the patient is not lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dialer.ingest import values as v
from dialer.ingest.mapping import Mapping
from dialer.ingest.reading import RawTable
from dialer.store.models import AppointmentKind, AppointmentStatus, PatientStatus, PhoneKind

CLINIC_COLUMNS = ("clinic_id", "name", "timezone", "state", "phone")
CLINIC_OPTIONAL = ("language",)
PATIENT_COLUMNS = (
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
)
PATIENT_OPTIONAL = (
    "preferred_phone",
    "do_not_call",
    "status",
    "last_visit_date",
    "recall_due_date",
)
APPOINTMENT_COLUMNS = (
    "appointment_id",
    "patient_id",
    "clinic_id",
    "start_at",
    "duration_minutes",
    "status",
    "kind",
)
APPOINTMENT_OPTIONAL = ("booked_at",)

REQUIRED = {
    "clinics": CLINIC_COLUMNS,
    "patients": PATIENT_COLUMNS,
    "appointments": APPOINTMENT_COLUMNS,
}
OPTIONAL = {
    "clinics": CLINIC_OPTIONAL,
    "patients": PATIENT_OPTIONAL,
    "appointments": APPOINTMENT_OPTIONAL,
}
ID_COLUMN = {"clinics": "clinic_id", "patients": "patient_id", "appointments": "appointment_id"}
PHONE_COLUMNS = {kind.value: f"{kind.value}_phone" for kind in PhoneKind}


@dataclass
class Lookups:
    """What validation needs to know of the store."""

    clinics: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # ext -> (id, zone)
    patients: dict[str, int] = field(default_factory=dict)  # live patients: ext -> id


@dataclass
class Checked:
    """Validated rows: normalised values, per-row errors, and exact repeats within the file."""

    values: pd.DataFrame
    errors: pd.Series
    repeat: pd.Series  # True for a later exact copy of an earlier row (counted unchanged)

    @property
    def accepted(self) -> pd.Series:
        """Rows to write: no error and not a repeat."""
        return self.errors.eq("") & ~self.repeat


def human_format(fmt: str) -> str:
    """A strptime format as users read it: ``%Y-%m-%d`` -> ``YYYY-MM-DD``."""
    for token, text in (
        ("%Y", "YYYY"),
        ("%y", "YY"),
        ("%m", "MM"),
        ("%d", "DD"),
        ("%H", "HH"),
        ("%I", "hh"),
        ("%M", "mm"),
        ("%S", "ss"),
        ("%p", "AM/PM"),
    ):
        fmt = fmt.replace(token, text)
    return fmt


def _required(cells: pd.DataFrame, column: str) -> tuple[pd.Series, str]:
    return cells[column].eq(""), f"{column}: a value is required"


def _choices(column: str, allowed: tuple[str, ...]) -> str:
    return f"{column}: expected one of {', '.join(allowed)}"


def _names(
    enum: type[PatientStatus | AppointmentStatus | AppointmentKind | PhoneKind],
) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def find_conflicts(
    cells: pd.DataFrame, id_column: str, lines: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    """(errors for ids repeated with different data, mask of later exact repeats)."""
    ids = cells[id_column]
    duplicated = ids.duplicated(keep=False) & ids.ne("")
    errors = pd.Series("", index=cells.index, dtype=object)
    repeat = pd.Series(False, index=cells.index)
    if not duplicated.any():
        return errors, repeat
    dup = cells[duplicated]
    hashes = pd.util.hash_pandas_object(dup.astype(str), index=False)
    distinct = hashes.groupby(dup[id_column]).transform("nunique")
    conflicting = distinct.gt(1)
    line_of = pd.Series(lines, index=cells.index)
    for key, group in dup[conflicting].groupby(id_column).groups.items():
        listed = ", ".join(str(n) for n in line_of[group])
        errors[group] = f"{id_column}: id {key} appears on lines {listed} with different data"
    repeat[dup.index[~conflicting.to_numpy()]] = True
    repeat &= ids.duplicated(keep="first")
    return errors, repeat


def check_clinics(table: RawTable, mapping: Mapping) -> Checked:
    """Validate clinic rows."""
    cells = table.cells
    zone, bad_zone = v.parse_timezones(cells["timezone"])
    state, bad_state = v.parse_states(cells["state"])
    phone, phone_ok = v.normalise_phones(cells["phone"])
    language = v.normalise_languages(cells.get("language", pd.Series("", index=cells.index)))
    masks = [
        _required(cells, "clinic_id"),
        _required(cells, "name"),
        (
            bad_zone | cells["timezone"].eq(""),
            "timezone: expected an IANA time zone such as America/Chicago",
        ),
        (bad_state, "state: expected a 2-letter US state code"),
        (cells["phone"].ne("") & ~phone_ok, "phone: expected a valid phone number"),
    ]
    frame = pd.DataFrame(
        {
            "external_id": cells["clinic_id"],
            "name": cells["name"],
            "timezone": zone,
            "state": state,
            "phone": phone,
            "default_language": language.fillna("en"),
        }
    )
    return _finish(table, frame, masks, "clinic_id")


def check_patients(table: RawTable, mapping: Mapping, lookups: Lookups) -> Checked:
    """Validate patient rows (the guarantor check needs the whole file: ``check_households``)."""
    cells = table.cells
    blank = pd.Series("", index=cells.index, dtype=object)
    masks = [_required(cells, "patient_id"), _required(cells, "clinic_id")]
    clinic = cells["clinic_id"].map(lambda c: lookups.clinics.get(c, (None, None))[0])
    masks.append(
        (
            clinic.isna() & cells["clinic_id"].ne(""),
            "clinic_id: no clinic with this id; import clinics first",
        )
    )
    frame = pd.DataFrame(
        {
            "external_id": cells["patient_id"],
            "clinic_id": clinic,
            "first_name": cells["first_name"].replace("", None),
            "last_name": cells["last_name"].replace("", None),
            "guarantor_external_id": cells["guarantor_id"].where(
                cells["guarantor_id"].ne(""), cells["patient_id"]
            ),
            "language": v.normalise_languages(cells["language"]),
            "postal_code": cells["postal_code"].replace("", None),
        }
    )
    for column in ("birth_date", "last_visit_date", "recall_due_date"):
        parsed, bad = v.parse_dates(cells.get(column, blank), mapping.format_for(column))
        frame[column] = parsed
        fmt = human_format(mapping.format_for(column))
        masks.append((bad, f"{column}: expected a date as {fmt}"))
    frame["state"], bad = v.parse_states(cells["state"])
    masks.append((bad, "state: expected a 2-letter US state code"))
    statuses = _names(PatientStatus)
    status, bad = v.parse_choices(cells.get("status", blank), statuses)
    frame["status"] = status.fillna(PatientStatus.active.value)
    masks.append((bad, _choices("status", statuses)))
    kinds = _names(PhoneKind)
    frame["preferred_phone"], bad = v.parse_choices(cells.get("preferred_phone", blank), kinds)
    masks.append((bad, _choices("preferred_phone", kinds)))
    dnc, bad = v.parse_booleans(cells.get("do_not_call", blank))
    frame["do_not_call"] = dnc.fillna(False).astype(bool)
    masks.append((bad, "do_not_call: expected true/false, yes/no or 1/0"))
    for kind, column in PHONE_COLUMNS.items():
        frame[f"{kind}_raw"] = cells[column]
        frame[f"{kind}_phone"], frame[f"{kind}_valid"] = v.normalise_phones(cells[column])
    return _finish(table, frame, masks, "patient_id")


def check_households(checked: Checked, lookups: Lookups, *, snapshot: bool) -> None:
    """Reject patients whose guarantor is neither an accepted row of the file nor in the store.

    In a snapshot, rows absent from the file are about to be deleted, so only the file counts.
    """
    values, errors = checked.values, checked.errors
    accepted_ids = set(values.loc[errors.eq(""), "external_id"])
    rejected_ids = set(values.loc[errors.ne(""), "external_id"]) - accepted_ids
    guarantor = values["guarantor_external_id"]
    in_store = guarantor.isin(lookups.patients.keys()) if not snapshot else False
    found = guarantor.isin(accepted_ids) | in_store
    own_row_rejected = guarantor.isin(rejected_ids) & ~found
    missing = ~found & ~own_row_rejected
    self_ref = guarantor.eq(values["external_id"])
    for mask, message in (
        (own_row_rejected & ~self_ref, "guarantor_id: the guarantor's own row is rejected"),
        (missing & ~self_ref, "guarantor_id: no patient with this id in the file or the store"),
    ):
        hit = mask & errors.eq("")
        errors[hit] = message


def check_appointments(table: RawTable, mapping: Mapping, lookups: Lookups) -> Checked:
    """Validate appointment rows; clinic-local start times become UTC."""
    cells = table.cells
    blank = pd.Series("", index=cells.index, dtype=object)
    clinic_info = cells["clinic_id"].map(lambda c: lookups.clinics.get(c, (None, None)))
    clinic = clinic_info.map(lambda info: info[0])
    zone = clinic_info.map(lambda info: info[1])
    patient = cells["patient_id"].map(lookups.patients)
    statuses, kinds = _names(AppointmentStatus), _names(AppointmentKind)
    status, bad_status = v.parse_choices(cells["status"], statuses)
    kind, bad_kind = v.parse_choices(cells["kind"], kinds)
    minutes, bad_minutes = v.parse_integers(cells["duration_minutes"])
    masks = [
        _required(cells, "appointment_id"),
        _required(cells, "patient_id"),
        _required(cells, "clinic_id"),
        _required(cells, "start_at"),
        (
            patient.isna() & cells["patient_id"].ne(""),
            "patient_id: no patient with this id; import patients first",
        ),
        (
            clinic.isna() & cells["clinic_id"].ne(""),
            "clinic_id: no clinic with this id; import clinics first",
        ),
        (clinic.notna() & zone.isna(), "clinic_id: the clinic has no time zone"),
        (bad_status | cells["status"].eq(""), _choices("status", statuses)),
        (bad_kind, _choices("kind", kinds)),
        (bad_minutes, "duration_minutes: expected a whole number of minutes"),
    ]
    frame = pd.DataFrame(
        {
            "external_id": cells["appointment_id"],
            "patient_id": patient,
            "clinic_id": clinic,
            "duration_minutes": minutes,
            "status": status,
            "kind": kind,
        }
    )
    for column in ("start_at", "booked_at"):
        fmt = mapping.format_for(column, datetime=True)
        local, bad = v.parse_local_datetimes(cells.get(column, blank), fmt)
        utc, gap = localise(local, zone)
        frame[column] = utc
        masks.append((bad, f"{column}: expected a local date and time as {human_format(fmt)}"))
        masks.append(
            (
                gap,
                f"{column}: this local time does not exist in the clinic's time zone "
                "(daylight-saving change)",
            )
        )
    return _finish(table, frame, masks, "appointment_id")


def localise(local: pd.Series, zones: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive local datetimes in per-row zones -> aware UTC datetimes, and a mask of DST gaps.

    An ambiguous time (the repeated hour in autumn) is read as its first occurrence.
    """
    result = pd.Series(None, index=local.index, dtype=object)
    gap = pd.Series(False, index=local.index)
    present = local.notna() & zones.notna()
    for zone, index in local[present].groupby(zones[present]).groups.items():
        naive = pd.to_datetime(local[index].astype("datetime64[ns]"))
        aware = naive.dt.tz_localize(
            str(zone), nonexistent="NaT", ambiguous=np.ones(len(naive), dtype=bool)
        )
        gap[index] = aware.isna().to_numpy()
        converted = aware.dt.tz_convert("UTC")
        result[index] = [ts.to_pydatetime() if not pd.isna(ts) else None for ts in converted]
    return result, gap


def _finish(
    table: RawTable, frame: pd.DataFrame, masks: list[tuple[pd.Series, str]], id_column: str
) -> Checked:
    conflicts, repeat = find_conflicts(table.cells, id_column, table.lines)
    errors = v.join_errors(masks, frame.index)
    errors = _prepend(table.shape_errors, errors)
    errors = _prepend(conflicts, errors)
    return Checked(values=frame, errors=errors, repeat=repeat & errors.eq(""))


def _prepend(first: pd.Series, rest: pd.Series) -> pd.Series:
    both = first.ne("") & rest.ne("")
    out = first.where(first.ne(""), rest)
    out[both] = first[both] + "; " + rest[both]
    return out


def row_hashes(values: pd.DataFrame) -> pd.Series:
    """A stable 16-hex-digit hash of each row's normalised values (for 'unchanged')."""
    hashed = pd.util.hash_pandas_object(values.astype(object).astype(str), index=False)
    return hashed.map(lambda h: f"{h:016x}")
