"""Bookings made on calls: which household member a PSR booked, for which slot.

The practice system stays the record of appointments: a booking is the dialer's own note of
what was agreed on the phone (patient, slot, kind). The PMS copy arrives later through an
import and is matched to the booking by :mod:`dialer.reports.attribution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from dialer.errors import ConfigError, NotFound
from dialer.store.models import AppointmentKind, Attempt, Booking, Patient


@dataclass(frozen=True)
class BookedSlot:
    """One appointment booked on a call: the patient's external id, the slot (aware), its kind."""

    patient_id: str
    start_at: datetime
    kind: str | None = None


def record_bookings(
    conn: Connection, attempt_id: int, slots: Sequence[BookedSlot], *, now: datetime
) -> list[int]:
    """Record the appointments booked on an attempt's call; returns the new bookings' ids.

    Each patient must be one of the household members the attempt covered.
    """
    covered = conn.execute(
        select(Attempt.patient_ids).where(Attempt.id == attempt_id)
    ).scalar_one_or_none()
    if covered is None:
        raise NotFound(f"No attempt with id {attempt_id}")
    members = set(covered.split(";")) if covered else set()
    kinds = {kind.value for kind in AppointmentKind}
    rows = []
    for slot in slots:
        if slot.patient_id not in members:
            raise NotFound(f"Patient {slot.patient_id} was not covered by attempt {attempt_id}")
        if slot.kind is not None and slot.kind not in kinds:
            raise ConfigError(
                f"No appointment kind {slot.kind!r} (one of {', '.join(sorted(kinds))})"
            )
        rows.append((slot.patient_id, slot))
    ids = {
        external: int(pid)
        for external, pid in conn.execute(
            select(Patient.external_id, Patient.id).where(
                Patient.external_id.in_([patient for patient, _ in rows])
            )
        )
    }
    new_ids = []
    for patient, slot in rows:
        booking_id = conn.execute(
            insert(Booking)
            .values(
                attempt_id=attempt_id,
                patient_id=ids[patient],
                start_at=slot.start_at,
                kind=slot.kind,
                booked_at=now,
            )
            .returning(Booking.id)
        ).scalar_one()
        new_ids.append(int(booking_id))
    return new_ids
