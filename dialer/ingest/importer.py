"""Importing canonical CSV files into the store: one transaction per file, rejects kept aside.

``import_file`` reads and validates a whole file, classifies each accepted row as inserted,
updated or unchanged against the store, writes everything in one transaction, and writes the
rejected rows (original cells plus ``line`` and ``error``) to ``FILE.rejects.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, insert, select, text

from dialer.errors import MissingColumns
from dialer.ingest import canonical
from dialer.ingest.mapping import Mapping, load_mapping
from dialer.ingest.reading import RawTable, read_table
from dialer.ingest.writing import (
    FileRows,
    write_appointments,
    write_clinics,
    write_patients,
)
from dialer.store.models import Clinic, ImportRun, Patient

KINDS = ("clinics", "patients", "appointments")
ProgressHook = Callable[[str, int, int], None]


@dataclass
class ImportResult:
    """Counts of one import; ``rows`` = inserted + updated + unchanged + rejected."""

    file: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_file: str | None = None
    deleted: int = 0
    skipped: int = 0
    kind: str = ""
    messages: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` shape of one import."""
        data = asdict(self)
        del data["messages"], data["kind"]
        return data


def load_lookups(conn: Connection) -> canonical.Lookups:
    """Live clinics and patients of the store, by external id."""
    clinics = {
        ext: (cid, zone)
        for ext, cid, zone in conn.execute(
            select(Clinic.external_id, Clinic.id, Clinic.timezone).where(
                Clinic.deleted_at.is_(None)
            )
        )
    }
    patients = {
        ext: pid
        for ext, pid in conn.execute(
            select(Patient.external_id, Patient.id).where(Patient.deleted_at.is_(None))
        )
    }
    return canonical.Lookups(clinics=clinics, patients=patients)


def check_table(
    kind: str, table: RawTable, mapping: Mapping, lookups: canonical.Lookups, *, snapshot: bool
) -> canonical.Checked:
    """Validate a read file of ``kind`` against the store's lookups."""
    missing = [c for c in canonical.REQUIRED[kind] if c not in table.cells.columns]
    if missing:
        raise MissingColumns(str(table.path), missing, kind)
    if kind == "clinics":
        return canonical.check_clinics(table, mapping)
    if kind == "patients":
        checked = canonical.check_patients(table, mapping, lookups)
        canonical.check_households(checked, lookups, snapshot=snapshot)
        return checked
    return canonical.check_appointments(table, mapping, lookups)


def lock_imports(conn: Connection) -> None:
    """Serialise imports (PostgreSQL advisory lock for the transaction)."""
    # One import at a time on PostgreSQL; SQLite serialises writers by itself.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(5150001)"))


def import_file(
    engine: Engine,
    kind: str,
    path: Path,
    *,
    mapping_path: Path | None = None,
    encoding: str | None = None,
    snapshot: bool = False,
    now: datetime | None = None,
    progress: ProgressHook | None = None,
    source: str = "csv",
) -> ImportResult:
    """Import one canonical CSV file of ``kind`` (clinics, patients or appointments).

    ``source`` labels the rows (``csv``; the demo uses ``demo``); a snapshot only marks rows of
    its own source deleted.
    """
    now = now or datetime.now(UTC)
    mapping = load_mapping(mapping_path) if mapping_path else Mapping()
    table = read_table(path, mapping, encoding)
    total = len(table.cells)
    if progress:
        progress("validating", 0, total)
    result = ImportResult(file=str(path), rows=total, kind=kind)
    rejects_path = Path(f"{path}.rejects.csv")
    pending: Path | None = None
    try:
        with engine.begin() as conn:
            lock_imports(conn)
            checked = check_table(kind, table, mapping, load_lookups(conn), snapshot=snapshot)
            rows = FileRows(checked, table, now, snapshot, source, progress)
            rows.advance(0)
            writer = {
                "clinics": write_clinics,
                "patients": write_patients,
                "appointments": write_appointments,
            }[kind]
            result.inserted, result.updated, result.deleted = writer(conn, rows)
            result.rejected = int(checked.errors.ne("").sum())
            result.unchanged = total - result.inserted - result.updated - result.rejected
            pending = stage_rejects(table, checked.errors, rejects_path)
            result.rejects_file = str(rejects_path) if pending else None
            result.messages = reject_messages(table, checked.errors)
            log_run(conn, result, now)
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    if progress:
        progress("writing", total, total)
    publish_rejects(pending, rejects_path)
    return result


def reject_messages(table: RawTable, errors: pd.Series) -> list[str]:
    """``file:line: error`` for every rejected row (no cell values: they may be patient data)."""
    bad = errors.ne("")
    return [
        f"{table.path}:{line}: {error}"
        for line, error in zip(table.lines[bad.to_numpy()], errors[bad], strict=True)
    ]


def stage_rejects(table: RawTable, errors: pd.Series, target: Path) -> Path | None:
    """Write rejected rows to a private temporary file beside ``target``; None when none."""
    bad = errors.ne("").to_numpy()
    if not bad.any():
        return None
    frame = table.original[bad].copy()
    frame["line"] = table.lines[bad]
    frame["error"] = errors[bad].to_numpy()
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
        frame.to_csv(handle, index=False)
    return staging


def publish_rejects(staging: Path | None, target: Path) -> None:
    """Move the staged rejects into place once the import committed, or remove a stale file."""
    if staging is None:
        target.unlink(missing_ok=True)
        return
    staging.chmod(0o600)
    staging.replace(target)


def log_run(conn: Connection, result: ImportResult, now: datetime) -> None:
    """Record an import in the import log."""
    conn.execute(
        insert(ImportRun).values(
            kind=result.kind,
            source=result.file,
            started_at=now,
            finished_at=datetime.now(UTC),
            rows=result.rows,
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            deleted=result.deleted,
            skipped=result.skipped,
            rejects_file=result.rejects_file,
        )
    )
