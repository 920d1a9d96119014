#!/usr/bin/env python
"""Benchmark: every pacer on scenarios S2 and S3 through the real engine (``dialer simulate``).

    python scripts/bench_pacing.py [--seeds 5] [--days 30] [--speed] [--jobs 1]
                                   [--pacers progressive ratio adaptive-idle adaptive-all
                                    predictive] [--scenarios s2 s3] [--ratios R ...]
                                   [--results DIR]

Each run is one ``dialer.simulate.run_simulation`` of ``scripts/scenarios/<name>.yaml`` with the
pacer replaced and ``days`` overridden, seeds 1..N; runs are independent, so ``--jobs`` runs them
in that many processes. Per scenario it prints a Markdown table: runs, mean and minimum
occupancy, the worst run's ``max_30day_abandon_rate``, talk minutes per PSR-hour, idle seconds
per connect, attempts per run and wall seconds per run (and with ``--speed`` attempts per
wall-second), then whether the predictive pacer meets its contract on that scenario: every run
at or below the 3% cap and mean occupancy at least the contract figure (issue 3). The fixed
ratio is the one tuned for each scenario in the pacing notes (2.0 on S2, 5.3 on S3, 2.0
elsewhere); every other pacer runs untuned. ``--ratios 1.8 2.2`` adds fixed-ratio pacers at those
ratios (to tune a ratio for a scenario the notes do not cover: the tuned one is the best
occupancy whose every run keeps the cap).

A 30-day run takes minutes, the full table hours: ``--results DIR`` keeps each run's metrics in
``DIR/<scenario>-<pacer>-<seed>-<days>.json`` and reuses the ones already there, so a benchmark
can be stopped and resumed, or its runs spread over machines, and the table printed again
from what was measured (the ``wall s`` columns are those of the original runs).

The other scenario files check the predictive pacer's robustness (the cap kept from 5 PSRs to
100, and through mid-shift changes of the answer rate and of staffing), e.g.

    python scripts/bench_pacing.py --pacers predictive --days 5 --seeds 2 \
        --scenarios s2-5-psrs s2-100-psrs s2-answer-change s2-staffing
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.simulate import load_scenario, run_simulation
from dialer.simulate import pacer_label as describe_pacer

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RATIOS = {"s2": 2.0, "s3": 5.3}  # fixed ratio tuned per scenario (pacing notes)
CONTRACT = {"s2": 0.905, "s3": 0.885}  # predictive, mean occupancy over the runs
STRETCH = {"s2": 0.915, "s3": 0.90}
PACERS = ("progressive", "ratio", "adaptive-idle", "adaptive-all", "predictive")
CAP = 0.03


@dataclass(frozen=True)
class Run:
    """One simulation to run."""

    scenario: str
    pacer: str
    seed: int
    days: int


def pacer_spec(pacer: str, scenario: str) -> str | dict[str, Any]:
    """The scenario file's ``pacer`` value for a pacer name of this script."""
    if pacer == "ratio":
        return {"ratio": RATIOS.get(scenario, 2.0)}
    if pacer.startswith("ratio-"):
        return {"ratio": float(pacer.removeprefix("ratio-"))}
    if pacer.startswith("adaptive-"):
        return {"adaptive": {"counting": pacer.removeprefix("adaptive-")}}
    return pacer


def pacer_label(pacer: str, scenario: str) -> str:
    """A pacer's name in the table (the simulator's label of its scenario value)."""
    return describe_pacer(pacer_spec(pacer, scenario))


def simulate(run: Run, results: Path | None = None) -> dict[str, Any]:
    """Run one simulation; its ``--json`` metrics (kept in ``results`` when given)."""
    scenario = load_scenario(SCENARIOS / f"{run.scenario}.yaml")
    scenario = scenario.model_copy(
        update={"pacer": pacer_spec(run.pacer, run.scenario), "days": run.days}
    )
    metrics = run_simulation(scenario, seed=run.seed).as_json()
    if results is not None:
        path = result_path(results, run)
        path.with_suffix(".tmp").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
        path.with_suffix(".tmp").replace(path)
    return metrics


def result_path(results: Path, run: Run) -> Path:
    """Where ``--results`` keeps a run's metrics."""
    return results / f"{run.scenario}-{run.pacer}-{run.seed}-{run.days}.json"


def measured(results: Path | None, run: Run) -> dict[str, Any] | None:
    """A run's kept metrics, if ``--results`` holds them."""
    if results is None or not result_path(results, run).is_file():
        return None
    kept: dict[str, Any] = json.loads(result_path(results, run).read_text(encoding="utf-8"))
    return kept


def mean(values: list[float]) -> float:
    """The arithmetic mean."""
    return sum(values) / len(values)


