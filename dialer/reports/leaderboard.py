"""The PSR leaderboard: who books the most per logged-in hour, in a calendar period.

Periods are calendar days, ISO weeks (Monday to Sunday) or months in the call center's zone
(``DIALER_TIMEZONE``). For each PSR with at least one logged-in hour in the period:

- ``logged_in_hours``: time in any state but ``logged_out`` (from their state history, cut at
  the period's bounds and at ``now``);
- ``calls``: calls bridged to them that started in the period; ``contacts``: those the
  outcome table counts as contacts; ``conversions``: appointments booked, confirmed or
  rescheduled on their converting calls, counted per appointment: the call's appointment ids
  or the bookings recorded on it (``bookings``), whichever are more, and at least one (a call
  that booked two siblings counts two);
- ``conversions_per_hour`` = conversions / logged-in hours (the ranking key; equal values share
  a rank); ``conversion_rate`` = converting calls / contacts;
- ``occupancy`` = time on a call or in wrap-up / logged-in time;
- ``avg_handle_seconds``: mean of talk plus wrap-up over their calls;
- ``pause_seconds``: time paused, and ``pause_<reason>_seconds`` per pause reason seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, func, select

from dialer.errors import ConfigError
from dialer.reports.export import sorted_ids, to_utc
from dialer.reports.filters import report_zone
from dialer.store.models import Agent, AgentEvent, Attempt, Booking

PERIODS = ("day", "week", "month")
LEADERBOARD_COLUMNS = [
    "period",
    "rank",
    "agent",
    "logged_in_hours",
    "calls",
    "contacts",
    "conversions",
    "conversions_per_hour",
    "conversion_rate",
    "occupancy",
    "avg_handle_seconds",
    "pause_seconds",
]
MIN_HOURS = 1.0


@dataclass(frozen=True)
class Period:
    """A calendar period in a zone: its label and its UTC ``[start, end)``."""

    label: str
    first_day: date
    start: datetime
    end: datetime


def calendar_period(kind: str, day: date, zone: ZoneInfo) -> Period:
    """The day, ISO week or month containing ``day``, in ``zone``."""
    if kind == "day":
        first, after, label = day, day + timedelta(days=1), day.isoformat()
    elif kind == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
        year, week, _ = day.isocalendar()
        label = f"{year}-W{week:02d}"
    elif kind == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        label = first.strftime("%Y-%m")
    else:
        raise ConfigError(f"No period {kind!r} (one of {', '.join(PERIODS)})")
    start = datetime.combine(first, time(0), zone).astimezone(UTC)
    end = datetime.combine(after, time(0), zone).astimezone(UTC)
    return Period(label, first, start, end)


def _read(engine: Engine, query: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))


def latest_activity(engine: Engine) -> datetime | None:
    """When the latest attempt started (None for a store with no attempts)."""
    with engine.connect() as conn:
        latest: datetime | None = conn.execute(select(func.max(Attempt.started_at))).scalar()
    return latest


def _state_spans(engine: Engine, period: Period, now: datetime) -> pd.DataFrame:
    """Every PSR's states inside the period: agent_id, state, reason, seconds."""
    before = (
        select(AgentEvent.agent_id, func.max(AgentEvent.at).label("at"))
        .where(AgentEvent.at < period.start)
        .group_by(AgentEvent.agent_id)
        .subquery()
    )
    columns = (AgentEvent.agent_id, AgentEvent.state, AgentEvent.reason, AgentEvent.at)
    inside = _read(
        engine,
        select(*columns).where(AgentEvent.at >= period.start, AgentEvent.at < period.end),
    )
    opening = _read(
        engine,
        select(*columns).join(
            before, (before.c.agent_id == AgentEvent.agent_id) & (before.c.at == AgentEvent.at)
        ),
    )
    events = pd.concat([opening, inside], ignore_index=True)
    if events.empty:
        return pd.DataFrame(columns=["agent_id", "state", "reason", "seconds"])
    events["at"] = to_utc(events["at"].astype(object))
    events = events.sort_values(["agent_id", "at"], kind="stable")
    # A state with no later event lasts until now (still logged in), within the period.
    following = events.groupby("agent_id")["at"].shift(-1)
    still = pd.Series(pd.Timestamp(now), index=events.index).where(following.isna(), following)
    low = events["at"].where(events["at"] > pd.Timestamp(period.start), pd.Timestamp(period.start))
    high = still.where(still < pd.Timestamp(period.end), pd.Timestamp(period.end))
    events["seconds"] = (high - low).dt.total_seconds().clip(lower=0)
    return events[["agent_id", "state", "reason", "seconds"]]


def _appointment_count(ids: Any) -> int:
    text = sorted_ids(ids) if isinstance(ids, str) else None
    return len(text.split(";")) if text else 0


