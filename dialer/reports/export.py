"""The disposition export: one row per attempt, streamed in chunks, as CSV or Parquet.

Columns and their published dtypes are :data:`COLUMNS`; :func:`read_dispositions` reads an
export (either format) back with exactly those dtypes. Phone numbers and patient names are
never exported. In CSV, timestamps are ISO 8601 UTC with ``Z`` (microseconds), flags are
``true``/``false``, empty cells are nulls, and text cells that a spreadsheet would run as a
formula are guarded with a leading ``'`` (:func:`guard_text`; :func:`read_dispositions` removes
it again).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Select, String, func, select, type_coerce
from sqlalchemy.orm import aliased

from dialer import geo
from dialer.errors import ConfigError
from dialer.reports.audit import record_export
from dialer.reports.filters import Filters, attempt_conditions, report_zone
from dialer.store.models import Agent, Attempt, Campaign, CampaignHousehold, Clinic, Patient

# Typed as Any: pandas-stubs only accepts literal dtype names in astype.
TEXT: Any = "string"
COUNT: Any = "Int64"
SECONDS: Any = "Float64"
FLAG: Any = "bool"
TIME: Any = "datetime64[us, UTC]"

COLUMNS: dict[str, Any] = {
    "attempt_id": TEXT,
    "campaign": TEXT,
    "campaign_kind": TEXT,
    "clinic_id": TEXT,
    "clinic_name": TEXT,
    "household_id": TEXT,
    "patient_ids": TEXT,
    "phone_type": TEXT,
    "timezone": TEXT,
    "language": TEXT,
    "attempt_number": COUNT,
    "agent": TEXT,
    "started_at": TIME,
    "answered_at": TIME,
    "connected_at": TIME,
    "ended_at": TIME,
    "outcome": TEXT,
    "disposition": TEXT,
    "is_contact": FLAG,
    "is_conversion": FLAG,
    "abandoned": FLAG,
    "ring_seconds": SECONDS,
    "talk_seconds": SECONDS,
    "wrap_seconds": SECONDS,
    "appointment_ids": TEXT,
    "callback_at": TIME,
    "notes": TEXT,
}
"""Every column of the export, in order, with its pandas dtype."""

CHUNK_ROWS = 20_000
STREAM_CACHE_KB = 16_384  # SQLite page cache while streaming an export
FORMATS = ("csv", "parquet")

# Cells a spreadsheet would evaluate: = + - @, tab, carriage return (OWASP CSV injection).
# Cells already starting with ' before one of those get one more, so reading back is exact.
_NEEDS_GUARD = re.compile(r"^'*[=+\-@\t\r]")
_GUARDED = re.compile(r"^'+[=+\-@\t\r]")
_ID_SEPARATORS = re.compile(r"[;,\s]+")


def _id_key(text: str) -> tuple[bool, int, str, str]:
    digits = text.isdigit() and len(text) <= 18
    return (not digits, int(text) if digits else 0, "" if digits else text, text)


def sorted_ids(text: str | None) -> str | None:
    """``;``-separated ids in natural order (all-digit ids by value first); None when empty."""
    if text is None:
        return None
    parts = [part for part in _ID_SEPARATORS.split(text) if part]
    return ";".join(sorted(parts, key=_id_key)) if parts else None


def guard_text(values: pd.Series) -> pd.Series:
    """Prefix ``'`` to the text cells a spreadsheet would run as a formula (CSV only)."""
    hit = values.str.match(_NEEDS_GUARD).fillna(False).astype(bool)
    return values.where(~hit, "'" + values)


def unguard_text(values: pd.Series) -> pd.Series:
    """Undo :func:`guard_text`."""
    hit = values.str.match(_GUARDED).fillna(False).astype(bool)
    return values.where(~hit, values.str.slice(1))


def _raw(column: Any) -> Any:
    # The driver's own value (ISO text on SQLite, a datetime on PostgreSQL), converted per
    # chunk by pandas rather than one value at a time by the column type.
    return type_coerce(column, String).label(column.key)


