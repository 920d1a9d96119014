"""`dialer demo`: runs on an empty store, replaces only its own data, refuses anything else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.store.models import Clinic, DialListEntry, Patient

KEYS = {"database", "day", "clinics", "patients", "appointments", "agents", "campaigns"}
CAMPAIGN_KEYS = {
    "name",
    "kind",
    "entries",
    "attempts",
    "live_answers",
    "contacts",
    "conversions",
    "abandon_rate",
    "occupancy",
    "candidates",
    "eligible_patients",
    "excluded",
}


def run(db_url: str, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--db", db_url, "demo", *args])
    return out.exit_code, out.output


def test_demo_imports_and_builds_three_lists_then_replaces_itself(
    store: Engine, db_url: str
) -> None:
    code, output = run(db_url, "--json")
    assert code == 0, output
    first = json.loads(output)
    assert set(first) == KEYS
    assert (first["clinics"], first["patients"]) == (3, 5000)
    assert first["appointments"] > 10_000
    assert [c["name"] for c in first["campaigns"]] == [
        "hygiene-recall",
        "reactivation",
        "reminders",
    ]
    assert first["agents"] == 12
    for campaign in first["campaigns"]:
        assert set(campaign) == CAMPAIGN_KEYS
        assert campaign["entries"] > 0
        assert campaign["attempts"] > 0
        assert campaign["live_answers"] <= campaign["attempts"]
        assert campaign["conversions"] <= campaign["contacts"] <= campaign["live_answers"]
        assert campaign["abandon_rate"] <= 0.03
        assert campaign["candidates"] == campaign["eligible_patients"] + sum(
            campaign["excluded"].values()
        )
    with store.connect() as conn:
        spanish = conn.execute(
            sa.select(sa.func.count())
            .select_from(DialListEntry)
            .where(DialListEntry.language == "es")
        ).scalar_one()
        assert spanish > 0
    code, output = run(db_url, "--json")
    assert code == 0, output
    assert json.loads(output) == first
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Patient)).scalar_one() == 5000


def test_demo_table_output_names_next_steps(store: Engine, db_url: str) -> None:
    code, output = run(db_url)
    assert code == 0, output
    assert "Imported 3 clinics, 5,000 patients" in output
    assert "dialer lists show hygiene-recall --limit 10" in output


def test_demo_refuses_a_database_with_other_data(
    store: Engine, db_url: str, write_csv: Callable[..., Path]
) -> None:
    clinics = write_csv(
        "c.csv", "clinic_id,name,timezone,state,phone\nC1,Real,America/Chicago,TX,2105550100\n"
    )
    assert (
        CliRunner().invoke(cli, ["--db", db_url, "import", "clinics", str(clinics)]).exit_code == 0
    )
    code, output = run(db_url)
    shown = store.url.render_as_string(hide_password=True)
    assert (code, output) == (
        1,
        f"Error: The database {shown} holds data that is not the demo's "
        "(1 clinics); run the demo on a database of its own, e.g. "
        "`dialer --db sqlite:///demo.db demo`\n",
    )
    with store.connect() as conn:
        assert conn.execute(sa.select(Clinic.name)).scalars().all() == ["Real"]
