"""Reading an Open Dental database: the seven tables the importer needs, as text cells.

Only the columns in :data:`SOURCE_COLUMNS` are read (no SSN, notes or balances), in one read
transaction, so the import works from one consistent snapshot. A missing table or column is an
error naming it, before anything is imported. See :mod:`dialer.ingest.opendental` for the
mapping onto the canonical import.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from dialer.errors import ConfigError, DatabaseError, InputFileError

SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient": (
        "PatNum",
        "LName",
        "FName",
        "PatStatus",
        "Birthdate",
        "Guarantor",
        "ClinicNum",
        "Language",
        "HmPhone",
        "WkPhone",
        "WirelessPhone",
        "Zip",
        "State",
        "PreferContactMethod",
        "PreferConfirmMethod",
        "PreferRecallMethod",
        "PreferContactConfidential",
    ),
    "appointment": (
        "AptNum",
        "PatNum",
        "AptStatus",
        "Pattern",
        "Confirmed",
        "AptDateTime",
        "ClinicNum",
        "IsHygiene",
        "SecDateTEntry",
    ),
    "recall": (
        "RecallNum",
        "PatNum",
        "RecallTypeNum",
        "DateDue",
        "IsDisabled",
        "DisableUntilDate",
        "DateScheduled",
    ),
    "recalltype": ("RecallTypeNum", "Description"),
    "clinic": ("ClinicNum", "Description", "State", "Zip", "Phone", "TimeZone"),
    "definition": ("DefNum", "Category", "ItemName"),
    "preference": ("PrefName", "ValueString"),
}
DATE_COLUMNS = frozenset({"Birthdate", "DateDue", "DisableUntilDate", "DateScheduled"})
DATETIME_COLUMNS = frozenset({"AptDateTime", "SecDateTEntry"})
APPT_CONFIRMED_CATEGORY = "2"
CONFIRMED_PREFERENCE = "ApptEConfirmStatusAccepted"
PRACTICE_PREFERENCES = ("PracticeTitle", "PracticeZip", "PracticePhone", "PracticeST")
NULL_DAYS = frozenset({"0001-01-01", "0000-00-00"})
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2})(?::\d{2}(?:\.\d*)?)?)?$")


def source_engine(url: str) -> Engine:
    """An engine for the Open Dental URL; bare ``mysql://`` and ``mariadb://`` use PyMySQL."""
    try:
        parsed: URL = make_url(url)
    except ArgumentError as exc:
        # Not echoed: a URL that does not parse may still hold a password.
        raise ConfigError(
            "The Open Dental URL is not a database URL (expected e.g. "
            "mysql+pymysql://user:password@host/opendental)"
        ) from exc
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    masked = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        # SQLite would create an empty file for a mistyped path; say what is wrong instead.
        raise DatabaseError(f"Cannot open the Open Dental database {masked}: no such file")
    try:
        return sa.create_engine(parsed)
    except ImportError as exc:
        raise ConfigError(
            "Reading an Open Dental database on MySQL or MariaDB needs PyMySQL: "
            "pip install 'dialer[opendental]'"
        ) from exc
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"Cannot use the Open Dental URL {masked}: {exc}") from exc


def read_source(url: str) -> dict[str, pd.DataFrame]:
    """The seven tables as text cells, read in one transaction (one snapshot on InnoDB)."""
    engine = source_engine(url)
    masked = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execution_options(isolation_level="REPEATABLE READ")
            names = check_source(conn, masked)
            frames = {table: read_frame(conn, table, names[table]) for table in SOURCE_COLUMNS}
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(f"Cannot read the Open Dental database {masked}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return frames


def check_source(conn: Connection, masked: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The actual table and column names; every missing table and column is an error."""
    inspector = sa.inspect(conn)
    tables = {name.lower(): name for name in inspector.get_table_names()}
    problems = [f"table {t} is missing" for t in SOURCE_COLUMNS if t not in tables]
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for table, needed in SOURCE_COLUMNS.items():
        if table not in tables:
            continue
        columns = {c["name"].lower(): c["name"] for c in inspector.get_columns(tables[table])}
        lacking = [c for c in needed if c.lower() not in columns]
        if lacking:
            plural = "s" if len(lacking) > 1 else ""
            problems.append(f"table {table} has no column{plural} {', '.join(lacking)}")
        found[table] = (tables[table], columns)
    if problems:
        raise InputFileError(
            f"Open Dental database {masked}: {'; '.join(problems)}; nothing was imported"
        )
    return found


def read_frame(conn: Connection, table: str, names: tuple[str, dict[str, str]]) -> pd.DataFrame:
    """Needed columns as text ("" for NULL) by key; the index is the 1-based row number."""
    actual, columns = names
    needed = SOURCE_COLUMNS[table]
    cols: dict[str, sa.ColumnClause[Any]] = {n: sa.column(columns[n.lower()]) for n in needed}
    query = sa.select(*(col.label(name) for name, col in cols.items())).select_from(
        sa.table(actual)
    )
    if table == "definition":
        query = query.where(cols["Category"] == int(APPT_CONFIRMED_CATEGORY))
    if table == "preference":
        query = query.where(cols["PrefName"].in_([*PRACTICE_PREFERENCES, CONFIRMED_PREFERENCE]))
    rows = conn.execute(query.order_by(cols[needed[0]])).all()
    frame = pd.DataFrame(
        [[text(value) for value in row] for row in rows],
        columns=list(needed),
        index=pd.RangeIndex(1, len(rows) + 1),
        dtype=object,
    )
    for name in needed:
        if name in DATE_COLUMNS or name in DATETIME_COLUMNS:
            frame[name] = date_cells(frame[name], with_time=name in DATETIME_COLUMNS)
    return frame


def text(value: object) -> str:
    """A source value as a stripped text cell ("" for NULL); whole numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


def date_cells(cells: pd.Series, *, with_time: bool) -> pd.Series:
    """ISO dates (``YYYY-MM-DD``) or local times (``YYYY-MM-DD HH:MM``); empty dates -> ""."""

    def convert(value: str) -> str:
        match = _DATE.match(value)
        if not match:
            return value  # not a date: the canonical check rejects the row
        day = match.group(1)
        if day in NULL_DAYS:
            return ""
        if not with_time:
            return day
        return f"{day} {match.group(2) or '00'}:{match.group(3) or '00'}"

    lookup = {value: convert(value) for value in cells.unique()}
    return cells.map(lookup).astype(object)
