"""The call state machine: every path with its exact effects, idempotent and out-of-order events,
the opt-out key, commands out of place, and a hypothesis property over random event streams.

Steps are written as ``(kind, seconds after now, status after, effects)`` rows so a path reads
as the call's timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.calls import RANK, Call, CallStatus, Command, Effect, Step, apply
from dialer.outcomes import Outcome
from dialer.telephony.base import CallEvent, EventKind

E = EventKind
C = Command
S = CallStatus
AGENT = 7
ATTEMPT = 1

Kind = EventKind | Command
Row = tuple[Kind, float, CallStatus, tuple[Effect, ...]]
Play = Callable[..., tuple[Call, list[tuple[Effect, ...]]]]
MakeStep = Callable[..., Step]
Rows = Sequence[Sequence[Any]]
STAMPS = [f.name for f in fields(Call) if f.name.endswith("_at")]


def make_step(
    now: datetime,
    kind: Kind,
    seconds: float,
    *,
    event_id: str | None = None,
    digits: str | None = None,
) -> Step:
    """A provider event (through ``Step.of``) or an engine command, ``seconds`` after ``now``."""
    at = now + timedelta(seconds=seconds)
    if isinstance(kind, Command):
        agent = AGENT if kind is Command.bridge else None
        return Step(event_id or f"engine:{kind.value}@{seconds}", at, kind, agent_id=agent)
    event_id = event_id or f"{kind.value}@{seconds}"
    return Step.of(CallEvent(event_id, ATTEMPT, kind, at, digits=digits))


@pytest.fixture
def new_call() -> Call:
    """A call whose attempt was just committed."""
    return Call(ATTEMPT)


@pytest.fixture
def step(now: datetime) -> MakeStep:
    """``step(kind, seconds, event_id=..., digits=...)``: a step ``seconds`` after ``now``."""

    def build(kind: Kind, seconds: float, **options: Any) -> Step:
        return make_step(now, kind, seconds, **options)

    return build


@pytest.fixture
def play(new_call: Call, step: MakeStep) -> Play:
    """Apply ``(kind, seconds)`` pairs (or full rows) in order; the call and each step's effects."""

    def run(rows: Rows, call: Call = new_call) -> tuple[Call, list[tuple[Effect, ...]]]:
        effects = []
        for row in rows:
            call, out = apply(call, step(row[0], row[1]))
            effects.append(out)
        return call, effects

    return run


def at(now: datetime, seconds: float) -> datetime:
    """``seconds`` after ``now``."""
    return now + timedelta(seconds=seconds)


