#!/usr/bin/env python
"""Benchmark: every pacer on scenarios S2 and S3 through the real engine (``dialer simulate``).

    python scripts/bench_pacing.py [--seeds 5] [--days 30] [--speed] [--jobs 1]
                                   [--pacers progressive ratio adaptive-idle adaptive-all
                                    predictive] [--scenarios s2 s3]

Each run is one ``dialer.simulate.run_simulation`` of ``scripts/scenarios/<name>.yaml`` with the
pacer replaced and ``days`` overridden, seeds 1..N; runs are independent, so ``--jobs`` runs them
in that many processes. Per scenario it prints a Markdown table: runs, mean and minimum
occupancy, the worst run's ``max_30day_abandon_rate``, talk minutes per PSR-hour, idle seconds
per connect, attempts per run and wall seconds per run (and with ``--speed`` attempts per
wall-second), then whether the predictive pacer meets its contract on that scenario: every run
at or below the 3% cap and mean occupancy at least the contract figure (issue 3). The fixed
ratio is the one tuned for each scenario in the pacing notes (2.0 on S2, 5.3 on S3, 2.0
elsewhere); every other pacer runs untuned.

The other scenario files check the predictive pacer's robustness (the cap kept from 5 PSRs to
100, and through mid-shift changes of the answer rate and of staffing), e.g.

    python scripts/bench_pacing.py --pacers predictive --days 5 --seeds 2 \
        --scenarios s2-5-psrs s2-100-psrs s2-answer-change s2-staffing
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.simulate import load_scenario, run_simulation

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
    if pacer.startswith("adaptive-"):
        return {"adaptive": {"counting": pacer.removeprefix("adaptive-")}}
    return pacer


def pacer_label(pacer: str, scenario: str) -> str:
    """A pacer's name in the table."""
    if pacer == "ratio":
        return f"ratio {RATIOS.get(scenario, 2.0):g}"
    if pacer.startswith("adaptive-"):
        return f"adaptive ({pacer.removeprefix('adaptive-')})"
    return pacer


def simulate(run: Run) -> dict[str, Any]:
    """Run one simulation; its ``--json`` metrics."""
    scenario = load_scenario(SCENARIOS / f"{run.scenario}.yaml")
    scenario = scenario.model_copy(
        update={"pacer": pacer_spec(run.pacer, run.scenario), "days": run.days}
    )
    return run_simulation(scenario, seed=run.seed).as_json()


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every (scenario, pacer, seed) and print a table per scenario."""
    args = parse_args(argv)
    if args.seeds < 1 or args.days < 1 or args.jobs < 1:
        print("--seeds, --days and --jobs are at least 1", file=sys.stderr)
        return 2
    for name in args.scenarios:
        if not (SCENARIOS / f"{name}.yaml").is_file():
            print(f"no scenario {SCENARIOS / name}.yaml", file=sys.stderr)
            return 2
    runs = [
        Run(scenario, pacer, seed, args.days)
        for scenario in args.scenarios
        for pacer in args.pacers
        for seed in range(1, args.seeds + 1)
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        s: {p: [] for p in args.pacers} for s in args.scenarios
    }
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(simulate, run): run for run in runs}
        for done, future in enumerate(as_completed(futures), 1):
            run, metrics = futures[future], future.result()
            results[run.scenario][run.pacer].append(metrics)
            print(
                f"[{done}/{len(runs)}] {run.scenario} {pacer_label(run.pacer, run.scenario)} "
                f"seed {run.seed}: occupancy {metrics['occupancy']:.4f}, 30-day abandon "
                f"{metrics['max_30day_abandon_rate']:.2%}, {metrics['wall_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    for scenario in args.scenarios:
        print(render(scenario, args.days, results[scenario], args.speed))
        print()
    print(f"{len(runs)} runs in {time.perf_counter() - started:.0f} s (--jobs {args.jobs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
