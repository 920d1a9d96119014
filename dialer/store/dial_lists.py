"""Building, saving and reading dial lists in the store.

A build writes a ``dial_lists`` row with its counts and replaces the campaign's previous
entries and candidate rows, in one transaction. Entry ids are the ``campaign_households`` ids
of each entry's household, so they stay the same across rebuilds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    JSON,
    Connection,
    Date,
    Engine,
    Row,
    Table,
    delete,
    insert,
    select,
    update,
)

from dialer.campaigns import CampaignModel
from dialer.errors import NotFound
from dialer.lists import REASON_TEXT, DialListResult, build_dial_list
from dialer.store.models import (
    Campaign,
    CampaignHousehold,
    DialList,
    DialListEntry,
    DialListPatient,
    Patient,
    UTCDateTime,
)
from dialer.store.population import (
    as_of_dates,
    campaign_clinic_ids,
    clinics_frame,
    load_population,
)

ENTRY_COLUMNS = [
    "entry_id",
    "rank",
    "clinic_id",
    "household_key",
    "phone",
    "phones",
    "timezones",
    "timezone_source",
    "language",
    "patient_ids",
    "patient_count",
    "priority",
    "states",
]


def sync_campaign(
    conn: Connection, campaign: CampaignModel, path: Path | None, now: datetime
) -> int:
    """Store (or refresh) a campaign's definition; returns its id."""
    definition = campaign.model_dump(mode="json")
    row = conn.execute(
        select(Campaign.id, Campaign.definition).where(Campaign.name == campaign.name)
    ).first()
    if row is None:
        result = conn.execute(
            insert(Campaign)
            .values(
                name=campaign.name,
                kind=campaign.kind,
                definition=definition,
                source_path=str(path) if path else None,
                created_at=now,
                updated_at=now,
            )
            .returning(Campaign.id)
        )
        return int(result.scalar_one())
    if row.definition != definition:
        conn.execute(
            update(Campaign)
            .where(Campaign.id == row.id)
            .values(
                kind=campaign.kind,
                definition=definition,
                source_path=str(path) if path else None,
                updated_at=now,
            )
        )
    return int(row.id)


def campaign_id(conn: Connection, name: str) -> int | None:
    """The stored id of a campaign, or None."""
    return conn.execute(select(Campaign.id).where(Campaign.name == name)).scalar()


