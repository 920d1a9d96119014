"""What every export and report is filtered by, and the zone its dates are shown in.

``--from``/``--to`` are inclusive calendar dates in each attempt's clinic's zone (an attempt
without a clinic uses the report zone): an attempt started at 23:30 in San Antonio on March 3
is in ``--to 2026-03-03`` even though it is March 4 in UTC.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, false, or_, select, true

from dialer.errors import ConfigError, NotFound
from dialer.geo import is_timezone
from dialer.store.models import Attempt, Campaign, Clinic


@dataclass(frozen=True)
class Filters:
    """Which attempts a report covers: campaign names, clinic external ids, inclusive dates."""

    campaigns: tuple[str, ...] = ()
    clinics: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None

    def as_json(self) -> dict[str, Any]:
        """The filters as recorded in the audit log (only those given)."""
        out: dict[str, Any] = {}
        if self.campaigns:
            out["campaigns"] = list(self.campaigns)
        if self.clinics:
            out["clinics"] = list(self.clinics)
        if self.date_from is not None:
            out["from"] = self.date_from.isoformat()
        if self.date_to is not None:
            out["to"] = self.date_to.isoformat()
        return out


def report_zone(conn: Connection, setting: str | None) -> ZoneInfo:
    """The call center's zone: ``DIALER_TIMEZONE``, else the first clinic's, else UTC."""
    if setting:
        if not is_timezone(setting):
            raise ConfigError(
                f"DIALER_TIMEZONE={setting!r} is not an IANA zone name "
                "(expected e.g. America/Chicago)"
            )
        return ZoneInfo(setting)
    first = conn.execute(
        select(Clinic.timezone)
        .where(Clinic.timezone.is_not(None), Clinic.deleted_at.is_(None))
        .order_by(Clinic.id)
        .limit(1)
    ).scalar()
    return ZoneInfo(first) if first and is_timezone(first) else ZoneInfo("UTC")


def _campaign_ids(conn: Connection, names: tuple[str, ...]) -> list[int]:
    found = dict(
        conn.execute(select(Campaign.name, Campaign.id).where(Campaign.name.in_(names))).all()
    )
    missing = [name for name in names if name not in found]
    if missing:
        known = conn.execute(select(Campaign.name).order_by(Campaign.name)).scalars().all()
        listed = ", ".join(known) if known else "none yet"
        raise NotFound(f"No campaign named {missing[0]!r} in the store (known: {listed})")
    return [int(found[name]) for name in names]


def _clinic_zones(conn: Connection, ids: tuple[str, ...]) -> dict[int, str | None]:
    rows = conn.execute(
        select(Clinic.external_id, Clinic.id, Clinic.timezone).order_by(Clinic.external_id)
    ).all()
    found = {row.external_id for row in rows}
    missing = [clinic for clinic in ids if clinic not in found]
    if missing:
        known = ", ".join(row.external_id for row in rows) or "none imported"
        raise NotFound(f"No clinic with id {missing[0]!r} (known: {known})")
    return {int(row.id): row.timezone for row in rows if not ids or row.external_id in ids}


def local_bounds(
    zone: ZoneInfo, first: date | None, last: date | None
) -> tuple[datetime | None, datetime | None]:
    """UTC ``[start, end)`` of the local dates ``first`` .. ``last`` (inclusive) in ``zone``."""
    start = None if first is None else datetime.combine(first, time(0), zone).astimezone(UTC)
    end = (
        None
        if last is None
        else datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
    )
    return start, end


def _between(start: datetime | None, end: datetime | None) -> ColumnElement[bool]:
    parts = []
    if start is not None:
        parts.append(Attempt.started_at >= start)
    if end is not None:
        parts.append(Attempt.started_at < end)
    return and_(true(), *parts)


def attempt_conditions(
    conn: Connection, filters: Filters, zone: ZoneInfo
) -> list[ColumnElement[bool]]:
    """WHERE conditions on :class:`Attempt` for ``filters``; unknown names raise NotFound."""
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ConfigError(
            f"--from {filters.date_from.isoformat()} is after --to {filters.date_to.isoformat()}"
        )
    conditions: list[ColumnElement[bool]] = []
    if filters.campaigns:
        conditions.append(Attempt.campaign_id.in_(_campaign_ids(conn, filters.campaigns)))
    dated = filters.date_from is not None or filters.date_to is not None
    if not filters.clinics and not dated:
        return conditions
    clinics = _clinic_zones(conn, filters.clinics)
    if not dated:
        conditions.append(Attempt.clinic_id.in_(list(clinics)))
        return conditions
    by_zone: dict[str, list[int]] = defaultdict(list)
    for clinic_id, clinic_zone in clinics.items():
        usable = clinic_zone if clinic_zone and is_timezone(clinic_zone) else zone.key
        by_zone[usable].append(clinic_id)
    spans: list[ColumnElement[bool]] = [
        and_(
            Attempt.clinic_id.in_(ids),
            _between(*local_bounds(ZoneInfo(name), filters.date_from, filters.date_to)),
        )
        for name, ids in sorted(by_zone.items())
    ]
    if not filters.clinics:
        spans.append(
            and_(
                Attempt.clinic_id.is_(None),
                _between(*local_bounds(zone, filters.date_from, filters.date_to)),
            )
        )
    conditions.append(or_(false(), *spans))
    return conditions
