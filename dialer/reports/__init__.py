"""Reports and exports over the store.

Each report is a function of the engine and its filters that returns a pandas DataFrame with
documented columns, so the CLI, the HTML page and analysts' notebooks share them:

- :func:`iter_dispositions` (chunks) and :func:`export_dispositions` (CSV or Parquet, audited):
  one row per attempt, the columns and dtypes of :data:`COLUMNS`; :func:`read_dispositions`
  reads an export back with exactly those dtypes.
- :func:`conversion_report`: per campaign, PSR, clinic, callee-local hour or weekday, attempt
  number or language.
- :func:`leaderboard`: PSRs of a calendar day, ISO week or month, ranked by conversions per
  logged-in hour.
- :func:`compliance_report` and :func:`abandonment_periods`: abandonment per 30-day period
  against the cap, and the counts that must be 0.
- :func:`attribution_report` (with :func:`match_bookings` and :func:`attribution_baseline`):
  bookings made on calls matched to later PMS imports, kept, broken, cancelled or unmatched,
  against patients not called.
- :func:`read_audit_log`: every export, who ran it and what it held.
- :mod:`dialer.reports.html` (``write_report_page``): all of the above on one offline page with
  charts; imported on its own, since it loads matplotlib.

Dates are shown in the call center's zone (:func:`report_zone`: ``DIALER_TIMEZONE``, else the
first clinic's); ``--from``/``--to`` filters are inclusive dates in each clinic's zone.
"""

from dialer.reports.attribution import attribution_baseline, attribution_report, match_bookings
from dialer.reports.audit import read_audit_log, record_export
from dialer.reports.compliance import abandonment_periods, compliance_report
from dialer.reports.conversion import GROUPINGS, conversion_report, wilson_interval
from dialer.reports.export import (
    COLUMNS,
    ExportResult,
    export_dispositions,
    iter_dispositions,
    read_dispositions,
)
from dialer.reports.filters import Filters, report_zone
from dialer.reports.leaderboard import PERIODS, calendar_period, leaderboard

__all__ = [
    "COLUMNS",
    "GROUPINGS",
    "PERIODS",
    "ExportResult",
    "Filters",
    "abandonment_periods",
    "attribution_baseline",
    "attribution_report",
    "calendar_period",
    "compliance_report",
    "conversion_report",
    "export_dispositions",
    "iter_dispositions",
    "leaderboard",
    "match_bookings",
    "read_audit_log",
    "read_dispositions",
    "record_export",
    "report_zone",
    "wilson_interval",
]
