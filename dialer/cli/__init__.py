"""The ``dialer`` command line: thin click commands over the library.

This is one of the two places that translate errors: a :class:`DialerError` prints its message
on stderr and exits 1; click's usage errors exit 2.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import click

from dialer import __version__
from dialer.cli.app import App, settings_help
from dialer.errors import DialerError

# Every command, and the modules of dialer.cli that define it (the first one defines it; the
# others add subcommands to it). A command's modules are imported when it is used or listed:
# importing every command's libraries (pandas, matplotlib, the importers) took about two
# seconds, which each command paid before it started.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "campaign": ("campaigns",),
    "demo": ("demo",),
    "dnc": ("dnc",),
    "export": ("reports",),
    "import": ("imports",),
    "init": ("store",),
    "lists": ("lists",),
    "report": ("reports", "report_pages"),
    "simulate": ("simulate",),
}


class DialerGroup(click.Group):
    """A click group that loads its commands when they are needed (:data:`COMMAND_MODULES`)
    and turns user-facing errors into a message and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMAND_MODULES:
            modules = [import_module(f"dialer.cli.{name}") for name in COMMAND_MODULES[cmd_name]]
            command = next(c for c in modules[0].COMMANDS if c.name == cmd_name)
            self.add_command(command)
        return command

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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dialer")
