"""Shared fixtures: a clock, a store on SQLite and (when configured) PostgreSQL, factories.

PostgreSQL cases run when DIALER_TEST_POSTGRES_URL is set (CI always sets it); each test gets
its own schema, dropped afterwards. MariaDB cases (the Open Dental importer's source) run when
DIALER_TEST_MYSQL_URL is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from dialer.campaigns import CampaignModel, parse_campaign
from dialer.store.db import normalise_url, open_store

POSTGRES_URL = os.environ.get("DIALER_TEST_POSTGRES_URL")
MYSQL_URL = os.environ.get("DIALER_TEST_MYSQL_URL")
NO_POSTGRES = "DIALER_TEST_POSTGRES_URL is not set: PostgreSQL cases skipped"
NO_MYSQL = "DIALER_TEST_MYSQL_URL is not set: MariaDB cases skipped"
REQUIRE_ALL = bool(os.environ.get("DIALER_REQUIRE_ALL"))


def skip_unless_configured(reason: str) -> None:
    """Skip a database group that is not configured, or fail when CI requires every group."""
    if REQUIRE_ALL:
        pytest.fail(f"DIALER_REQUIRE_ALL is set but {reason}")
    pytest.skip(reason)


@pytest.fixture
def now() -> datetime:
    """A fixed 'now': Saturday 2026-11-28 15:00 UTC (07:00 in Portland, 09:00 in Chicago)."""
    return datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh PostgreSQL schema, dropped after the test."""
    if not POSTGRES_URL:
        skip_unless_configured(NO_POSTGRES)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{normalise_url(POSTGRES_URL)}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dialer.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """An empty store with the current schema."""
    engine = open_store(db_url, upgrade=True)
    yield engine
    engine.dispose()


@pytest.fixture
def make_campaign() -> Callable[..., CampaignModel]:
    """A campaign definition from keyword overrides of a minimal valid one per kind."""

    def make(kind: str = "recall", **overrides: Any) -> CampaignModel:
        data: dict[str, Any] = {"name": f"test-{kind}", "kind": kind, "audience": {}}
        data.update(overrides)
        return parse_campaign(data, Path(f"{data['name']}.yaml"))

    return make


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (a header line and data lines, or text) to a CSV file in tmp_path."""

    def write(name: str, text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write
