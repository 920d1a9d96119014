"""``dialer campaign``: validate campaign files and print their JSON Schema."""

from __future__ import annotations

from pathlib import Path

import click

from dialer.campaigns import campaign_schema, load_campaign_file, load_campaigns
from dialer.cli.app import App, console, json_option, pass_app, print_json, table
from dialer.errors import CampaignInvalid


@click.group("campaign")
def campaign_group() -> None:
    """Campaign definitions (YAML files in the campaigns folder)."""


@campaign_group.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@pass_app
def validate(app: App, files: tuple[Path, ...]) -> None:
    """Check campaign files; with no FILES, every file of the campaigns folder.

    Every problem is printed as `file: field.path: message`; the exit status is 1 when any.

    \b
    Example:
      dialer campaign validate campaigns/hygiene-recall.yaml
    """
    if not files:
        folder = app.campaigns_folder()
        found = load_campaigns(folder)
        click.echo(f"{len(found)} campaign(s) in {folder} are valid: {', '.join(sorted(found))}")
        return
    problems: list[str] = []
    for path in files:
        try:
            load_campaign_file(path)
        except CampaignInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise CampaignInvalid(problems)
    click.echo(f"{len(files)} campaign file(s) are valid.")


@campaign_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of campaign files (for editor validation and completion).

    \b
    Example:
      dialer campaign schema > campaign.schema.json
    """
    print_json(campaign_schema())


@campaign_group.command("list")
@json_option
@pass_app
def list_campaigns(app: App, as_json: bool) -> None:
    """List the campaigns of the campaigns folder.

    \b
    Example:
      dialer --campaigns ./campaigns campaign list --json
    """
    folder = app.campaigns_folder()
    found = load_campaigns(folder)
    rows = [[name, c.kind, c.dialing.mode, str(path)] for name, (c, path) in sorted(found.items())]
    if as_json:
        print_json([dict(zip(["name", "kind", "mode", "file"], r, strict=True)) for r in rows])
        return
    console().print(table(f"Campaigns in {folder}", ["name", "kind", "mode", "file"], rows))


COMMANDS = [campaign_group]
