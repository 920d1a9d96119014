"""Conversion, leaderboard and compliance reports on the hand-built day of reports_fixtures,
with every figure worked out by hand (see the table in its docstring)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.errors import ConfigError, NotFound
from dialer.reports import (
    Filters,
    abandonment_periods,
    calendar_period,
    compliance_report,
    conversion_report,
    leaderboard,
    wilson_interval,
)
from dialer.store.models import AgentEvent, Attempt, Booking, CallEventRecord, DncEntry, Patient
from tests.reports_fixtures import at, build_floor

ZONE = "America/Chicago"
TWO_OF_THREE = (0.2076596008020477, 0.9385080552796037)
ONE_OF_ONE = (0.20654931437723745, 1.0)


def url_of(store: Engine) -> str:
    return store.url.render_as_string(hide_password=False)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    plain = frame.astype(object).where(frame.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in plain.to_dict("records")]


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (0, 10, (0.0, 0.2775327998628892)),  # the textbook case (Brown, Cai, DasGupta 2001)
        (2, 3, TWO_OF_THREE),
        (1, 1, ONE_OF_ONE),
        (5, 10, (0.23659309051257203, 0.763406909487428)),
    ],
)
def test_wilson_interval(successes: int, trials: int, expected: tuple[float, float]) -> None:
    assert wilson_interval(successes, trials) == pytest.approx(expected, abs=1e-12)


def test_wilson_interval_without_trials_is_none() -> None:
    assert wilson_interval(0, 0) is None


def test_conversion_by_campaign(store: Engine) -> None:
    build_floor(store)
    frame = conversion_report(store, by="campaign", zone_setting=ZONE)
    assert records(frame) == [
        {
            "campaign": "hygiene-recall",
            "attempts": 6,
            "live_answers": 4,
            "contacts": 3,
            "contact_rate": 0.5,
            "conversions": 2,
            "conversion_rate": pytest.approx(2 / 3),
            "conversion_rate_low": pytest.approx(TWO_OF_THREE[0]),
            "conversion_rate_high": pytest.approx(TWO_OF_THREE[1]),
            "conversions_per_attempt": pytest.approx(1 / 3),
            "avg_talk_seconds": pytest.approx(120.0),
            "avg_wrap_seconds": pytest.approx(30.0),
        },
        {
            "campaign": "reminders",
            "attempts": 2,
            "live_answers": 1,
            "contacts": 1,
            "contact_rate": 0.5,
            "conversions": 1,
            "conversion_rate": 1.0,
            "conversion_rate_low": pytest.approx(ONE_OF_ONE[0]),
            "conversion_rate_high": 1.0,
            "conversions_per_attempt": 0.5,
            "avg_talk_seconds": pytest.approx(90.0),
            "avg_wrap_seconds": pytest.approx(10.0),
        },
    ]


def test_conversion_by_agent_puts_calls_without_a_psr_last(store: Engine) -> None:
    build_floor(store)
    frame = conversion_report(store, by="agent", zone_setting=ZONE)
    columns = ["agent", "attempts", "live_answers", "contacts", "conversions"]
    assert frame[columns].values.tolist() == [
        ["Ana", 1, 1, 1, 1],
        ["Ben", 2, 2, 2, 1],
        ["Cy", 1, 1, 1, 1],
        [None, 4, 1, 0, 0],
    ]
    nobody = records(frame)[3]
    assert nobody["conversion_rate"] is None and nobody["conversion_rate_low"] is None
    assert nobody["avg_talk_seconds"] is None
    assert records(frame)[1]["avg_talk_seconds"] == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        # Callee-local: San Antonio UTC-6, Portland UTC-8, household 500 in New York UTC-5.
        ("hour", [(9, 1), (10, 3), (13, 1), (14, 1), (22, 1), (23, 1)]),
        ("weekday", [("mon", 7), ("sun", 1)]),
        ("attempt", [(1, 7), (2, 1)]),
        ("language", [("en", 5), ("es", 3)]),
        ("clinic", [("C1", 3), ("C2", 5)]),
    ],
)
def test_conversion_groups(store: Engine, by: str, expected: list[tuple[Any, int]]) -> None:
    build_floor(store)
    frame = conversion_report(store, by=by, zone_setting=ZONE)
    assert list(zip(frame[by], frame["attempts"], strict=True)) == expected


def test_conversion_by_hour_counts_conversions_in_the_callee_hour(store: Engine) -> None:
    build_floor(store)
    frame = conversion_report(store, by="hour", zone_setting=ZONE).set_index("hour")
    assert frame.loc[10, "conversions"] == 1  # call 4 at 10:00 in Portland
    assert frame.loc[10, "live_answers"] == 2  # calls 4 and 5
    assert frame.loc[23, "conversions"] == 1  # call 7 at 23:30 in San Antonio


def test_conversion_filters_and_empty_result(store: Engine) -> None:
    build_floor(store)
    filters = Filters(campaigns=("hygiene-recall",), date_to=date(2026, 11, 29))
    empty = conversion_report(store, filters, by="campaign")
    assert empty.empty and list(empty.columns)[:2] == ["campaign", "attempts"]
    with pytest.raises(ConfigError, match=r"^Cannot group by 'psr' \(one of campaign, agent"):
        conversion_report(store, by="psr")


def test_calendar_periods_are_local_days_iso_weeks_and_months() -> None:
    zone = ZoneInfo(ZONE)
    day = calendar_period("day", date(2026, 11, 30), zone)
    assert (day.label, day.start, day.end) == (
        "2026-11-30",
        datetime(2026, 11, 30, 6, tzinfo=UTC),
        datetime(2026, 12, 1, 6, tzinfo=UTC),
    )
    week = calendar_period("week", date(2027, 1, 2), zone)  # a Saturday of ISO week 2026-W53
    assert (week.label, week.first_day) == ("2026-W53", date(2026, 12, 28))
    month = calendar_period("month", date(2026, 3, 15), zone)  # DST starts on March 8
    assert (month.label, month.start, month.end) == (
        "2026-03",
        datetime(2026, 3, 1, 6, tzinfo=UTC),
        datetime(2026, 4, 1, 5, tzinfo=UTC),
    )


@pytest.mark.parametrize(("period", "label"), [("day", "2026-11-30"), ("week", "2026-W49")])
def test_leaderboard(store: Engine, period: str, label: str) -> None:
    build_floor(store)
    frame = leaderboard(store, period=period, on=date(2026, 11, 30), zone_setting=ZONE)
    assert records(frame) == [
        {
            "period": label,
            "rank": 1,
            "agent": "Ana",
            "logged_in_hours": 3.0,
            "calls": 1,
            "contacts": 1,
            "conversions": 2,  # two appointments booked on one call
            "conversions_per_hour": pytest.approx(2 / 3),
            "conversion_rate": 1.0,
            "occupancy": pytest.approx(150 / 10800),
            "avg_handle_seconds": pytest.approx(150.0),
            "pause_seconds": 2100.0,
            "pause_login_seconds": 300.0,
            "pause_lunch_seconds": 1800.0,
        },
        {
            "period": label,
            "rank": 2,
            "agent": "Ben",
            "logged_in_hours": 3.0,
            "calls": 2,
            "contacts": 2,
            "conversions": 1,  # a booking with no appointment ids counts one
            "conversions_per_hour": pytest.approx(1 / 3),
            "conversion_rate": 0.5,
            "occupancy": pytest.approx(300 / 10800),
            "avg_handle_seconds": pytest.approx(150.0),
            "pause_seconds": 0.0,
            "pause_login_seconds": 0.0,
            "pause_lunch_seconds": 0.0,
        },
    ]  # Cy logged in 30 minutes only: not ranked


def test_leaderboard_defaults_to_the_latest_period_and_counts_open_sessions(
    store: Engine,
) -> None:
    floor = build_floor(store)
    with store.begin() as conn:  # Ben logs back in at 21:00 and is still working at 23:00
        conn.execute(
            sa.insert(AgentEvent).values(agent_id=floor.agents["Ben"], state="ready", at=at(21))
        )
    frame = leaderboard(store, period="day", zone_setting=ZONE, now=at(23))
    ben = frame[frame["agent"] == "Ben"].iloc[0]
    assert ben["logged_in_hours"] == 5.0
    assert ben["rank"] == 2
    # A week on, as seen that evening: no session reaches that day (an open session counts
    # until now, so without now= this read the wall clock, and on 2026-12-07 it found Ben's).
    nothing = leaderboard(store, period="day", on=date(2026, 12, 7), zone_setting=ZONE, now=at(23))
    assert nothing.empty and list(nothing.columns)[:3] == ["period", "rank", "agent"]


def test_leaderboard_counts_the_bookings_recorded_on_a_call(store: Engine) -> None:
    """Ben's booking with no appointment ids counts one; with two bookings recorded on the call
    (two siblings), two; Ana's two appointment ids are not cut by her one booking row."""
    floor = build_floor(store)
    with store.begin() as conn:
        patients = conn.execute(sa.select(Patient.id).order_by(Patient.id).limit(2)).scalars()
        first, second = list(patients)
        ben_booked = next(
            row.id
            for row in conn.execute(
                sa.select(Attempt.id, Attempt.disposition).where(
                    Attempt.agent_id == floor.agents["Ben"]
                )
            )
            if row.disposition == "booked"
        )
        rows = [(ben_booked, first), (ben_booked, second), (floor.attempts[1], first)]
        for attempt_id, patient_id in rows:
            conn.execute(
                sa.insert(Booking).values(
                    attempt_id=attempt_id,
                    patient_id=patient_id,
                    start_at=at(15, day=7),
                    kind="hygiene",
                    booked_at=at(15),
                )
            )
    frame = leaderboard(store, period="day", on=date(2026, 11, 30), zone_setting=ZONE)
    assert dict(zip(frame["agent"], frame["conversions"], strict=True)) == {"Ana": 2, "Ben": 2}


