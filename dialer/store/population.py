"""Loading what the list builder needs, aggregated in SQL where the store can do it cheaply.

Appointments are summarised per patient in SQL (last completed visit, any future booking,
no-shows) against per-clinic cut-off times, so a list build never reads the whole appointment
history into memory.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql import Executable

from dialer.campaigns import CampaignModel
from dialer.errors import CampaignError
from dialer.lists import Population
from dialer.store.models import (
    Appointment,
    AppointmentConfirmation,
    CampaignHousehold,
    Clinic,
    DncEntry,
    Patient,
    Phone,
    Recall,
    RetiredPhone,
)

BOOKED = ("scheduled", "confirmed")


def clinics_frame(conn: Connection) -> pd.DataFrame:
    """Live clinics: id, external_id, name, timezone, default_language, phone."""
    query = select(
        Clinic.id,
        Clinic.external_id,
        Clinic.name,
        Clinic.timezone,
        Clinic.default_language,
        Clinic.phone,
    ).where(Clinic.deleted_at.is_(None))
    frame = _read(conn, query)
    # None, not NaN, for a clinic without a zone: callers test for a zone name.
    frame["timezone"] = frame["timezone"].astype(object).where(frame["timezone"].notna(), None)
    return frame


def campaign_clinic_ids(campaign: CampaignModel, clinics: pd.DataFrame) -> list[int]:
    """Store ids of the campaign's clinics; an unknown clinic id is an error."""
    if campaign.clinics == "all":
        return [int(i) for i in clinics["id"]]
    known = dict(zip(clinics["external_id"], clinics["id"], strict=True))
    missing = [c for c in campaign.clinics if c not in known]
    if missing:
        raise CampaignError(
            f"Campaign {campaign.name!r} names clinic(s) {', '.join(missing)} that are not "
            "imported; run `dialer import clinics FILE` or fix its clinics list"
        )
    return [int(known[c]) for c in campaign.clinics]


def as_of_dates(clinics: pd.DataFrame, as_of: date | None, now: datetime) -> dict[int, date]:
    """The as-of date per clinic: ``as_of`` when given, else today in each clinic's zone."""
    result: dict[int, date] = {}
    for cid, zone in zip(clinics["id"], clinics["timezone"], strict=True):
        result[int(cid)] = as_of or now.astimezone(ZoneInfo(zone) if zone else UTC).date()
    return result


def local_midnight(day: date, zone: str | None) -> datetime:
    """The UTC instant a clinic-local day starts."""
    return datetime.combine(day, time(0), ZoneInfo(zone) if zone else UTC).astimezone(UTC)


def _read(conn: Connection, query: Executable) -> pd.DataFrame:
    """Rows of ``query`` as a frame, fetched straight from the driver's cursor.

    Skipping SQLAlchemy's per-value result processing is what makes a million-row load cheap;
    the builder converts columns vectorised instead (on SQLite, dates and times arrive as ISO
    text and booleans as 0/1; ``pd.to_datetime`` and ``astype(bool)`` read both forms).
    """
    result = conn.execute(query)
    columns = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=False)


def _patients(conn: Connection, clinic_ids: list[int], every_clinic: bool) -> pd.DataFrame:
    live = Patient.deleted_at.is_(None)
    in_campaign = literal(True) if every_clinic else Patient.clinic_id.in_(clinic_ids)
    guarantors = select(Patient.guarantor_external_id).where(live, in_campaign)
    query = select(
        Patient.id,
        Patient.external_id,
        Patient.clinic_id,
        Patient.guarantor_external_id.label("guarantor_key"),
        Patient.birth_date,
        Patient.status,
        Patient.language,
        Patient.postal_code,
        Patient.state,
        Patient.preferred_phone,
        Patient.do_not_call,
        Patient.last_visit_date,
        in_campaign.label("is_candidate"),
    ).where(live, or_(in_campaign, Patient.external_id.in_(guarantors)))
    frame = _read(conn, query)
    frame["is_candidate"] = frame["is_candidate"].astype(bool)
    frame["do_not_call"] = frame["do_not_call"].astype(bool)
    return frame


def _phones(conn: Connection, patient_ids: pd.Series) -> pd.DataFrame:
    query = (
        select(
            Phone.patient_id,
            Phone.kind,
            Phone.phone,
            Phone.valid,
            Phone.timezones,
            Phone.consent_source,
        )
        .join(Patient, Patient.id == Phone.patient_id)
        .where(Patient.deleted_at.is_(None))
    )
    frame = _read(conn, query)
    return frame[frame["patient_id"].isin(patient_ids)].reset_index(drop=True)


