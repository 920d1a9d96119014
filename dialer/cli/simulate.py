"""``dialer simulate``: run a scenario through the real engine against simulated callees."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dialer.cli.app import console, json_option, print_json, table
from dialer.simulate import load_scenario, run_simulation, scenario_pacer_label


@click.command("simulate")
@click.argument(
    "scenario_file", metavar="SCENARIO.yaml", type=click.Path(path_type=Path, dir_okay=False)
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--days", type=click.IntRange(min=1), help="Override the scenario's days.")
@click.option(
    "--db",
    "database_url",
    metavar="URL",
    help="Keep the simulated calls in this database (default: a temporary SQLite "
    "file; DIALER_DATABASE_URL and the global --db are ignored, so a simulation never "
    "writes into a real database).",
)
@json_option
def simulate(
    scenario_file: Path, seed: int, days: int | None, database_url: str | None, as_json: bool
) -> None:
    """Simulate SCENARIO.yaml: PSRs, pacing, compliance and outcomes, on a virtual clock.

    \b
    Example:
      dialer simulate scripts/scenarios/s2.yaml --days 10 --seed 7 --json
    """
    scenario = load_scenario(scenario_file)
    if days is not None:
        scenario = scenario.model_copy(update={"days": days})
    if sys.stderr.isatty() and not as_json:
        columns = (
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console(err=True), transient=True) as bar:
            task = bar.add_task("days", total=scenario.days)
            metrics = run_simulation(
                scenario,
                seed=seed,
                url=database_url,
                progress=lambda day: bar.update(task, completed=day),
            )
    else:
        metrics = run_simulation(scenario, seed=seed, url=database_url)
    if as_json:
        print_json(metrics.as_json())
        return
    rows = [[name, value] for name, value in metrics.as_json().items()]
    title = f"{scenario_file.name}: {scenario_pacer_label(scenario)}, seed {seed}"
    console().print(table(title, ["metric", "value"], rows))


COMMANDS = [simulate]