def test_leaderboard_ties_share_a_rank(store: Engine) -> None:
    floor = build_floor(store)
    with store.begin() as conn:  # Ben's declined call becomes a second booking
        conn.execute(
            sa.update(Attempt)
            .where(Attempt.id == floor.attempts[3])
            .values(disposition="booked", is_conversion=True)
        )
    frame = leaderboard(store, period="day", on=date(2026, 11, 30), zone_setting=ZONE)
    assert list(zip(frame["agent"], frame["rank"], strict=True)) == [("Ana", 1), ("Ben", 1)]


def test_compliance_report(store: Engine) -> None:
    build_floor(store)
    assert records(compliance_report(store)) == [
        {
            "campaign": "hygiene-recall",
            "started_at": at(15),
            "cap": 0.03,
            "live_answers": 4,
            "abandoned": 1,
            "abandon_rate": 0.25,
            "periods": 1,
            "worst_period_rate": 0.25,
            "periods_over_cap": 1,
            "safe_harbor_played": 1,
            "outside_window": 0,
            "on_dnc": 0,  # listed after the call, removed before one, another clinic's
            "over_cap": 1,  # call 3: the household's second call of the day
            "ok": False,
        },
        {
            "campaign": "reminders",
            "started_at": at(6, 30),
            "cap": 0.03,
            "live_answers": 1,
            "abandoned": 0,
            "abandon_rate": 0.0,
            "periods": 1,
            "worst_period_rate": 0.0,
            "periods_over_cap": 0,
            "safe_harbor_played": 0,
            "outside_window": 2,  # 23:30 on Monday, and a Sunday
            "on_dnc": 1,  # call 8's number was on the global list
            "over_cap": 1,  # call 7: the number had a recall call 14.5 hours before
            "ok": False,
        },
    ]