def _query(engine: Engine, filters: Filters, zone: ZoneInfo) -> Select[*tuple[Any, ...]]:
    a = Attempt
    guarantor = aliased(Patient)
    with engine.connect() as conn:
        conditions = attempt_conditions(conn, filters, zone)
    return (
        select(
            a.id.label("attempt_id"),
            Campaign.name.label("campaign"),
            Campaign.kind.label("campaign_kind"),
            Clinic.external_id.label("clinic_id"),
            Clinic.name.label("clinic_name"),
            CampaignHousehold.household_key.label("household_id"),
            a.patient_ids,
            a.phone_kind.label("phone_type"),
            a.timezones,
            guarantor.postal_code,
            a.language,
            a.attempt_number,
            Agent.name.label("agent"),
            _raw(a.started_at),
            _raw(a.ringing_at),
            _raw(a.answered_at),
            _raw(a.person_detected_at),
            _raw(a.connected_at),
            _raw(a.ended_at),
            _raw(a.wrap_ended_at),
            a.outcome,
            a.disposition,
            a.is_contact,
            a.is_conversion,
            a.abandoned,
            a.appointment_ids,
            _raw(a.callback_at),
            a.notes,
        )
        .join(Campaign, Campaign.id == a.campaign_id)
        .join(CampaignHousehold, CampaignHousehold.id == a.household_id)
        .outerjoin(Clinic, Clinic.id == a.clinic_id)
        .outerjoin(Agent, Agent.id == a.agent_id)
        .outerjoin(guarantor, guarantor.external_id == CampaignHousehold.household_key)
        .where(*conditions)
        .order_by(a.started_at, a.id)
    )


def count_dispositions(engine: Engine, filters: Filters, zone_setting: str | None = None) -> int:
    """How many attempts an export with ``filters`` holds."""
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)
        conditions = attempt_conditions(conn, filters, zone)
        return int(
            conn.execute(select(func.count()).select_from(Attempt).where(*conditions)).scalar_one()
        )


def to_utc(values: pd.Series) -> pd.Series:
    """Store timestamps (ISO text on SQLite, aware datetimes elsewhere) as UTC datetimes."""
    if values.dtype == object and values.map(lambda v: isinstance(v, str)).any():
        out = pd.to_datetime(values, utc=True, format="ISO8601")
    else:
        out = pd.to_datetime(values, utc=True)
    return out.astype(TIME)


def _primary_zone(zones: pd.Series, postal: pd.Series) -> pd.Series:
    """The entry's ZIP zone when it is one of its candidates, else its first candidate."""
    zip_zone = geo.zip_timezones(postal.astype(object).where(postal.notna(), None))
    pairs = pd.Series(list(zip(zones.astype(object), zip_zone, strict=True)), index=zones.index)

    def pick(pair: tuple[Any, Any]) -> str | None:
        candidates, by_zip = pair
        listed = str(candidates).split() if isinstance(candidates, str) else []
        if by_zip and by_zip in listed:
            return str(by_zip)
        return listed[0] if listed else None

    lookup = {pair: pick(pair) for pair in pairs.unique()}
    return pairs.map(lookup)


def _ids(values: pd.Series) -> pd.Series:
    uniques = values.dropna().unique()
    lookup = {text: str(text) if str(text).isalnum() else sorted_ids(str(text)) for text in uniques}
    return values.map(lookup).astype(TEXT)


def _seconds(end: pd.Series, start: pd.Series) -> pd.Series:
    return (end - start).dt.total_seconds().round(3).astype(SECONDS)


def shape_chunk(raw: pd.DataFrame, *, analysis: bool = False) -> pd.DataFrame:
    """Turn rows as the query returns them into the export's columns and dtypes; with
    ``analysis``, add ``live_answer`` (a person was detected) after them, for the reports."""
    times = {
        name: to_utc(raw[name])
        for name in (
            "started_at",
            "ringing_at",
            "answered_at",
            "connected_at",
            "ended_at",
            "wrap_ended_at",
            "callback_at",
        )
    }
    out = pd.DataFrame(index=raw.index)
    for name, dtype in COLUMNS.items():
        if dtype == TIME:
            out[name] = times[name]
        elif dtype == FLAG:
            out[name] = raw[name].fillna(False).astype(bool)
        elif name in raw and name not in ("patient_ids", "appointment_ids"):
            out[name] = raw[name].astype(object).astype(dtype)
    out["attempt_id"] = raw["attempt_id"].astype("int64").astype(str).astype(TEXT)
    out["patient_ids"] = _ids(raw["patient_ids"])
    out["appointment_ids"] = _ids(raw["appointment_ids"])
    out["timezone"] = _primary_zone(raw["timezones"], raw["postal_code"]).astype(TEXT)
    rang_until = times["answered_at"].fillna(times["ended_at"])
    out["ring_seconds"] = _seconds(rang_until, times["ringing_at"])
    connected = times["connected_at"]
    out["talk_seconds"] = _seconds(times["ended_at"], connected)
    out["wrap_seconds"] = _seconds(times["wrap_ended_at"], times["ended_at"]).where(
        connected.notna()
    )
    out = out[list(COLUMNS)]
    if analysis:
        out["live_answer"] = raw["person_detected_at"].notna().to_numpy()
    return out


