"""The call state machine: provider events and engine commands in, the next state and effects out.

::

    queued -> dialing -> ringing -> answered -> person ---> bridged -----------> ended
                                        \\          \\-> safe_harbor (abandoned) -> ended
                                         \\-> machine -> voicemail ------------> ended
    (no_answer, busy, failed or a hangup end the call from any earlier state)

Pure: :func:`apply` takes a :class:`Call` and a :class:`Step` and returns the new call and the
effects the dispatcher must carry out. Events are idempotent (an ``event_id`` seen before changes
nothing) and a late or out-of-order event never moves a call backwards: it may only fill in a
timestamp that is still missing. Both the moment the line was answered and the moment a person
was detected are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any

from dialer.outcomes import Outcome
from dialer.telephony.base import CallEvent, EventKind


class CallStatus(str, Enum):
    """Where a call is."""

    queued = "queued"  # attempt committed, not yet handed to the provider
    dialing = "dialing"
    ringing = "ringing"
    answered = "answered"  # picked up, person or machine not yet known
    person = "person"  # a person detected and waiting (at most the grace) for a PSR
    machine = "machine"
    bridged = "bridged"  # talking with a PSR
    safe_harbor = "safe_harbor"  # abandoned: hearing the safe-harbor message
    voicemail = "voicemail"  # leaving a message on a machine
    ended = "ended"


RANK = {
    CallStatus.queued: 0,
    CallStatus.dialing: 1,
    CallStatus.ringing: 2,
    CallStatus.answered: 3,
    CallStatus.person: 4,
    CallStatus.machine: 4,
    CallStatus.bridged: 5,
    CallStatus.safe_harbor: 5,
    CallStatus.voicemail: 5,
    CallStatus.ended: 6,
}


class Command(str, Enum):
    """What the engine itself decides about a call."""

    bridge = "bridge"  # a PSR takes the waiting person
    abandon = "abandon"  # no PSR within the grace: play the safe-harbor message
    leave_message = "leave_message"  # a machine answered: leave the voicemail
    hang_up = "hang_up"  # a machine answered and the campaign leaves no message


class Effect(str, Enum):
    """What the dispatcher must do after a step."""

    need_agent = "need_agent"  # a person is waiting: bridge a PSR within the grace
    machine = "machine"  # a machine answered: release any reserved PSR, message or hang up
    play_safe_harbor = "play_safe_harbor"
    play_voicemail = "play_voicemail"
    bridge = "bridge"
    hang_up = "hang_up"
    opt_out = "opt_out"  # the callee pressed the opt-out key: do-not-call at once
    ended = "ended"  # the call is over: record its outcome


@dataclass(frozen=True)
class Step:
    """One input: a provider event, or an engine command (``event`` is a synthetic id)."""

    event_id: str
    at: datetime
    kind: EventKind | Command
    agent_id: int | None = None
    digits: str | None = None

    @staticmethod
    def of(event: CallEvent) -> Step:
        """A provider event as a step."""
        return Step(event.event_id, event.at, event.kind, digits=event.digits)


@dataclass(frozen=True)
class Call:
    """An attempt's call as the engine knows it."""

    attempt_id: int
    status: CallStatus = CallStatus.queued
    placed_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    person_detected_at: datetime | None = None
    machine_detected_at: datetime | None = None
    bridged_at: datetime | None = None
    ended_at: datetime | None = None
    agent_id: int | None = None
    outcome: Outcome | None = None
    opted_out: bool = False
    message_played: bool = False
    seen: frozenset[str] = frozenset()

    @property
    def answered(self) -> datetime | None:
        """When the line was picked up: the answer report, else the first detection."""
        return self.answered_at or self.person_detected_at or self.machine_detected_at


_CALL_FIELDS = frozenset(f.name for f in fields(Call))


def replace(call: Call, **changes: Any) -> Call:
    """``dataclasses.replace`` for a Call, without its per-call introspection (a simulated month
    applies a few hundred thousand events)."""
    if not changes.keys() <= _CALL_FIELDS:
        raise TypeError(f"Call has no field {sorted(changes.keys() - _CALL_FIELDS)}")
    new = object.__new__(Call)
    new.__dict__.update(call.__dict__)
    new.__dict__.update(changes)
    return new


OPT_OUT_DIGIT = "9"
_ENDINGS = {
    EventKind.no_answer: Outcome.no_answer,
    EventKind.busy: Outcome.busy,
    EventKind.failed: Outcome.failed,
}
# How a call that hangs up ends, by where it was.
_HANGUP_OUTCOME = {
    CallStatus.queued: Outcome.failed,
    CallStatus.dialing: Outcome.failed,
    CallStatus.ringing: Outcome.no_answer,
    # Picked up and gone before anyone could tell who: no person was detected, so it is not a
    # live answer (and cannot be an abandoned one); nobody we could talk to answered.
    CallStatus.answered: Outcome.no_answer,
    CallStatus.person: Outcome.abandoned,  # hung up inside the grace, without a PSR
    CallStatus.machine: Outcome.machine,
    CallStatus.bridged: Outcome.connected,
    CallStatus.safe_harbor: Outcome.abandoned,
    CallStatus.voicemail: Outcome.left_message,
}
Result = tuple[Call, tuple[Effect, ...]]
_UNANSWERED = frozenset({Outcome.no_answer, Outcome.busy, Outcome.failed})


