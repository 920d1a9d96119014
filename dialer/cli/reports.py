"""``dialer export`` and ``dialer report``: disposition exports and analysts' reports."""

from __future__ import annotations

import click


@click.group("export")
def export() -> None:
    """Export dispositions for analysis (CSV or Parquet)."""


@export.command("dispositions")
def dispositions() -> None:
    """One row per attempt, in started_at order.

    \b
    Example:
      dialer export dispositions --from 2025-03-01 -o march.csv
    """
    raise click.ClickException("not implemented yet")


@click.group("report")
def report() -> None:
    """Conversion, leaderboard and compliance reports."""


COMMANDS = [export, report]