@contextmanager
def _unmapped(conn: Connection) -> Iterator[None]:
    """On SQLite, stream without memory-mapping the file and with a small page cache.

    The store maps up to 4 GB and caches 256 MB of pages for faster reads; a one-pass scan of
    a large table gains nothing from either, and every page they hold counts in the
    process's resident memory, which would grow with the table. Restored afterwards.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    saved = {
        name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
        for name in ("mmap_size", "cache_size")
    }
    conn.exec_driver_sql("PRAGMA mmap_size=0")
    conn.exec_driver_sql(f"PRAGMA cache_size=-{STREAM_CACHE_KB}")
    try:
        yield
    finally:
        for name, value in saved.items():
            conn.exec_driver_sql(f"PRAGMA {name}={int(value or 0)}")


def iter_dispositions(
    engine: Engine,
    filters: Filters | None = None,
    *,
    zone_setting: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    analysis: bool = False,
) -> Iterator[pd.DataFrame]:
    """The export as DataFrames of at most ``chunk_rows`` rows (dtypes of :data:`COLUMNS`), in
    ``started_at`` order; the store is read with a streaming cursor, so memory stays flat.

    The filters are checked at once (an unknown campaign raises here, before any row). With
    ``analysis`` each chunk also has ``live_answer`` (a person was detected), for reports."""
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)
    query = _query(engine, filters or Filters(), zone)
    return _stream(engine, query, chunk_rows, analysis)


def _stream(engine: Engine, query: Any, chunk_rows: int, analysis: bool) -> Iterator[pd.DataFrame]:
    with engine.connect() as conn, _unmapped(conn):
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        names = list(result.keys())
        for rows in result.partitions(chunk_rows):
            # Column by column: cheaper than from_records' probing of each Row object.
            raw = pd.DataFrame(dict(zip(names, zip(*rows, strict=True), strict=True)))
            yield shape_chunk(raw, analysis=analysis)


def empty_frame() -> pd.DataFrame:
    """An export with no rows, every column with its dtype."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})


# -- writing -------------------------------------------------------------------------------


def _iso(values: pd.Series) -> pd.Series:
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = np.char.add(np.datetime_as_string(naive, unit="us"), "Z")
    return pd.Series(text, index=values.index, dtype=object).where(values.notna(), None)


def csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The export's cells as CSV text (None for empty cells), formula-guarded."""
    out = pd.DataFrame(index=frame.index)
    for name, dtype in COLUMNS.items():
        values = frame[name]
        if dtype == TIME:
            out[name] = _iso(values)
        elif dtype == FLAG:
            out[name] = np.where(values.to_numpy(dtype=bool), "true", "false")
        elif dtype == TEXT:
            out[name] = guard_text(values.astype(TEXT)).astype(object)
        else:
            out[name] = values.astype(TEXT).astype(object)
    return out


def write_csv(chunks: Iterator[pd.DataFrame], stream: IO[bytes], *, excel: bool = False) -> int:
    """Write the header and every chunk as UTF-8 CSV (with a BOM for Excel); rows written."""
    encoding = "utf-8-sig" if excel else "utf-8"
    stream.write((",".join(COLUMNS) + "\r\n").encode(encoding))
    rows = 0
    for chunk in chunks:
        # CRLF rows (RFC 4180): the writer then quotes every cell holding a CR or LF.
        text = csv_cells(chunk).to_csv(header=False, index=False, lineterminator="\r\n")
        stream.write(text.encode("utf-8"))
        rows += len(chunk)
    return rows


def arrow_schema() -> pa.Schema:
    """The Parquet schema of the export."""
    kinds = {TEXT: pa.string(), COUNT: pa.int64(), SECONDS: pa.float64(), FLAG: pa.bool_()}
    fields = [
        pa.field(name, pa.timestamp("us", tz="UTC") if dtype == TIME else kinds[dtype])
        for name, dtype in COLUMNS.items()
    ]
    return pa.schema(fields)


