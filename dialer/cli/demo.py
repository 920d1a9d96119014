"""``dialer demo``: the first thing a newcomer runs."""

from __future__ import annotations

import click

from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.demo import DemoResult, run_demo
from dialer.lists import all_reasons

NEXT_STEPS = """Next, try:
  dialer lists show hygiene-recall --limit 10
  dialer lists show reminders --excluded --limit 20
  dialer lists explain hygiene-recall PATIENT_ID
  dialer report attribution --by agent   (the day's bookings, three weeks later)
  dialer report html -o report.html      (every report and chart in one page)
  dialer campaign validate
  dialer import patients YOUR.csv   (see README: canonical columns and --mapping)"""


@click.command("demo")
@json_option
@pass_app
def demo(app: App, as_json: bool) -> None:
    """Generate a 3-clinic chain, build the example lists, and dial the next working day.

    The day is dialed by the real engine with 12 simulated PSRs (4 bilingual) against simulated
    callees. It writes into the configured database (default ./dialer.db) so the other
    commands work on its results; run again, it replaces only the demo's own data, and it
    refuses a database holding anything else.

    \b
    Example:
      dialer demo
      dialer --db sqlite:///demo.db demo --json
    """
    err = console(err=True)
    step = None if as_json else (lambda text: err.print(f"[dim]{text}...[/dim]"))
    result = run_demo(app.engine(), step=step)
    if as_json:
        print_json(result.as_json())
        return
    render_demo(result)


def render_demo(result: DemoResult) -> None:
    """The demo's summary: what was imported, each list, and exclusions by reason."""
    out = console()
    out.print(
        f"Imported {result.clinics} clinics, {result.patients:,} patients and "
        f"{result.appointments:,} appointments into {result.database}.",
        markup=False,
    )
    rows = [
        [r.campaign, r.kind, len(r.candidates), r.eligible_patients, len(r.entries)]
        for r in result.lists
    ]
    title = f"Dial lists for {result.as_of.isoformat()}"
    columns = ["campaign", "kind", "candidates", "eligible patients", "entries (households)"]
    out.print(table(title, columns, rows))
    used = {reason for r in result.lists for reason in r.excluded}
    reasons = [reason for reason in all_reasons() if reason in used]
    counts = [[reason, *[r.excluded.get(reason, "-") for r in result.lists]] for reason in reasons]
    out.print(
        table(
            "Excluded patients by reason", ["reason", *[r.campaign for r in result.lists]], counts
        )
    )
    if result.day:
        day_rows = [
            [
                d.name,
                d.entries,
                d.attempts,
                d.live_answers,
                d.contacts,
                d.conversions,
                f"{d.abandon_rate:.1%}",
                f"{d.occupancy:.1%}",
            ]
            for d in result.day
        ]
        title = (
            f"{result.as_of.isoformat()} dialed by {result.agents} simulated PSRs "
            "(abandonment cap 3.0%; occupancy: share of PSR time on the campaign)"
        )
        columns = [
            "campaign",
            "entries",
            "dials",
            "live answers",
            "contacts",
            "conversions",
            "abandoned",
            "occupancy",
        ]
        out.print(table(title, columns, day_rows))
    out.print(NEXT_STEPS, markup=False)


COMMANDS = [demo]