def _advance(call: Call, status: CallStatus, **stamps: datetime) -> Call:
    """Move forward to ``status`` (never back), filling only timestamps not yet set."""
    missing: dict[str, Any] = {k: v for k, v in stamps.items() if getattr(call, k) is None}
    if RANK[status] > RANK[call.status]:
        missing["status"] = status
    return replace(call, **missing)


def _end(call: Call, at: datetime, outcome: Outcome) -> Result:
    if call.status is CallStatus.ended:
        return replace(call, ended_at=call.ended_at or at), ()
    return replace(call, status=CallStatus.ended, ended_at=at, outcome=outcome), (Effect.ended,)


def _on_event(call: Call, step: Step) -> Result:
    kind, at = step.kind, step.at
    if kind in _ENDINGS:
        # Busy, failed or no-answer can only describe a call nobody picked up; reported after
        # the answer (out of order, or a provider's end-of-call status), the call ends as a
        # hang-up where it was.
        before_answer = RANK[call.status] < RANK[CallStatus.answered]
        late = _HANGUP_OUTCOME.get(call.status, Outcome.failed)
        outcome = _ENDINGS[kind] if before_answer else late  # type: ignore[index]
        return _end(call, at, outcome)
    if kind is EventKind.hangup:
        return _end(call, at, _HANGUP_OUTCOME.get(call.status, Outcome.failed))
    if kind is EventKind.message_done:
        if call.status is CallStatus.safe_harbor:
            return _end(call, at, Outcome.abandoned)
        if call.status is CallStatus.voicemail:
            return _end(call, at, Outcome.left_message)
        return call, ()  # no message was playing
    if kind is EventKind.keypress:
        # The opt-out key counts while a message plays, and also when its report arrives after
        # the message ended (providers do not order these reports).
        played = call.status in (CallStatus.safe_harbor, CallStatus.voicemail) or (
            call.outcome in (Outcome.abandoned, Outcome.left_message) and call.message_played
        )
        if played and OPT_OUT_DIGIT in (step.digits or "") and not call.opted_out:
            return replace(call, opted_out=True), (Effect.opt_out,)
        return call, ()
    return _on_progress(call, step)


def _on_progress(call: Call, step: Step) -> Result:
    kind, at = step.kind, step.at
    before = call.status
    if kind is EventKind.initiated:
        return _advance(call, CallStatus.dialing, placed_at=at), ()
    if kind is EventKind.ringing:
        return _advance(call, CallStatus.ringing, ringing_at=at), ()
    if kind is EventKind.answered:
        return _advance(call, CallStatus.answered, answered_at=at), ()
    if kind in (EventKind.person_detected, EventKind.machine_detected):
        # A detection that contradicts an earlier one, or comes for a call that ended
        # unanswered, is noise: it must not count a live answer that never was.
        decided = call.person_detected_at is not None or call.machine_detected_at is not None
        unanswered = call.status is CallStatus.ended and call.outcome in _UNANSWERED
        if decided or unanswered:
            return call, ()
        if kind is EventKind.person_detected:
            new = _advance(call, CallStatus.person, person_detected_at=at)
            fresh = new.status is CallStatus.person and before is not CallStatus.person
            return new, (Effect.need_agent,) if fresh else ()
        new = _advance(call, CallStatus.machine, machine_detected_at=at)
        fresh = new.status is CallStatus.machine and before is not CallStatus.machine
        return new, (Effect.machine,) if fresh else ()
    if kind is EventKind.bridged and call.status is CallStatus.bridged:
        return replace(call, bridged_at=call.bridged_at or at), ()
    return call, ()


def _on_command(call: Call, step: Step) -> Result:
    kind, at = step.kind, step.at
    if kind is Command.bridge and call.status is CallStatus.person:
        new = replace(
            call,
            status=CallStatus.bridged,
            bridged_at=call.bridged_at or at,
            agent_id=step.agent_id,
        )
        return new, (Effect.bridge,)
    if kind is Command.abandon and call.status is CallStatus.person:
        new = replace(call, status=CallStatus.safe_harbor, message_played=True)
        return new, (Effect.play_safe_harbor,)
    if kind is Command.leave_message and call.status is CallStatus.machine:
        new = replace(call, status=CallStatus.voicemail, message_played=True)
        return new, (Effect.play_voicemail,)
    if kind is Command.hang_up and call.status is not CallStatus.ended:
        return call, (Effect.hang_up,)
    return call, ()


def apply(call: Call, step: Step) -> Result:
    """The call after ``step``, and what the dispatcher must do about it."""
    if step.event_id in call.seen:
        return call, ()
    call = replace(call, seen=call.seen | {step.event_id})
    if isinstance(step.kind, Command):
        return _on_command(call, step)
    return _on_event(call, step)
