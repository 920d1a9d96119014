"""The README documents every setting and command, and CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dialer.cli import cli
from dialer.settings import settings_doc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def leaf_commands(group: click.Group, prefix: str = "dialer") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):  # as --help lists them (loading each one)
        command = group.get_command(context, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(leaf_commands(command, path))
        else:
            found.append((path, command))
    return found


COMMANDS = leaf_commands(cli)


@pytest.mark.parametrize("variable", [row[0] for row in settings_doc()])
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in README


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_is_documented_with_an_example(path: str, command: click.Command) -> None:
    assert f"`{path}" in README, f"{path} is missing from the README's command table"
    assert command.help and "Example" in command.help, f"{path} --help has no example"


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_is_two_commands_demo_then_tests() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("dialer demo")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_command = quick_start_commands()[1]
    assert ci[-1].replace("pip install -q ", "pip install ") == test_command


def test_the_command_line_loads_a_command_s_libraries_only_when_it_is_used() -> None:
    """Every command used to pay about two seconds of imports (pandas, matplotlib, the
    importers) before it started; now a command loads only what it needs."""
    probe = (
        "import sys; from dialer.cli import cli; "
        "print(sorted(m for m in ('matplotlib', 'dialer.demo', 'dialer.ingest.importer') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"
