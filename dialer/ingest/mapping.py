"""Column mappings: how a practice system's report export maps onto the canonical columns.

A mapping is a YAML file::

    columns:                 # source column -> canonical column
      PatNum: patient_id
      "Cell Phone": mobile_phone
    values:                  # per canonical column: source value -> canonical value
      status: {A: active, I: inactive}
      language: {Espanol: es}
      do_not_call: {Y: "true", N: "false"}
    date_format: "%m/%d/%Y"            # every date column (default ISO %Y-%m-%d)
    datetime_format: "%m/%d/%Y %H:%M"  # appointment start_at (default %Y-%m-%d %H:%M)
    formats: {birth_date: "%d.%m.%Y"}  # per-column overrides of the two above
    defaults: {clinic_id: C1}          # a value for a column the file does not have

Source column names and mapped values match case-insensitively, ignoring surrounding spaces.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from dialer.errors import InputFileError

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_DATETIME_FORMAT = "%Y-%m-%d %H:%M"


class Mapping(BaseModel):
    """A column mapping for one import file."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    date_format: str = DEFAULT_DATE_FORMAT
    datetime_format: str = DEFAULT_DATETIME_FORMAT
    formats: dict[str, str] = {}
    defaults: dict[str, str] = {}

    @field_validator("values", mode="before")
    @classmethod
    def _stringify_values(cls, value: object) -> object:
        # YAML reads Y/N/true as booleans and 1 as an int; mappings are about text.
        if isinstance(value, dict):
            return {
                str(col): {_yaml_text(k): _yaml_text(v) for k, v in (mapped or {}).items()}
                for col, mapped in value.items()
            }
        return value

    @field_validator("defaults", mode="before")
    @classmethod
    def _stringify_defaults(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): _yaml_text(v) for k, v in value.items()}
        return value

    def format_for(self, column: str, *, datetime: bool = False) -> str:
        """The strptime format of a date (or datetime) column."""
        default = self.datetime_format if datetime else self.date_format
        return self.formats.get(column, default)


def _yaml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputFileError(f"{path}: cannot read the mapping: {exc}") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: a mapping must be a YAML mapping of columns, values, ...")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InputFileError(f"{path}: {problems}") from exc
