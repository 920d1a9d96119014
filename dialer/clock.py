"""Clocks: the system clock for live dialing and a virtual clock for simulations.

The engine never reads the time itself; it asks a :class:`Clock`, so the same code runs live
and on a simulated day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """An aware instant as whole microseconds since the epoch: elapsed times computed from two
    of them are exactly ``timedelta.total_seconds()``, without building a timedelta each."""
    return (at - EPOCH) // MICROSECOND


class Clock(Protocol):
    """Tells the time (aware UTC)."""

    def now(self) -> datetime:
        """The current instant."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current instant, from the operating system."""
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to (simulations and tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a virtual clock starts at an aware time")
        self._now = start

    def now(self) -> datetime:
        """The current virtual instant."""
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Move forward to ``when`` (never backwards)."""
        if when < self._now:
            raise ValueError(f"cannot move a clock back from {self._now} to {when}")
        self._now = when
