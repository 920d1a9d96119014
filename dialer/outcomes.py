"""Outcomes and dispositions, and the published flag table that says what each one means.

A *system outcome* ends every attempt; a call bridged to a PSR (``connected``) then gets the
PSR's *disposition* (or ``no_disposition`` when wrap-up times out). The table below decides,
for every code: is it a contact (the right party was reached and spoke with a PSR), is it a
conversion (per campaign kind), is it final for the household in this campaign, and does it
schedule a retry (after the campaign's ``retry_after`` for that code).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    """How the network side of an attempt ended."""

    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"
    machine = "machine"  # answering machine, no message left
    left_message = "left_message"
    abandoned = "abandoned"  # a person detected and not connected to a PSR within 2 seconds
    connected = "connected"  # bridged to a PSR: the disposition says the rest


class Disposition(str, Enum):
    """What the PSR recorded (or the wrap-up timeout, ``no_disposition``)."""

    booked = "booked"
    confirmed = "confirmed"
    rescheduled = "rescheduled"
    cancelled = "cancelled"
    declined = "declined"
    callback = "callback"
    wrong_number = "wrong_number"
    do_not_call = "do_not_call"
    no_disposition = "no_disposition"


@dataclass(frozen=True)
class Flags:
    """What one outcome or disposition means."""

    contact: bool
    conversion_for: frozenset[str]  # campaign kinds for which it is a conversion
    final: bool  # the household is done in this campaign
    retry: bool  # schedules another attempt (after retry_after, or at the callback time)


_NONE: frozenset[str] = frozenset()
FLAGS: dict[str, Flags] = {
    Outcome.no_answer: Flags(False, _NONE, False, True),
    Outcome.busy: Flags(False, _NONE, False, True),
    Outcome.failed: Flags(False, _NONE, False, True),
    Outcome.machine: Flags(False, _NONE, False, True),
    Outcome.left_message: Flags(False, _NONE, False, True),
    Outcome.abandoned: Flags(False, _NONE, False, True),
    Outcome.connected: Flags(True, _NONE, False, False),  # the disposition decides
    Disposition.booked: Flags(True, frozenset({"recall", "reactivation"}), True, False),
    Disposition.confirmed: Flags(True, frozenset({"reminder"}), True, False),
    Disposition.rescheduled: Flags(True, frozenset({"reminder"}), True, False),
    Disposition.cancelled: Flags(True, _NONE, True, False),
    Disposition.declined: Flags(True, _NONE, True, False),
    Disposition.callback: Flags(True, _NONE, False, True),
    Disposition.wrong_number: Flags(False, _NONE, False, True),  # next phone, at once
    Disposition.do_not_call: Flags(True, _NONE, True, False),
    Disposition.no_disposition: Flags(True, _NONE, False, True),
}


def flags(code: str) -> Flags:
    """The flags of an outcome or disposition code."""
    return FLAGS[code]


def is_conversion(code: str | None, kind: str) -> bool:
    """Does this disposition count as success for a campaign of ``kind``?"""
    return code is not None and kind in FLAGS[code].conversion_for


def final_code(outcome: str, disposition: str | None) -> str:
    """The code that decides what happens next: the disposition when there is one."""
    return disposition if disposition is not None else outcome