def test_abandonment_periods(store: Engine) -> None:
    floor = build_floor(store)
    with store.begin() as conn:  # a person detected 31 days later, not abandoned
        values = {
            c.name: getattr(row, c.name)
            for row in conn.execute(sa.select(Attempt).where(Attempt.id == floor.attempts[4]))
            for c in Attempt.__table__.columns
            if c.name != "id"
        }
        later = timedelta(days=31)
        for name in ("started_at", "ringing_at", "answered_at", "person_detected_at"):
            values[name] += later
        for name in ("connected_at", "ended_at", "wrap_ended_at", "disposition_at"):
            values[name] += later
        conn.execute(sa.insert(Attempt).values(**values))
    frame = abandonment_periods(store, ("hygiene-recall",))
    assert records(frame) == [
        {
            "campaign": "hygiene-recall",
            "period": 1,
            "period_start": at(15),
            "period_end": at(15, day=30),
            "live_answers": 4,
            "abandoned": 1,
            "abandon_rate": 0.25,
            "cap": 0.03,
            "over_cap": True,
        },
        {
            "campaign": "hygiene-recall",
            "period": 2,
            "period_start": at(15, day=30),
            "period_end": at(15, day=60),
            "live_answers": 1,
            "abandoned": 0,
            "abandon_rate": 0.0,
            "cap": 0.03,
            "over_cap": False,
        },
    ]


def test_safe_harbor_counts_only_callees_still_there_after_the_grace(store: Engine) -> None:
    floor = build_floor(store)
    with store.begin() as conn:  # call 5 hangs up 1 s after the greeting: no message
        conn.execute(sa.delete(CallEventRecord))
        conn.execute(
            sa.update(Attempt).where(Attempt.id == floor.attempts[5]).values(ended_at=at(18, 30, 8))
        )
    row = compliance_report(store, ("hygiene-recall",)).iloc[0]
    assert (row["abandoned"], row["safe_harbor_played"]) == (1, 0)


