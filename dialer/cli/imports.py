"""``dialer import``: load practice data (canonical CSV, mapped exports, Open Dental)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dialer.cli import opendental
from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.ingest.importer import ImportResult, import_file

SHOWN_REJECTS = 10
PROGRESS_MIN_ROWS = 10_000

file_argument = click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
mapping_option = click.option(
    "--mapping",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML column mapping for a practice system's own export.",
)
encoding_option = click.option(
    "--encoding",
    metavar="ENC",
    help="File encoding (default: detect UTF-8, UTF-8 with BOM or Windows-1252).",
)
snapshot_option = click.option(
    "--snapshot",
    is_flag=True,
    help="The file is a full export: rows absent from it are marked deleted.",
)


@click.group("import")
def import_group() -> None:
    """Import clinics, patients and appointments (in that order), or an Open Dental database."""


@contextmanager
def import_progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr for big files on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console(err=True),
        transient=True,
    ) as bar:
        task = None

        def hook(stage: str, done: int, total: int) -> None:
            nonlocal task
            if total < PROGRESS_MIN_ROWS:
                return
            if task is None:
                task = bar.add_task(stage, total=total)
            bar.update(task, description=stage, completed=done)

        yield hook


def render_import(result: ImportResult, as_json: bool) -> None:
    """Counts as a table (with the first rejects) or as JSON."""
    if as_json:
        print_json(result.as_json())
        return
    out = console()
    names = ["rows", "inserted", "updated", "unchanged", "rejected", "deleted"]
    out.print(table(f"{result.file}", names, [[getattr(result, n) for n in names]]))
    for message in result.messages[:SHOWN_REJECTS]:
        out.print(message, markup=False)
    if result.rejects_file:
        more = len(result.messages) - SHOWN_REJECTS
        extra = f" ({more} more not shown)" if more > 0 else ""
        out.print(
            f"Rejected rows{extra} are in {result.rejects_file}; fix them there and "
            "import that file again.",
            markup=False,
        )


def _file_command(kind: str, example: str) -> click.Command:
    @click.command(kind, help=f"Import a {kind} CSV file.\n\n\b\nExample:\n  {example}")
    @file_argument
    @mapping_option
    @encoding_option
    @snapshot_option
    @json_option
    @pass_app
    def command(
        app: App,
        file: Path,
        mapping: Path | None,
        encoding: str | None,
        snapshot: bool,
        as_json: bool,
    ) -> None:
        with import_progress() as hook:
            result = import_file(
                app.engine(),
                kind,
                file,
                mapping_path=mapping,
                encoding=encoding,
                snapshot=snapshot,
                progress=hook,
            )
        render_import(result, as_json)

    return command


import_group.add_command(_file_command("clinics", "dialer import clinics clinics.csv"))
import_group.add_command(
    _file_command("patients", "dialer import patients export.csv --mapping dentrix.yaml --snapshot")
)
import_group.add_command(_file_command("appointments", "dialer import appointments appts.csv"))

import_group.add_command(opendental.COMMAND)

COMMANDS = [import_group]
