"""The disposition export: exact rows of a hand-built day, CSV and Parquet read back with the
published dtypes, formula guards, BOM, file modes, the audit log, and clinic-zone dates."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.errors import ConfigError, NotFound
from dialer.reports import (
    COLUMNS,
    Filters,
    export_dispositions,
    iter_dispositions,
    read_audit_log,
    read_dispositions,
)
from dialer.reports.export import guard_text, sorted_ids, unguard_text
from tests.reports_fixtures import build_floor

ZONE = "America/Chicago"
HEADER = ",".join(COLUMNS)
ORDER = [8, 1, 2, 4, 5, 3, 6, 7]  # the fixture's attempts by start time


def url_of(store: Engine) -> str:
    return store.url.render_as_string(hide_password=False)


def frame_of(store: Engine, filters: Filters | None = None) -> pd.DataFrame:
    chunks = list(iter_dispositions(store, filters, zone_setting=ZONE, chunk_rows=3))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


def test_one_row_per_attempt_in_start_order_with_exact_values(store: Engine) -> None:
    floor = build_floor(store)
    frame = frame_of(store)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["attempt_id"]) == [str(floor.attempts[n]) for n in ORDER]
    first_booking = frame.iloc[1].to_dict()
    assert first_booking == {
        "attempt_id": str(floor.attempts[1]),
        "campaign": "hygiene-recall",
        "campaign_kind": "recall",
        "clinic_id": "C2",
        "clinic_name": "Clínica Sonrisa",
        "household_id": "100",
        "patient_ids": "20;100",
        "phone_type": "mobile",
        "timezone": "America/Chicago",
        "language": "en",
        "attempt_number": 1,
        "agent": "Ana",
        "started_at": pd.Timestamp("2026-11-30 15:00:00", tz="UTC"),
        "answered_at": pd.Timestamp("2026-11-30 15:00:11", tz="UTC"),
        "connected_at": pd.Timestamp("2026-11-30 15:00:11", tz="UTC"),
        "ended_at": pd.Timestamp("2026-11-30 15:02:11", tz="UTC"),
        "outcome": "connected",
        "disposition": "booked",
        "is_contact": True,
        "is_conversion": True,
        "abandoned": False,
        "ring_seconds": 10.0,
        "talk_seconds": 120.0,
        "wrap_seconds": 30.0,
        "appointment_ids": "9;12",
        "callback_at": pd.NaT,
        "notes": '=HYPERLINK("http://example.test","x")',
    }
    by_number = {n: frame.iloc[i] for i, n in enumerate(ORDER)}
    # Zones: the ZIP zone when it is a candidate (New York), else the first candidate.
    assert by_number[6]["timezone"] == "America/New_York"
    assert by_number[2]["timezone"] == "America/Chicago"
    assert pd.isna(by_number[2]["agent"]) and pd.isna(by_number[2]["talk_seconds"])
    assert by_number[2]["ring_seconds"] == 25.0
    assert by_number[5]["abandoned"] and by_number[5]["ring_seconds"] == 6.0
    assert pd.isna(by_number[5]["wrap_seconds"])
    assert pd.isna(by_number[8]["phone_type"])
    assert by_number[3]["attempt_number"] == 2


def test_export_has_no_phone_numbers_or_names(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    out = tmp_path / "all.csv"
    export_dispositions(store, Filters(), out, zone_setting=ZONE)
    text = out.read_text(encoding="utf-8")
    assert "+1210555" not in text and "210555" not in text


def test_csv_cells_are_iso_utc_lowercase_flags_and_guarded(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    out = tmp_path / "day.csv"
    export_dispositions(store, Filters(), out, zone_setting=ZONE)
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert raw.decode("utf-8").splitlines()[0] == HEADER
    booking = rows[1]
    assert booking["started_at"] == "2026-11-30T15:00:00.000000Z"
    assert booking["answered_at"] == "2026-11-30T15:00:11.000000Z"
    assert booking["callback_at"] == ""
    assert (booking["is_contact"], booking["abandoned"]) == ("true", "false")
    assert booking["ring_seconds"] == "10.0"
    assert booking["appointment_ids"] == "9;12"
    assert [row["notes"] for row in rows] == [
        "''=already quoted",
        '\'=HYPERLINK("http://example.test","x")',
        "'\rcarriage return",
        "'-2 teeth",
        "'@SUM(A1)",
        "'+1 call back",
        "'\tindented",
        "Llamar después de las 5, señora Muñoz",
    ]


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("=1+1", "'=1+1"),
        ("+15035550100", "'+15035550100"),
        ("-3", "'-3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("'plain", "'plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_guard_round_trips(value: str, guarded: str) -> None:
    values = pd.Series([value, None], dtype="string")
    assert guard_text(values).iloc[0] == guarded
    assert unguard_text(guard_text(values)).iloc[0] == value
    assert pd.isna(guard_text(values).iloc[1])


@pytest.mark.parametrize(
    ("stored", "exported"),
    [("100;20", "20;100"), ("12;9", "9;12"), ("B2;A1;3", "3;A1;B2"), ("", None), (None, None)],
)
def test_id_lists_sorted_naturally(stored: str | None, exported: str | None) -> None:
    assert sorted_ids(stored) == exported


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_read_back_with_exact_dtypes(store: Engine, tmp_path: Path, suffix: str) -> None:
    build_floor(store)
    out = tmp_path / f"day.{suffix}"
    result = export_dispositions(store, Filters(), out, zone_setting=ZONE)
    assert result.rows == 8
    back = read_dispositions(out)
    assert {name: str(dtype) for name, dtype in back.dtypes.items()} == {
        name: str(pd.Series(dtype=dtype).dtype) for name, dtype in COLUMNS.items()
    }
    pd.testing.assert_frame_equal(back, frame_of(store))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_empty_result_still_writes_the_header(store: Engine, tmp_path: Path, suffix: str) -> None:
    build_floor(store)
    out = tmp_path / f"none.{suffix}"
    filters = Filters(date_from=date(2027, 1, 1))
    assert export_dispositions(store, filters, out, zone_setting=ZONE).rows == 0
    if suffix == "csv":
        assert out.read_bytes() == HEADER.encode() + b"\r\n"
    back = read_dispositions(out)
    assert back.empty and list(back.columns) == list(COLUMNS)
    assert [str(t) for t in back.dtypes] == [
        str(pd.Series(dtype=t).dtype) for t in COLUMNS.values()
    ]


def test_excel_csv_has_a_bom_and_keeps_spanish(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    out = tmp_path / "excel.csv"
    export_dispositions(store, Filters(campaigns=("reminders",)), out, excel=True)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + HEADER.encode())
    assert "Clínica Sonrisa" in raw.decode("utf-8-sig")
    assert "señora Muñoz" in raw.decode("utf-8-sig")
    assert len(read_dispositions(out)) == 2


def test_files_are_owner_only_even_when_replacing(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("a.csv", "b.parquet"):
        out = folder / name
        out.write_text("old")
        out.chmod(0o644)
        export_dispositions(store, Filters(), out)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.parquet"]


def test_every_export_is_audited(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    out = tmp_path / "audited.parquet"
    filters = Filters(campaigns=("hygiene-recall",), date_to=date(2026, 11, 30))
    export_dispositions(store, filters, out, actor="analyst")
    sink = io.BytesIO()
    export_dispositions(store, Filters(clinics=("C1",)), None, stdout=sink, excel=True)
    log = read_audit_log(store)
    assert list(log["action"]) == ["export dispositions", "export dispositions"]
    newest, oldest = log.iloc[0], log.iloc[1]
    assert (oldest["actor"], oldest["rows"], oldest["output"], oldest["format"]) == (
        "analyst",
        6,
        str(out.resolve()),
        "parquet",
    )
    assert oldest["filters"] == {"campaigns": ["hygiene-recall"], "to": "2026-11-30"}
    assert (newest["rows"], newest["output"], newest["format"]) == (3, "stdout", "csv")
    assert newest["filters"] == {"clinics": ["C1"], "excel": True}
    assert newest["actor"]  # the OS user
    assert newest["at"].tzinfo is not None


@pytest.mark.parametrize(
    ("first", "last", "numbers"),
    [
        # 7 starts Dec 1 05:30 UTC = Nov 30 23:30 in San Antonio: it is a Nov 30 call.
        (date(2026, 11, 30), date(2026, 11, 30), [1, 2, 4, 5, 3, 6, 7]),
        (date(2026, 12, 1), None, []),
        # 8 starts Nov 30 06:30 UTC = Nov 29 22:30 in Portland.
        (None, date(2026, 11, 29), [8]),
        (date(2026, 11, 29), date(2026, 11, 29), [8]),
    ],
    ids=["one-day", "from-next-day", "to-day-before", "day-before"],
)
def test_from_and_to_are_inclusive_dates_in_the_clinic_zone(
    store: Engine, first: date | None, last: date | None, numbers: list[int]
) -> None:
    floor = build_floor(store)
    frame = frame_of(store, Filters(date_from=first, date_to=last))
    got = list(frame["attempt_id"]) if len(frame) else []
    assert got == [str(floor.attempts[n]) for n in numbers]


def test_filters_by_campaign_and_clinic(store: Engine) -> None:
    floor = build_floor(store)
    frame = frame_of(store, Filters(campaigns=("hygiene-recall",), clinics=("C1",)))
    assert list(frame["attempt_id"]) == [str(floor.attempts[n]) for n in (4, 5)]


def test_unknown_names_and_bad_files_are_user_errors(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    with pytest.raises(NotFound, match=r"^No campaign named 'x' in the store \(known: "):
        iter_dispositions(store, Filters(campaigns=("x",)))
    with pytest.raises(NotFound, match=r"^No clinic with id 'C9' \(known: C1, C2\)$"):
        iter_dispositions(store, Filters(clinics=("C9",)))
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"name the file \.csv or \.parquet$"):
        export_dispositions(store, Filters(), folder / "out.xlsx")
    assert list(folder.iterdir()) == []
    assert read_audit_log(store).empty


def test_cli_streams_csv_to_stdout(store: Engine) -> None:
    floor = build_floor(store)
    result = CliRunner().invoke(
        cli,
        ["--db", url_of(store), "export", "dispositions", "--campaign", "reminders"],
        env={"DIALER_TIMEZONE": ZONE},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[0] for line in lines[1:]] == [
        str(floor.attempts[8]),
        str(floor.attempts[7]),
    ]
    assert read_audit_log(store).iloc[0]["output"] == "stdout"


def test_cli_writes_a_file_and_says_so(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    out = tmp_path / "nov.parquet"
    args = ["--db", url_of(store), "export", "dispositions", "--from", "2026-11-30", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote 7 attempts to {out} (parquet).\n"
    assert len(read_dispositions(out)) == 7


def test_cli_shows_the_audit_log_newest_first(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    runner = CliRunner()
    base = ["--db", url_of(store)]
    out = tmp_path / "nov.csv"
    env = {"DIALER_TIMEZONE": ZONE}
    runner.invoke(cli, [*base, "export", "dispositions", "--clinic", "C1", "-o", str(out)])
    runner.invoke(cli, [*base, "export", "dispositions", "--campaign", "reminders"])
    result = runner.invoke(cli, [*base, "report", "audit", "--json"], env=env)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [(e["id"], e["filters"], e["rows"], e["output"]) for e in entries] == [
        (2, {"campaigns": ["reminders"]}, 2, "stdout"),
        (1, {"clinics": ["C1"]}, 3, str(out.resolve())),
    ]
    result = runner.invoke(cli, [*base, "report", "audit", "--format", "csv", "--limit", "1"])
    lines = result.stdout.splitlines()
    assert lines[0] == "id,at,actor,action,filters,rows,output,format"
    assert len(lines) == 2
    assert lines[1].endswith(',export dispositions,"{""campaigns"": [""reminders""]}",2,stdout,csv')


def test_cli_errors_are_one_line(store: Engine, tmp_path: Path) -> None:
    build_floor(store)
    runner = CliRunner()
    base = ["--db", url_of(store), "export", "dispositions"]
    result = runner.invoke(cli, [*base, "--campaign", "nope"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: No campaign named 'nope' in the store (known: hygiene-recall, reminders)\n"
    )
    result = runner.invoke(cli, [*base, "--excel", "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code == 1
    assert result.stderr == "Error: --excel applies to CSV only (Parquet has no byte-order mark)\n"
    result = runner.invoke(cli, [*base, "--from", "2026-12-02", "--to", "2026-12-01"])
    assert result.stderr == "Error: --from 2026-12-02 is after --to 2026-12-01\n"
    result = runner.invoke(cli, [*base, "--from", "30/11/2026"])
    assert result.exit_code == 2