def test_campaign_do_not_call_list_counts_for_that_campaign_only(store: Engine) -> None:
    build_floor(store)
    with store.begin() as conn:  # call 4's number on the recall campaign's own list
        conn.execute(
            sa.insert(DncEntry).values(
                phone="+12105550300",
                scope="campaign",
                campaign="hygiene-recall",
                source="manual",
                added_at=at(0),
            )
        )
    frame = compliance_report(store).set_index("campaign")
    assert frame.loc["hygiene-recall", "on_dnc"] == 1
    assert frame.loc["reminders", "on_dnc"] == 1


def test_a_requested_callback_is_not_over_the_household_or_federal_caps(store: Engine) -> None:
    """Call 3 (the household's second call of the day, 2 h 50 min after the first) counts as
    over a cap; placed as a callback the callee asked for, it does not (dialer.compliance,
    "Requested callbacks")."""
    floor = build_floor(store)
    assert compliance_report(store, ("hygiene-recall",)).iloc[0]["over_cap"] == 1
    with store.begin() as conn:
        conn.execute(
            sa.update(Attempt).where(Attempt.id == floor.attempts[3]).values(mode="callback")
        )
    row = compliance_report(store, ("hygiene-recall",)).iloc[0]
    assert row["over_cap"] == 0


def test_compliance_unknown_campaign(store: Engine) -> None:
    build_floor(store)
    with pytest.raises(NotFound, match=r"^No campaign named 'x' in the store"):
        compliance_report(store, ("x",))


def run(store: Engine, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--db", url_of(store), *args], env={"DIALER_TIMEZONE": ZONE})
    assert result.exit_code == 0, result.output
    return result


def test_cli_conversion_csv_and_json_alias(store: Engine) -> None:
    build_floor(store)
    out = run(store, "report", "conversion", "--by", "clinic", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == (
        "clinic,attempts,live_answers,contacts,contact_rate,conversions,conversion_rate,"
        "conversion_rate_low,conversion_rate_high,conversions_per_attempt,avg_talk_seconds,"
        "avg_wrap_seconds"
    )
    assert [(r["clinic"], r["attempts"], r["conversions"]) for r in rows] == [
        ("C1", "3", "1"),
        ("C2", "5", "2"),
    ]
    as_json = json.loads(run(store, "report", "conversion", "--json").stdout)
    assert [(r["campaign"], r["conversions"]) for r in as_json] == [
        ("hygiene-recall", 2),
        ("reminders", 1),
    ]


def test_cli_conversion_table(store: Engine) -> None:
    build_floor(store)
    out = run(store, "report", "conversion", "--campaign", "hygiene-recall").stdout
    assert out.startswith("Conversion by campaign")
    row = next(line for line in out.splitlines() if "hygiene-recall" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == [
        "hygiene-recall",
        "6",
        "4",
        "3",
        "50.0%",
        "2",
        "66.7%",
        "20.8%",
        "93.9%",
        "33.3%",
        "120.0",
        "30.0",
    ]


def test_cli_leaderboard_json(store: Engine) -> None:
    build_floor(store)
    out = run(store, "report", "leaderboard", "--period", "day", "--date", "2026-11-30", "--json")
    board = json.loads(out.stdout)
    assert [(r["rank"], r["agent"], r["conversions"]) for r in board] == [
        (1, "Ana", 2),
        (2, "Ben", 1),
    ]


def test_cli_compliance_json_nests_the_periods_with_local_times(store: Engine) -> None:
    build_floor(store)
    out = run(store, "report", "compliance", "--campaign", "reminders", "--format", "json")
    report = json.loads(out.stdout)
    assert report == [
        {
            "campaign": "reminders",
            "started_at": "2026-11-30T00:30:00-06:00",
            "cap": 0.03,
            "live_answers": 1,
            "abandoned": 0,
            "abandon_rate": 0.0,
            "periods": 1,
            "worst_period_rate": 0.0,
            "periods_over_cap": 0,
            "safe_harbor_played": 0,
            "outside_window": 2,
            "on_dnc": 1,
            "over_cap": 1,
            "ok": False,
            "abandonment_periods": [
                {
                    "period": 1,
                    "period_start": "2026-11-30T00:30:00-06:00",
                    "period_end": "2026-12-30T00:30:00-06:00",
                    "live_answers": 1,
                    "abandoned": 0,
                    "abandon_rate": 0.0,
                    "cap": 0.03,
                    "over_cap": False,
                }
            ],
        }
    ]


def test_cli_compliance_csv_flags_are_lowercase(store: Engine) -> None:
    build_floor(store)
    out = run(store, "report", "compliance", "--format", "csv").stdout
    assert out.splitlines()[1].endswith(",0,0,1,false")
