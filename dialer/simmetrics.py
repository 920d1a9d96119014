"""Measuring a simulation from what the engine stored (attempts and PSR state history).

Definitions (the issue's): counts over the whole run, warm-up included; time-based figures over
each shift after its warm-up, dialing stopping at the shift's end: occupancy is talk plus
wrap-up time inside those spans over PSRs x their length, talk minutes per PSR-hour is talk
only, idle seconds per connect is the PSRs' time in the spans not talking or wrapping up, per
connect made in the spans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from dialer.store.models import AgentEvent, Attempt

if TYPE_CHECKING:
    from dialer.simulate import Scenario, World

PERIOD_SHIFTS = 30


@dataclass
class SimulationMetrics:
    """What ``dialer simulate --json`` prints."""

    agents: int
    days: int
    attempts: int
    live_answers: int
    machine_answers: int
    connects: int
    abandoned: int
    abandon_rate: float
    max_30day_abandon_rate: float
    calls_outside_window: int
    max_lines_per_agent: float
    occupancy: float
    talk_minutes_per_agent_hour: float
    idle_seconds_per_connect: float
    wall_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return asdict(self)


def _times(frame: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")


def _read(engine: Engine, query: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        rows = result.cursor.fetchall() if result.cursor is not None else []
        return pd.DataFrame.from_records(rows, columns=list(result.keys()))


def _sessions(events: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """Logged-in spans per PSR from their state history (login .. logged_out)."""
    spans = []
    for agent_id, rows in events.sort_values(["agent_id", "at"]).groupby("agent_id"):
        start = None
        for state, at in zip(rows["state"], rows["at"], strict=True):
            if state == "logged_out":
                if start is not None:
                    spans.append((agent_id, start, at))
                start = None
            elif start is None:
                start = at
        if start is not None:
            spans.append((agent_id, start, pd.Timestamp(end)))
    return pd.DataFrame(spans, columns=["agent_id", "start", "end"])


def _overlap(starts: pd.Series, ends: pd.Series, span_start: Any, span_end: Any) -> pd.Series:
    low = starts.where(starts > span_start, span_start)
    high = ends.where(ends < span_end, span_end)
    return (high - low).dt.total_seconds().clip(lower=0).fillna(0)


def _peak_lines_per_agent(attempts: pd.DataFrame, sessions: pd.DataFrame) -> float:
    """Peak calls in progress per logged-in PSR."""
    ends = attempts["ended_at"].fillna(attempts["started_at"])
    points = pd.concat(
        [
            pd.DataFrame({"at": attempts["started_at"], "lines": 1, "agents": 0}),
            pd.DataFrame({"at": ends, "lines": -1, "agents": 0}),
            pd.DataFrame({"at": sessions["start"], "lines": 0, "agents": 1}),
            pd.DataFrame({"at": sessions["end"], "lines": 0, "agents": -1}),
        ]
    ).sort_values(["at", "lines"], kind="stable")  # ends before starts at one instant
    lines = points["lines"].cumsum().to_numpy()
    agents = points["agents"].cumsum().to_numpy()
    ratio = np.where(agents > 0, lines / np.maximum(agents, 1), 0.0)
    return float(ratio.max()) if len(ratio) else 0.0


def compute_metrics(engine: Engine, scenario: Scenario, world: World) -> SimulationMetrics:
    """Every metric of a finished run."""
    a = Attempt
    attempts = _read(
        engine,
        select(
            a.started_at,
            a.person_detected_at,
            a.machine_detected_at,
            a.connected_at,
            a.ended_at,
            a.wrap_ended_at,
            a.abandoned,
        ),
    )
    _times(
        attempts,
        "started_at",
        "person_detected_at",
        "machine_detected_at",
        "connected_at",
        "ended_at",
        "wrap_ended_at",
    )
    attempts["abandoned"] = attempts["abandoned"].astype(bool)
    events = _read(engine, select(AgentEvent.agent_id, AgentEvent.state, AgentEvent.at))
    _times(events, "at")
    last_end = world.shift(scenario.days - 1)[1] + timedelta(hours=2)
    sessions = _sessions(events, last_end)
    shifts = [world.shift(day) for day in range(scenario.days)]
    day_of = _shift_index(attempts["started_at"], shifts)
    live = attempts["person_detected_at"].notna()
    abandoned = attempts["abandoned"]
    periods = day_of // PERIOD_SHIFTS
    live_by_period = live.groupby(periods).sum().astype("float64")
    by_period = abandoned.groupby(periods).sum() / live_by_period.where(live_by_period > 0)
    timing = _time_based(attempts, sessions, shifts, scenario.warmup_seconds)
    peak = max((value for value in _agent_counts(scenario)), default=0)
    return SimulationMetrics(
        agents=peak,
        days=scenario.days,
        attempts=len(attempts),
        live_answers=int(live.sum()),
        machine_answers=int(attempts["machine_detected_at"].notna().sum()),
        connects=int(attempts["connected_at"].notna().sum()),
        abandoned=int(abandoned.sum()),
        abandon_rate=round(float(abandoned.sum() / live.sum()) if live.sum() else 0.0, 5),
        max_30day_abandon_rate=round(float(by_period.max()) if by_period.notna().any() else 0.0, 5),
        calls_outside_window=_outside(attempts["started_at"], shifts),
        max_lines_per_agent=round(_peak_lines_per_agent(attempts, sessions), 3),
        **timing,
    )


def _agent_counts(scenario: Scenario) -> list[int]:
    agents = scenario.agents
    return [agents] if isinstance(agents, int) else [int(s.value) for s in agents]


def _shift_index(times: pd.Series, shifts: list[tuple[datetime, datetime]]) -> pd.Series:
    # As UTC datetime64 (an aware series' to_numpy() is an array of Timestamp objects).
    starts = pd.Series([pd.Timestamp(s) for s, _ in shifts]).dt.tz_convert(None).to_numpy()
    index = np.searchsorted(starts, times.dt.tz_convert(None).to_numpy(), side="right") - 1
    return pd.Series(np.clip(index, 0, len(shifts) - 1), index=times.index)


def _outside(started: pd.Series, shifts: list[tuple[datetime, datetime]]) -> int:
    """Dials started outside every shift (the campaign's window equals the shift)."""
    inside = pd.Series(False, index=started.index)
    for start, end in shifts:
        inside |= (started >= pd.Timestamp(start)) & (started < pd.Timestamp(end))
    return int((~inside).sum())


def _time_based(
    attempts: pd.DataFrame,
    sessions: pd.DataFrame,
    shifts: list[tuple[datetime, datetime]],
    warmup: float,
) -> dict[str, float]:
    agent_seconds = busy = talk = 0.0
    connects = 0
    connected = attempts[attempts["connected_at"].notna()]
    wrap_end = connected["wrap_ended_at"].fillna(connected["ended_at"])
    for start, end in shifts:
        span_start = pd.Timestamp(start + timedelta(seconds=warmup))
        span_end = pd.Timestamp(end)
        if span_end <= span_start:
            continue
        agent_seconds += float(
            _overlap(sessions["start"], sessions["end"], span_start, span_end).sum()
        )
        busy += float(_overlap(connected["connected_at"], wrap_end, span_start, span_end).sum())
        talk += float(
            _overlap(connected["connected_at"], connected["ended_at"], span_start, span_end).sum()
        )
        connects += int(
            (
                (connected["connected_at"] >= span_start) & (connected["connected_at"] < span_end)
            ).sum()
        )
    hours = agent_seconds / 3600
    return {
        "occupancy": round(busy / agent_seconds, 4) if agent_seconds else 0.0,
        "talk_minutes_per_agent_hour": round(talk / 60 / hours, 2) if hours else 0.0,
        "idle_seconds_per_connect": round((agent_seconds - busy) / connects, 2)
        if connects
        else 0.0,
    }
