"""The do-not-call lists: global, per clinic and per campaign. Entries are never deleted:
removing one sets ``removed_at``, so the store can always say what was listed at a given time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, and_, insert, or_, select, update

from dialer.errors import DialerError, NotFound
from dialer.ingest.importer import ImportResult, publish_rejects, stage_rejects
from dialer.ingest.reading import read_table
from dialer.ingest.values import normalise_phone
from dialer.store.models import Clinic, DncEntry


class InvalidPhone(DialerError):
    """A phone number given on the command line does not parse."""

    def __init__(self, raw: str) -> None:
        super().__init__(
            f"Not a valid phone number: {raw!r} (expected e.g. (503) 555-0123 or +15035550123)"
        )


@dataclass(frozen=True)
class Scope:
    """Where a do-not-call entry applies."""

    kind: str = "global"  # global | clinic | campaign
    clinic_id: int | None = None
    campaign: str | None = None

    def label(self, clinic_external: str | None = None) -> str:
        """``global``, ``clinic C1`` or ``campaign NAME``."""
        if self.kind == "clinic":
            return f"clinic {clinic_external or self.clinic_id}"
        if self.kind == "campaign":
            return f"campaign {self.campaign}"
        return "global"


def parse_phone(raw: str) -> str:
    """A phone in any common format as E.164, or :class:`InvalidPhone`."""
    e164, valid = normalise_phone(raw.strip())
    if not valid or e164 is None:
        raise InvalidPhone(raw)
    return e164


def resolve_scope(conn: Connection, clinic: str | None, campaign: str | None) -> Scope:
    """A scope from the ``--clinic`` / ``--campaign`` options (global when neither)."""
    if clinic and campaign:
        raise DialerError("Give --clinic or --campaign, not both")
    if clinic:
        cid = conn.execute(select(Clinic.id).where(Clinic.external_id == clinic)).scalar()
        if cid is None:
            raise NotFound(f"No clinic with id {clinic!r}; import clinics first")
        return Scope("clinic", clinic_id=int(cid))
    if campaign:
        return Scope("campaign", campaign=campaign)
    return Scope()


def _matches(phone: str, scope: Scope) -> object:
    return and_(
        DncEntry.phone == phone,
        DncEntry.scope == scope.kind,
        DncEntry.removed_at.is_(None),
        DncEntry.clinic_id.is_(None)
        if scope.clinic_id is None
        else DncEntry.clinic_id == scope.clinic_id,
        DncEntry.campaign.is_(None)
        if scope.campaign is None
        else DncEntry.campaign == scope.campaign,
    )


def add_dnc(
    conn: Connection, phone: str, scope: Scope, *, source: str, reason: str | None, now: datetime
) -> bool:
    """List ``phone`` (E.164) in ``scope``; False when it already was."""
    if conn.execute(select(DncEntry.id).where(_matches(phone, scope))).first():  # type: ignore[arg-type]
        return False
    conn.execute(
        insert(DncEntry).values(
            phone=phone,
            scope=scope.kind,
            clinic_id=scope.clinic_id,
            campaign=scope.campaign,
            source=source,
            reason=reason,
            added_at=now,
        )
    )
    return True


def remove_dnc(conn: Connection, phone: str, scope: Scope, now: datetime) -> int:
    """Mark the active entries of ``phone`` in ``scope`` removed; returns how many."""
    result = conn.execute(
        update(DncEntry)
        .where(_matches(phone, scope))  # type: ignore[arg-type]
        .values(removed_at=now)
    )
    return int(result.rowcount)


def is_listed(
    conn: Connection, phone: str, *, clinic_id: int | None, campaign: str | None, at: datetime
) -> bool:
    """Was ``phone`` on a list that applies to this clinic and campaign at time ``at``?"""
    applies = or_(
        DncEntry.scope == "global",
        and_(DncEntry.scope == "clinic", DncEntry.clinic_id == clinic_id),
        and_(DncEntry.scope == "campaign", DncEntry.campaign == campaign),
    )
    active = and_(
        DncEntry.added_at <= at, or_(DncEntry.removed_at.is_(None), DncEntry.removed_at > at)
    )
    query = select(DncEntry.id).where(DncEntry.phone == phone, applies, active).limit(1)
    return conn.execute(query).first() is not None


def list_dnc(conn: Connection, *, include_removed: bool = False) -> pd.DataFrame:
    """Entries (active ones unless ``include_removed``) with the clinic's external id."""
    query = (
        select(
            DncEntry.phone,
            DncEntry.scope,
            Clinic.external_id.label("clinic_id"),
            DncEntry.campaign,
            DncEntry.source,
            DncEntry.reason,
            DncEntry.added_at,
            DncEntry.removed_at,
        )
        .outerjoin(Clinic, Clinic.id == DncEntry.clinic_id)
        .order_by(DncEntry.id)
    )
    if not include_removed:
        query = query.where(DncEntry.removed_at.is_(None))
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def import_dnc(
    engine: Engine,
    path: Path,
    scope_options: tuple[str | None, str | None],
    *,
    encoding: str | None,
    now: datetime,
) -> ImportResult:
    """Import a CSV of numbers (column ``phone``, optional ``reason``) into one scope.

    Unparseable numbers are rejected to ``FILE.rejects.csv``; numbers already listed count
    as unchanged. One transaction.
    """
    table = read_table(path, None, encoding)
    if "phone" not in table.cells.columns:
        raise DialerError(f"{path}: missing required column phone; nothing was imported")
    reasons = list(table.cells.get("reason", pd.Series("", index=table.cells.index)))
    errors = [""] * len(table.cells)
    result = ImportResult(file=str(path), rows=len(table.cells), kind="dnc")
    with engine.begin() as conn:
        scope = resolve_scope(conn, *scope_options)
        for index, raw in enumerate(table.cells["phone"]):
            e164, valid = normalise_phone(raw)
            if not valid or e164 is None:
                errors[index] = "phone: expected a valid phone number"
                continue
            added = add_dnc(
                conn, e164, scope, source="import", now=now, reason=reasons[index] or None
            )
            result.inserted += int(added)
            result.unchanged += int(not added)
        result.rejected = sum(1 for e in errors if e)
        staged = stage_rejects(table, pd.Series(errors, dtype=object), Path(f"{path}.rejects.csv"))
        result.rejects_file = f"{path}.rejects.csv" if staged else None
    publish_rejects(staged, Path(f"{path}.rejects.csv"))
    return result