def summary_row(label: str, results: list[dict[str, Any]], speed: bool) -> list[str]:
    """One table row over a pacer's runs."""
    occupancy = [r["occupancy"] for r in results]
    attempts = sum(r["attempts"] for r in results)
    wall = sum(r["wall_seconds"] for r in results)
    row = [
        label,
        str(len(results)),
        f"{mean(occupancy):.4f}",
        f"{min(occupancy):.4f}",
        f"{max(r['max_30day_abandon_rate'] for r in results):.2%}",
        f"{mean([r['talk_minutes_per_agent_hour'] for r in results]):.1f}",
        f"{mean([r['idle_seconds_per_connect'] for r in results]):.1f}",
        f"{attempts / len(results):,.0f}",
        f"{wall / len(results):.1f}",
    ]
    if speed:
        row.append(f"{attempts / wall:,.0f}" if wall else "-")
    return row


def render(scenario: str, days: int, results: dict[str, list[dict[str, Any]]], speed: bool) -> str:
    """The Markdown table of one scenario, and the predictive pacer's contract check."""
    header = [
        "pacer",
        "runs",
        "occupancy (mean)",
        "occupancy (min)",
        "max 30-day abandon",
        "talk min / PSR-h",
        "idle s / connect",
        "attempts / run",
        "wall s / run",
    ]
    if speed:
        header.append("attempts / wall-s")
    lines = [
        f"{scenario.upper()} ({days} days per run)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for pacer, rows in results.items():
        if rows:
            label = pacer_label(pacer, scenario)
            lines.append("| " + " | ".join(summary_row(label, rows, speed)) + " |")
    predictive = results.get("predictive")
    if predictive and scenario in CONTRACT:
        occupancy = mean([r["occupancy"] for r in predictive])
        worst = max(r["max_30day_abandon_rate"] for r in predictive)
        met = worst <= CAP and occupancy >= CONTRACT[scenario]
        lines += [
            "",
            f"predictive contract (every run <= {CAP:.1%}, mean occupancy >= "
            f"{CONTRACT[scenario]:.3f}; stretch {STRETCH[scenario]:.3f}): "
            f"{'met' if met else 'NOT met'} ({occupancy:.4f}, worst {worst:.2%})",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N per pacer (5)")
    parser.add_argument("--days", type=int, default=30, help="shifts per run (30)")
    parser.add_argument("--speed", action="store_true", help="add attempts per wall-second")
    parser.add_argument("--jobs", type=int, default=1, help="simulations at once (1)")
    parser.add_argument("--pacers", nargs="+", choices=PACERS, default=list(PACERS))
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=["s2", "s3"],
        help="scenario names in scripts/scenarios (s2 s3)",
    )
    parser.add_argument(
        "--ratios", nargs="+", type=float, default=[], help="also fixed ratios at these values"
    )
    parser.add_argument(
        "--results", type=Path, help="keep each run's metrics here and reuse those kept"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every (scenario, pacer, seed) and print a table per scenario."""
    args = parse_args(argv)
    if args.seeds < 1 or args.days < 1 or args.jobs < 1:
        print("--seeds, --days and --jobs are at least 1", file=sys.stderr)
        return 2
    if not all(ratio >= 1 for ratio in args.ratios):  # NaN too
        print("--ratios are at least 1 (lines per idle PSR)", file=sys.stderr)
        return 2
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
    pacers = list(dict.fromkeys([*args.pacers, *(f"ratio-{r:g}" for r in args.ratios)]))
    for name in args.scenarios:
        if not (SCENARIOS / f"{name}.yaml").is_file():
            print(f"no scenario {SCENARIOS / name}.yaml", file=sys.stderr)
            return 2
    runs = [
        Run(scenario, pacer, seed, args.days)
        for scenario in args.scenarios
        for pacer in pacers
        for seed in range(1, args.seeds + 1)
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        s: {p: [] for p in pacers} for s in args.scenarios
    }
    todo = []
    for run in runs:
        kept = measured(args.results, run)
        if kept is None:
            todo.append(run)
        else:
            results[run.scenario][run.pacer].append(kept)
    if len(todo) < len(runs):
        print(f"{len(runs) - len(todo)} runs kept in {args.results}", file=sys.stderr)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(simulate, run, args.results): run for run in todo}
        for done, future in enumerate(as_completed(futures), 1):
            run, metrics = futures[future], future.result()
            results[run.scenario][run.pacer].append(metrics)
            print(
                f"[{done}/{len(todo)}] {run.scenario} {pacer_label(run.pacer, run.scenario)} "
                f"seed {run.seed}: occupancy {metrics['occupancy']:.4f}, 30-day abandon "
                f"{metrics['max_30day_abandon_rate']:.2%}, {metrics['wall_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    for scenario in args.scenarios:
        print(render(scenario, args.days, results[scenario], args.speed))
        print()
    print(f"{len(todo)} runs in {time.perf_counter() - started:.0f} s (--jobs {args.jobs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