# Every way a call goes, step by step: (kind, second, status after, effects emitted).
RING: list[Row] = [(E.initiated, 0, S.dialing, ()), (E.ringing, 1, S.ringing, ())]
PERSON: list[Row] = [
    *RING,
    (E.answered, 9, S.answered, ()),
    (E.person_detected, 10, S.person, (Effect.need_agent,)),
]
MACHINE: list[Row] = [
    *RING,
    (E.answered, 9, S.answered, ()),
    (E.machine_detected, 12, S.machine, (Effect.machine,)),
]
PATHS: dict[str, tuple[list[Row], Outcome]] = {
    "person-bridge-hangup=connected": (
        [
            *PERSON,
            (C.bridge, 11, S.bridged, (Effect.bridge,)),
            (E.bridged, 11.2, S.bridged, ()),
            (E.hangup, 200, S.ended, (Effect.ended,)),
        ],
        Outcome.connected,
    ),
    "person-without-answered-event=connected": (
        [
            *RING,
            (E.person_detected, 10, S.person, (Effect.need_agent,)),
            (C.bridge, 11, S.bridged, (Effect.bridge,)),
            (E.hangup, 200, S.ended, (Effect.ended,)),
        ],
        Outcome.connected,
    ),
    "machine-leave_message-message_done=left_message": (
        [
            *MACHINE,
            (C.leave_message, 12, S.voicemail, (Effect.play_voicemail,)),
            (E.message_done, 40, S.ended, (Effect.ended,)),
        ],
        Outcome.left_message,
    ),
    "machine-leave_message-hangup=left_message": (
        [
            *MACHINE,
            (C.leave_message, 12, S.voicemail, (Effect.play_voicemail,)),
            (E.hangup, 30, S.ended, (Effect.ended,)),
        ],
        Outcome.left_message,
    ),
    "machine-hang_up-hangup=machine": (
        [
            *MACHINE,
            (C.hang_up, 12, S.machine, (Effect.hang_up,)),
            (E.hangup, 12.5, S.ended, (Effect.ended,)),
        ],
        Outcome.machine,
    ),
    "person-abandon-message_done=abandoned": (
        [
            *PERSON,
            (C.abandon, 12, S.safe_harbor, (Effect.play_safe_harbor,)),
            (E.message_done, 25, S.ended, (Effect.ended,)),
        ],
        Outcome.abandoned,
    ),
    "person-abandon-hangup-during-message=abandoned": (
        [
            *PERSON,
            (C.abandon, 12, S.safe_harbor, (Effect.play_safe_harbor,)),
            (E.hangup, 15, S.ended, (Effect.ended,)),
        ],
        Outcome.abandoned,
    ),
    "person-hangup-while-waiting=abandoned": (
        [*PERSON, (E.hangup, 11, S.ended, (Effect.ended,))],
        Outcome.abandoned,
    ),
    "ringing-no_answer=no_answer": (
        [*RING, (E.no_answer, 25, S.ended, (Effect.ended,))],
        Outcome.no_answer,
    ),
    "ringing-busy=busy": ([*RING, (E.busy, 2, S.ended, (Effect.ended,))], Outcome.busy),
    "ringing-failed=failed": ([*RING, (E.failed, 3, S.ended, (Effect.ended,))], Outcome.failed),
    "ringing-hangup=no_answer": (
        [*RING, (E.hangup, 24, S.ended, (Effect.ended,))],
        Outcome.no_answer,
    ),
    "dialing-failed=failed": (
        [(E.initiated, 0, S.dialing, ()), (E.failed, 1, S.ended, (Effect.ended,))],
        Outcome.failed,
    ),
    "dialing-hangup=failed": (
        [(E.initiated, 0, S.dialing, ()), (E.hangup, 1, S.ended, (Effect.ended,))],
        Outcome.failed,
    ),
    "queued-busy=busy": ([(E.busy, 1, S.ended, (Effect.ended,))], Outcome.busy),
    "queued-hangup=failed": ([(E.hangup, 1, S.ended, (Effect.ended,))], Outcome.failed),
    # Picked up and gone before detection: nobody we could talk to answered (not a live
    # answer, and not a network failure either).
    "answered-hangup=no_answer": (
        [*RING, (E.answered, 9, S.answered, ()), (E.hangup, 10, S.ended, (Effect.ended,))],
        Outcome.no_answer,
    ),
}


def test_a_new_call_is_queued_with_nothing_stamped(new_call: Call) -> None:
    assert new_call.status is CallStatus.queued
    assert new_call.outcome is None and new_call.agent_id is None and not new_call.opted_out
    assert new_call.seen == frozenset()
    assert all(getattr(new_call, name) is None for name in STAMPS)


@pytest.mark.parametrize(("rows", "outcome"), PATHS.values(), ids=PATHS.keys())
def test_path_statuses_effects_and_outcome(play: Play, rows: list[Row], outcome: Outcome) -> None:
    call = Call(ATTEMPT)
    for kind, seconds, status, effects in rows:
        call, emitted = play([(kind, seconds)], call)
        assert (call.status, emitted[0]) == (status, effects), f"after {kind.value}@{seconds}"
    assert call.outcome is outcome
    assert call.seen == {f"{'engine:' * isinstance(k, Command)}{k.value}@{s}" for k, s, *_ in rows}


def test_connected_call_keeps_every_timestamp_and_the_agent(play: Play, now: datetime) -> None:
    call, _ = play(PATHS["person-bridge-hangup=connected"][0])

    assert call == replace(
        call,
        status=CallStatus.ended,
        outcome=Outcome.connected,
        placed_at=at(now, 0),
        ringing_at=at(now, 1),
        answered_at=at(now, 9),
        person_detected_at=at(now, 10),
        machine_detected_at=None,
        bridged_at=at(now, 11),  # the engine's bridge, not the provider's later report
        ended_at=at(now, 200),
        agent_id=AGENT,
        opted_out=False,
    )


