"""The store: schema creation and upgrades, SQLite settings, migrations matching the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.errors import ConfigError, SchemaOutOfDate
from dialer.store.db import head_revision, normalise_url, open_store
from dialer.store.fastpath import FastPath
from dialer.store.models import Base, ImportRun


def test_migrations_create_exactly_the_models(store: Engine) -> None:
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_open_attempts_index_holds_only_attempts_not_yet_ended(store: Engine) -> None:
    # Alembic's comparison above does not look at an index's WHERE clause.
    with store.connect() as conn:
        if store.dialect.name == "sqlite":
            sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_attempts_open'"
        else:
            sql = (  # this test's schema only (an interrupted run may leave others behind)
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_attempts_open' "
                "AND schemaname = current_schema()"
            )
        definition = conn.exec_driver_sql(sql).scalar_one()
    assert "(campaign_id, started_at)" in definition
    assert definition.replace("(", "").replace(")", "").endswith("WHERE ended_at IS NULL")


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: object) -> None:
    engine = open_store(f"sqlite:///{tmp_path}/d.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_only_a_throwaway_store_commits_without_waiting_for_the_disk(tmp_path: object) -> None:
    kept = open_store(f"sqlite:///{tmp_path}/kept.db")
    throwaway = open_store(f"sqlite:///{tmp_path}/sim.db", throwaway=True)
    with kept.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with throwaway.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_times_come_back_aware_utc(store: Engine) -> None:
    pacific = timezone(timedelta(hours=-8))
    started = datetime(2026, 11, 28, 7, 0, tzinfo=pacific)
    with store.begin() as conn:
        conn.execute(
            sa.insert(ImportRun).values(
                kind="x",
                source="s",
                started_at=started,
                finished_at=started,
                rows=0,
                inserted=0,
                updated=0,
                unchanged=0,
                rejected=0,
                deleted=0,
                skipped=0,
            )
        )
        back = conn.execute(sa.select(ImportRun.started_at)).scalar_one()
    assert back == datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)


def test_the_fast_path_stores_an_instant_alike_from_any_zone_and_refuses_naive_times(
    store: Engine,
) -> None:
    fast = FastPath(store)
    utc = datetime(2026, 11, 28, 15, 0, 0, 250000, tzinfo=UTC)
    pacific = utc.astimezone(timezone(timedelta(hours=-8)))
    stored = [fast.adapt(at) for at in (utc, pacific, utc, pacific)]  # remembered after once
    fast.execute("CREATE TEMPORARY TABLE times (at TIMESTAMP WITH TIME ZONE)")
    fast.execute(f"INSERT INTO times VALUES ({fast.mark})", [utc])
    fast.execute(f"INSERT INTO times VALUES ({fast.mark})", [pacific])
    rows = fast.execute("SELECT at FROM times")
    fast.close()
    assert len(set(map(str, stored))) == 1
    assert [fast.read_time(at) for (at,) in rows] == [utc, utc]
    if store.dialect.name == "sqlite":
        assert stored[0] == "2026-11-28 15:00:00.250000"
    with pytest.raises(ValueError, match="naive datetime"):
        fast.adapt(utc.replace(tzinfo=None))


@pytest.mark.postgres
def test_postgres_refuses_an_old_schema_until_init(postgres_schema_url: str) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        open_store(postgres_schema_url)
    assert "has no dialer schema, but this dialer needs revision" in caught.value.message
    runner = CliRunner()
    refused = runner.invoke(cli, ["--db", postgres_schema_url, "dnc", "list"])
    assert refused.exit_code == 1
    assert refused.output.endswith("Run `dialer init` to create or upgrade it.\n")
    init = runner.invoke(cli, ["--db", postgres_schema_url, "init"])
    assert init.exit_code == 0
    assert init.output.endswith(
        f"is at schema revision {head_revision(open_store(postgres_schema_url))}.\n"
    )
    assert runner.invoke(cli, ["--db", postgres_schema_url, "dnc", "list"]).exit_code == 0


def test_sqlite_is_created_implicitly(tmp_path: object) -> None:
    out = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path}/new.db", "dnc", "list", "--json"])
    assert (out.exit_code, out.output) == (0, "[]\n")


def test_bad_database_url() -> None:
    with pytest.raises(ConfigError, match="Not a database URL: 'nonsense'"):
        normalise_url("nonsense")
    assert normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
