#!/usr/bin/env python
"""Benchmark: export a million synthetic attempts as CSV and as Parquet.

    python scripts/bench_export.py [--attempts 1000000] [--seed 7] [--sqlite PATH] [--reuse]

Fills a SQLite store with synthetic clinics, households, PSRs and attempts (bulk inserts, a few
seconds), then runs ``export_dispositions`` in a fresh process per export and prints seconds,
rows, file size and the process's peak memory (``VmHWM`` from /proc, the child's own). The
export streams in chunks, so its peak memory should not grow with the number of rows: a thirtieth
of the attempts (one campaign's first three days) is exported too, for comparison.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

from dialer.campaigns import parse_campaign
from dialer.reports import Filters, export_dispositions
from dialer.store.db import open_store
from dialer.store.dial_lists import sync_campaign

START = datetime(2026, 11, 2, 15, tzinfo=UTC)
ZONES = {"C1": "America/Los_Angeles", "C2": "America/Chicago", "C3": "America/New_York"}
STATES = {"C1": "OR", "C2": "TX", "C3": "FL"}
CAMPAIGNS = (
    ("hygiene-recall", "recall"),
    ("reactivation", "reactivation"),
    ("reminders", "reminder"),
)
OUTCOMES = (  # outcome, disposition, weight
    ("no_answer", None, 30),
    ("busy", None, 8),
    ("failed", None, 7),
    ("left_message", None, 25),
    ("abandoned", None, 1),
    ("connected", "booked", 9),
    ("connected", "declined", 10),
    ("connected", "callback", 4),
    ("connected", "wrong_number", 3),
    ("connected", "confirmed", 3),
)
NOTES = (None, None, None, None, "called back later", "=1+1 test", "Llamar después de las 5")


def peak_mb() -> float:
    """Peak resident memory of this process since it started, in MB (its own ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def iso(moment: datetime) -> str:
    """A time as SQLite stores UTCDateTime values."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(url: str, attempts: int, seed: int) -> None:
    """Insert the synthetic store: 3 clinics, 3 campaigns, attempts / 3 households, 60 PSRs."""
    engine = open_store(url, upgrade=True)
    rng = random.Random(seed)
    households = max(1, attempts // 3)
    created = iso(START - timedelta(days=30))
    with engine.begin() as conn:
        for index, (clinic, zone) in enumerate(ZONES.items(), start=1):
            conn.exec_driver_sql(
                "INSERT INTO clinics (id, external_id, name, timezone, state, default_language, "
                "source, source_hash, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    index,
                    clinic,
                    f"Clinic {clinic}",
                    zone,
                    STATES[clinic],
                    "en",
                    "bench",
                    "x",
                    created,
                    created,
                ),
            )
        ids = []
        for name, kind in CAMPAIGNS:
            model = parse_campaign({"name": name, "kind": kind, "audience": {}}, Path(name))
            ids.append(sync_campaign(conn, model, None, START))
        conn.exec_driver_sql(
            "INSERT INTO agents (id, name, languages, created_at) VALUES (?,?,?,?)",
            [(n, f"PSR {n:02d}", "en es", created) for n in range(1, 61)],
        )
        conn.exec_driver_sql(
            "INSERT INTO patients (id, external_id, clinic_id, guarantor_external_id, postal_code, "
            "status, do_not_call, source, source_hash, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    h,
                    str(h),
                    h % 3 + 1,
                    str(h),
                    ("97201", "78205", "33101")[h % 3],
                    "active",
                    0,
                    "bench",
                    "x",
                    created,
                    created,
                )
                for h in range(1, households + 1)
            ],
        )
        conn.exec_driver_sql(
            "INSERT INTO campaign_households (id, campaign_id, household_key, attempts, "
            "created_at, done, phone_index) VALUES (?,?,?,?,?,?,?)",
            [(h, ids[h % 3], str(h), 0, created, 0, 0) for h in range(1, households + 1)],
        )
        weights = [w for *_, w in OUTCOMES]
        batch: list[tuple[Any, ...]] = []
        numbers: dict[int, int] = {}
        for attempt_id in range(1, attempts + 1):
            household = rng.randint(1, households)
            numbers[household] = numbers.get(household, 0) + 1
            batch.append(
                attempt_row(rng, attempt_id, attempts, household, numbers[household], ids, weights)
            )
            if len(batch) == 50_000:
                insert_attempts(conn, batch)
                batch = []
        insert_attempts(conn, batch)
    engine.dispose()


def attempt_row(
    rng: random.Random,
    attempt_id: int,
    total: int,
    household: int,
    number: int,
    campaign_ids: list[int],
    weights: list[int],
) -> tuple[Any, ...]:
    """One synthetic attempt over 30 days of dialing."""
    clinic = household % 3 + 1
    zone = list(ZONES.values())[clinic - 1]
    started = START + timedelta(days=(attempt_id - 1) * 30 // total, seconds=rng.uniform(0, 36000))
    outcome, disposition, _ = rng.choices(OUTCOMES, weights)[0]
    ringing = started + timedelta(seconds=1)
    ring = rng.uniform(2, 25)
    answered = (
        ringing + timedelta(seconds=ring)
        if outcome in ("connected", "left_message", "abandoned")
        else None
    )
    person = answered if outcome in ("connected", "abandoned") else None
    connected = answered if outcome == "connected" else None
    ended = (connected or answered or ringing) + timedelta(
        seconds=rng.uniform(60, 300) if connected else ring if answered is None else 8
    )
    wrap = ended + timedelta(seconds=rng.uniform(5, 60)) if connected else None
    contact = disposition not in (None, "wrong_number")
    conversion = disposition in ("booked", "confirmed")
    agent = rng.randint(1, 60) if connected else None
    return (
        attempt_id,
        campaign_ids[household % 3],
        household,
        clinic,
        number,
        f"+1503555{household % 10_000:04d}",
        "mobile",
        "en",
        zone,
        STATES[f"C{clinic}"],
        str(household),
        "predictive",
        agent,
        iso(started),
        iso(ringing),
        answered and iso(answered),
        person and iso(person),
        connected and iso(connected),
        iso(ended),
        wrap and iso(wrap),
        outcome,
        disposition,
        int(contact),
        int(conversion),
        int(outcome == "abandoned"),
        0,
        rng.choice(NOTES),
    )


def insert_attempts(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert attempt rows (the columns of :func:`attempt_row`)."""
    if rows:
        conn.exec_driver_sql(
            "INSERT INTO attempts (id, campaign_id, household_id, clinic_id, attempt_number, "
            "phone, phone_kind, language, timezones, states, patient_ids, mode, agent_id, "
            "started_at, ringing_at, answered_at, person_detected_at, connected_at, ended_at, "
            "wrap_ended_at, outcome, disposition, is_contact, is_conversion, abandoned, "
            "opted_out, notes) VALUES (" + ",".join("?" * 27) + ")",
            rows,
        )


def export(url: str, output: str, filters: Filters, queue: Any) -> None:
    """One export in this (fresh) process: seconds, rows, peak memory."""
    engine = open_store(url)
    started = time.perf_counter()
    result = export_dispositions(engine, filters, Path(output), actor="bench")
    queue.put((time.perf_counter() - started, result.rows, peak_mb()))


def in_child(url: str, output: Path, filters: Filters) -> tuple[float, int, float]:
    """Run :func:`export` in a spawned process and return what it reported."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=export, args=(url, str(output), filters, queue))
    process.start()
    while True:
        try:
            result: tuple[float, int, float] = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise SystemExit(f"the export to {output.name} failed") from None
    process.join()
    return result


def main() -> None:
    """Fill (unless --reuse) and export."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="export an already filled --sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        path = args.sqlite or Path(folder) / "bench.db"
        url = f"sqlite:///{path}"
        if not args.reuse:
            path.unlink(missing_ok=True)
            started = time.perf_counter()
            fill(url, args.attempts, args.seed)
            print(f"fill {args.attempts:,} attempts: {time.perf_counter() - started:8.1f} s")
        small = Filters(campaigns=("reminders",), date_to=date(2026, 11, 4))
        for label, filters in (("all", Filters()), ("small", small)):
            for suffix in ("csv", "parquet"):
                output = Path(folder) / f"{label}.{suffix}"
                seconds, rows, peak = in_child(url, output, filters)
                size = output.stat().st_size / 1e6
                print(
                    f"export {label:<5} {suffix:<7} {rows:>9,} rows {seconds:8.1f} s  "
                    f"{size:8.1f} MB  peak {peak:,.0f} MB"
                )


if __name__ == "__main__":
    main()