def test_person_detected_without_answered_event_answers_at_detection(
    play: Play, now: datetime
) -> None:
    call, _ = play([(E.initiated, 0), (E.ringing, 1), (E.person_detected, 10)])

    assert call.answered_at is None  # no answer report: left for a late one to fill
    assert call.answered == call.person_detected_at == at(now, 10)


@pytest.mark.parametrize(
    ("path", "stamps"),
    [
        pytest.param(
            "machine-leave_message-message_done=left_message",
            {"answered_at": 9, "machine_detected_at": 12, "ended_at": 40},
            id="voicemail",
        ),
        pytest.param(
            "machine-hang_up-hangup=machine",
            {"answered_at": 9, "machine_detected_at": 12, "ended_at": 12.5},
            id="machine-hung-up",
        ),
        pytest.param(
            "person-abandon-message_done=abandoned",
            {"answered_at": 9, "person_detected_at": 10, "ended_at": 25},
            id="safe-harbor",
        ),
        pytest.param("ringing-no_answer=no_answer", {"ended_at": 25}, id="no-answer"),
    ],
)
def test_paths_stamp_only_what_happened(
    play: Play, now: datetime, path: str, stamps: dict[str, float]
) -> None:
    call, _ = play(PATHS[path][0])

    expected = {"placed_at": 0, "ringing_at": 1, **stamps}
    stamped = {name: getattr(call, name) for name in [*STAMPS, "agent_id"]}
    assert stamped == {
        name: at(now, expected[name]) if name in expected else None for name in stamped
    }


# -- idempotence -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS.keys())
def test_every_step_seen_again_changes_nothing(play: Play, step: MakeStep, path: str) -> None:
    rows = PATHS[path][0]
    for n in range(1, len(rows) + 1):
        call, _ = play(rows[:n])
        for kind, seconds, *_ in rows[:n]:
            again, effects = apply(call, step(kind, seconds))
            assert again is call and effects == (), f"{kind.value}@{seconds} after {n} steps"


def test_a_seen_event_id_is_ignored_whatever_it_now_says(play: Play, step: MakeStep) -> None:
    call, _ = play(RING)

    same_id, effects = apply(call, step(E.person_detected, 10, event_id="ringing@1"))

    assert same_id is call and effects == ()


@pytest.mark.parametrize(
    ("kind", "effect"),
    [(E.person_detected, Effect.need_agent), (E.machine_detected, Effect.machine)],
    ids=["person", "machine"],
)
def test_a_detection_reported_twice_under_new_ids_acts_once(
    play: Play, now: datetime, kind: EventKind, effect: Effect
) -> None:
    call, effects = play([*RING, (kind, 10), (kind, 11), (kind, 12)])

    assert effects[2:] == [(effect,), (), ()]
    stamp = "person_detected_at" if kind is E.person_detected else "machine_detected_at"
    assert getattr(call, stamp) == at(now, 10)


def test_a_second_ending_event_keeps_the_first_outcome_and_time(play: Play, now: datetime) -> None:
    call, effects = play([*RING, (E.busy, 2), (E.hangup, 3), (E.no_answer, 30), (E.failed, 31)])

    assert (call.outcome, call.ended_at) == (Outcome.busy, at(now, 2))
    assert effects[2:] == [(Effect.ended,), (), (), ()]


# -- out of order ------------------------------------------------------------------------------


def test_late_ringing_after_person_fills_ringing_at_only(play: Play, now: datetime) -> None:
    call, effects = play([(E.initiated, 0), (E.person_detected, 10), (E.ringing, 1)])

    assert call.status is CallStatus.person
    assert call.ringing_at == at(now, 1)
    assert effects[-1] == ()