def build_list(
    engine: Engine,
    campaign: CampaignModel,
    path: Path | None,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> tuple[DialListResult, int]:
    """Build and save the campaign's list; returns the result and the dial list id."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        cid = sync_campaign(conn, campaign, path, now)
        clinics = clinics_frame(conn)
        clinic_ids = campaign_clinic_ids(campaign, clinics)
        dates = as_of_dates(clinics[clinics["id"].isin(clinic_ids)], as_of, now)
        population = load_population(conn, campaign, cid, dates, clinic_ids)
        result = build_dial_list(campaign, population, dates, now)
        list_id = save_dial_list(conn, cid, result, now)
    return result, list_id


def summary_as_of(dates: dict[int, date]) -> date:
    """One as-of date for a build: the common date, or the earliest when clinics disagree."""
    return min(dates.values()) if dates else date.today()


def _household_ids(conn: Connection, cid: int, keys: list[str], now: datetime) -> dict[str, int]:
    existing = dict(
        conn.execute(
            select(CampaignHousehold.household_key, CampaignHousehold.id).where(
                CampaignHousehold.campaign_id == cid
            )
        ).all()
    )
    missing = [k for k in dict.fromkeys(keys) if k not in existing]
    rows = [
        {"campaign_id": cid, "household_key": k, "attempts": 0, "created_at": now} for k in missing
    ]
    if rows:
        bulk_insert(conn, CampaignHousehold.__table__, pd.DataFrame(rows))  # type: ignore[arg-type]
        existing = dict(
            conn.execute(
                select(CampaignHousehold.household_key, CampaignHousehold.id).where(
                    CampaignHousehold.campaign_id == cid
                )
            ).all()
        )
    return {str(k): int(v) for k, v in existing.items()}


def save_dial_list(conn: Connection, cid: int, result: DialListResult, now: datetime) -> int:
    """Write a build: its summary row, its entries and its candidates; older rows go."""
    entries = result.entries
    ids = _household_ids(conn, cid, list(entries["household_key"]), now)
    dates = result.as_of_by_clinic
    list_id = conn.execute(
        insert(DialList)
        .values(
            campaign_id=cid,
            as_of=summary_as_of(dates),
            as_of_by_clinic={str(k): v.isoformat() for k, v in dates.items()},
            built_at=now,
            candidates=len(result.candidates),
            eligible_patients=result.eligible_patients,
            entries=len(entries),
            excluded=result.excluded,
            priority_fields=result.priority_fields,
        )
        .returning(DialList.id)
    ).scalar_one()
    older = select(DialList.id).where(DialList.campaign_id == cid, DialList.id != list_id)
    conn.execute(delete(DialListEntry).where(DialListEntry.dial_list_id.in_(older)))
    conn.execute(delete(DialListPatient).where(DialListPatient.dial_list_id.in_(older)))
    priority = [
        [_json_number(v) for v in values]
        for values in entries[result.priority_fields].itertuples(index=False)
    ]
    rows = entries.assign(
        dial_list_id=list_id,
        entry_id=entries["household_key"].map(ids),
        priority=pd.Series(priority, index=entries.index, dtype=object),
    )
    bulk_insert(conn, DialListEntry.__table__, rows[["dial_list_id", *ENTRY_COLUMNS]])  # type: ignore[arg-type]
    cand = result.candidates
    members = pd.DataFrame(
        {
            "dial_list_id": list_id,
            "patient_id": cand["patient_id"].astype("int64"),
            "entry_id": cand["entry_key"].map(ids).astype("Int64"),
            "reason": cand["reason"],
        }
    )
    bulk_insert(conn, DialListPatient.__table__, members)  # type: ignore[arg-type]
    return int(list_id)


def _json_number(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return int(value) if float(value).is_integer() else float(value)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert a frame's rows (see :func:`insert_rows`); missing values become NULL."""
    if frame.empty:
        return
    clean = frame.astype(object).where(frame.notna(), None)
    insert_rows(conn, table, list(frame.columns), clean.itertuples(index=False, name=None))


def insert_rows(
    conn: Connection, table: Table, columns: list[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows of plain values, in ``columns`` order: COPY on PostgreSQL, the driver's
    executemany on SQLite.

    Both bypass SQLAlchemy's per-value processing, which dominates at a million rows: JSON
    columns are serialised here, and on SQLite times are stored as SQLAlchemy stores them
    (naive UTC text, so comparisons still work); other values must already be what the column
    stores.
    """
    sqlite = conn.dialect.name == "sqlite"
    convert: dict[int, Callable[[Any], Any]] = {}
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            convert[index] = _json_text
        elif sqlite and isinstance(column_type, UTCDateTime | Date):
            process = column_type.bind_processor(conn.dialect)
            if process is not None:
                convert[index] = _stored_time(process)
    if convert:
        rows = map(_converter(list(convert.items())), rows)
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    raw.cursor().executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def _converter(
    columns: list[tuple[int, Callable[[Any], Any]]],
) -> Callable[[Sequence[Any]], list[Any]]:
    """A row with these columns converted, the others as they are (a row's few converted
    columns are visited, not all of them: this runs for every row of a list build)."""

    def converted(row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for index, convert in columns:
            values[index] = convert(values[index])
        return values

    return converted


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _stored_time(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A time as SQLite stores it (pandas timestamps as plain datetimes first); a run of
    equal times (a column set to one instant) is converted once."""
    last: list[Any] = [object(), None]

    def stored(value: Any) -> Any:
        if value is None:
            return None
        if value is not last[0] and value != last[0]:
            plain = pd.Timestamp(value).to_pydatetime() if isinstance(value, datetime) else value
            last[0], last[1] = value, process(plain)
        return last[1]

    return stored


def latest_list(conn: Connection, name: str) -> Row[Any]:
    """The campaign's most recent build, or NotFound asking for ``dialer lists build``."""
    row = conn.execute(
        select(*DialList.__table__.c)
        .join(Campaign, Campaign.id == DialList.campaign_id)
        .where(Campaign.name == name)
        .order_by(DialList.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"No list has been built for {name!r}; run `dialer lists build {name}`")
    return row


def list_entries(conn: Connection, list_id: int, limit: int | None = None) -> pd.DataFrame:
    """Entries of a build in rank order."""
    columns = [DialListEntry.__table__.c[name] for name in ENTRY_COLUMNS]
    query = (
        select(*columns).where(DialListEntry.dial_list_id == list_id).order_by(DialListEntry.rank)
    )
    if limit is not None:
        query = query.limit(limit)
    return pd.DataFrame(conn.execute(query).all(), columns=ENTRY_COLUMNS)


def explain_patient(conn: Connection, name: str, patient_external_id: str) -> dict[str, Any]:
    """Why a patient is or is not on the campaign's latest list, and through which entry."""
    built = latest_list(conn, name)
    patient = conn.execute(
        select(Patient.id, Patient.guarantor_external_id, Patient.deleted_at).where(
            Patient.external_id == patient_external_id
        )
    ).first()
    if patient is None:
        raise NotFound(f"No patient with id {patient_external_id!r}")
    out: dict[str, Any] = {
        "campaign": name,
        "as_of": built.as_of.isoformat(),
        "built_at": built.built_at.isoformat(),
        "patient_id": patient_external_id,
        "household_id": patient.guarantor_external_id,
        "on_list": False,
        "reason": None,
        "explanation": None,
        "entry": None,
    }
    fate = conn.execute(
        select(DialListPatient.reason, DialListPatient.entry_id).where(
            DialListPatient.dial_list_id == built.id, DialListPatient.patient_id == patient.id
        )
    ).first()
    if fate is None:
        out["reason"] = "not_a_candidate"
        out["explanation"] = (
            "not a candidate of this build: the patient's clinic is not one of "
            "the campaign's clinics, or the patient was imported or deleted "
            "after the build; run `dialer lists build` again"
        )
        return out
    if fate.reason is not None:
        out["reason"], out["explanation"] = fate.reason, REASON_TEXT.get(fate.reason)
        return out
    entry = conn.execute(
        select(*DialListEntry.__table__.c).where(
            DialListEntry.dial_list_id == built.id, DialListEntry.entry_id == fate.entry_id
        )
    ).one()
    out["on_list"] = True
    out["entry"] = {
        "entry_id": entry.entry_id,
        "rank": entry.rank,
        "household_id": entry.household_key,
        "phone": entry.phone,
        "phones": entry.phones.split(),
        "timezones": entry.timezones.split(),
        "language": entry.language,
        "patient_ids": entry.patient_ids.split(";"),
        "priority": dict(zip(built.priority_fields, entry.priority, strict=True)),
    }
    return out


def excluded_patients(conn: Connection, list_id: int, limit: int | None = None) -> pd.DataFrame:
    """Excluded candidates of a build: patient_id, household_id, reason."""
    query = (
        select(
            Patient.external_id.label("patient_id"),
            Patient.guarantor_external_id.label("household_id"),
            DialListPatient.reason,
        )
        .join(Patient, Patient.id == DialListPatient.patient_id)
        .where(DialListPatient.dial_list_id == list_id, DialListPatient.reason.is_not(None))
        .order_by(DialListPatient.id)
    )
    if limit is not None:
        query = query.limit(limit)
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))
