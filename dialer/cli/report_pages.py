"""``dialer report attribution`` and ``dialer report html``, attached to the ``report`` group."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dialer.cli.app import App, pass_app
from dialer.cli.reports import (
    filter_options,
    format_options,
    make_filters,
    render,
    report,
    zone_of,
)
from dialer.reports.attribution import GROUPINGS, attribution_baseline, attribution_report
from dialer.reports.html import write_report_page


@report.command("attribution")
@filter_options
@click.option(
    "--by",
    type=click.Choice(list(GROUPINGS)),
    default="campaign",
    show_default=True,
    help="Group bookings by campaign, PSR, or both.",
)
@click.option(
    "--baseline",
    is_flag=True,
    help="Show the baseline instead: appointments of patients not called, by kind.",
)
@format_options
@pass_app
def attribution(
    app: App,
    campaigns: tuple[str, ...],
    clinics: tuple[str, ...],
    date_from: datetime | None,
    date_to: datetime | None,
    by: str,
    baseline: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Did the appointments booked on calls happen? Bookings matched to later PMS imports.

    Each booking is matched to the first appointment of its patient created after the call
    (the PMS's booked_at, else the import that first saw it) that starts within 7 days of the
    booked slot: kept (completed), broken (broken or no-show), cancelled, pending (still
    scheduled) or unmatched. kept_rate = kept / (kept + broken + cancelled);
    baseline_kept_rate is the same rate for appointments of the same kinds that patients
    nobody called made in the period (see --baseline).

    \b
    Example:
      dialer report attribution --by agent
      dialer report attribution --from 2026-11-01 --to 2026-11-30 --format csv
    """
    filters = make_filters(campaigns, clinics, date_from, date_to)
    zone = app.settings.timezone
    if baseline:
        frame = attribution_baseline(app.engine(), filters, zone_setting=zone)
        title = "Appointments of patients not called in the period, by kind"
    else:
        frame = attribution_report(app.engine(), filters, by=by, zone_setting=zone)
        title = "Bookings made on calls, matched to later PMS appointments"
    render(frame, fmt, as_json, zone_of(app), title)


@report.command("html")
@filter_options
@click.option(
    "-o",
    "--output",
    metavar="FILE.html",
    type=click.Path(path_type=Path, dir_okay=False),
    default="report.html",
    show_default=True,
    help="Where to write the page.",
)
@pass_app
def html_page(
    app: App,
    campaigns: tuple[str, ...],
    clinics: tuple[str, ...],
    date_from: datetime | None,
    date_to: datetime | None,
    output: Path,
) -> None:
    """Write one self-contained HTML page with every report's tables and charts.

    Conversion by campaign, callee-local hour and attempt number, the funnel per campaign,
    the PSR leaderboard of the latest week, abandonment over time against the 3% cap, the
    compliance report and attribution. The file loads nothing from the network: open it
    offline, or mail it. It holds no patient names or phone numbers.

    \b
    Example:
      dialer report html -o report.html
      dialer report html --campaign hygiene-recall --from 2026-11-01 -o recall.html
    """
    filters = make_filters(campaigns, clinics, date_from, date_to)
    page = write_report_page(app.engine(), output, filters, zone_setting=app.settings.timezone)
    click.echo(f"Wrote {output} ({len(page.charts)} charts); it opens offline in any browser.")


COMMANDS: list[click.Command] = []  # both commands live in the ``report`` group
