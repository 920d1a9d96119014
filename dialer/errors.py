"""User-facing errors.

Every error a user can cause is a :class:`DialerError`; the click group prints its message on
stderr and exits 1, and the web app (later) turns it into one JSON shape with ``http_status``.
Nothing else catches ``Exception``.

::

    DialerError
    ├── ConfigError                 bad settings or options
    ├── DatabaseError               cannot connect / wrong database
    │   └── SchemaOutOfDate         PostgreSQL schema older than this release
    ├── InputFileError              a file that cannot be read at all (encoding, missing columns)
    ├── CampaignError               campaign files: unknown name, duplicate, invalid definition
    │   └── CampaignInvalid         validation failures, one ``file: field.path: message`` each
    ├── NotFound                    a named thing (patient, list) does not exist
    └── DemoRefused                 the demo will not overwrite a database holding real data
"""

from __future__ import annotations

from collections.abc import Sequence


class DialerError(Exception):
    """Base of every error whose message is meant for the user."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DialerError):
    """A setting or option has a value the dialer cannot use."""


class DatabaseError(DialerError):
    """The database cannot be reached or is not a dialer database."""

    http_status = 503


class SchemaOutOfDate(DatabaseError):
    """The database schema is older (or newer) than this release expects."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        where = "has no dialer schema" if current is None else f"is at schema revision {current}"
        super().__init__(
            f"The database {url} {where}, but this dialer needs revision {head}. "
            "Run `dialer init` to create or upgrade it."
        )


class InputFileError(DialerError):
    """A whole input file is unusable (unreadable encoding, missing required columns)."""


class MissingColumns(InputFileError):
    """Required columns are absent from an import file; nothing was imported."""

    def __init__(self, file: str, missing: Sequence[str], kind: str) -> None:
        self.missing = list(missing)
        names = ", ".join(missing)
        super().__init__(
            f"{file}: missing required column{'s' if len(missing) > 1 else ''} {names} "
            f"for {kind}; nothing was imported (see `dialer import {kind} --help` for the "
            "columns, or map yours with --mapping)"
        )


class CampaignError(DialerError):
    """A campaign cannot be found or its files conflict."""


class CampaignInvalid(CampaignError):
    """One or more campaign definitions failed validation."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotFound(DialerError):
    """A named record does not exist."""

    http_status = 404


class DemoRefused(DialerError):
    """The demo refuses to write into a database that holds data of its own."""
