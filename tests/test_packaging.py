"""What ``pip install .`` (not editable) ships: every module of the package.

setup.cfg finds packages with ``packages = find:``, which skips a folder without
``__init__.py``; an editable install would still import from the checkout, so only an installed
copy would show the gap (``dialer demo`` failing with ``No module named 'dialer.ingest'``).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
# Alembic's revision scripts ship as package data (setup.cfg [options.package_data]).
DATA_FOLDERS = {"dialer.store.migrations.versions"}


def test_every_folder_of_modules_is_a_package_that_setup_finds() -> None:
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "dialer").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    found = set(find_packages(where=str(ROOT), include=["dialer", "dialer.*"]))
    assert folders - DATA_FOLDERS - found == set()
