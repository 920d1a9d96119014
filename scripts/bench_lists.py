#!/usr/bin/env python
"""Benchmark: import a large synthetic chain and build the three example campaigns' lists.

    python scripts/bench_lists.py [--patients 1000000] [--seed 7] [--sqlite PATH]
                                  [--postgres URL] [--skip-import]

For each database (SQLite always; PostgreSQL with --postgres or DIALER_TEST_POSTGRES_URL) it
prints seconds per stage and peak memory. The baseline is one ``pandas.read_sql`` of the full
patients, phones, recalls and appointments tables; the goal is the three builds together (writes
included) in under 3x the baseline and under 4 GB. The baseline and the builds each run in a
fresh process, so each peak-memory figure is that stage's own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from queue import Empty

import pandas as pd
import sqlalchemy as sa

from dialer.campaigns import load_campaigns, packaged_campaigns_dir
from dialer.ingest.importer import import_file
from dialer.store.db import create_store_engine, normalise_url, open_store
from dialer.store.dial_lists import build_list
from dialer.synthetic import generate_chain

AS_OF = date(2026, 11, 30)
TABLES = ("patients", "phones", "recalls", "appointments")


def peak_mb() -> float:
    """Peak resident memory of this process since it started, in MB.

    ``VmHWM`` belongs to the process's own address space, so a spawned child reports its own
    peak (``ru_maxrss`` would carry the parent's peak across exec).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def baseline(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One pandas.read_sql of each full table."""
    engine = create_store_engine(url)
    started = time.perf_counter()
    rows = 0
    with engine.connect() as conn:
        for table in TABLES:
            rows += len(pd.read_sql(sa.text(f"SELECT * FROM {table}"), conn))
    queue.put((time.perf_counter() - started, peak_mb(), rows))


def builds(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Build (and save) the three example campaigns' lists."""
    engine = open_store(url, upgrade=True)
    now = datetime.now(UTC)
    timings = []
    for name, (campaign, path) in sorted(load_campaigns(packaged_campaigns_dir()).items()):
        started = time.perf_counter()
        result, _ = build_list(engine, campaign, path, as_of=AS_OF, now=now)
        timings.append((name, time.perf_counter() - started, len(result.entries)))
    queue.put((timings, peak_mb()))


def in_child(target, url: str):  # type: ignore[no-untyped-def]
    """Run ``target(url, queue)`` in a fresh process and return what it put on the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(url, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise SystemExit(f"the benchmark stage {target.__name__} failed") from None
    process.join()
    return result


def import_chain(url: str, folder: Path, patients: int, seed: int) -> None:
    """Generate and import the chain, printing each stage."""
    started = time.perf_counter()
    files = generate_chain(folder, patients=patients, seed=seed, as_of=AS_OF)
    print(f"  generate {patients:,} patients: {time.perf_counter() - started:8.1f} s")
    engine = open_store(url, upgrade=True)
    for kind in ("clinics", "patients", "appointments"):
        started = time.perf_counter()
        result = import_file(engine, kind, getattr(files, kind))
        print(f"  import {kind:<13} {time.perf_counter() - started:8.1f} s  "
              f"({result.inserted:,} inserted, {result.rejected:,} rejected)")  # fmt: skip
    engine.dispose()


def bench(label: str, url: str, args: argparse.Namespace, folder: Path) -> None:
    """All stages on one database."""
    print(f"\n{label}: {create_store_engine(url).url.render_as_string(hide_password=True)}")
    if not args.skip_import:
        import_chain(url, folder, args.patients, args.seed)
    read_seconds, read_peak, rows = in_child(baseline, url)
    print(f"  baseline read_sql of {rows:,} rows: {read_seconds:8.1f} s  peak {read_peak:,.0f} MB")
    timings, build_peak = in_child(builds, url)
    total = 0.0
    for name, seconds, entries in timings:
        total += seconds
        print(f"  build {name:<15} {seconds:8.1f} s  ({entries:,} entries)")
    ratio = total / read_seconds if read_seconds else float("inf")
    print(f"  three builds: {total:.1f} s = {ratio:.2f}x the baseline (goal < 3x); "
          f"peak {build_peak:,.0f} MB (goal < 4,096 MB)")  # fmt: skip


def main() -> None:
    """Parse arguments and run the benchmark on each database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--postgres", default=os.environ.get("DIALER_TEST_POSTGRES_URL"),
                        help="PostgreSQL URL; the benchmark uses (and empties) its schema "
                        "bench_lists")  # fmt: skip
    parser.add_argument("--skip-import", action="store_true",
                        help="reuse databases imported by an earlier run")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lists-") as folder:
        sqlite_path = args.sqlite or Path(folder) / "bench.db"
        if not args.skip_import:
            sqlite_path.unlink(missing_ok=True)
        bench("SQLite", f"sqlite:///{sqlite_path}", args, Path(folder))
        if args.postgres:
            url = bench_schema(normalise_url(args.postgres), reset=not args.skip_import)
            bench("PostgreSQL", url, args, Path(folder))
        else:
            print("\nPostgreSQL: skipped (give --postgres URL or set DIALER_TEST_POSTGRES_URL)")
    sys.stdout.flush()


def bench_schema(url: str, *, reset: bool) -> str:
    """A URL using the schema ``bench_lists`` of the given database (emptied when ``reset``)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if reset:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS bench_lists CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench_lists"))
    engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3Dbench_lists"


if __name__ == "__main__":
    main()
