"""``dialer lists``: build, show and explain campaigns' dial lists."""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Any

import click
import pandas as pd

from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.store.dial_lists import (
    build_list,
    excluded_patients,
    explain_patient,
    latest_list,
    list_entries,
)

SHOW_COLUMNS = ["rank", "entry_id", "phone", "timezones", "language", "household_id", "patient_ids"]
campaign_argument = click.argument("campaign")


@click.group("lists")
def lists_group() -> None:
    """Dial lists: who each campaign calls, in what order, and who it leaves out and why."""


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise click.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}") from exc


@lists_group.command("build")
@campaign_argument
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="Build as of this date (default: today in each clinic's zone).",
)
@json_option
@pass_app
def build(app: App, campaign: str, as_of: str | None, as_json: bool) -> None:
    """Build CAMPAIGN's list (a name, or a path to its file) and save it.

    \b
    Example:
      dialer lists build hygiene-recall --as-of 2026-12-01 --json
    """
    definition, path = app.campaign(campaign)
    engine = app.engine()
    with console(err=True).status(f"Building {definition.name}..."):
        result, _ = build_list(engine, definition, path, as_of=_as_of(as_of))
    dates = sorted({d.isoformat() for d in result.as_of_by_clinic.values()})
    summary: dict[str, Any] = {
        "campaign": result.campaign,
        "as_of": dates[0] if dates else None,
        "candidates": len(result.candidates),
        "eligible_patients": result.eligible_patients,
        "entries": len(result.entries),
        "excluded": result.excluded,
    }
    if len(dates) > 1:
        summary["as_of_by_clinic"] = {
            str(k): v.isoformat() for k, v in result.as_of_by_clinic.items()
        }
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(
        table(
            f"{result.campaign} as of {', '.join(dates)}",
            ["candidates", "eligible patients", "entries"],
            [[summary["candidates"], summary["eligible_patients"], summary["entries"]]],
        )
    )
    out.print(
        table("Excluded", ["reason", "patients"], [[k, v] for k, v in result.excluded.items()])
    )
    out.print(f"Next: dialer lists show {result.campaign} --limit 10", markup=False)


def _plain(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def entries_frame(app: App, campaign: str, limit: int | None) -> pd.DataFrame:
    """The latest build's entries as ``lists show`` prints them."""
    name = app.campaign(campaign)[0].name
    with app.engine().connect() as conn:
        built = latest_list(conn, name)
        entries = list_entries(conn, built.id, limit)
    frame = entries.rename(columns={"household_key": "household_id"})
    for index, field in enumerate(built.priority_fields):
        frame[field] = pd.Series(
            [_plain(values[index]) for values in entries["priority"]],
            index=frame.index,
            dtype=object,
        )
    return frame[[*SHOW_COLUMNS, *built.priority_fields]]


def excluded_frame(app: App, campaign: str, limit: int | None) -> pd.DataFrame:
    """The latest build's excluded patients with their reasons."""
    name = app.campaign(campaign)[0].name
    with app.engine().connect() as conn:
        return excluded_patients(conn, latest_list(conn, name).id, limit)


@lists_group.command("show")
@campaign_argument
@click.option("--limit", type=click.IntRange(min=0), help="Show the first N rows only.")
@click.option("--excluded", is_flag=True, help="List excluded patients and their reasons.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@pass_app
def show(app: App, campaign: str, limit: int | None, excluded: bool, fmt: str) -> None:
    """Show CAMPAIGN's latest list, best first (or its excluded patients).

    \b
    Example:
      dialer lists show hygiene-recall --limit 10
      dialer lists show reminders --format csv > reminders.csv
    """
    frame = (
        excluded_frame(app, campaign, limit) if excluded else entries_frame(app, campaign, limit)
    )
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
    elif fmt == "json":
        print_json([{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")])
    else:
        rows = [[_plain(v) for v in row] for row in frame.itertuples(index=False)]
        console().print(table(None, list(frame.columns), rows))


@lists_group.command("explain")
@campaign_argument
@click.argument("patient_id")
@json_option
@pass_app
def explain(app: App, campaign: str, patient_id: str, as_json: bool) -> None:
    """Say why PATIENT_ID is or is not on CAMPAIGN's latest list, and through which entry.

    \b
    Example:
      dialer lists explain hygiene-recall 1042
    """
    name = app.campaign(campaign)[0].name
    with app.engine().connect() as conn:
        facts = explain_patient(conn, name, patient_id)
    if as_json:
        print_json(facts)
        return
    click.echo(explanation_text(facts))


def explanation_text(facts: dict[str, object]) -> str:
    """The sentence ``lists explain`` prints."""
    head = f"Patient {facts['patient_id']} (household {facts['household_id']})"
    built = f"{facts['campaign']} list built as of {facts['as_of']}"
    if not facts["on_list"]:
        return f"{head} is not on the {built}: {facts['reason']}: {facts['explanation']}."
    entry = facts["entry"]
    assert isinstance(entry, dict)
    others = entry["phones"][1:]
    then = f" (then {', '.join(others)})" if others else ""
    priority = ", ".join(f"{k} {_plain(v)}" for k, v in entry["priority"].items())
    return (
        f"{head} is on the {built}: entry {entry['entry_id']}, rank {entry['rank']}, "
        f"called on {entry['phone']}{then} for patients {', '.join(entry['patient_ids'])}; "
        f"time zones {', '.join(entry['timezones'])}; language {entry['language']}; "
        f"{priority}."
    )


COMMANDS = [lists_group]