def test_late_ringing_does_not_overwrite_a_ringing_time(play: Play, now: datetime) -> None:
    call, _ = play([(E.initiated, 0), (E.ringing, 2), (E.ringing, 1)])

    assert (call.status, call.ringing_at) == (CallStatus.ringing, at(now, 2))


def test_late_initiated_fills_placed_at_and_keeps_status(play: Play, now: datetime) -> None:
    call, effects = play([(E.ringing, 1), (E.initiated, 0)])

    assert (call.status, call.placed_at, effects[-1]) == (CallStatus.ringing, at(now, 0), ())


@pytest.mark.parametrize(
    "late",
    [E.initiated, E.ringing, E.answered, E.person_detected],
    ids=lambda k: k.value,
)
def test_late_progress_after_bridged_does_not_move_back(
    play: Play, now: datetime, late: EventKind
) -> None:
    rows = [(E.initiated, 0), (E.ringing, 1), (E.answered, 9), (E.person_detected, 10)]
    bridged, _ = play([*rows, (C.bridge, 11)])

    call, effects = play([(late, 50)], bridged)

    assert call == replace(bridged, seen=bridged.seen | {f"{late.value}@50"})
    assert effects == [()]


def test_answered_after_bridged_fills_a_missing_answered_at(play: Play, now: datetime) -> None:
    # Detection stamps answered_at too, so only a call bridged with no stamp at all shows it.
    bridged = replace(Call(ATTEMPT), status=CallStatus.bridged, bridged_at=at(now, 11))

    call, effects = play([(E.answered, 9)], bridged)

    assert (call.status, call.answered_at, effects) == (CallStatus.bridged, at(now, 9), [()])


@pytest.mark.parametrize(
    "late",
    [E.initiated, E.ringing, E.answered, E.person_detected, E.machine_detected, E.bridged],
    ids=lambda k: k.value,
)
def test_progress_after_the_end_keeps_status_and_outcome(play: Play, late: EventKind) -> None:
    ended, _ = play([*RING, (E.no_answer, 25)])

    call, effects = play([(late, 30)], ended)

    assert (call.status, call.outcome) == (S.ended, Outcome.no_answer)
    assert call.ended_at == ended.ended_at
    assert effects == [()]


CONTRADICTIONS: dict[str, tuple[Rows, str]] = {
    "person-after-machine": (
        [*RING, (E.machine_detected, 12), (E.person_detected, 13)],
        "person_detected_at",
    ),
    "person-after-no_answer": (
        [*RING, (E.no_answer, 25), (E.person_detected, 26)],
        "person_detected_at",
    ),
    "machine-after-person": (
        [*RING, (E.person_detected, 10), (E.machine_detected, 12)],
        "machine_detected_at",
    ),
}


@pytest.mark.parametrize(("rows", "stamp"), CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
def test_a_contradicting_late_detection_stamps_nothing(play: Play, rows: Rows, stamp: str) -> None:
    call, _ = play(rows)

    assert getattr(call, stamp) is None


def test_answered_delivered_after_detection_keeps_the_real_answer_time(
    play: Play, now: datetime
) -> None:
    call, _ = play([*RING, (E.person_detected, 10), (E.answered, 9)])

    assert (call.answered_at, call.person_detected_at) == (at(now, 9), at(now, 10))


def test_a_bridged_time_once_stamped_never_changes(play: Play, now: datetime) -> None:
    call, _ = play([*RING, (E.person_detected, 10), (C.bridge, 11), (E.bridged, 11.5)])

    assert call.bridged_at == at(now, 11)


def test_a_bridged_report_for_a_call_never_bridged_stamps_nothing(play: Play) -> None:
    call, _ = play([*RING, (E.person_detected, 10), (E.bridged, 10.5)])

    assert (call.status, call.bridged_at) == (S.person, None)


# -- ending while answered ---------------------------------------------------------------------


@pytest.mark.parametrize("ending", [E.failed, E.busy, E.no_answer], ids=lambda k: k.value)
@pytest.mark.parametrize(
    ("rows", "outcome"),
    [
        pytest.param([*PERSON], Outcome.abandoned, id="person-waiting"),
        pytest.param([*PERSON, (C.bridge, 11)], Outcome.connected, id="bridged"),
        pytest.param([*PERSON, (C.abandon, 12)], Outcome.abandoned, id="safe-harbor"),
        pytest.param([*MACHINE], Outcome.machine, id="machine"),
        pytest.param([*MACHINE, (C.leave_message, 12)], Outcome.left_message, id="voicemail"),
    ],
)
def test_an_ending_event_after_the_answer_keeps_the_answered_outcome(
    play: Play, rows: Rows, outcome: Outcome, ending: EventKind
) -> None:
    call, _ = play([*rows, (ending, 100)])

    assert call.outcome is outcome


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([*RING], id="ringing"),
        pytest.param([*PERSON], id="person"),
        pytest.param([*PERSON, (C.bridge, 11)], id="bridged"),
        pytest.param([*MACHINE], id="machine"),
    ],
)
def test_message_done_outside_a_message_changes_nothing(play: Play, rows: Rows) -> None:
    before, _ = play(rows)

    call, effects = play([(E.message_done, 100)], before)

    assert (call.status, call.outcome, effects) == (before.status, None, [()])


