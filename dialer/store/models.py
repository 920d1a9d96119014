"""SQLAlchemy models of the store.

Imported rows (clinics, patients, phones, appointments, recalls) are keyed by the practice
system's external ids and carry a ``source_hash`` of their normalised values, so a repeated
import is recognised as unchanged. Facts the dialer learns (do-not-call entries, retired
phones, confirmations) live in their own tables, so no re-import undoes them. Every timestamp
is aware UTC (:class:`UTCDateTime`); calendar dates are plain dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

# Integer primary keys: BIGINT on PostgreSQL, the rowid alias INTEGER on SQLite.
PK = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (naive UTC text on SQLite, timestamptz elsewhere)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING)


class PatientStatus(str, Enum):
    """A patient's status in the practice system."""

    active = "active"
    inactive = "inactive"
    archived = "archived"
    deceased = "deceased"
    non_patient = "non_patient"
    prospective = "prospective"


class PhoneKind(str, Enum):
    """Which of a patient's numbers a phone is."""

    mobile = "mobile"
    home = "home"
    work = "work"


class AppointmentStatus(str, Enum):
    """Status of an appointment in the practice system."""

    scheduled = "scheduled"
    confirmed = "confirmed"
    completed = "completed"
    cancelled = "cancelled"
    broken = "broken"
    no_show = "no_show"


class AppointmentKind(str, Enum):
    """What an appointment is for."""

    hygiene = "hygiene"
    exam = "exam"
    treatment = "treatment"
    emergency = "emergency"
    other = "other"


class DncScope(str, Enum):
    """Reach of a do-not-call entry."""

    global_ = "global"
    clinic = "clinic"
    campaign = "campaign"


class ImportedMixin:
    """Columns shared by rows that come from a practice system."""

    source: Mapped[str] = mapped_column(String(20), default="csv")
    source_hash: Mapped[str] = mapped_column(String(40))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Clinic(ImportedMixin, Base):
    """A practice location; its zone and phone are the fallbacks for its patients."""

    __tablename__ = "clinics"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(20))
    default_language: Mapped[str] = mapped_column(String(32), default="en")


class Patient(ImportedMixin, Base):
    """A person in the practice system; the household is the guarantor's."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    guarantor_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    guarantor_external_id: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    language: Mapped[str | None] = mapped_column(String(32))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str | None] = mapped_column(String(2))
    preferred_phone: Mapped[str | None] = mapped_column(String(8))
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=PatientStatus.active.value)
    last_visit_date: Mapped[date | None] = mapped_column(Date)


class Phone(Base):
    """One of a patient's numbers, normalised to E.164 when it parses and is valid."""

    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("patient_id", "kind"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(8))
    raw: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    valid: Mapped[bool] = mapped_column(Boolean)
    timezones: Mapped[str | None] = mapped_column(String(200))
    consent_source: Mapped[str | None] = mapped_column(String(32))
    consent_date: Mapped[date | None] = mapped_column(Date)


