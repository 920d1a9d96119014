"""The engine's hot path: plain SQL on one driver connection, for launches and batched writes.

A simulated month places a quarter of a million calls, each committed before it is placed;
SQLAlchemy's per-statement work would dominate that, so this small layer sends fixed SQL
straight to the driver (``sqlite3`` or ``psycopg``), adapting values the way the models store
them (times as naive UTC text on SQLite, aware on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import Engine

# Values the drivers take as they are (tested by class, inline: adapting is most of the Python
# work of a batched write).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_TIMES_KEPT = 4096  # adapted times remembered (a few simulated minutes of writes)


class FastPath:
    """One driver connection for the engine's frequent statements."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.connection = engine.raw_connection()
        # The driver's own connection: the pool's proxy costs a call on every cursor.
        self.driver: Any = self.connection.driver_connection
        self.mark = "?" if self.sqlite else "%s"
        # Times adapted lately: the same instant is written several times (a launch's start,
        # its events, the PSR states and outcomes around it; an event's time again among the
        # attempt's outcome). Aware times only; emptied when it grows large.
        self._times: dict[datetime, Any] = {}

    def adapt(self, value: Any) -> Any:
        """A Python value as the store keeps it."""
        kind = value.__class__
        if value is None or kind is str or kind is int or kind is bool or kind is float:
            return value
        if isinstance(value, datetime):
            times = self._times
            stored = times.get(value)  # (a naive time is never equal to an aware one)
            if stored is not None:
                return stored
            if value.tzinfo is None:
                raise ValueError("naive datetime given where an aware UTC time is required")
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            # SQLite: the text SQLAlchemy's SQLite DateTime stores, "YYYY-MM-DD HH:MM:SS.ffffff"
            # (the "+00:00" suffix cut off)
            stored = utc.isoformat(sep=" ", timespec="microseconds")[:26] if self.sqlite else utc
            if len(times) >= _TIMES_KEPT:
                times.clear()
            times[value] = stored
            return stored
        if isinstance(value, Enum):
            return value.value
        return value

    def read_time(self, value: datetime | str) -> datetime:
        """A stored time as aware UTC (the reverse of :meth:`adapt`: SQLite gives back its
        naive UTC text)."""
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

    def marks(self, count: int) -> str:
        """``?, ?, ?`` (or ``%s, ...``) for ``count`` parameters."""
        return ", ".join([self.mark] * count)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; rows when it returns any."""
        adapt = self.adapt
        values = [v if v.__class__ in _PLAIN else adapt(v) for v in params]
        if self.sqlite:  # sqlite3 rows are tuples, and a statement without rows fetches none
            return self.driver.execute(sql, values).fetchall()  # type: ignore[no-any-return]
        cursor = self.driver.cursor()
        cursor.execute(sql, values)
        rows = cursor.fetchall() if cursor.description else []
        cursor.close()
        return [tuple(row) for row in rows]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        adapt = self.adapt
        cursor = self.driver.cursor()
        cursor.executemany(
            sql, [[v if v.__class__ in _PLAIN else adapt(v) for v in row] for row in rows]
        )
        cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around the block: committed when it ends, rolled back on any error."""
        self.begin()
        try:
            yield
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def begin(self) -> None:
        """Start a transaction (SQLite connections are in autocommit mode until told so)."""
        if self.sqlite:
            self.driver.execute("BEGIN")

    def commit(self) -> None:
        """Commit the current transaction."""
        self.driver.commit()

    def rollback(self) -> None:
        """Roll the current transaction back."""
        self.connection.rollback()

    def close(self) -> None:
        """Give the connection back."""
        self.connection.close()