def _calls(engine: Engine, period: Period) -> pd.DataFrame:
    a = Attempt
    frame = _read(
        engine,
        select(
            a.agent_id,
            (
                select(func.count(Booking.id))
                .where(Booking.attempt_id == a.id)
                .correlate(a)
                .scalar_subquery()
                .label("bookings")
            ),
            a.connected_at,
            a.ended_at,
            a.wrap_ended_at,
            a.is_contact,
            a.is_conversion,
            a.appointment_ids,
        ).where(
            a.started_at >= period.start,
            a.started_at < period.end,
            a.agent_id.is_not(None),
            a.connected_at.is_not(None),
        ),
    )
    if frame.empty:
        return pd.DataFrame(
            columns=["calls", "contacts", "converting", "conversions", "handle"]
        ).rename_axis("agent_id")
    for name in ("connected_at", "ended_at", "wrap_ended_at"):
        frame[name] = to_utc(frame[name].astype(object))
    converting = frame["is_conversion"].astype(bool)
    handled_until = frame["wrap_ended_at"].fillna(frame["ended_at"])
    per_call = pd.DataFrame(
        {
            "agent_id": frame["agent_id"].astype("int64"),
            "calls": 1,
            "contacts": frame["is_contact"].astype(bool).astype("int64"),
            "converting": converting.astype("int64"),
            "conversions": (
                frame["appointment_ids"]
                .map(_appointment_count)
                .combine(frame["bookings"].fillna(0).astype("int64"), max)
                .clip(lower=1)
                .where(converting, 0)
            ),
            "handle": (handled_until - frame["connected_at"]).dt.total_seconds(),
        }
    )
    sums = per_call.groupby("agent_id")[["calls", "contacts", "converting", "conversions"]].sum()
    sums["handle"] = per_call.groupby("agent_id")["handle"].mean()
    return sums


def _none_where_zero(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (
        (numerator / denominator.where(denominator > 0)).astype(object).where(denominator > 0, None)
    )


def leaderboard(
    engine: Engine,
    *,
    period: str = "week",
    on: date | None = None,
    zone_setting: str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The ranked PSRs of the period of kind ``period`` containing ``on`` (default: the
    period of the latest attempt): the columns of :data:`LEADERBOARD_COLUMNS`, then one
    ``pause_<reason>_seconds`` column per pause reason, best first."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)
    if on is None:
        latest = latest_activity(engine)
        on = (latest or now).astimezone(zone).date()
    span = calendar_period(period, on, zone)
    states = _state_spans(engine, span, now)
    names: dict[int, str] = {
        int(i): str(n)
        for i, n in _read(engine, select(Agent.id, Agent.name)).itertuples(index=False)
    }
    logged = states[states["state"] != "logged_out"].groupby("agent_id")["seconds"].sum()
    busy = states[states["state"].isin(["on_call", "wrap_up"])].groupby("agent_id")["seconds"]
    paused = states[states["state"] == "paused"]
    reasons = sorted({str(r) for r in paused["reason"].dropna()})
    board = pd.DataFrame({"logged": logged}).rename_axis("agent_id")
    board = board[board["logged"] >= MIN_HOURS * 3600]
    board["busy"] = busy.sum().reindex(board.index).fillna(0.0)
    board = board.join(_calls(engine, span), how="left")
    for name in ("calls", "contacts", "converting", "conversions"):
        board[name] = board[name].fillna(0).astype("int64")
    hours = board["logged"] / 3600
    out = pd.DataFrame(
        {
            "period": span.label,
            "agent": [names.get(int(i), str(i)) for i in board.index],
            "logged_in_hours": hours,
            "calls": board["calls"],
            "contacts": board["contacts"],
            "conversions": board["conversions"],
            "conversions_per_hour": board["conversions"] / hours,
            "conversion_rate": _none_where_zero(board["converting"], board["contacts"]),
            "occupancy": board["busy"] / board["logged"],
            "avg_handle_seconds": board["handle"].astype(object).where(board["calls"] > 0, None),
            "pause_seconds": paused.groupby("agent_id")["seconds"]
            .sum()
            .reindex(board.index)
            .fillna(0.0),
        },
        index=board.index,
    )
    for reason in reasons:
        by_reason = paused[paused["reason"] == reason].groupby("agent_id")["seconds"].sum()
        out[f"pause_{reason}_seconds"] = by_reason.reindex(board.index).fillna(0.0)
    out = out.sort_values(
        ["conversions_per_hour", "conversions", "agent"],
        ascending=[False, False, True],
        kind="stable",
    )
    rank = out["conversions_per_hour"].rank(method="min", ascending=False)
    out.insert(1, "rank", rank.astype("int64"))
    return out.reset_index(drop=True)
