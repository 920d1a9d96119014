"""Do-not-call lists: scopes, never-deleted entries, point-in-time checks, CLI and file import."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.ingest.importer import import_file
from dialer.store.dnc import InvalidPhone, Scope, add_dnc, is_listed, parse_phone, remove_dnc
from dialer.store.models import DncEntry

CLINICS = "clinic_id,name,timezone,state,phone\nC1,One,America/Chicago,TX,2105550100\n"


@pytest.mark.parametrize(
    "raw",
    ["(503) 234-5678", "503.234.5678", "+1 503 234 5678", "1-503-234-5678", "503-234-5678 ext. 9"],
)
def test_any_phone_format_becomes_e164(raw: str) -> None:
    assert parse_phone(raw) == "+15032345678"


def test_invalid_phone_message() -> None:
    with pytest.raises(InvalidPhone) as caught:
        parse_phone("12345")
    assert caught.value.message == (
        "Not a valid phone number: '12345' (expected e.g. (503) 555-0123 or +15035550123)"
    )


def test_entries_are_never_deleted_and_judged_as_of_a_time(store: Engine, now: datetime) -> None:
    phone = "+15032345678"
    with store.begin() as conn:
        assert add_dnc(conn, phone, Scope(), source="manual", reason="asked", now=now)
        assert not add_dnc(conn, phone, Scope(), source="manual", reason="again", now=now)
        assert remove_dnc(conn, phone, Scope(), now + timedelta(days=2)) == 1
        assert remove_dnc(conn, phone, Scope(), now + timedelta(days=3)) == 0
        assert is_listed(conn, phone, clinic_id=None, campaign=None, at=now + timedelta(days=1))
        assert not is_listed(conn, phone, clinic_id=None, campaign=None, at=now - timedelta(days=1))
        assert not is_listed(conn, phone, clinic_id=None, campaign=None, at=now + timedelta(days=2))
        assert conn.execute(sa.select(sa.func.count()).select_from(DncEntry)).scalar() == 1


def test_scopes_apply_only_where_they_should(
    store: Engine, now: datetime, write_csv: Callable[..., Path]
) -> None:
    two = CLINICS + "C2,Two,America/Chicago,TX,2105550101\n"
    import_file(store, "clinics", write_csv("c.csv", two), now=now)
    phone = "+15032345678"
    with store.begin() as conn:
        ids = dict(conn.execute(sa.text("SELECT external_id, id FROM clinics")).all())
        first, second = int(ids["C1"]), int(ids["C2"])
        add_dnc(
            conn, phone, Scope("clinic", clinic_id=first), source="manual", reason=None, now=now
        )
        add_dnc(
            conn, phone, Scope("campaign", campaign="recall"), source="manual", reason=None, now=now
        )
        later = now + timedelta(seconds=1)
        assert is_listed(conn, phone, clinic_id=first, campaign="other", at=later)
        assert is_listed(conn, phone, clinic_id=second, campaign="recall", at=later)
        assert not is_listed(conn, phone, clinic_id=second, campaign="other", at=later)


def test_cli_add_list_remove(store: Engine, db_url: str, write_csv: Callable[..., Path]) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["--db", db_url, "import", "clinics", str(write_csv("c.csv", CLINICS))])
    out = runner.invoke(
        cli,
        [
            "--db",
            db_url,
            "dnc",
            "add",
            "(503) 234-5678",
            "--clinic",
            "C1",
            "--reason",
            "asked on the phone",
        ],
    )
    assert (out.exit_code, out.output) == (
        0,
        "+15032345678 added to the clinic C1 do-not-call list.\n",
    )
    again = runner.invoke(cli, ["--db", db_url, "dnc", "add", "5032345678", "--clinic", "C1"])
    assert again.output == "+15032345678 was already on the clinic C1 do-not-call list.\n"
    listed = json.loads(runner.invoke(cli, ["--db", db_url, "dnc", "list", "--json"]).output)
    assert [(e["phone"], e["scope"], e["clinic_id"], e["source"], e["reason"]) for e in listed] == [
        ("+15032345678", "clinic", "C1", "manual", "asked on the phone")
    ]
    wrong_scope = runner.invoke(cli, ["--db", db_url, "dnc", "remove", "5032345678"])
    assert (wrong_scope.exit_code, wrong_scope.output) == (
        1,
        "Error: +15032345678 is not on the global do-not-call list.\n",
    )
    gone = runner.invoke(cli, ["--db", db_url, "dnc", "remove", "5032345678", "--clinic", "C1"])
    assert gone.output == "+15032345678 removed from the clinic C1 do-not-call list.\n"
    assert json.loads(runner.invoke(cli, ["--db", db_url, "dnc", "list", "--json"]).output) == []
    everything = json.loads(
        runner.invoke(cli, ["--db", db_url, "dnc", "list", "--all", "--json"]).output
    )
    assert len(everything) == 1 and everything[0]["removed_at"] is not None
    bad = runner.invoke(cli, ["--db", db_url, "dnc", "add", "5032345678", "--clinic", "C9"])
    assert (bad.exit_code, bad.output) == (
        1,
        "Error: No clinic with id 'C9'; import clinics first\n",
    )


def test_dnc_import_file(store: Engine, db_url: str, write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "optouts.csv",
        "phone,reason\n(503) 234-5678,letter\nnot a phone,\n503-234-5678,dup\n+1 210 234 0000,\n",
    )
    out = CliRunner().invoke(
        cli, ["--db", db_url, "dnc", "import", str(path), "--campaign", "hygiene-recall", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {
        "file": str(path),
        "rows": 4,
        "inserted": 2,
        "updated": 0,
        "unchanged": 1,
        "rejected": 1,
        "rejects_file": f"{path}.rejects.csv",
        "deleted": 0,
        "skipped": 0,
    }
    assert Path(f"{path}.rejects.csv").read_text("utf-8-sig").splitlines() == [
        "phone,reason,line,error",
        "not a phone,,3,phone: expected a valid phone number",
    ]
    with store.connect() as conn:
        scopes = conn.execute(sa.select(DncEntry.scope, DncEntry.campaign)).all()
    assert {tuple(s) for s in scopes} == {("campaign", "hygiene-recall")}
