"""``dialer import opendental``: read an Open Dental database directly.

Registered under ``dialer import`` by :mod:`dialer.cli.imports` (``COMMAND``). This module
imports only :mod:`dialer.cli.app`, so that registration cannot become a circular import.
"""

from __future__ import annotations

import click

from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.errors import ConfigError
from dialer.ingest.opendental import OpenDentalResult, import_opendental

SHOWN_REJECTS = 10
COUNTS = ("rows", "inserted", "updated", "unchanged", "rejected", "skipped", "deleted")
NO_URL = (
    "No Open Dental database given: set DIALER_OPENDENTAL_URL (it keeps the password out of "
    "shell history) or pass --url, e.g. mysql+pymysql://reader:PASSWORD@server/opendental"
)
HELP = """Import clinics, patients, appointments and recalls from an Open Dental database.

Reads the tables patient, appointment, recall, recalltype, clinic, definition and preference
(MySQL or MariaDB: pip install 'dialer[opendental]'), and writes the store in one transaction:
all or nothing. Each table is a snapshot: rows gone from Open Dental, and patients it marks
deleted, are marked deleted here. A second identical run reports everything unchanged.

\b
Mapping:
  keys (PatNum, AptNum, ClinicNum, RecallNum) -> ids; Guarantor -> household
  0001-01-01 -> empty (birthdates included)
  PatStatus 0 active, 1 non_patient, 2 inactive, 3 archived, 5 deceased,
    6 prospective; 4 (deleted) skipped
  any Prefer*Method = 1 (DoNotCall) -> do not call; preferred phone from
    PreferContactMethod, else PreferConfirmMethod, else PreferRecallMethod
  AptStatus 1 scheduled (confirmed when Confirmed is "Appointment Confirmed"
    or the ApptEConfirmStatusAccepted status), 2 completed, 5 broken;
    3, 6, 7, 8 skipped; IsHygiene -> hygiene, else other
  recall -> one recall per recalltype.Description ("Child Prophy" -> child_prophy)
  clinic TimeZone when IANA, else from Zip, else from State;
    ClinicNum 0 -> the practice (PracticeTitle, PracticeZip, PracticePhone)

Rejected rows go to opendental-TABLE.rejects.csv in the working directory (owner-only).
The URL's password is never printed.

\b
Example:
  export DIALER_OPENDENTAL_URL='mysql+pymysql://reader:PASSWORD@od-server/opendental'
  dialer import opendental
"""


@click.command("opendental", help=HELP)
@click.option(
    "--url",
    metavar="URL",
    help="SQLAlchemy URL of the Open Dental database (default: "
    "DIALER_OPENDENTAL_URL, which keeps the password out of shell history).",
)
@json_option
@pass_app
def opendental(app: App, url: str | None, as_json: bool) -> None:
    """Import an Open Dental database (the help text is ``HELP``)."""
    source = url or app.settings.opendental_url
    if not source:
        raise ConfigError(NO_URL)
    render_results(import_opendental(app.engine(), source), as_json)


def render_results(results: list[OpenDentalResult], as_json: bool) -> None:
    """One counts object per table as JSON, or a table with the first rejects."""
    if as_json:
        print_json([result.as_json() for result in results])
        return
    out = console()
    rows = [[r.table, *(getattr(r, name) for name in COUNTS)] for r in results]
    out.print(table("Open Dental import", ["table", *COUNTS], rows))
    messages = [message for result in results for message in result.messages]
    for message in messages[:SHOWN_REJECTS]:
        out.print(message, markup=False)
    if len(messages) > SHOWN_REJECTS:
        out.print(f"({len(messages) - SHOWN_REJECTS} more rejected rows not shown)", markup=False)
    for result in results:
        if result.rejects_file:
            out.print(
                f"Rejected {result.table} rows are in {result.rejects_file}; fix them in "
                "Open Dental and import again.",
                markup=False,
            )


COMMAND = opendental