# -- opt-out -----------------------------------------------------------------------------------


SAFE_HARBOR = [*PERSON, (C.abandon, 12)]
VOICEMAIL = [*MACHINE, (C.leave_message, 12)]


@pytest.mark.parametrize(
    "rows", [pytest.param(SAFE_HARBOR, id="safe-harbor"), pytest.param(VOICEMAIL, id="voicemail")]
)
def test_opt_out_key_during_a_message_opts_out_once(play: Play, step: MakeStep, rows: Rows) -> None:
    call, _ = play(rows)

    call, first = apply(call, step(E.keypress, 14, digits="9"))
    call, second = apply(call, step(E.keypress, 15, digits="9"))
    call, last = apply(call, step(E.message_done, 20))

    assert (first, second, last) == ((Effect.opt_out,), (), (Effect.ended,))
    assert call.opted_out


@pytest.mark.parametrize(
    ("digits", "opted"),
    [("9", True), ("19", True), ("1", False), ("99", True), ("", False), (None, False)],
    ids=["9", "9-among-others", "other-key", "99", "empty", "none"],
)
def test_only_the_opt_out_digit_opts_out(
    play: Play, step: MakeStep, digits: str | None, opted: bool
) -> None:
    call, _ = play(SAFE_HARBOR)

    call, effects = apply(call, step(E.keypress, 14, digits=digits))

    assert (call.opted_out, effects) == (opted, (Effect.opt_out,) if opted else ())
    assert call.status is CallStatus.safe_harbor


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(RING, id="ringing"),
        pytest.param(PERSON, id="person"),
        pytest.param([*PERSON, (C.bridge, 11)], id="bridged"),
        pytest.param(MACHINE, id="machine"),
        pytest.param([*PERSON, (E.hangup, 11)], id="ended"),
    ],
)
def test_opt_out_key_outside_a_message_is_ignored(play: Play, step: MakeStep, rows: Rows) -> None:
    before, _ = play(rows)

    call, effects = apply(before, step(E.keypress, 14, digits="9"))

    assert (call.opted_out, effects, call.status) == (False, (), before.status)


def test_opt_out_key_delivered_after_message_done_still_opts_out(
    play: Play, step: MakeStep
) -> None:
    call, _ = play([*SAFE_HARBOR, (E.message_done, 20)])

    call, effects = apply(call, step(E.keypress, 14, digits="9"))

    assert (call.opted_out, effects) == (True, (Effect.opt_out,))


# -- commands ----------------------------------------------------------------------------------


STATES: dict[str, Rows] = {
    "queued": [],
    "ringing": RING,
    "answered": [*RING, (E.answered, 9)],
    "person": PERSON,
    "machine": MACHINE,
    "bridged": [*PERSON, (C.bridge, 11)],
    "safe_harbor": SAFE_HARBOR,
    "voicemail": VOICEMAIL,
    "ended": [*RING, (E.no_answer, 25)],
}
# The only (state, command) pairs that do something; every other pair is a no-op.
VALID: dict[tuple[str, Command], tuple[CallStatus, tuple[Effect, ...]]] = {
    ("person", C.bridge): (S.bridged, (Effect.bridge,)),
    ("person", C.abandon): (S.safe_harbor, (Effect.play_safe_harbor,)),
    ("machine", C.leave_message): (S.voicemail, (Effect.play_voicemail,)),
    **{(state, C.hang_up): (S(state), (Effect.hang_up,)) for state in STATES if state != "ended"},
}


