"""The ``dialer`` command line: thin click commands over the library.

This is one of the two places that translate errors: a :class:`DialerError` prints its message
on stderr and exits 1; click's usage errors exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dialer import __version__
from dialer.cli.app import App, settings_help
from dialer.errors import DialerError


class DialerGroup(click.Group):
    """A click group that turns user-facing errors into a message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DialerError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(1)


@click.group(cls=DialerGroup, epilog=settings_help())
@click.option(
    "--db",
    "database_url",
    metavar="URL",
    help="Database URL (overrides DIALER_DATABASE_URL; default sqlite:///dialer.db).",
)
@click.option(
    "--campaigns",
    "campaigns_dir",
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of campaign files (overrides DIALER_CAMPAIGNS_DIR).",
)
@click.version_option(__version__, prog_name="dialer")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, campaigns_dir: Path | None) -> None:
    """Outbound dialer campaigns for dental call centers.

    \b
    Start with:  dialer demo
    Then:        dialer lists show hygiene-recall --limit 10
    """
    ctx.obj = App(database_url=database_url, campaigns_dir=campaigns_dir)


def _register() -> None:
    from dialer.cli import (
        campaigns,
        demo,
        dnc,
        imports,
        lists,
        report_pages,
        reports,
        simulate,
        store,
    )

    for module in (demo, store, imports, campaigns, lists, dnc, simulate, reports, report_pages):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dialer")
