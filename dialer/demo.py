"""``dialer demo``: a synthetic chain imported into the configured store, and its lists built.

The demo's rows are imported with source ``demo``. Run again, it replaces only its own data;
it refuses a database that holds clinics, patients or appointments from anywhere else.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from dialer.campaigns import load_campaigns, packaged_campaigns_dir
from dialer.demofollowup import follow_up_demo
from dialer.errors import DemoRefused
from dialer.ingest.importer import import_file
from dialer.lists import DialListResult
from dialer.settings import load_settings
from dialer.store.db import safe_url
from dialer.store.dial_lists import build_list
from dialer.store.models import (
    Agent,
    AgentEvent,
    Appointment,
    AppointmentConfirmation,
    Attempt,
    Booking,
    Callback,
    CallEventRecord,
    CampaignHousehold,
    Clinic,
    DialList,
    DialListEntry,
    DialListPatient,
    DncEntry,
    Patient,
    Phone,
    Recall,
    RetiredPhone,
)
from dialer.synthetic import generate_chain
from dialer.workday import CampaignDay, Workday, next_workday, run_workday

DEMO_SOURCE = "demo"
DEMO_PATIENTS = 5000
DEMO_SEED = 7
Step = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo did."""

    database: str
    as_of: date
    clinics: int
    patients: int
    appointments: int
    lists: list[DialListResult] = field(default_factory=list)
    day: list[CampaignDay] = field(default_factory=list)
    agents: int = 0

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        days = {d.name: d for d in self.day}
        return {
            "database": self.database,
            "day": self.as_of.isoformat(),
            "clinics": self.clinics,
            "patients": self.patients,
            "appointments": self.appointments,
            "agents": self.agents,
            "campaigns": [
                {
                    **days[r.campaign].as_json(),
                    "candidates": len(r.candidates),
                    "eligible_patients": r.eligible_patients,
                    "excluded": r.excluded,
                }
                for r in self.lists
            ],
        }


def foreign_rows(conn: Connection) -> dict[str, int]:
    """Imported rows that did not come from the demo, per table (only non-zero counts)."""
    counts = {}
    for name, model in (("clinics", Clinic), ("patients", Patient), ("appointments", Appointment)):
        query = select(func.count()).select_from(model).where(model.source != DEMO_SOURCE)
        counts[name] = int(conn.execute(query).scalar_one())
    return {name: count for name, count in counts.items() if count}


def clear_demo(conn: Connection) -> None:
    """Delete the demo's own rows and everything derived from them."""
    demo_patients = select(Patient.id).where(Patient.source == DEMO_SOURCE)
    demo_appointments = select(Appointment.id).where(Appointment.source == DEMO_SOURCE)
    for statement in (
        delete(Booking),
        delete(CallEventRecord),
        delete(Callback),
        delete(Attempt),
        delete(AgentEvent),
        delete(Agent),
        delete(DialListEntry),
        delete(DialListPatient),
        delete(DialList),
        delete(CampaignHousehold),
        delete(AppointmentConfirmation).where(
            AppointmentConfirmation.appointment_id.in_(demo_appointments)
        ),
        delete(Appointment).where(Appointment.source == DEMO_SOURCE),
        delete(Recall).where(Recall.patient_id.in_(demo_patients)),
        delete(Phone).where(Phone.patient_id.in_(demo_patients)),
        delete(DncEntry).where(DncEntry.source.in_((DEMO_SOURCE, "keypress", "disposition"))),
        delete(RetiredPhone),
    ):
        conn.execute(statement)
    conn.execute(update(Patient).values(guarantor_id=None))
    conn.execute(delete(Patient).where(Patient.source == DEMO_SOURCE))
    conn.execute(delete(Clinic).where(Clinic.source == DEMO_SOURCE))


def run_demo(engine: Engine, *, today: date | None = None, step: Step | None = None) -> DemoResult:
    """Generate the demo chain, import it, build the three example campaigns' lists for the next
    working day, and dial that day through the engine with 12 simulated PSRs (4 bilingual)."""
    say = step or (lambda _: None)
    now = datetime.now(UTC)
    as_of = next_workday(today or now.date())
    with engine.begin() as conn:
        others = foreign_rows(conn)
        if others:
            found = ", ".join(f"{count} {name}" for name, count in others.items())
            raise DemoRefused(
                f"The database {safe_url(engine)} holds data that is not the demo's ({found}); "
                "run the demo on a database of its own, e.g. `dialer --db sqlite:///demo.db demo`"
            )
        clear_demo(conn)
    result = DemoResult(safe_url(engine), as_of, 0, 0, 0)
    with tempfile.TemporaryDirectory(prefix="dialer-demo-") as folder:
        say(f"Generating a {DEMO_PATIENTS:,}-patient chain")
        files = generate_chain(Path(folder), patients=DEMO_PATIENTS, seed=DEMO_SEED, as_of=as_of)
        for kind, path in (
            ("clinics", files.clinics),
            ("patients", files.patients),
            ("appointments", files.appointments),
        ):
            say(f"Importing {kind}")
            imported = import_file(engine, kind, path, now=now, source=DEMO_SOURCE)
            setattr(result, kind, imported.inserted + imported.updated + imported.unchanged)
    campaigns = []
    for name, (campaign, path) in sorted(load_campaigns(packaged_campaigns_dir()).items()):
        say(f"Building {name}")
        built, _ = build_list(engine, campaign, path, as_of=as_of, now=now)
        result.lists.append(built)
        campaigns.append((campaign, len(built.entries)))
    workday = Workday(as_of, demo_zone(engine), seed=DEMO_SEED)
    say(f"Dialing {as_of.isoformat()} with {workday.agents} PSRs ({workday.bilingual} bilingual)")
    result.day = run_workday(engine, campaigns, workday)
    result.agents = workday.agents
    say("Importing the practice's appointments three weeks later (bookings followed up)")
    with tempfile.TemporaryDirectory(prefix="dialer-demo-") as folder:
        follow_up_demo(engine, as_of, Path(folder), seed=DEMO_SEED, source=DEMO_SOURCE)
    return result


def demo_zone(engine: Engine) -> str:
    """The call center's zone: DIALER_TIMEZONE, else the first clinic's."""
    configured = load_settings().timezone
    if configured:
        return configured
    with engine.connect() as conn:
        zone = conn.execute(select(Clinic.timezone).order_by(Clinic.id).limit(1)).scalar()
    return zone or "America/Chicago"
