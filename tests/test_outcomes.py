"""The published flag table: every outcome and disposition code, conversions per campaign kind."""

from __future__ import annotations

import pytest

from dialer.campaigns import DEFAULT_RETRY_AFTER
from dialer.outcomes import FLAGS, Disposition, Flags, Outcome, final_code, flags, is_conversion

KINDS = ("reminder", "recall", "reactivation")
NONE: frozenset[str] = frozenset()

# code: (contact, conversion for, final, retry), as published in the issue.
TABLE: dict[str, tuple[bool, frozenset[str], bool, bool]] = {
    "no_answer": (False, NONE, False, True),
    "busy": (False, NONE, False, True),
    "failed": (False, NONE, False, True),
    "machine": (False, NONE, False, True),
    "left_message": (False, NONE, False, True),
    "abandoned": (False, NONE, False, True),
    "connected": (True, NONE, False, False),  # the disposition decides what happens next
    "booked": (True, frozenset({"recall", "reactivation"}), True, False),
    "confirmed": (True, frozenset({"reminder"}), True, False),
    "rescheduled": (True, frozenset({"reminder"}), True, False),
    "cancelled": (True, NONE, True, False),
    "declined": (True, NONE, True, False),
    "callback": (True, NONE, False, True),  # at the requested time, not after retry_after
    "wrong_number": (False, NONE, False, True),  # the next phone, at once
    "do_not_call": (True, NONE, True, False),
    "no_disposition": (True, NONE, False, True),
}


def test_the_table_covers_every_outcome_and_disposition_and_nothing_else() -> None:
    codes = {c.value for c in Outcome} | {d.value for d in Disposition}

    assert set(FLAGS) == codes == set(TABLE)
    assert len(codes) == len(Outcome) + len(Disposition)  # no code is both


@pytest.mark.parametrize(("code", "expected"), TABLE.items(), ids=TABLE.keys())
def test_flags_of_each_code(code: str, expected: tuple[bool, frozenset[str], bool, bool]) -> None:
    assert flags(code) == Flags(*expected)


@pytest.mark.parametrize("code", [*Outcome, *Disposition], ids=lambda c: f"enum-{c.value}")
def test_flags_take_the_enum_or_its_plain_string(code: Outcome | Disposition) -> None:
    assert flags(code) is flags(code.value)


def test_an_unknown_code_has_no_flags() -> None:
    with pytest.raises(KeyError):
        flags("hung_up")


CONVERSIONS = {
    "reminder": {"confirmed", "rescheduled"},
    "recall": {"booked"},
    "reactivation": {"booked"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", TABLE.keys())
def test_conversion_per_campaign_kind(code: str, kind: str) -> None:
    assert is_conversion(code, kind) is (code in CONVERSIONS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_no_disposition_recorded_is_no_conversion(kind: str) -> None:
    assert is_conversion(None, kind) is False


def test_an_unknown_campaign_kind_converts_nothing() -> None:
    assert not any(is_conversion(code, "survey") for code in TABLE)


@pytest.mark.parametrize("code", TABLE.keys())
def test_flags_are_consistent(code: str) -> None:
    flag = flags(code)
    assert not (flag.final and flag.retry), "a final code cannot schedule a retry"
    if flag.conversion_for:
        assert flag.contact and flag.final, "a conversion is a final contact"
    assert flag.conversion_for <= set(KINDS)


def test_every_code_that_retries_after_a_delay_has_a_default_delay() -> None:
    retrying = {code for code in TABLE if flags(code).retry}

    # callback is scheduled at the callee's requested time, so it needs no delay.
    assert retrying - {"callback"} == set(DEFAULT_RETRY_AFTER)


def test_system_outcomes_other_than_connected_are_never_contacts() -> None:
    contacts = {o.value for o in Outcome if flags(o).contact}

    assert contacts == {"connected"}


@pytest.mark.parametrize(
    ("outcome", "disposition", "expected"),
    [
        ("connected", "booked", "booked"),
        ("connected", "no_disposition", "no_disposition"),
        ("busy", None, "busy"),
        ("abandoned", None, "abandoned"),
    ],
    ids=["disposition-wins", "timed-out-wrap-up", "outcome-alone", "abandoned"],
)
def test_final_code_is_the_disposition_when_there_is_one(
    outcome: str, disposition: str | None, expected: str
) -> None:
    assert final_code(outcome, disposition) == expected
