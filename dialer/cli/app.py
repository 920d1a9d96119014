"""What every command shares: settings, the store, the campaigns folder, and rendering."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from dialer.campaigns import CampaignModel, campaigns_dir, find_campaign
from dialer.settings import Settings, load_settings, settings_doc
from dialer.store.db import open_store


def settings_help() -> str:
    """The settings list for the top-level ``--help``."""
    lines = ["Settings (environment variables):"]
    for name, default, description in settings_doc():
        shown = f" [default: {default}]" if default else ""
        lines.append(f"  {name}{shown}: {description}")
    return "\b\n" + "\n".join(lines)


@dataclass
class App:
    """Per-invocation state: options given on the command line win over settings."""

    database_url: str | None = None
    campaigns_dir: Path | None = None
    settings: Settings = field(default_factory=load_settings)
    _engine: Engine | None = None

    @property
    def url(self) -> str:
        """The database URL in effect."""
        return self.database_url or self.settings.database_url

    def engine(self, *, upgrade: bool | None = None) -> Engine:
        """The store, checked (and on SQLite created or upgraded)."""
        if self._engine is None:
            self._engine = open_store(self.url, upgrade=upgrade)
        return self._engine

    def campaigns_folder(self) -> Path:
        """The campaigns folder in effect."""
        return campaigns_dir(self.campaigns_dir or self.settings.campaigns_dir)

    def campaign(self, ref: str) -> tuple[CampaignModel, Path]:
        """A campaign by name or file path."""
        return find_campaign(ref, self.campaigns_folder())


pass_app = click.make_pass_decorator(App)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


def console(err: bool = False) -> Console:
    """A rich console on stdout (or stderr)."""
    return Console(
        stderr=err, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200
    )


def print_json(data: Any) -> None:
    """JSON on stdout, one document."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    """A rich table of plain values."""
    out = Table(title=title, title_justify="left")
    for name in columns:
        out.add_column(name, overflow="fold")
    for row in rows:
        out.add_row(*["" if v is None else str(v) for v in row])
    return out
