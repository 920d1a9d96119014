"""``dialer export`` and ``dialer report``: disposition exports and analysts' reports.

The commands only parse options, call :mod:`dialer.reports` and render its DataFrames.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dialer.cli.app import App, console, pass_app, print_json, table
from dialer.reports.audit import read_audit_log
from dialer.reports.compliance import abandonment_periods, compliance_report
from dialer.reports.conversion import GROUPINGS, conversion_report
from dialer.reports.export import count_dispositions, export_dispositions
from dialer.reports.filters import Filters, report_zone
from dialer.reports.leaderboard import PERIODS, leaderboard

F = TypeVar("F", bound=Callable[..., Any])
DATE = click.DateTime(formats=["%Y-%m-%d"])


def filter_options(command: F) -> F:
    """--campaign, --clinic, --from and --to (repeatable names; inclusive clinic-zone dates)."""
    options = [
        click.option(
            "--campaign",
            "campaigns",
            metavar="NAME",
            multiple=True,
            help="Only this campaign (repeatable).",
        ),
        click.option(
            "--clinic",
            "clinics",
            metavar="ID",
            multiple=True,
            help="Only this clinic, by its id (repeatable).",
        ),
        click.option(
            "--from",
            "date_from",
            metavar="YYYY-MM-DD",
            type=DATE,
            help="First day, inclusive, in the clinic's zone.",
        ),
        click.option(
            "--to",
            "date_to",
            metavar="YYYY-MM-DD",
            type=DATE,
            help="Last day, inclusive, in the clinic's zone.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_filters(
    campaigns: tuple[str, ...],
    clinics: tuple[str, ...],
    date_from: datetime | None,
    date_to: datetime | None,
) -> Filters:
    """The library's filters from the options of :func:`filter_options`."""
    return Filters(
        campaigns=campaigns,
        clinics=clinics,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
    )


def format_options(command: F) -> F:
    """--format table|json|csv, and --json as its alias."""
    command = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(
        command
    )
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(command)


PERCENT_COLUMNS = {
    "cap",
    "occupancy",
    "contact_rate",
    "conversion_rate",
    "conversion_rate_low",
    "conversion_rate_high",
    "conversions_per_attempt",
    "abandon_rate",
    "worst_period_rate",
}


def _cell(name: str, value: Any, zone: ZoneInfo) -> Any:
    """How a table shows one value: percentages, rounded seconds, local times."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in PERCENT_COLUMNS:
        return f"{100 * float(value):.1f}%"
    if name.endswith("_seconds"):
        return f"{float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return value


def _plain(frame: pd.DataFrame, zone: ZoneInfo) -> list[dict[str, Any]]:
    """JSON-ready records: NaN as null, times as ISO 8601 in the report zone."""
    records = _plain_values(frame)
    for record in records:
        for key, value in record.items():
            if isinstance(value, datetime):
                record[key] = value.astimezone(zone).isoformat()
    return records


def _plain_values(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): v for k, v in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]


def render(
    frame: pd.DataFrame, fmt: str, as_json: bool, zone: ZoneInfo, title: str | None = None
) -> None:
    """A report frame as a rich table, JSON records or CSV on stdout (times in ``zone``)."""
    if as_json:
        fmt = "json"
    if fmt == "json":
        print_json(_plain(frame, zone))
    elif fmt == "csv":
        plain = pd.DataFrame(_plain(frame, zone), columns=frame.columns)
        for name in plain.columns:
            if frame[name].dtype == bool:
                plain[name] = plain[name].map({True: "true", False: "false"})
        click.echo(plain.to_csv(index=False, lineterminator="\n"), nl=False)
    else:
        rows = [
            [_cell(name, value, zone) for name, value in record.items()]
            for record in _plain_values(frame)
        ]
        console().print(table(title, list(frame.columns), rows))


def zone_of(app: App) -> ZoneInfo:
    """The report zone in effect (DIALER_TIMEZONE, else the first clinic's)."""
    with app.engine().connect() as conn:
        return report_zone(conn, app.settings.timezone)


@contextmanager
def progress_bar(label: str, total: Callable[[], int]) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; None (no bar) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(err=True), transient=True) as bar:
        task = bar.add_task(label, total=total())
        yield lambda done: bar.update(task, completed=done)


@click.group("export")
def export() -> None:
    """Export dispositions for analysis (CSV or Parquet); every export is audited."""


