"""Attribution: did the appointments booked on calls happen, compared with everyone else's?

A booking (:class:`~dialer.store.models.Booking`: a patient and a slot agreed on a call) is
matched to the first PMS appointment of that patient that was created after the call and starts
within 7 days of the booked slot. "Created" is the appointment's ``booked_at`` from the PMS
(compared to the minute, the PMS's precision), or, when the PMS gives none, its ``created_at``:
the time of the import that first saw it, which must be after the call. Appointments deleted
from the PMS are not matched. Each appointment answers at most one booking (earlier calls
first). A booking's result:

=============  ==============================================================
``kept``       the matched appointment is completed
``broken``     broken or no-show (a missed appointment)
``cancelled``  cancelled
``pending``    still scheduled or confirmed in the PMS
``unmatched``  no appointment of the patient fits (yet)
=============  ==============================================================

The baseline is the appointments of patients the dialer did not call in the same period
(no attempt of any campaign covered them), created in the period, by kind. A group's
``baseline_kept_rate`` is the kept rate those appointments show for the kinds that group
booked, each booking weighing its own kind (the booking's kind, else its appointment's).
A kept rate is kept / (kept + broken + cancelled): pending and unmatched bookings are out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, false, func, or_, select

from dialer.errors import ConfigError
from dialer.geo import is_timezone
from dialer.reports.filters import Filters, attempt_conditions, local_bounds, report_zone
from dialer.store.models import Agent, Appointment, Attempt, Booking, Campaign, Clinic, Patient

MATCH_WINDOW = timedelta(days=7)
RESULTS = ("kept", "broken", "cancelled", "pending", "unmatched")
RESULT_OF_STATUS = {
    "completed": "kept",
    "broken": "broken",
    "no_show": "broken",
    "cancelled": "cancelled",
    "scheduled": "pending",
    "confirmed": "pending",
}
GROUPINGS: dict[str, list[str]] = {
    "campaign": ["campaign"],
    "agent": ["agent"],
    "campaign-agent": ["campaign", "agent"],
}
UNKNOWN_KIND = "unknown"
NO_AGENT = "(none)"
BOOKING_COLUMNS = [
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
COUNT_COLUMNS = ["bookings", "kept", "broken", "cancelled", "pending", "unmatched"]
BASELINE_COLUMNS = ["kind", "appointments", "kept", "broken", "cancelled", "pending", "kept_rate"]


@dataclass(frozen=True)
class _Candidate:
    id: int
    external_id: str
    start_at: datetime
    status: str
    kind: str | None
    booked_at: datetime | None
    created_at: datetime

    def created_after(self, called_at: datetime) -> bool:
        if self.booked_at is not None:
            return self.booked_at >= called_at.replace(second=0, microsecond=0)
        return self.created_at > called_at


def _bookings_query(conditions: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Booking.id,
            Booking.attempt_id,
            Campaign.name,
            Agent.name,
            Patient.external_id,
            Booking.patient_id,
            Attempt.started_at,
            Booking.start_at,
            Booking.kind,
        )
        .join(Attempt, Attempt.id == Booking.attempt_id)
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .outerjoin(Agent, Agent.id == Attempt.agent_id)
        .join(Patient, Patient.id == Booking.patient_id)
        .where(*conditions)
        .order_by(Attempt.started_at, Booking.id)
    )


def match_bookings(
    engine: Engine, filters: Filters | None = None, *, zone_setting: str | None = None
) -> pd.DataFrame:
    """One row per booking made on the attempts ``filters`` select, with its result.

    Columns: ``booking_id, attempt_id, campaign, agent, patient_id`` (external id),
    ``called_at, slot_at, kind, appointment_id`` (external id, or None),
    ``appointment_start_at, appointment_status, result`` (one of :data:`RESULTS`).
    """
    a = Appointment
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)
        query = _bookings_query(attempt_conditions(conn, filters or Filters(), zone))
        bookings = conn.execute(query).all()
        patients = query.with_only_columns(Booking.patient_id).order_by(None).scalar_subquery()
        candidates: dict[int, list[_Candidate]] = defaultdict(list)
        for row in conn.execute(
            select(
                a.patient_id,
                a.id,
                a.external_id,
                a.start_at,
                a.status,
                a.kind,
                a.booked_at,
                a.created_at,
            ).where(a.deleted_at.is_(None), a.patient_id.in_(patients))
        ):
            candidates[int(row[0])].append(_Candidate(*row[1:]))
    for listed in candidates.values():
        listed.sort(key=lambda c: (c.booked_at or c.created_at, c.start_at, c.id))
    used: set[int] = set()
    rows = []
    for booking_id, attempt_id, name, agent, patient, pid, called_at, slot, kind in bookings:
        match = _first_fit(candidates.get(int(pid), []), called_at, slot, used)
        rows.append(
            (
                int(booking_id),
                int(attempt_id),
                name,
                agent or NO_AGENT,
                patient,
                called_at,
                slot,
                kind or (match.kind if match else None),
                match.external_id if match else None,
                match.start_at if match else None,
                match.status if match else None,
                RESULT_OF_STATUS.get(match.status, "pending") if match else "unmatched",
            )
        )
    frame = pd.DataFrame(rows, columns=BOOKING_COLUMNS)
    for column in ("called_at", "slot_at", "appointment_start_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _first_fit(
    candidates: list[_Candidate], called_at: datetime, slot: datetime, used: set[int]
) -> _Candidate | None:
    """The first appointment (by creation) created after the call within the slot's window."""
    for candidate in candidates:
        if candidate.id in used or not candidate.created_after(called_at):
            continue
        if abs(candidate.start_at - slot) <= MATCH_WINDOW:
            used.add(candidate.id)
            return candidate
    return None


