"""The README documents every setting and command, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from dialer.cli import cli
from dialer.settings import settings_doc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def leaf_commands(group: click.Group, prefix: str = "dialer") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
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
