"""The audit log: every export of patient-level data, who ran it and what it held.

Rows are only added, never changed: ``at`` (UTC), ``actor`` (the operating-system user who ran
the command), ``action`` (``export dispositions``), ``filters`` (the filters given, as JSON),
``rows`` (data rows written, the header not counted), ``output`` (the file's absolute path, or
``stdout``) and ``format`` (``csv`` or ``parquet``).
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select

from dialer.store.models import AuditEntry

AUDIT_COLUMNS = ["id", "at", "actor", "action", "filters", "rows", "output", "format"]


def os_user() -> str:
    """The operating-system user running this process (``uid N`` when it has no name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def record_export(
    engine: Engine,
    *,
    action: str,
    filters: dict[str, Any],
    rows: int,
    output: str,
    fmt: str,
    actor: str | None = None,
    at: datetime | None = None,
) -> int:
    """Add one row to the audit log and return its id."""
    values = {
        "at": at or datetime.now(UTC),
        "actor": actor or os_user(),
        "action": action,
        "filters": filters,
        "rows": rows,
        "output": output,
        "format": fmt,
    }
    with engine.begin() as conn:
        new_id = conn.execute(insert(AuditEntry).values(**values).returning(AuditEntry.id))
        return int(new_id.scalar_one())


def read_audit_log(engine: Engine, limit: int | None = None) -> pd.DataFrame:
    """The audit log, newest first: the columns of :data:`AUDIT_COLUMNS` (``at`` aware UTC)."""
    query = select(*(getattr(AuditEntry, name) for name in AUDIT_COLUMNS)).order_by(
        AuditEntry.at.desc(), AuditEntry.id.desc()
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=AUDIT_COLUMNS)