def attribution_baseline(
    engine: Engine, filters: Filters | None = None, *, zone_setting: str | None = None
) -> pd.DataFrame:
    """By kind, the appointments created in the period of patients no attempt covered in it.

    The period is ``filters``' dates, each appointment's day taken in its clinic's zone (an
    open start is the day of the first selected attempt); ``filters``' clinics narrow the
    appointments, its campaigns do not (a patient called by any campaign is out). Columns:
    ``kind, appointments, kept, broken, cancelled, pending, kept_rate`` (None when none of the
    kind's appointments is resolved yet).
    """
    filters = filters or Filters()
    dates_only = Filters(date_from=filters.date_from, date_to=filters.date_to)
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)
        first = conn.execute(
            select(func.min(Attempt.started_at)).where(*attempt_conditions(conn, filters, zone))
        ).scalar()
        if first is None:
            return _baseline_frame({})
        called: set[str] = set()
        for (members,) in conn.execute(
            select(Attempt.patient_ids).where(*attempt_conditions(conn, dates_only, zone))
        ):
            called.update(members.split(";") if members else ())
        first_day = filters.date_from or first.astimezone(zone).date()
        query = (
            select(Patient.external_id, Appointment.kind, Appointment.status)
            .join(Patient, Patient.id == Appointment.patient_id)
            .where(Appointment.deleted_at.is_(None), _created_in(conn, filters, zone, first_day))
        )
        counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RESULTS[:4], 0))
        for patient, kind, status in conn.execute(query):
            if patient not in called:
                counts[kind or UNKNOWN_KIND][RESULT_OF_STATUS.get(status, "pending")] += 1
    return _baseline_frame(counts)


def _created_in(
    conn: Connection, filters: Filters, zone: ZoneInfo, first_day: date
) -> ColumnElement[bool]:
    """Appointments of ``filters``' clinics created in its dates (clinic-local days)."""
    created = func.coalesce(Appointment.booked_at, Appointment.created_at)
    query = select(Clinic.id, Clinic.timezone)
    if filters.clinics:
        query = query.where(Clinic.external_id.in_(filters.clinics))
    by_zone: dict[str, list[int]] = defaultdict(list)
    for clinic_id, clinic_zone in conn.execute(query):
        by_zone[clinic_zone if clinic_zone and is_timezone(clinic_zone) else zone.key].append(
            int(clinic_id)
        )
    spans = []
    for name, ids in sorted(by_zone.items()):
        start, end = local_bounds(ZoneInfo(name), first_day, filters.date_to)
        parts = [Appointment.clinic_id.in_(ids), created >= start]
        if end is not None:
            parts.append(created < end)
        spans.append(and_(*parts))
    return or_(false(), *spans)


def _baseline_frame(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    rows = []
    for kind in sorted(counts):
        c = counts[kind]
        rows.append(
            (
                kind,
                sum(c.values()),
                c["kept"],
                c["broken"],
                c["cancelled"],
                c["pending"],
                _rate(c["kept"], c["kept"] + c["broken"] + c["cancelled"]),
            )
        )
    frame = pd.DataFrame(rows, columns=BASELINE_COLUMNS)
    frame["kept_rate"] = frame["kept_rate"].astype(object).where(frame["kept_rate"].notna(), None)
    return frame


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def attribution_report(
    engine: Engine,
    filters: Filters | None = None,
    *,
    by: str = "campaign",
    zone_setting: str | None = None,
) -> pd.DataFrame:
    """Bookings' results per group (``by``: campaign, agent or campaign-agent).

    Columns: the group columns, then ``bookings, kept, broken, cancelled, pending, unmatched,
    kept_rate, baseline_kept_rate`` (see the module doc; None where nothing is resolved);
    groups sorted by name.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"Cannot group attribution by {by!r} (one of {', '.join(GROUPINGS)})")
    keys = GROUPINGS[by]
    bookings = match_bookings(engine, filters, zone_setting=zone_setting)
    baseline = attribution_baseline(engine, filters, zone_setting=zone_setting)
    rates = dict(zip(baseline["kind"], baseline["kept_rate"], strict=True))
    bookings["baseline"] = bookings["kind"].fillna(UNKNOWN_KIND).map(rates).astype(float)
    rows = []
    for group, frame in bookings.groupby(keys, sort=True):
        counts = frame["result"].value_counts()
        kept, broken, cancelled = (int(counts.get(r, 0)) for r in RESULTS[:3])
        rows.append(
            (
                *group,
                len(frame),
                *(int(counts.get(r, 0)) for r in RESULTS),
                _rate(kept, kept + broken + cancelled),
                float(frame["baseline"].mean()) if frame["baseline"].notna().any() else None,
            )
        )
    columns = [*keys, *COUNT_COLUMNS, "kept_rate", "baseline_kept_rate"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("kept_rate", "baseline_kept_rate"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
