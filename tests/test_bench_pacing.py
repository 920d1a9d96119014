"""scripts/bench_pacing.py: the pacing benchmark keeps each run and resumes from what it kept."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_pacing.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pacing", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pacing"] = module  # the process pool pickles its functions by module
    spec.loader.exec_module(module)
    return module


def metrics(occupancy: float, abandon: float, attempts: int) -> dict[str, Any]:
    return {
        "occupancy": occupancy,
        "max_30day_abandon_rate": abandon,
        "talk_minutes_per_agent_hour": 49.0,
        "idle_seconds_per_connect": 20.0,
        "attempts": attempts,
        "wall_seconds": 100.0,
    }


def test_the_table_is_printed_from_kept_runs_without_running_them(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s2-predictive-1-30.json").write_text(json.dumps(metrics(0.9124, 0.0266, 1000)))
    (tmp_path / "s2-predictive-2-30.json").write_text(json.dumps(metrics(0.9100, 0.0271, 3000)))
    args = ["--pacers", "predictive", "--scenarios", "s2", "--seeds", "2", "--speed"]
    code = bench.main([*args, "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"2 runs kept in {tmp_path}" in err
    assert "| predictive | 2 | 0.9112 | 0.9100 | 2.71% | 49.0 | 20.0 | 2,000 | 100.0 | 20 |" in out
    assert (
        "predictive contract (every run <= 3.0%, mean occupancy >= 0.905; stretch 0.915): "
        "met (0.9112, worst 2.71%)"
    ) in out
    assert out.rstrip().endswith("0 runs in 0 s (--jobs 1)")


def test_a_missing_run_is_simulated_kept_and_then_reused(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--pacers", "progressive", "--scenarios", "s2-5-psrs", "--seeds", "1", "--days", "1"]
    assert bench.main([*args, "--ratios", "1.5", "1.50", "--results", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["s2-5-psrs-progressive-1-1.json", "s2-5-psrs-ratio-1.5-1-1.json"]
    progressive = json.loads((tmp_path / kept[0]).read_text())
    assert progressive["max_30day_abandon_rate"] == 0.0
    assert f"| progressive | 1 | {progressive['occupancy']:.4f} |" in first
    assert "| ratio 1.5 | 1 |" in first
    assert first.rstrip().endswith("(--jobs 1)") and "\n2 runs in " in first

    assert bench.main([*args, "--ratios", "1.5", "--results", str(tmp_path)]) == 0
    again = capsys.readouterr().out
    assert again.rstrip().endswith("0 runs in 0 s (--jobs 1)")
    assert f"| progressive | 1 | {progressive['occupancy']:.4f} |" in again


def test_a_ratio_below_one_is_refused(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    for ratio in ("0.5", "nan"):
        assert bench.main(["--ratios", ratio]) == 2
        assert capsys.readouterr().err == "--ratios are at least 1 (lines per idle PSR)\n"
