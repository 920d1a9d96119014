"""Importing an Open Dental database: mapping, counts, snapshots, rejects, errors and the CLI.

Source databases are built with the real Open Dental column sets (``tests/opendental_fixtures``)
on SQLite always and on MariaDB when DIALER_TEST_MYSQL_URL is set, crossed with the store on
SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.cli.imports import import_group
from dialer.cli.opendental import COMMAND
from dialer.errors import ConfigError, DatabaseError, InputFileError
from dialer.ingest import odsource, opendental
from dialer.ingest.opendental import OpenDentalResult, import_opendental
from dialer.store.models import Appointment, Clinic, ImportRun, Patient, Phone, Recall
from tests.opendental_fixtures import OpenDentalDb, od, seed

__all__ = ["od"]  # the fixture, imported for pytest

FIRST_RUN = [
    {
        "table": "clinic",
        "rows": 4,
        "inserted": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "skipped": 0,
        "deleted": 0,
        "rejects_file": None,
    },
    {
        "table": "patient",
        "rows": 8,
        "inserted": 8,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "skipped": 1,
        "deleted": 0,
        "rejects_file": None,
    },
    {
        "table": "appointment",
        "rows": 6,
        "inserted": 6,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "skipped": 4,
        "deleted": 0,
        "rejects_file": None,
    },
    {
        "table": "recall",
        "rows": 4,
        "inserted": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "skipped": 0,
        "deleted": 0,
        "rejects_file": None,
    },
]


def run(store: Engine, db: OpenDentalDb, now: datetime, folder: Path) -> list[OpenDentalResult]:
    return import_opendental(store, db.url, now=now, rejects_dir=folder)


def counts(results: list[OpenDentalResult]) -> list[dict[str, Any]]:
    return [result.as_json() for result in results]


def rows(engine: Engine, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query).all()]


def by_external_id(engine: Engine, model: Any, *columns: Any) -> dict[str, tuple[Any, ...]]:
    found = rows(engine, sa.select(model.external_id, *columns).order_by(model.external_id))
    return {row[0]: row[1:] for row in found}


@pytest.fixture
def seeded(od: OpenDentalDb) -> OpenDentalDb:
    seed(od)
    return od


@pytest.fixture
def imported(store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path) -> Engine:
    assert counts(run(store, seeded, now, tmp_path)) == FIRST_RUN
    return store


def test_first_import_counts_every_table_and_logs_the_runs(
    store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    assert counts(run(store, seeded, now, tmp_path)) == FIRST_RUN
    assert rows(
        store,
        sa.select(ImportRun.kind, ImportRun.source, ImportRun.rows, ImportRun.skipped).order_by(
            ImportRun.id
        ),
    ) == [
        ("clinics", "opendental:clinic", 4, 0),
        ("patients", "opendental:patient", 8, 1),
        ("appointments", "opendental:appointment", 6, 4),
        ("recalls", "opendental:recall", 4, 0),
    ]
    assert list(tmp_path.glob("*.rejects.csv")) == []


def test_family_is_one_household_with_e164_phones_and_languages(imported: Engine) -> None:
    guarantor = sa.orm.aliased(Patient)
    family = rows(
        imported,
        sa.select(Patient.external_id, guarantor.external_id, Patient.language)
        .join(guarantor, Patient.guarantor_id == guarantor.id)
        .where(Patient.external_id.in_(["101", "102", "103"]))
        .order_by(Patient.external_id),
    )
    assert family == [("101", "101", "es"), ("102", "101", "es"), ("103", "101", "en")]
    phones = rows(
        imported,
        sa.select(Patient.external_id, Phone.kind, Phone.phone, Phone.valid)
        .join(Phone, Phone.patient_id == Patient.id)
        .where(Patient.external_id.in_(["101", "106"]))
        .order_by(Patient.external_id, Phone.kind),
    )
    assert phones == [
        ("101", "home", "+15125550102", True),
        ("101", "mobile", "+15125550101", True),
        ("106", "home", "+12125550116", True),
        ("106", "work", "+12125550106", True),
    ]


def test_patient_fields_statuses_birthdates_and_do_not_call(imported: Engine) -> None:
    found = by_external_id(
        imported,
        Patient,
        Patient.status,
        Patient.birth_date,
        Patient.do_not_call,
        Patient.preferred_phone,
        Patient.state,
        Patient.postal_code,
        Patient.source,
        Patient.last_visit_date,
    )
    assert found == {
        "101": ("active", date(1985, 3, 14), False, "mobile", "TX", "78701", "opendental", None),
        "102": ("active", date(2015, 6, 1), False, None, "TX", "78701", "opendental", None),
        "103": ("active", None, False, None, "TX", "78701", "opendental", None),
        "105": ("non_patient", date(1970, 1, 2), True, None, None, None, "opendental", None),
        "106": ("inactive", None, False, "work", None, None, "opendental", None),
        "107": ("archived", None, False, None, None, None, "opendental", None),
        "108": ("deceased", None, False, None, None, None, "opendental", None),
        "109": ("prospective", None, True, None, None, None, "opendental", None),
    }


def test_clinic_zones_from_iana_zip_state_and_the_practice(imported: Engine) -> None:
    found = by_external_id(
        imported, Clinic, Clinic.name, Clinic.timezone, Clinic.state, Clinic.phone
    )
    assert found == {
        "0": ("Sunrise Family Dental", "America/Los_Angeles", "OR", "+15035550100"),
        "1": ("Eastside", "America/New_York", "NY", "+12125550100"),
        "2": ("Clínica Sonrisa", "America/Chicago", "TX", "+15125550100"),
        "3": ("Valley", "America/Los_Angeles", "CA", None),
    }


def test_appointment_statuses_confirmation_kind_and_times(imported: Engine) -> None:
    found = by_external_id(
        imported,
        Appointment,
        Appointment.status,
        Appointment.kind,
        Appointment.duration_minutes,
        Appointment.start_at,
        Appointment.booked_at,
    )
    start = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 09:00 in Austin; booked after DST ended
    assert found == {
        "1001": ("scheduled", "hygiene", 30, start, datetime(2026, 11, 1, 16, 15, tzinfo=UTC)),
        "1002": ("confirmed", "other", 20, start, None),
        "1003": ("confirmed", "other", 20, start, None),
        "1004": ("completed", "other", 30, datetime(2026, 5, 1, 12, 0, tzinfo=UTC), None),
        "1005": ("broken", "other", 10, datetime(2026, 6, 1, 12, 0, tzinfo=UTC), None),
        "1010": ("scheduled", "other", 15, datetime(2026, 12, 2, 22, 30, tzinfo=UTC), None),
    }


def test_recalls_one_per_type_with_their_dates(imported: Engine) -> None:
    found = rows(
        imported,
        sa.select(
            Patient.external_id,
            Recall.recall_type,
            Recall.external_id,
            Recall.due_date,
            Recall.disabled,
            Recall.disabled_until,
            Recall.scheduled_date,
            Recall.source,
        )
        .join(Patient, Patient.id == Recall.patient_id)
        .order_by(Recall.external_id),
    )
    assert found == [
        ("101", "prophy", "501", date(2027, 3, 15), False, None, None, "opendental"),
        (
            "102",
            "child_prophy",
            "502",
            date(2026, 12, 10),
            False,
            date(2027, 1, 1),
            date(2026, 12, 1),
            "opendental",
        ),
        ("103", "child_prophy", "503", None, False, None, None, "opendental"),
        ("106", "prophy", "504", date(2026, 6, 1), True, None, None, "opendental"),
    ]


def test_second_identical_run_is_all_unchanged(
    imported: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    results = counts(run(imported, seeded, now, tmp_path))
    assert [
        (r["table"], r["rows"], r["unchanged"], r["inserted"] + r["updated"] + r["deleted"])
        for r in results
    ] == [("clinic", 4, 4, 0), ("patient", 8, 8, 0), ("appointment", 6, 6, 0), ("recall", 4, 4, 0)]


def test_changes_in_open_dental_show_as_updated(
    imported: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    seeded.update("clinic", 3, Description="Valley Dental")
    seeded.update("patient", 102, WirelessPhone="512-555-0112")
    seeded.update("appointment", 1001, Confirmed=23)
    seeded.update("recall", 503, DateDue=date(2027, 2, 1))
    results = counts(run(imported, seeded, now, tmp_path))
    assert [(r["table"], r["updated"], r["unchanged"]) for r in results] == [
        ("clinic", 1, 3),
        ("patient", 1, 7),
        ("appointment", 1, 5),
        ("recall", 1, 3),
    ]
    assert by_external_id(imported, Appointment, Appointment.status)["1001"] == ("confirmed",)
    phones = rows(
        imported,
        sa.select(Phone.kind, Phone.phone)
        .join(Patient, Patient.id == Phone.patient_id)
        .where(Patient.external_id == "102"),
    )
    assert phones == [("mobile", "+15125550112")]


def test_a_patient_deleted_in_open_dental_is_deleted_here_with_its_recall(
    imported: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    seeded.update("patient", 106, PatStatus=4)
    results = run(imported, seeded, now, tmp_path)
    patient, recall = results[1], results[3]
    assert (patient.rows, patient.skipped, patient.deleted, patient.unchanged) == (7, 2, 1, 7)
    assert (recall.rows, recall.rejected, recall.deleted, recall.unchanged) == (4, 1, 1, 3)
    assert recall.messages == [
        "recall RecallNum 504: PatNum: patient 106 is deleted in Open Dental (PatStatus 4)"
    ]
    assert recall.rejects_file == str(tmp_path / "opendental-recall.rejects.csv")
    deleted = rows(imported, sa.select(Patient.deleted_at).where(Patient.external_id == "106"))
    assert deleted == [(now,)]
    assert rows(imported, sa.select(Recall.deleted_at).where(Recall.external_id == "504")) == [
        (now,)
    ]


def add_bad_rows(db: OpenDentalDb) -> None:
    db.insert("clinic", ClinicNum=4, Description="Nowhere", TimeZone="Pacific Standard Time")
    db.insert("patient", PatNum=110, LName="A", FName="B", Guarantor=110, ClinicNum=4)
    db.insert(
        "patient",
        PatNum=111,
        LName="C",
        FName="D",
        Guarantor=111,
        ClinicNum=1,
        State="Ontario",
        Birthdate=date(1990, 7, 4),
    )
    db.insert("patient", PatNum=112, LName="E", FName="F", Guarantor=104, ClinicNum=1)
    db.insert("patient", PatNum=113, LName="G", FName="H", Guarantor=113, ClinicNum=1, PatStatus=9)
    db.insert("patient", PatNum=114, LName="C", FName="J", Guarantor=111, ClinicNum=1)
    at = datetime(2026, 12, 3, 10, 0)
    for num, pat, status, when in (
        (1011, 104, 1, at),
        (1012, 111, 1, at),
        (1013, 101, 4, at),
        (1014, 999, 1, at),
        (1015, 101, 1, datetime(1, 1, 1)),
    ):
        db.insert(
            "appointment", AptNum=num, PatNum=pat, AptStatus=status, ClinicNum=1, AptDateTime=when
        )
    for num, pat, kind in (
        (505, 104, 1),
        (506, 105, 1),
        (507, 105, 1),
        (508, 101, 9),
        (509, 111, 1),
    ):
        db.insert("recall", RecallNum=num, PatNum=pat, RecallTypeNum=kind)


def test_rejected_rows_say_why_in_open_dental_terms_and_go_to_private_files(
    store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    add_bad_rows(seeded)
    results = run(store, seeded, now, tmp_path)
    assert [(r.table, r.rows, r.rejected, r.skipped) for r in results] == [
        ("clinic", 5, 1, 0),
        ("patient", 13, 5, 1),
        ("appointment", 11, 5, 4),
        ("recall", 9, 5, 0),
    ]
    assert [message for r in results for message in r.messages] == [
        "clinic ClinicNum 4: TimeZone: not an IANA zone, and neither Zip nor State gives one; "
        "set a US Zip or State, or an IANA TimeZone such as America/New_York",
        "patient PatNum 110: ClinicNum: clinic 4 is rejected (see opendental-clinic.rejects.csv)",
        "patient PatNum 111: state: expected a 2-letter US state code",
        "patient PatNum 112: Guarantor: patient 104 is deleted in Open Dental (PatStatus 4)",
        "patient PatNum 113: PatStatus: 9 is not a patient status (0-6)",
        "patient PatNum 114: Guarantor: patient 111 is rejected "
        "(see opendental-patient.rejects.csv)",
        "appointment AptNum 1011: PatNum: patient 104 is deleted in Open Dental (PatStatus 4)",
        "appointment AptNum 1012: PatNum: patient 111 is rejected "
        "(see opendental-patient.rejects.csv)",
        "appointment AptNum 1013: AptStatus: 4 is not 1 (scheduled), 2 (complete) or 5 (broken), "
        "nor 3, 6, 7 or 8 (not appointments)",
        "appointment AptNum 1014: PatNum: no patient 999 in the patient table",
        "appointment AptNum 1015: start_at: a value is required",
        "recall RecallNum 505: PatNum: patient 104 is deleted in Open Dental (PatStatus 4)",
        "recall RecallNum 506: PatNum, RecallTypeNum: patient 105 has 2 prophy recalls "
        "(RecallNum 506, 507); keep one in Open Dental",
        "recall RecallNum 507: PatNum, RecallTypeNum: patient 105 has 2 prophy recalls "
        "(RecallNum 506, 507); keep one in Open Dental",
        "recall RecallNum 508: RecallTypeNum: no recall type 9 in recalltype",
        "recall RecallNum 509: PatNum: patient 111 is rejected "
        "(see opendental-patient.rejects.csv)",
    ]
    patients = tmp_path / "opendental-patient.rejects.csv"
    assert [r.rejects_file for r in results] == [
        str(tmp_path / f"opendental-{t}.rejects.csv")
        for t in ("clinic", "patient", "appointment", "recall")
    ]
    assert stat.S_IMODE(patients.stat().st_mode) == 0o600
    with patients.open(encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["PatNum"], r["State"], r["Birthdate"], r["line"]) for r in rejected] == [
        ("110", "", "", "10"),
        ("111", "Ontario", "1990-07-04", "11"),
        ("112", "", "", "12"),
        ("113", "", "", "13"),
        ("114", "", "", "14"),
    ]
    assert list(rejected[0])[-2:] == ["line", "error"]
    assert "Garcia" not in " ".join(m for r in results for m in r.messages)


def test_a_practice_without_a_zone_rejects_it_and_its_patients(
    store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    with seeded.engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM preference WHERE PrefName IN ('PracticeZip', 'PracticeST')")
        )
    clinic, patient, appointment, _ = run(store, seeded, now, tmp_path)
    assert clinic.messages == [
        "clinic ClinicNum 0: TimeZone: the practice (ClinicNum 0) has no zone; set the preference "
        "PracticeZip (or PracticeST) to a US ZIP code (or state)"
    ]
    assert patient.messages == [
        f"patient PatNum {n}: ClinicNum: clinic 0 is rejected (see opendental-clinic.rejects.csv)"
        for n in (108, 109)
    ]
    assert appointment.messages == [
        "appointment AptNum 1010: PatNum: patient 108 is rejected "
        "(see opendental-patient.rejects.csv); "
        "ClinicNum: clinic 0 is rejected (see opendental-clinic.rejects.csv)"
    ]
    with (tmp_path / "opendental-clinic.rejects.csv").open(encoding="utf-8-sig") as handle:
        assert [(r["ClinicNum"], r["Description"], r["line"]) for r in csv.DictReader(handle)] == [
            ("0", "Sunrise Family Dental", "0")
        ]


def test_a_clean_run_removes_the_old_rejects_files(
    store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    seeded.insert("recall", RecallNum=510, PatNum=101, RecallTypeNum=9)
    assert run(store, seeded, now, tmp_path)[3].rejected == 1
    assert (tmp_path / "opendental-recall.rejects.csv").exists()
    seeded.insert("recalltype", RecallTypeNum=9, Description="  Perio   Maintenance ")
    result = run(store, seeded, now, tmp_path)[3]
    assert (result.rejected, result.inserted, result.rejects_file) == (0, 1, None)
    assert not (tmp_path / "opendental-recall.rejects.csv").exists()
    types = rows(store, sa.select(Recall.recall_type).where(Recall.external_id == "510"))
    assert types == [("perio_maintenance",)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop-table", "table recalltype is missing"),
        ("drop-column", "table patient has no column WirelessPhone"),
    ],
    ids=["missing-table", "missing-column"],
)
def test_missing_tables_or_columns_stop_before_anything_is_written(
    store: Engine, seeded: OpenDentalDb, now: datetime, tmp_path: Path, change: str, message: str
) -> None:
    if change == "drop-table":
        seeded.drop("recalltype")
    else:
        seeded.drop_column("patient", "WirelessPhone")
    with pytest.raises(InputFileError) as caught:
        run(store, seeded, now, tmp_path)
    masked = sa.engine.make_url(seeded.url).render_as_string(hide_password=True)
    assert caught.value.message == (
        f"Open Dental database {masked}: {message}; nothing was imported"
    )
    assert rows(store, sa.select(sa.func.count()).select_from(Clinic)) == [(0,)]
    assert rows(store, sa.select(sa.func.count()).select_from(ImportRun)) == [(0,)]


def test_a_failure_while_writing_leaves_the_store_and_rejects_untouched(
    store: Engine,
    seeded: OpenDentalDb,
    now: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded.update("patient", 103, State="Ontario")  # a patient reject is staged first
    folder = tmp_path / "rejects"
    folder.mkdir()

    def fail(*_args: object) -> tuple[int, int, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(opendental, "write_recalls", fail)
    with pytest.raises(RuntimeError):
        run(store, seeded, now, folder)
    for model in (Clinic, Patient, Appointment, ImportRun):
        assert rows(store, sa.select(sa.func.count()).select_from(model)) == [(0,)]
    assert list(folder.iterdir()) == []  # the staged patient rejects were removed


def test_an_empty_open_dental_imports_nothing(
    store: Engine, od: OpenDentalDb, now: datetime, tmp_path: Path
) -> None:
    results = counts(run(store, od, now, tmp_path))
    assert [(r["table"], r["rows"], r["skipped"], r["rejects_file"]) for r in results] == [
        ("clinic", 0, 0, None),
        ("patient", 0, 0, None),
        ("appointment", 0, 0, None),
        ("recall", 0, 0, None),
    ]


def test_an_unreachable_database_is_named_without_its_password(
    store: Engine, now: datetime, tmp_path: Path
) -> None:
    url = "mariadb://reader:s3cret-pw@127.0.0.1:1/opendental"  # a bare scheme uses PyMySQL
    with pytest.raises(DatabaseError) as caught:
        import_opendental(store, url, now=now, rejects_dir=tmp_path)
    assert caught.value.message.startswith(
        "Cannot read the Open Dental database mariadb+pymysql://reader:***@127.0.0.1:1/opendental: "
    )
    assert "s3cret" not in caught.value.message


def test_a_missing_sqlite_file_is_not_created(store: Engine, now: datetime, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        import_opendental(store, f"sqlite:///{tmp_path / 'nope.db'}", now=now)
    assert caught.value.message == (
        f"Cannot open the Open Dental database sqlite:///{tmp_path / 'nope.db'}: no such file"
    )
    assert not (tmp_path / "nope.db").exists()


def test_missing_pymysql_says_what_to_install(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)  # what an install without it looks like
    with pytest.raises(ConfigError) as caught:
        import_opendental(store, "mysql://reader:pw@db.example/opendental")
    assert caught.value.message == (
        "Reading an Open Dental database on MySQL or MariaDB needs PyMySQL: "
        "pip install 'dialer[opendental]'"
    )


def test_a_url_that_does_not_parse_is_not_echoed(store: Engine) -> None:
    with pytest.raises(ConfigError) as caught:
        import_opendental(store, "reader:s3cret@od-server")
    assert caught.value.message == (
        "The Open Dental URL is not a database URL (expected e.g. "
        "mysql+pymysql://user:password@host/opendental)"
    )


@pytest.mark.parametrize(
    ("cells", "with_time", "expected"),
    [
        (["0001-01-01", "0000-00-00", "", "2026-03-04"], False, ["", "", "", "2026-03-04"]),
        (
            ["0001-01-01 00:00:00", "2026-03-04 09:05:59", "2026-03-04T09:05:00.000000"],
            True,
            ["", "2026-03-04 09:05", "2026-03-04 09:05"],
        ),
        (["2026-03-04 09:05:00"], False, ["2026-03-04"]),
        (["not a date"], False, ["not a date"]),  # left for the canonical check to reject
    ],
    ids=["dates", "datetimes", "date-of-datetime", "garbage"],
)
def test_date_cells(cells: list[str], with_time: bool, expected: list[str]) -> None:
    import pandas as pd

    assert (
        list(odsource.date_cells(pd.Series(cells, dtype=object), with_time=with_time)) == expected
    )


@pytest.mark.parametrize(
    ("timezone", "zip_code", "state", "expected"),
    [
        ("America/Denver", "10001", "NY", "America/Denver"),
        ("Eastern Standard Time", "10001", "", "America/New_York"),
        ("", "", "ca", "America/Los_Angeles"),
        ("", "", "TX", ""),  # Texas has two zones: no guess
        ("Mountain Standard Time", "", "", ""),
    ],
    ids=["iana", "windows-name-uses-zip", "one-zone-state", "two-zone-state", "nothing"],
)
def test_clinic_zone(timezone: str, zip_code: str, state: str, expected: str) -> None:
    assert opendental.clinic_zone(timezone, zip_code, state) == expected


@pytest.fixture
def with_command() -> Iterator[None]:
    """``dialer import opendental`` on the real group, whether or not it is registered yet."""
    added = "opendental" not in import_group.commands
    import_group.add_command(COMMAND)
    yield
    if added:
        del import_group.commands["opendental"]


@pytest.mark.usefixtures("with_command")
def test_cli_json_is_one_counts_object_per_table_without_the_password(
    store: Engine,
    db_url: str,
    seeded: OpenDentalDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIALER_OPENDENTAL_URL", seeded.url)
    result = CliRunner().invoke(cli, ["--db", db_url, "import", "opendental", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == FIRST_RUN
    assert [list(r) for r in data] == [list(r) for r in FIRST_RUN]  # the key order too
    password = sa.engine.make_url(seeded.url).password
    assert not password or password not in result.output


@pytest.mark.usefixtures("with_command")
def test_cli_table_names_rejects_and_their_file(
    store: Engine,
    db_url: str,
    seeded: OpenDentalDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    seeded.insert("recall", RecallNum=510, PatNum=101, RecallTypeNum=9)
    result = CliRunner().invoke(cli, ["--db", db_url, "import", "opendental", "--url", seeded.url])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(
        line.split()
        == [
            "│",
            "recall",
            "│",
            "5",
            "│",
            "4",
            "│",
            "0",
            "│",
            "0",
            "│",
            "1",
            "│",
            "0",
            "│",
            "0",
            "│",
        ]
        for line in lines
    ), result.stdout
    assert "recall RecallNum 510: RecallTypeNum: no recall type 9 in recalltype" in lines
    assert (
        f"Rejected recall rows are in {tmp_path / 'opendental-recall.rejects.csv'}; fix them "
        "in Open Dental and import again."
    ) in result.stdout.replace("\n", " ")
    password = sa.engine.make_url(seeded.url).password
    assert not password or password not in result.output


@pytest.mark.usefixtures("with_command")
def test_cli_without_a_url_says_how_to_give_one(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALER_OPENDENTAL_URL", raising=False)
    result = CliRunner().invoke(cli, ["--db", db_url, "import", "opendental"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: No Open Dental database given: set DIALER_OPENDENTAL_URL (it keeps the password "
        "out of shell history) or pass --url, e.g. "
        "mysql+pymysql://reader:PASSWORD@server/opendental\n"
    )


@pytest.mark.usefixtures("with_command")
def test_cli_connection_error_masks_the_password(
    store: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_OPENDENTAL_URL", "mysql+pymysql://reader:s3cret-pw@127.0.0.1:1/od")
    result = CliRunner().invoke(cli, ["--db", db_url, "import", "opendental"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: Cannot read the Open Dental database mysql+pymysql://reader:***@127.0.0.1:1/od: "
    )
    assert "s3cret" not in result.output


@pytest.mark.usefixtures("with_command")
def test_cli_help_has_the_mapping_and_an_example() -> None:
    result = CliRunner().invoke(cli, ["import", "opendental", "--help"])
    assert result.exit_code == 0, result.output
    assert "  Example:\n    export DIALER_OPENDENTAL_URL=" in result.output
    assert "PatStatus 0 active" in result.output
