"""``dialer init``: create or upgrade the store's schema."""

from __future__ import annotations

import click

from dialer.cli.app import App, pass_app
from dialer.store.db import current_revision, safe_url


@click.command("init")
@pass_app
def init(app: App) -> None:
    """Create the database schema, or upgrade it to this release.

    \b
    Example:
      dialer --db postgresql://dialer@db.example.org/dialer init
    """
    engine = app.engine(upgrade=True)
    click.echo(f"Database {safe_url(engine)} is at schema revision {current_revision(engine)}.")


COMMANDS = [init]
