"""The provider interface: how the engine places, bridges and ends calls, and what it hears back.

A provider places outbound calls and reports what happens to them as :class:`CallEvent` values,
asynchronously: the simulated network schedules them on a virtual clock; Twilio posts them to
webhooks. PSRs wait in their own conference rooms, so bridging an answered callee is a join
into the PSR's room, not a new call. Nothing here carries patient data: calls are known by the
engine's attempt id and the number dialed, and labels hold no names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol


class EventKind(str, Enum):
    """What a provider can report about a call."""

    initiated = "initiated"  # the network accepted the call
    ringing = "ringing"
    answered = "answered"  # the line picked up (person or machine not yet known)
    person_detected = "person_detected"  # answering-machine detection says a person
    machine_detected = "machine_detected"
    no_answer = "no_answer"  # rang out
    busy = "busy"
    failed = "failed"  # invalid number, carrier rejection, network error
    bridged = "bridged"  # joined to a PSR's room
    message_done = "message_done"  # a recorded message (safe harbor or voicemail) finished
    keypress = "keypress"  # digits pressed during a message
    hangup = "hangup"  # the call ended (either side)


@dataclass(frozen=True)
class CallEvent:
    """One report about one call; ``event_id`` is unique per report (idempotence key)."""

    event_id: str
    attempt_id: int
    kind: EventKind
    at: datetime
    digits: str | None = None


@dataclass(frozen=True)
class CallRequest:
    """An outbound call to place."""

    attempt_id: int
    to: str  # E.164
    caller_id: str  # E.164
    ring_timeout_seconds: int
    detect_machine: bool = True


class Provider(Protocol):
    """What the engine needs from a telephony provider."""

    def place_call(self, request: CallRequest) -> str:
        """Start a call; returns the provider's call id. Events follow asynchronously."""
        ...

    def bridge(self, attempt_id: int, agent_id: int) -> None:
        """Join an answered call into the PSR's room."""
        ...

    def play_message(
        self, attempt_id: int, text: str, language: str, *, opt_out_digit: str | None
    ) -> None:
        """Play a recorded message, then hang up. The safe-harbor message takes the opt-out key
        (``opt_out_digit``); a voicemail takes none."""
        ...

    def hangup(self, attempt_id: int) -> None:
        """End a call now."""
        ...