def _visits(
    conn: Connection, clinics: pd.DataFrame, clinic_ids: list[int], as_of: dict[int, date]
) -> pd.DataFrame:
    """Per patient: last completed start before the end of as_of, any booking on or after
    as_of, and the count of no-shows. One grouped query per clinic, whose cut-off times are
    plain parameters (a join to a table of cut-offs defeats SQLite's planner)."""
    zones = dict(zip(clinics["id"].astype(int), clinics["timezone"], strict=True))
    a = Appointment
    frames = []
    for cid in clinic_ids:
        visit_cut = local_midnight(as_of[cid] + timedelta(days=1), zones[cid])
        future_cut = local_midnight(as_of[cid], zones[cid])
        query = (
            select(
                a.patient_id,
                func.max(
                    case((and_(a.status == "completed", a.start_at < visit_cut), a.start_at))
                ).label("last_completed_at"),
                func.max(
                    case((and_(a.status.in_(BOOKED), a.start_at >= future_cut), 1), else_=0)
                ).label("has_future"),
                func.sum(case((a.status == "no_show", 1), else_=0)).label("no_show_count"),
            )
            .join(Patient, Patient.id == a.patient_id)
            .where(Patient.clinic_id == cid, a.deleted_at.is_(None))
            .group_by(a.patient_id)
        )
        frames.append(_read(conn, query))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(
            columns=["patient_id", "last_completed_at", "has_future", "no_show_count"]
        )
    frame["has_future"] = frame["has_future"].astype(int).astype(bool)
    frame["no_show_count"] = frame["no_show_count"].astype(int)
    return frame


def _recalls(conn: Connection, types: list[str]) -> pd.DataFrame:
    query = select(
        Recall.patient_id,
        Recall.recall_type,
        Recall.due_date,
        Recall.disabled,
        Recall.disabled_until,
        Recall.scheduled_date,
    ).where(Recall.recall_type.in_(types), Recall.deleted_at.is_(None))
    return _read(conn, query)


def _upcoming(conn: Connection, as_of: dict[int, date], days: tuple[int, int]) -> pd.DataFrame:
    """Booked appointments around the reminder window; a dialer confirmation of the same slot
    makes a scheduled appointment confirmed, whatever later imports say."""
    start = datetime.combine(min(as_of.values()) + timedelta(days=days[0] - 1), time(0), UTC)
    end = datetime.combine(max(as_of.values()) + timedelta(days=days[1] + 2), time(0), UTC)
    confirmed = (
        select(AppointmentConfirmation.appointment_id)
        .where(
            AppointmentConfirmation.appointment_id == Appointment.id,
            AppointmentConfirmation.start_at == Appointment.start_at,
        )
        .exists()
    )
    status = case((confirmed, "confirmed"), else_=Appointment.status).label("status")
    query = select(
        Appointment.patient_id,
        Appointment.clinic_id,
        Appointment.external_id,
        Appointment.start_at,
        status,
    ).where(
        Appointment.deleted_at.is_(None),
        Appointment.status.in_(BOOKED),
        Appointment.start_at >= start,
        Appointment.start_at < end,
    )
    return _read(conn, query)


def _households(conn: Connection, campaign_id: int | None) -> pd.DataFrame:
    query = select(
        CampaignHousehold.household_key,
        CampaignHousehold.attempts,
        CampaignHousehold.last_converted_at,
    ).where(CampaignHousehold.campaign_id == (campaign_id or -1))
    return _read(conn, query)


def _dnc(conn: Connection) -> pd.DataFrame:
    query = select(DncEntry.phone, DncEntry.scope, DncEntry.clinic_id, DncEntry.campaign).where(
        DncEntry.removed_at.is_(None)
    )
    return _read(conn, query)


def retired_phones(conn: Connection) -> frozenset[str]:
    """Numbers retired for everyone (wrong numbers) and not restored."""
    query = select(RetiredPhone.phone).where(RetiredPhone.restored_at.is_(None))
    return frozenset(conn.execute(query).scalars())


def load_population(
    conn: Connection,
    campaign: CampaignModel,
    campaign_id: int | None,
    as_of: dict[int, date],
    clinic_ids: list[int],
) -> Population:
    """Everything the builder needs for ``campaign`` at the per-clinic ``as_of`` dates."""
    clinics = clinics_frame(conn)
    every = campaign.clinics == "all"
    patients = _patients(conn, clinic_ids, every)
    empty = pd.DataFrame(
        columns=[
            "patient_id",
            "recall_type",
            "due_date",
            "disabled",
            "disabled_until",
            "scheduled_date",
        ]
    )
    recalls = empty
    if campaign.kind == "recall":
        recalls = _recalls(conn, list(campaign.audience.recall_types))
    appointments = pd.DataFrame(
        columns=["patient_id", "clinic_id", "external_id", "start_at", "status"]
    )
    if campaign.kind == "reminder" and as_of:
        appointments = _upcoming(conn, as_of, campaign.audience.days_ahead)
    return Population(
        patients=patients,
        clinics=clinics,
        phones=_phones(conn, patients["id"]),
        visits=_visits(conn, clinics, clinic_ids, as_of)
        if clinic_ids
        else pd.DataFrame(
            columns=["patient_id", "last_completed_at", "has_future", "no_show_count"]
        ),
        recalls=recalls,
        appointments=appointments,
        households=_households(conn, campaign_id),
        dnc=_dnc(conn),
        retired=retired_phones(conn),
    )