@pytest.mark.parametrize(
    ("state", "command"),
    [(state, command) for state in STATES for command in Command],
    ids=[f"{command.value}-in-{state}" for state in STATES for command in Command],
)
def test_each_command_in_each_state(
    play: Play, step: MakeStep, state: str, command: Command
) -> None:
    before, _ = play(STATES[state])
    assert before.status is S(state)
    command_step = step(command, 60)

    call, effects = apply(before, command_step)

    seen = replace(before, seen=before.seen | {command_step.event_id})
    if (state, command) not in VALID:
        assert (call, effects) == (seen, ())
        return
    status, expected = VALID[(state, command)]
    assert (call.status, effects) == (status, expected)
    others = {"status", "bridged_at", "agent_id"} if command is C.bridge else {"status"}
    if command in (C.abandon, C.leave_message):
        assert call.message_played  # a late opt-out key still counts after it ends
        others |= {"message_played"}
    assert replace(call, **{name: getattr(seen, name) for name in others}) == seen


def test_bridge_stamps_the_agent_and_the_bridge_time(play: Play, now: datetime) -> None:
    call, _ = play([*PERSON, (C.bridge, 11.5)])

    assert (call.agent_id, call.bridged_at) == (AGENT, at(now, 11.5))


def test_hang_up_command_waits_for_the_provider_to_end_the_call(play: Play) -> None:
    call, effects = play([*MACHINE, (C.hang_up, 12)])

    assert (call.status, call.outcome, call.ended_at, effects[-1]) == (
        S.machine,
        None,
        None,
        (Effect.hang_up,),
    )


# -- properties --------------------------------------------------------------------------------

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
KINDS: list[Kind] = [*EventKind, *Command]
steps = st.lists(
    st.builds(
        make_step,
        st.just(T0),
        st.sampled_from(KINDS),
        st.integers(0, 300),
        event_id=st.sampled_from([f"id{n}" for n in range(10)]),
        digits=st.sampled_from([None, "9", "1"]),
    ),
    max_size=30,
)


@given(steps)
def test_random_streams_never_move_a_call_back(stream: list[Step]) -> None:
    call = Call(ATTEMPT)
    emitted: list[Effect] = []
    for s in stream:
        new, effects = apply(call, s)
        assert RANK[new.status] >= RANK[call.status]
        assert new.seen >= call.seen and s.event_id in new.seen
        if s.event_id in call.seen:
            assert new is call and effects == ()
        if call.status is CallStatus.ended:
            assert (new.outcome, new.ended_at) == (call.outcome, call.ended_at)
        assert (new.status is CallStatus.ended) == (new.outcome is not None)
        assert (new.status is CallStatus.ended) == (new.ended_at is not None)
        for name in STAMPS:
            if name != "bridged_at":  # see test_a_bridged_time_once_stamped_never_changes
                assert getattr(call, name) in (None, getattr(new, name)), name
        assert call.opted_out <= new.opted_out
        emitted.extend(effects)
        call = new
    assert emitted.count(Effect.ended) == (call.status is CallStatus.ended)
    for once in (Effect.need_agent, Effect.machine, Effect.opt_out, Effect.bridge):
        assert emitted.count(once) <= 1, once
    assert (Effect.opt_out in emitted) == call.opted_out


@given(steps)
def test_random_streams_with_every_step_repeated_end_the_same(stream: list[Step]) -> None:
    once, twice = Call(ATTEMPT), Call(ATTEMPT)
    for s in stream:
        once, effects = apply(once, s)
        twice, effects_first = apply(twice, s)
        twice, effects_again = apply(twice, s)
        assert (effects_first, effects_again) == (effects, ())
    assert once == twice
