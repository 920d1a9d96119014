"""Opening the store: engines, SQLite pragmas, schema checks and upgrades (Alembic)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from dialer.errors import ConfigError, DatabaseError, SchemaOutOfDate


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs; reject what SQLAlchemy cannot parse."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"Not a database URL: {url!r} (expected e.g. sqlite:///dialer.db or "
            "postgresql://user@host/db)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun explicitly (see _sqlite_begin): pysqlite's own implicit BEGIN
    # skips DDL, which would leave a failed migration half applied.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Big reads (list builds, reports) go through memory-mapped pages and a 256 MB cache rather
    # than a read() system call per 4 KB page.
    cursor.execute("PRAGMA mmap_size=4294967296")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_throwaway(dbapi_connection: Any, _record: Any) -> None:
    # A file deleted when the run ends: a commit need not wait for the disk.
    dbapi_connection.execute("PRAGMA synchronous=OFF")


def create_store_engine(url: str, *, throwaway: bool = False) -> Engine:
    """An engine for the store; SQLite gets WAL mode, foreign keys and a busy timeout.

    ``throwaway``: the store is a temporary SQLite file deleted after the run (a simulation's),
    so commits do not wait for the disk (``synchronous=OFF``: a crash can lose the file, which
    is thrown away anyway). Other URLs ignore it.
    """
    url = normalise_url(url)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if throwaway:
            event.listen(engine, "connect", _sqlite_throwaway)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    location = resources.files("dialer.store") / "migrations"
    config.set_main_option("script_location", str(Path(str(location))))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str:
    """The newest schema revision this release knows."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for a database without one."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(f"Cannot open the database {safe_url(engine)}: {exc.orig}") from exc


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision."""
    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise DatabaseError(f"Cannot open the database {safe_url(engine)}: {exc.orig}") from exc


def safe_url(engine: Engine) -> str:
    """The engine's URL with any password masked, fit for messages."""
    return engine.url.render_as_string(hide_password=True)


def open_store(url: str, *, upgrade: bool | None = None, throwaway: bool = False) -> Engine:
    """Open the store at ``url``, ready for use.

    SQLite is created or upgraded implicitly (``upgrade`` defaults to True there); on other
    databases an old or missing schema raises :class:`SchemaOutOfDate` asking for ``dialer init``.
    ``throwaway``: see :func:`create_store_engine`.
    """
    engine = create_store_engine(url, throwaway=throwaway)
    if upgrade is None:
        upgrade = engine.dialect.name == "sqlite"
    head = head_revision(engine)
    current = current_revision(engine)
    if current == head:
        return engine
    if upgrade:
        upgrade_schema(engine)
        return engine
    raise SchemaOutOfDate(safe_url(engine), current, head)
