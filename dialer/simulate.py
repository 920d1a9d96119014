"""``dialer simulate``: the real dispatcher, pacers, gate and store against simulated callees.

The simulated world: one campaign over an unlimited synthetic list in one time zone, its window
equal to the shift, ``days`` consecutive shifts (weekdays and holidays do not apply); PSRs work
the whole shift (or follow a time-varying ``agents`` schedule); a dial's outcome is drawn when it
is placed. Scenario files are YAML (see :class:`Scenario`; durations in seconds). Metrics are
computed afterwards from what the engine stored (:mod:`dialer.simmetrics`).
"""

from __future__ import annotations

import gc
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dialer.campaigns import CampaignModel, parse_campaign
from dialer.clock import VirtualClock
from dialer.dispatch import Dispatcher, EngineSettings
from dialer.errors import InputFileError
from dialer.outcomes import Disposition
from dialer.simfeed import SyntheticList
from dialer.simloop import ACTION, CLOSE, EventLoop, choose
from dialer.simmetrics import SimulationMetrics, compute_metrics
from dialer.staterules import load_state_rules
from dialer.store.attempts import EngineStore
from dialer.store.db import open_store
from dialer.telephony.simulated import CalleeModel, Distribution, SimulatedNetwork

DistributionSpec = dict[str, Any]
# Collection thresholds while a simulation runs: it allocates a few objects per event for hours
# of simulated time while its heap grows (the learned samples, the ledger), and at the default
# thresholds full collections of that heap took about 4% of a month's run.
GC_THRESHOLDS = (10_000, 50, 100)
# Entries claimed at once, per PSR: about ten minutes of dialing on S2, inside the 15-minute
# lease (S3, at three times the dials per PSR, claims every few minutes).
CLAIM_PER_AGENT = 10