class Appointment(ImportedMixin, Base):
    """An appointment; ``start_at`` is UTC, converted from the clinic's local time."""

    __tablename__ = "appointments"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Recall(ImportedMixin, Base):
    """A patient's recall of one type (at most one per type)."""

    __tablename__ = "recalls"
    __table_args__ = (UniqueConstraint("patient_id", "recall_type"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    recall_type: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[date | None] = mapped_column(Date)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_until: Mapped[date | None] = mapped_column(Date)
    scheduled_date: Mapped[date | None] = mapped_column(Date)


class Campaign(Base):
    """The stored copy of a campaign definition, refreshed from its file when used."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignHousehold(Base):
    """What a campaign knows of one household: attempts, retries, conversions.

    Its id is the stable ``entry_id`` of the household's dial-list entry.
    """

    __tablename__ = "campaign_households"
    __table_args__ = (
        UniqueConstraint("campaign_id", "household_key"),
        Index("ix_campaign_households_due", "campaign_id", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    household_key: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    final_code: Mapped[str | None] = mapped_column(String(20))
    phone_index: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DialList(Base):
    """One build of a campaign's list: its counts; the latest build's rows are kept."""

    __tablename__ = "dial_lists"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    as_of: Mapped[date] = mapped_column(Date)
    as_of_by_clinic: Mapped[dict[str, str]] = mapped_column(JSON)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime())
    candidates: Mapped[int] = mapped_column(Integer)
    eligible_patients: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[dict[str, int]] = mapped_column(JSON)
    priority_fields: Mapped[list[str]] = mapped_column(JSON)


class DialListEntry(Base):
    """One row of a built list: a phone and the household members it covers."""

    __tablename__ = "dial_list_entries"
    __table_args__ = (Index("ix_dial_list_entries_list_rank", "dial_list_id", "rank"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    dial_list_id: Mapped[int] = mapped_column(ForeignKey("dial_lists.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("campaign_households.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    household_key: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20))
    phones: Mapped[str] = mapped_column(Text)
    timezones: Mapped[str] = mapped_column(Text)
    timezone_source: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(32))
    patient_ids: Mapped[str] = mapped_column(Text)
    patient_count: Mapped[int] = mapped_column(Integer)
    priority: Mapped[list[Any]] = mapped_column(JSON)
    states: Mapped[str] = mapped_column(String(64), default="", server_default="")


class DialListPatient(Base):
    """Each candidate of a build: the entry that covers them, or the reason they are out."""

    __tablename__ = "dial_list_patients"
    __table_args__ = (Index("ix_dial_list_patients_list_patient", "dial_list_id", "patient_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    dial_list_id: Mapped[int] = mapped_column(ForeignKey("dial_lists.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(32))


class DncEntry(Base):
    """A do-not-call entry. Never deleted: removal sets ``removed_at``."""

    __tablename__ = "dnc_entries"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    scope: Mapped[str] = mapped_column(String(10))
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"))
    campaign: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RetiredPhone(Base):
    """A number the dialer learned not to call for anyone (e.g. a wrong number)."""

    __tablename__ = "retired_phones"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppointmentConfirmation(Base):
    """An appointment confirmed through the dialer, for the slot that was confirmed."""

    __tablename__ = "appointment_confirmations"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ImportRun(Base):
    """One import of one file or table, with its counts."""

    __tablename__ = "import_runs"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    rejects_file: Mapped[str | None] = mapped_column(Text)


class Agent(Base):
    """A PSR. ``name`` is how supervisors know them; ``languages`` space-separated (``en es``)."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    languages: Mapped[str] = mapped_column(String(64), default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgentEvent(Base):
    """A PSR's state history: each row is a state entered at ``at``."""

    __tablename__ = "agent_events"
    __table_args__ = (Index("ix_agent_events_agent_at", "agent_id", "at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempt_id: Mapped[int | None] = mapped_column(BigInteger)


class Attempt(Base):
    """One outbound call for an entry, from launch to disposition."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_campaign_started", "campaign_id", "started_at"),
        Index("ix_attempts_household", "household_id"),
        Index("ix_attempts_phone_started", "phone", "started_at"),
        # The attempts not yet ended (a handful: the calls in progress), for the periodic
        # sweep of orphaned calls, which would otherwise read a day of attempts each time.
        Index(
            "ix_attempts_open",
            "campaign_id",
            "started_at",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("campaign_households.id"))
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"))
    attempt_number: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(20))
    phone_kind: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(32))
    timezones: Mapped[str] = mapped_column(Text)
    states: Mapped[str] = mapped_column(String(64), default="")
    patient_ids: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    provider_call_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    person_detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    machine_detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wrap_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(20))
    disposition: Mapped[str | None] = mapped_column(String(20))
    disposition_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    is_conversion: Mapped[bool] = mapped_column(Boolean, default=False)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    appointment_ids: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)


class CallEventRecord(Base):
    """Every provider event applied to an attempt (idempotence across restarts, and audit)."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("event_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Callback(Base):
    """A call-back the callee asked for: owned by a PSR, offered to others 15 minutes late."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_campaign_due", "campaign_id", "due_at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("campaign_households.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """One export of patient-level data: who ran it, with which filters, how many rows, where
    it went (a file path, or ``stdout``) and when. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer)
    output: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))


# Reports and exports read attempts in start order (without sorting the whole table).
Index("ix_attempts_started", Attempt.started_at)


class Booking(Base):
    """An appointment booked on a call: the patient, the slot agreed, its kind. The PMS copy
    arrives with a later import and is matched to it by the attribution report."""

    __tablename__ = "bookings"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str | None] = mapped_column(String(16))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime())
