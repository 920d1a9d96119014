"""The demo's follow-up: what the simulated PSRs booked, and the PMS export three weeks later.

After the demo's day, every ``booked`` call gets its bookings (one household member, sometimes
two siblings; a slot 3 to 14 days out at the clinic, a hygiene visit or, for reactivation, now
and then an exam). The follow-up export is what the practice system shows three weeks on:
most booked patients came (some on a moved day), some broke or cancelled, a few never made it
into the PMS. It also holds the appointments that patients nobody called booked that day, the
attribution report's baseline. It is imported through the normal importer, so the report reads
it like any later import. Everything is drawn from one seeded generator: the same day gives the
same file.
"""

from __future__ import annotations

import csv
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from dialer.ingest.importer import ImportResult, import_file
from dialer.simloop import choose
from dialer.store.bookings import BookedSlot, record_bookings
from dialer.store.models import Attempt, Campaign, Clinic, Patient

FOLLOW_UP_AFTER = timedelta(days=21)
# What became of a booking in the PMS (shares).
BOOKING_FATES = {"kept": 0.66, "moved": 0.08, "broken": 0.12, "cancelled": 0.06, "missing": 0.08}
# Appointments booked the same day by patients nobody called (the baseline).
BASELINE_PATIENTS = 150
BASELINE_FATES = {"completed": 0.78, "broken": 0.10, "no_show": 0.04, "cancelled": 0.08}
COLUMNS = [
    "appointment_id",
    "patient_id",
    "clinic_id",
    "start_at",
    "duration_minutes",
    "status",
    "kind",
    "booked_at",
]


@dataclass(frozen=True)
class _Call:
    attempt_id: int
    kind: str  # the campaign's
    patients: list[str]
    clinic: str
    zone: ZoneInfo
    at: datetime


def follow_up_demo(
    engine: Engine, day: date, folder: Path, *, seed: int, source: str
) -> ImportResult:
    """Record the bookings of ``day``'s booked calls, write the follow-up appointments export
    into ``folder`` and import it (as ``source``, seen three weeks after ``day``)."""
    rng = random.Random(seed)
    ids = (f"FU{n:05d}" for n in itertools.count(1))
    rows: list[dict[str, str]] = []
    with engine.begin() as conn:
        for call in _booked_calls(conn):
            slots = _book(rng, call, day)
            record_bookings(conn, call.attempt_id, slots, now=call.at)
            for slot in slots:
                row = _fate(rng, call, slot)
                if row:
                    rows.append({"appointment_id": next(ids), **row})
        rows.extend({"appointment_id": next(ids), **row} for row in _baseline(conn, rng, day))
    path = folder / "appointments-followup.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    later = datetime.combine(day + FOLLOW_UP_AFTER, time(12), UTC)
    return import_file(engine, "appointments", path, now=later, source=source)


def _booked_calls(conn: Connection) -> list[_Call]:
    query = (
        select(
            Attempt.id,
            Campaign.kind,
            Attempt.patient_ids,
            Clinic.external_id,
            Clinic.timezone,
            Attempt.disposition_at,
            Attempt.started_at,
        )
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .join(Clinic, Clinic.id == Attempt.clinic_id)
        .where(Attempt.disposition == "booked")
        .order_by(Attempt.id)
    )
    return [
        _Call(int(aid), kind, members.split(";"), clinic, ZoneInfo(zone or "UTC"), at or started)
        for aid, kind, members, clinic, zone, at, started in conn.execute(query)
    ]


def _slot(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    """A weekday 3-14 days after ``day``, on the half hour between 08:00 and 16:00 local."""
    when = day + timedelta(days=rng.randint(3, 14))
    while when.weekday() >= 5:
        when += timedelta(days=1)
    at = time(8 + rng.randint(0, 7), rng.choice((0, 30)))
    return datetime.combine(when, at, zone).astimezone(UTC)


def _book(rng: random.Random, call: _Call, day: date) -> list[BookedSlot]:
    """One member booked, or two siblings on the same afternoon (a third of larger households)."""
    members = sorted(call.patients)
    count = 2 if len(members) > 1 and rng.random() < 0.33 else 1
    first = _slot(rng, day, call.zone)
    kind = "exam" if call.kind == "reactivation" and rng.random() < 0.3 else "hygiene"
    return [
        BookedSlot(patient, first + timedelta(minutes=60 * n), kind)
        for n, patient in enumerate(rng.sample(members, count))
    ]


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _fate(rng: random.Random, call: _Call, slot: BookedSlot) -> dict[str, str]:
    """The PMS row of one booking three weeks on (empty: it never reached the PMS)."""
    fate = choose(BOOKING_FATES, rng)
    if fate == "missing":
        return {}
    start = slot.start_at + timedelta(days=rng.choice((-2, -1, 1, 2))) if fate == "moved" else None
    status = {"kept": "completed", "moved": "completed"}.get(fate, fate)
    # Most PMS exports carry when an appointment was made; some do not (first seen, then).
    booked_at = _local(call.at, call.zone) if rng.random() < 0.8 else ""
    return {
        "patient_id": slot.patient_id,
        "clinic_id": call.clinic,
        "start_at": _local(start or slot.start_at, call.zone),
        "duration_minutes": "60",
        "status": status,
        "kind": slot.kind or "hygiene",
        "booked_at": booked_at,
    }


def _baseline(conn: Connection, rng: random.Random, day: date) -> list[dict[str, str]]:
    """Appointments that active patients nobody called booked on ``day`` (front desk, online)."""
    called: set[str] = set()
    for (members,) in conn.execute(select(Attempt.patient_ids)):
        called.update(members.split(";"))
    patients = conn.execute(
        select(Patient.external_id, Clinic.external_id, Clinic.timezone)
        .join(Clinic, Clinic.id == Patient.clinic_id)
        .where(Patient.status == "active", Patient.deleted_at.is_(None))
        .order_by(Patient.id)
    ).all()
    free = [row for row in patients if row[0] not in called]
    rows = []
    for patient, clinic, zone_name in rng.sample(free, min(BASELINE_PATIENTS, len(free))):
        zone = ZoneInfo(zone_name or "UTC")
        made = datetime.combine(day, time(8 + rng.randint(0, 8), rng.randint(0, 59)), zone)
        rows.append(
            {
                "patient_id": patient,
                "clinic_id": clinic,
                "start_at": _local(_slot(rng, day, zone), zone),
                "duration_minutes": "60",
                "status": choose(BASELINE_FATES, rng),
                "kind": "exam" if rng.random() < 0.15 else "hygiene",
                "booked_at": made.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows
