"""``dialer dnc``: the do-not-call lists (global, per clinic, per campaign)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.cli.imports import render_import
from dialer.store.dnc import add_dnc, import_dnc, list_dnc, parse_phone, remove_dnc, resolve_scope

clinic_option = click.option("--clinic", metavar="ID", help="Only for this clinic (its id).")
campaign_option = click.option("--campaign", metavar="NAME", help="Only for this campaign.")


@click.group("dnc")
def dnc_group() -> None:
    """Do-not-call lists. Entries are never deleted; removal is recorded."""


@dnc_group.command("add")
@click.argument("phone")
@clinic_option
@campaign_option
@click.option("--reason", metavar="TEXT", help="Why (kept with the entry).")
@pass_app
def add(app: App, phone: str, clinic: str | None, campaign: str | None, reason: str | None) -> None:
    """Put PHONE (any format) on the global list, or a clinic's or campaign's.

    \b
    Example:
      dialer dnc add "(503) 555-0123" --reason "asked on the phone"
    """
    e164 = parse_phone(phone)
    with app.engine().begin() as conn:
        scope = resolve_scope(conn, clinic, campaign)
        added = add_dnc(conn, e164, scope, source="manual", reason=reason, now=datetime.now(UTC))
    state = "added to" if added else "was already on"
    click.echo(f"{e164} {state} the {scope.label(clinic)} do-not-call list.")


@dnc_group.command("remove")
@click.argument("phone")
@clinic_option
@campaign_option
@pass_app
def remove(app: App, phone: str, clinic: str | None, campaign: str | None) -> None:
    """Take PHONE off a do-not-call list (the entry is kept, marked removed).

    \b
    Example:
      dialer dnc remove +15035550123
    """
    e164 = parse_phone(phone)
    with app.engine().begin() as conn:
        scope = resolve_scope(conn, clinic, campaign)
        count = remove_dnc(conn, e164, scope, datetime.now(UTC))
    if not count:
        raise click.ClickException(f"{e164} is not on the {scope.label(clinic)} do-not-call list.")
    click.echo(f"{e164} removed from the {scope.label(clinic)} do-not-call list.")


@dnc_group.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Include removed entries.")
@json_option
@pass_app
def list_command(app: App, include_removed: bool, as_json: bool) -> None:
    """List do-not-call entries.

    \b
    Example:
      dialer dnc list --all --json
    """
    with app.engine().connect() as conn:
        frame = list_dnc(conn, include_removed=include_removed)
    if as_json:
        print_json(frame.astype(object).where(frame.notna(), None).to_dict("records"))
        return
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    console().print(table(None, list(frame.columns), rows))


@dnc_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@clinic_option
@campaign_option
@click.option("--encoding", metavar="ENC", help="File encoding (default: detected).")
@json_option
@pass_app
def import_command(
    app: App,
    file: Path,
    clinic: str | None,
    campaign: str | None,
    encoding: str | None,
    as_json: bool,
) -> None:
    """Import a CSV of numbers (column phone; optional reason) into one list.

    \b
    Example:
      dialer dnc import opt-outs.csv --clinic C2
    """
    result = import_dnc(
        app.engine(), file, (clinic, campaign), encoding=encoding, now=datetime.now(UTC)
    )
    render_import(result, as_json)


COMMANDS = [dnc_group]