@export.command("dispositions")
@filter_options
@click.option("--excel", is_flag=True, help="CSV as UTF-8 with a byte-order mark, for Excel.")
@click.option(
    "-o",
    "--output",
    metavar="FILE.csv|FILE.parquet",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (mode 0600; the suffix picks the format). Default: CSV on stdout.",
)
@pass_app
def dispositions(
    app: App,
    campaigns: tuple[str, ...],
    clinics: tuple[str, ...],
    date_from: datetime | None,
    date_to: datetime | None,
    excel: bool,
    output: Path | None,
) -> None:
    """One row per attempt, in started_at order (no phone numbers, no patient names).

    \b
    Example:
      dialer export dispositions --from 2026-11-01 --to 2026-11-30 -o november.csv
    """
    filters = make_filters(campaigns, clinics, date_from, date_to)
    engine = app.engine()
    zone = app.settings.timezone
    with progress_bar("exporting", lambda: count_dispositions(engine, filters, zone)) as bar:
        result = export_dispositions(
            engine,
            filters,
            output,
            stdout=click.get_binary_stream("stdout"),
            excel=excel,
            zone_setting=zone,
            progress=bar,
        )
    if output is not None:
        noun = "attempt" if result.rows == 1 else "attempts"
        click.echo(f"Wrote {result.rows:,} {noun} to {output} ({result.format}).")


@click.group("report")
def report() -> None:
    """Conversion, leaderboard and compliance reports (dates in DIALER_TIMEZONE)."""


@report.command("conversion")
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="campaign",
    show_default=True,
    help="Group attempts by this (hour and weekday are callee-local).",
)
@filter_options
@format_options
@pass_app
def conversion(
    app: App,
    by: str,
    campaigns: tuple[str, ...],
    clinics: tuple[str, ...],
    date_from: datetime | None,
    date_to: datetime | None,
    fmt: str,
    as_json: bool,
) -> None:
    """What converts: contacts, conversions (Wilson 95% interval), talk and wrap, per group.

    \b
    Example:
      dialer report conversion --by hour --campaign hygiene-recall
    """
    filters = make_filters(campaigns, clinics, date_from, date_to)
    frame = conversion_report(app.engine(), filters, by=by, zone_setting=app.settings.timezone)
    render(frame, fmt, as_json, zone_of(app), f"Conversion by {by}")


@report.command("leaderboard")
@click.option(
    "--period",
    type=click.Choice(PERIODS),
    default="week",
    show_default=True,
    help="Calendar day, ISO week or month, in DIALER_TIMEZONE.",
)
@click.option(
    "--date",
    "on",
    metavar="YYYY-MM-DD",
    type=DATE,
    help="The period containing this date (default: the period of the latest call).",
)
@format_options
@pass_app
def leaderboard_command(
    app: App, period: str, on: datetime | None, fmt: str, as_json: bool
) -> None:
    """PSRs ranked by conversions per logged-in hour (at least one hour logged in).

    \b
    Example:
      dialer report leaderboard --period day --date 2026-11-30
    """
    frame = leaderboard(
        app.engine(),
        period=period,
        on=on.date() if on else None,
        zone_setting=app.settings.timezone,
    )
    label = frame["period"].iloc[0] if len(frame) else period
    render(frame, fmt, as_json, zone_of(app), f"Leaderboard {label}")


@report.command("compliance")
@click.option(
    "--campaign",
    "campaigns",
    metavar="NAME",
    multiple=True,
    help="Only this campaign (repeatable).",
)
@format_options
@pass_app
def compliance(app: App, campaigns: tuple[str, ...], fmt: str, as_json: bool) -> None:
    """Abandonment per 30-day period against the cap, safe-harbor messages, and the counts
    that must be 0: calls outside a window, to do-not-call numbers, over a cap.

    \b
    Example:
      dialer report compliance --campaign hygiene-recall --json
    """
    engine = app.engine()
    zone = zone_of(app)
    summary = compliance_report(engine, campaigns)
    periods = abandonment_periods(engine, campaigns)
    if as_json or fmt == "json":
        records = _plain(summary, zone)
        for record in records:
            own = periods[periods["campaign"] == record["campaign"]].drop(columns="campaign")
            record["abandonment_periods"] = _plain(own, zone)
        print_json(records)
        return
    render(summary, fmt, False, zone, "Compliance by campaign")
    if fmt == "table":
        render(periods, fmt, False, zone, "Abandonment by 30-day period")


@report.command("audit")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Newest entries to show.",
)
@format_options
@pass_app
def audit(app: App, limit: int, fmt: str, as_json: bool) -> None:
    """The audit log: every export of patient-level data, newest first (who ran it, the
    filters, the rows written, where to).

    \b
    Example:
      dialer report audit --limit 10
    """
    frame = read_audit_log(app.engine(), limit)
    if not (as_json or fmt == "json"):  # JSON keeps the filters as an object
        frame["filters"] = [json.dumps(value, sort_keys=True) for value in frame["filters"]]
    render(frame, fmt, as_json, zone_of(app), "Audit log")


COMMANDS = [export, report]
