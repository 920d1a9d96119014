"""Settings, read from ``DIALER_*`` environment variables.

``SETTINGS_DOC`` is the one declared list: it feeds ``--help`` texts and the README, and a test
fails when a setting is missing from either.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///dialer.db"


class Settings(BaseSettings):
    """Every setting of the dialer; each field is ``DIALER_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the store (default: sqlite:///dialer.db in the "
        "working directory; PostgreSQL: postgresql+psycopg://user@host/db).",
    )
    campaigns_dir: Path | None = Field(
        None,
        description="Folder of campaign YAML files (default: ./campaigns when it exists, "
        "else the packaged examples).",
    )
    opendental_url: str | None = Field(
        None,
        description="SQLAlchemy URL of an Open Dental database for `dialer import opendental` "
        "(keeps the password out of shell history).",
    )
    timezone: str | None = Field(
        None,
        description="IANA zone of the call center, used for report dates (default: the "
        "first clinic's zone).",
    )


def load_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings()


def settings_doc() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, in declaration order."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        rows.append((f"DIALER_{name.upper()}", default, field.description or ""))
    return rows