def write_parquet(chunks: Iterator[pd.DataFrame], path: Path) -> int:
    """Write every chunk as one row group of a Parquet file; rows written."""
    schema = arrow_schema()
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        writer.write_table(pa.Table.from_pandas(empty_frame(), schema=schema, preserve_index=False))
        for chunk in chunks:
            writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
            rows += len(chunk)
    return rows


@contextmanager
def private_file(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, readable by its owner only (mode 0600), that replaces
    ``path`` when the block succeeds and is removed when it fails."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(0o600)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def export_format(path: Path | None) -> str:
    """``csv`` or ``parquet`` from the output file's suffix (stdout is CSV)."""
    if path is None:
        return "csv"
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ConfigError(
            f"Cannot tell the export format from {path.name!r}: name the file .csv or .parquet"
        )
    return suffix


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    rows: int
    output: str  # absolute path, or "stdout"
    format: str
    audit_id: int


def export_dispositions(
    engine: Engine,
    filters: Filters,
    output: Path | None,
    *,
    stdout: IO[bytes] | None = None,
    excel: bool = False,
    zone_setting: str | None = None,
    progress: Callable[[int], None] | None = None,
    actor: str | None = None,
) -> ExportResult:
    """Export the attempts matching ``filters`` to ``output`` (CSV or Parquet by its suffix;
    created mode 0600) or, without one, as CSV to ``stdout``; then write the audit row.

    ``progress`` is called with the number of rows written after each chunk.
    """
    fmt = export_format(output)
    if excel and fmt != "csv":
        raise ConfigError("--excel applies to CSV only (Parquet has no byte-order mark)")
    if output is not None and not output.parent.is_dir():
        raise ConfigError(f"Cannot write {output}: the folder {output.parent} does not exist")

    frames = iter_dispositions(engine, filters, zone_setting=zone_setting)

    def chunks() -> Iterator[pd.DataFrame]:
        done = 0
        for chunk in frames:
            yield chunk
            done += len(chunk)
            if progress is not None:
                progress(done)

    if output is None:
        if stdout is None:
            raise ValueError("export to stdout needs a stream")
        rows = write_csv(chunks(), stdout, excel=excel)
        stdout.flush()
        where = "stdout"
    else:
        with private_file(output) as temporary:
            if fmt == "parquet":
                rows = write_parquet(chunks(), temporary)
            else:
                with temporary.open("wb") as handle:
                    rows = write_csv(chunks(), handle, excel=excel)
        where = str(output.resolve())
    audit_id = record_export(
        engine,
        action="export dispositions",
        filters=filters.as_json() | ({"excel": True} if excel else {}),
        rows=rows,
        output=where,
        fmt=fmt,
        actor=actor,
    )
    return ExportResult(rows=rows, output=where, format=fmt, audit_id=audit_id)


# -- reading back --------------------------------------------------------------------------


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the export's columns and dtypes."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name, dtype in COLUMNS.items():
        values = frame[name].reset_index(drop=True)
        if dtype == TIME:
            out[name] = to_utc(values) if values.dtype == object else values.astype(TIME)
        else:
            out[name] = values.astype(dtype)
    return out


def read_dispositions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a disposition export (``.csv``, with or without BOM, or ``.parquet``) back with
    exactly the dtypes of :data:`COLUMNS`; CSV formula guards are removed."""
    file = Path(path)
    if export_format(file) == "parquet":
        return typed(pd.read_parquet(file))
    raw = pd.read_csv(
        file,
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
        na_values=[""],
    )
    missing = [name for name in COLUMNS if name not in raw.columns]
    if missing:
        raise ConfigError(f"{file}: not a disposition export (missing {', '.join(missing)})")
    for name, dtype in COLUMNS.items():
        values = raw[name].astype(object).where(raw[name].notna(), None)
        if dtype == TEXT:
            raw[name] = unguard_text(values.astype(TEXT))
        elif dtype == FLAG:
            raw[name] = values.map({"true": True, "false": False}).astype(bool)
        elif dtype == TIME:
            raw[name] = pd.to_datetime(values, utc=True, format="ISO8601").astype(TIME)
        else:
            raw[name] = pd.to_numeric(values).astype(dtype)
    return typed(raw)