class Strict(BaseModel):
    """Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Share(Strict):
    """A share of the non-live dials and how long they take."""

    share: float = Field(ge=0, le=1)
    delay: DistributionSpec


class NoLive(Strict):
    """What happens to dials no person answers; shares sum to 1."""

    fast_fail: Share
    no_answer: Share
    machine: Share

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> NoLive:
        total = self.fast_fail.share + self.no_answer.share + self.machine.share
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"no_live shares must sum to 1, not {total:g}")
        return self


class Step(Strict):
    """A value from ``from_hour`` (hours into the shift) on."""

    from_hour: float = Field(ge=0)
    value: float


class Scenario(Strict):
    """A simulation scenario (the issue's format; durations in seconds)."""

    agents: int | list[Step] = 20
    shift_hours: float = Field(8, gt=0, le=13)
    days: int = Field(30, ge=1)
    warmup_seconds: float = Field(1800, ge=0)
    live_answer_rate: float | list[Step] = 0.30
    live_answer_delay: DistributionSpec = {"lognormal": {"mean": 9, "sd": 4}}
    no_live: NoLive = NoLive(
        fast_fail=Share(share=0.25, delay={"uniform": [1, 5]}),
        no_answer=Share(share=0.45, delay={"fixed": 24}),
        machine=Share(share=0.30, delay={"lognormal": {"mean": 12, "sd": 4}}),
    )
    talk: DistributionSpec = {"lognormal": {"mean": 180, "sd": 180}}
    wrap: DistributionSpec = {"lognormal": {"mean": 20, "sd": 10}}
    grace_seconds: float = Field(2.0, ge=0, le=2.0)
    pacer: str | dict[str, Any] = "predictive"
    max_abandon_rate: float = Field(0.03, gt=0, le=0.03)
    start_date: date | None = None
    timezone: str = "America/Chicago"
    shift_start: str = "09:00"
    languages: float = Field(0.0, ge=0, le=1)  # share of Spanish households
    spanish_agents: int = Field(0, ge=0)
    dispositions: dict[str, float] = {
        "booked": 0.35,
        "declined": 0.45,
        "cancelled": 0.1,
        "wrong_number": 0.05,
        "do_not_call": 0.05,
    }
    tick_seconds: float = Field(1.0, gt=0)  # the adaptive baseline's fixed clock
    preview_seconds: float = Field(10.0, ge=0)  # a PSR's look at a previewed entry

    @property
    def peak_agents(self) -> int:
        """The most PSRs logged in at once."""
        agents = self.agents
        return agents if isinstance(agents, int) else max(int(s.value) for s in agents)


def parse_distribution(spec: DistributionSpec) -> Distribution:
    """A distribution spec: ``{fixed: x}``, ``{uniform: [a, b]}``, ``{exponential: mean}`` or
    ``{lognormal: {mean: m, sd: s}}``."""
    if len(spec) != 1:
        raise ValueError(f"a distribution has exactly one kind, got {sorted(spec)}")
    ((kind, value),) = spec.items()
    if kind == "fixed":
        return Distribution("fixed", float(value))
    if kind == "uniform":
        low, high = value
        return Distribution("uniform", float(low), float(high))
    if kind == "exponential":
        return Distribution("exponential", float(value))
    if kind == "lognormal":
        return Distribution("lognormal", float(value["mean"]), float(value["sd"]))
    raise ValueError(f"unknown distribution {kind!r} (fixed, uniform, exponential, lognormal)")


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        scenario = Scenario.model_validate(data)
        for spec in (
            scenario.live_answer_delay,
            scenario.talk,
            scenario.wrap,
            scenario.no_live.fast_fail.delay,
            scenario.no_live.no_answer.delay,
            scenario.no_live.machine.delay,
        ):
            parse_distribution(spec)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the scenario: {exc.strerror}") from exc
    except (yaml.YAMLError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise InputFileError(f"{path}: {problems}") from exc
        raise InputFileError(f"{path}: {exc}") from exc
    return scenario


def value_at(schedule: float | list[Step], hours: float) -> float:
    """A constant, or the last step whose ``from_hour`` has passed."""
    if isinstance(schedule, int | float):
        return float(schedule)
    current = schedule[0].value
    for step in sorted(schedule, key=lambda s: s.from_hour):
        if step.from_hour <= hours:
            current = step.value
    return current


def pacer_settings(pacer: str | dict[str, Any]) -> tuple[str, float | None, str]:
    """(mode, ratio, counting) from the scenario's ``pacer`` key."""
    if isinstance(pacer, str):
        return pacer, None, "idle"
    ((mode, options),) = pacer.items()
    if mode == "ratio":
        return "ratio", float(options), "idle"
    if mode == "adaptive":
        return "adaptive", None, str((options or {}).get("counting", "idle"))
    return str(mode), None, "idle"


@dataclass
class World:
    """The simulated shifts and the campaign over them."""

    scenario: Scenario
    zone: ZoneInfo
    first_day: date

    def shift(self, day: int) -> tuple[datetime, datetime]:
        """Start and end (UTC) of shift ``day`` (0-based)."""
        start_time = clock_time.fromisoformat(self.scenario.shift_start)
        local = datetime.combine(self.first_day + timedelta(days=day), start_time, self.zone)
        start = local.astimezone(UTC)
        return start, start + timedelta(hours=self.scenario.shift_hours)

    def campaign(self) -> CampaignModel:
        """The simulated campaign: its window is the shift, every day; one attempt per entry."""
        start = clock_time.fromisoformat(self.scenario.shift_start)
        end = (
            datetime.combine(date(2000, 1, 1), start) + timedelta(hours=self.scenario.shift_hours)
        ).time()
        mode, ratio, _ = pacer_settings(self.scenario.pacer)
        return parse_campaign(
            {
                "name": "simulation",
                "kind": "recall",
                "audience": {},
                "calling": {
                    "windows": [
                        {
                            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                            "start": start.strftime("%H:%M"),
                            "end": end.strftime("%H:%M"),
                        }
                    ],
                    "skip_holidays": False,
                    "max_attempts": 1,
                    "max_attempts_per_day": 1,
                },
                "dialing": {
                    "mode": mode,
                    "ratio": ratio or 2.0,
                    "max_abandon_rate": self.scenario.max_abandon_rate,
                },
            },
            Path("simulation.yaml"),
        )


class Simulation:
    """One run: the scenario's world, the engine, and the event loop that drives them."""

    def __init__(self, scenario: Scenario, url: str, seed: int, *, throwaway: bool = False) -> None:
        self.scenario = scenario
        self.rng = random.Random(seed)
        zone = ZoneInfo(scenario.timezone)
        first = scenario.start_date or date(2026, 1, 5)
        self.world = World(scenario, zone, first)
        self.clock = VirtualClock(self.world.shift(0)[0] - timedelta(minutes=5))
        self.engine = open_store(url, upgrade=True, throwaway=throwaway)
        self.store = EngineStore(self.engine, node="simulator")
        self.loop = EventLoop(
            self.clock,
            self.rng,
            parse_distribution(scenario.wrap),
            self._disposition,
            preview_seconds=scenario.preview_seconds,
        )
        no_live = scenario.no_live
        model = CalleeModel(
            live_rate=self._live_rate,
            live_delay=parse_distribution(scenario.live_answer_delay),
            fast_fail_share=no_live.fast_fail.share,
            fast_fail_delay=parse_distribution(no_live.fast_fail.delay),
            no_answer_share=no_live.no_answer.share,
            no_answer_delay=parse_distribution(no_live.no_answer.delay),
            machine_share=no_live.machine.share,
            machine_delay=parse_distribution(no_live.machine.delay),
            talk=parse_distribution(scenario.talk),
        )
        self.network = SimulatedNetwork(
            model, random.Random(self.rng.random()), self.clock, self.loop.deliver
        )
        # Writes are flushed per virtual minute: the run is not live, and a simulated month
        # of 5-second flushes would cost more than the dialing. Entries are claimed minutes'
        # worth at a time for the same reason.
        settings = EngineSettings(
            grace_seconds=scenario.grace_seconds,
            flush_seconds=60.0,
            claim_batch=max(EngineSettings.claim_batch, CLAIM_PER_AGENT * scenario.peak_agents),
        )
        self.dispatcher = Dispatcher(
            self.store, self.network, self.clock, load_state_rules(), settings
        )
        self.loop.attach(self.dispatcher)
        self.loop.handlers.update(staff=self._set_staff, close=self._close)
        self.feed = SyntheticList(self.engine, scenario, self.world, random.Random(seed + 1))
        self._shift_index = 0
        self.campaign = self.world.campaign()

    def _live_rate(self, at: datetime) -> float:
        rate = self.scenario.live_answer_rate
        if isinstance(rate, float):
            return rate
        start, _ = self.world.shift(self._shift_index)
        return value_at(rate, (at - start).total_seconds() / 3600)

    def _disposition(self, kind: str) -> tuple[Disposition, datetime | None]:
        return Disposition(choose(self.scenario.dispositions, self.rng)), None

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        """Simulate every shift."""
        mode, ratio, counting = pacer_settings(self.scenario.pacer)
        for day in range(self.scenario.days):
            self._shift_index = day
            start, end = self.world.shift(day)
            self.clock.advance_to(max(self.clock.now(), start - timedelta(minutes=1)))
            self.feed.top_up(self.campaign, self.clock.now())
            if day == 0:
                self.dispatcher.open_campaign(
                    self.campaign, pacer_mode=mode, ratio=ratio, counting=counting
                )
            self._shift(start, end)
            if progress:
                progress(day + 1)
        self.store.flush()

    def _shift(self, start: datetime, end: datetime) -> None:
        """One shift: staff changes, pacing ticks, and dialing until the shift closes."""
        schedule = self.scenario.agents
        changes = (
            [(0.0, float(schedule))]
            if isinstance(schedule, int)
            else [(s.from_hour, s.value) for s in sorted(schedule, key=lambda s: s.from_hour)]
        )
        for hours, count in changes:
            self.loop.push(start + timedelta(hours=hours), ACTION, "staff", int(count))
        self.loop.push(end, ACTION, "staff", 0)
        self.dispatcher.campaigns[self.campaign.name].open = True
        self.loop.push(end, CLOSE, "close")
        mode = self.dispatcher.pools[(self.campaign.name, "en")].pacer.mode
        if mode == "adaptive":
            # The baseline's fixed clock; the predictive pacer is paced again through the
            # dispatcher's own deadline (next_deadline), as it would be live.
            self.loop.every(start, end, self.scenario.tick_seconds)
        self.loop.run()

    def _close(self, _: object) -> None:
        self.dispatcher.close_campaign(self.campaign.name)

    def _set_staff(self, count: int) -> None:
        """Log PSRs in or out to reach ``count`` (Spanish speakers are the first ones)."""
        dispatcher = self.dispatcher
        present = sorted(dispatcher.agents)
        now = self.clock.now()
        for index in range(len(present), count):
            name = f"psr-{index + 1:03d}"
            spanish = index < self.scenario.spanish_agents
            languages = frozenset({"en", "es"}) if spanish else frozenset({"en"})
            agent_id = self.store.register_agent(name, languages, now)
            dispatcher.login(agent_id, name, languages)
            dispatcher.ready(agent_id)
        for agent_id in reversed(present[count:]) if count < len(present) else []:
            dispatcher.logout(agent_id)


def run_simulation(
    scenario: Scenario,
    *,
    seed: int = 1,
    url: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulationMetrics:
    """Run a scenario through the real engine and measure it; a temporary SQLite store unless
    ``url`` names one."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dialer-sim-") as folder:
        store_url = url or f"sqlite:///{Path(folder) / 'simulation.db'}"
        # The temporary store is deleted afterwards: its commits need not reach the disk.
        simulation = Simulation(scenario, store_url, seed, throwaway=url is None)
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            simulation.run(progress)
        finally:
            gc.set_threshold(*thresholds)
        metrics = compute_metrics(simulation.engine, scenario, simulation.world)
        simulation.engine.dispose()
    metrics.wall_seconds = round(time.perf_counter() - started, 2)
    return metrics


def scenario_pacer_label(scenario: Scenario) -> Literal["predictive"] | str:
    """A short label of the scenario's pacer, for tables."""
    return pacer_label(scenario.pacer)


def pacer_label(pacer: str | dict[str, Any]) -> Literal["predictive"] | str:
    """A short label of a scenario's ``pacer`` value: ``ratio 2``, ``adaptive (idle)``..."""
    mode, ratio, counting = pacer_settings(pacer)
    if mode == "ratio":
        return f"ratio {ratio:g}"
    if mode == "adaptive":
        return f"adaptive ({counting})"
    return mode
