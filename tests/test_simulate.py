"""`dialer simulate`: the engine against simulated callees, checked against exact results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dialer.cli import cli
from dialer.errors import InputFileError
from dialer.simulate import Scenario, load_scenario, run_simulation

# The scenario S2 (pacing-notes): the exact progressive occupancy is
# h / (h + (1/p - 1) E[F] + E[D]) = 200 / (200 + (1/0.3 - 1) * 15.15 + 9) = 0.8185.
S2: dict[str, Any] = {
    "agents": 20,
    "shift_hours": 8,
    "days": 30,
    "warmup_seconds": 1800,
    "live_answer_rate": 0.30,
    "live_answer_delay": {"lognormal": {"mean": 9, "sd": 4}},
    "no_live": {
        "fast_fail": {"share": 0.25, "delay": {"uniform": [1, 5]}},
        "no_answer": {"share": 0.45, "delay": {"fixed": 24}},
        "machine": {"share": 0.30, "delay": {"lognormal": {"mean": 12, "sd": 4}}},
    },
    "talk": {"lognormal": {"mean": 180, "sd": 180}},
    "wrap": {"lognormal": {"mean": 20, "sd": 10}},
    "grace_seconds": 2,
    "pacer": "predictive",
    "max_abandon_rate": 0.03,
}
EXACT_PROGRESSIVE_OCCUPANCY = 200 / (200 + (1 / 0.3 - 1) * 15.15 + 9)
METRICS = {
    "agents",
    "days",
    "attempts",
    "live_answers",
    "machine_answers",
    "connects",
    "abandoned",
    "abandon_rate",
    "max_30day_abandon_rate",
    "calls_outside_window",
    "max_lines_per_agent",
    "occupancy",
    "talk_minutes_per_agent_hour",
    "idle_seconds_per_connect",
    "wall_seconds",
}


def scenario(**overrides: Any) -> Scenario:
    return Scenario.model_validate({**S2, **overrides})


def test_progressive_matches_the_exact_occupancy() -> None:
    """The CI exactness check: ten days, one fixed seed, within half a point."""
    metrics = run_simulation(scenario(pacer="progressive", days=10), seed=20261128)
    assert round(EXACT_PROGRESSIVE_OCCUPANCY, 4) == 0.8185
    assert metrics.occupancy == pytest.approx(EXACT_PROGRESSIVE_OCCUPANCY, abs=0.005)
    assert metrics.abandoned == 0
    assert metrics.abandon_rate == 0.0
    assert metrics.calls_outside_window == 0
    assert metrics.connects == metrics.live_answers
    assert metrics.idle_seconds_per_connect == pytest.approx(44.35, abs=2.5)


def test_predictive_keeps_the_cap_and_beats_progressive() -> None:
    metrics = run_simulation(scenario(days=3, shift_hours=4), seed=3)
    assert metrics.max_30day_abandon_rate <= 0.03
    assert metrics.calls_outside_window == 0
    assert metrics.occupancy > EXACT_PROGRESSIVE_OCCUPANCY


def test_cli_json_and_days_override(tmp_path: Path) -> None:
    path = tmp_path / "s2.yaml"
    path.write_text(yaml.safe_dump({**S2, "pacer": "progressive", "shift_hours": 1}))
    out = CliRunner().invoke(cli, ["simulate", str(path), "--days", "1", "--seed", "5", "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.output)
    assert set(metrics) == METRICS
    assert (metrics["days"], metrics["agents"], metrics["abandoned"]) == (1, 20, 0)
    assert metrics["attempts"] > 0


def test_simulation_ignores_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real.db"
    monkeypatch.setenv("DIALER_DATABASE_URL", f"sqlite:///{real}")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**S2, "pacer": "progressive", "shift_hours": 1, "days": 1}))
    assert (
        CliRunner().invoke(cli, ["--db", f"sqlite:///{real}", "simulate", str(path)]).exit_code == 0
    )
    assert not real.exists()


def test_simulation_keeps_its_calls_in_a_given_database(db_url: str) -> None:
    metrics = run_simulation(
        scenario(pacer={"ratio": 2.0}, shift_hours=1, days=1), seed=2, url=db_url
    )
    assert metrics.attempts > 0
    assert metrics.max_30day_abandon_rate <= 0.03


def test_time_varying_agents_and_answer_rate() -> None:
    varying = scenario(
        pacer="progressive",
        days=1,
        shift_hours=2,
        warmup_seconds=0,
        agents=[{"from_hour": 0, "value": 10}, {"from_hour": 1, "value": 4}],
        live_answer_rate=[{"from_hour": 0, "value": 0.5}, {"from_hour": 1, "value": 0.1}],
    )
    metrics = run_simulation(varying, seed=4)
    assert metrics.agents == 10
    assert 0 < metrics.occupancy < 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "no_live": {
                    "fast_fail": {"share": 0.5, "delay": {"fixed": 2}},
                    "no_answer": {"share": 0.5, "delay": {"fixed": 24}},
                    "machine": {"share": 0.5, "delay": {"fixed": 10}},
                }
            },
            "no_live: Value error, no_live shares must sum to 1, not 1.5",
        ),
        ({"talk": {"gamma": 3}}, "unknown distribution 'gamma'"),
        ({"agent": 20}, "agent: Extra inputs are not permitted"),
        (
            {"max_abandon_rate": 0.05},
            "max_abandon_rate: Input should be less than or equal to 0.03",
        ),
    ],
)
def test_bad_scenarios_name_the_problem(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**S2, **change}))
    with pytest.raises(InputFileError) as caught:
        load_scenario(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message
