"""Importing canonical CSV files: counts, normalisation, rejects, encodings, mappings, snapshots."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.errors import InputFileError, MissingColumns
from dialer.ingest import writing
from dialer.ingest.importer import import_file
from dialer.store.models import Appointment, Clinic, ImportRun, Patient, Phone, Recall

CLINICS = """clinic_id,name,timezone,state,phone
C1,Bright Smiles Portland,America/Los_Angeles,OR,(503) 555-0100
C2,Clínica Sonrisa,America/Chicago,TX,210-555-0101
"""
PATIENT_HEADER = (
    "patient_id,clinic_id,first_name,last_name,birth_date,guarantor_id,language,"
    "mobile_phone,home_phone,work_phone,postal_code,state"
)
WriteCsv = Callable[..., Path]


def rows(engine: Engine, query: sa.Select[tuple[object, ...]]) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


@pytest.fixture
def clinics(store: Engine, write_csv: WriteCsv, now: datetime) -> Engine:
    import_file(store, "clinics", write_csv("clinics.csv", CLINICS), now=now)
    return store


def patients_csv(
    write_csv: WriteCsv, *lines: str, header: str = PATIENT_HEADER, name: str = "patients.csv"
) -> Path:
    return write_csv(name, "\n".join([header, *lines]) + "\n")


def test_clinics_import_counts_and_values(
    store: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    result = import_file(store, "clinics", write_csv("clinics.csv", CLINICS), now=now)
    assert result.as_json() == {
        "file": str(write_csv("clinics.csv", CLINICS)),
        "rows": 2,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "rejects_file": None,
        "deleted": 0,
        "skipped": 0,
    }
    assert rows(
        store,
        sa.select(
            Clinic.external_id, Clinic.name, Clinic.timezone, Clinic.state, Clinic.phone
        ).order_by(Clinic.external_id),
    ) == [
        ("C1", "Bright Smiles Portland", "America/Los_Angeles", "OR", "+15035550100"),
        ("C2", "Clínica Sonrisa", "America/Chicago", "TX", "+12105550101"),
    ]


def test_clinic_rejects_name_each_bad_column(
    store: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    path = write_csv(
        "clinics.csv",
        "clinic_id,name,timezone,state,phone\n"
        "C9,Mars,Mars/Olympus,Oregon,123\n,No id,America/Denver,CO,\n",
    )
    result = import_file(store, "clinics", path, now=now)
    assert (result.inserted, result.rejected) == (0, 2)
    assert result.messages == [
        f"{path}:2: timezone: expected an IANA time zone such as America/Chicago; "
        "state: expected a 2-letter US state code; phone: expected a valid phone number",
        f"{path}:3: clinic_id: a value is required",
    ]


def test_patients_normalised(clinics: Engine, write_csv: WriteCsv, now: datetime) -> None:
    path = patients_csv(
        write_csv,
        "1,C1,Ana,Peña,1980-02-03,,Spanish,(503) 234-5678 x12,503.234.1111,,97201,or",
        "2,C1,Luis,Peña,2015-06-07,1,spa,,,,97201,OR",
        "3,C1,Bob,Smith,1970-01-01,3,ENGLISH,n/a,,,97201-1234,OR",
        "4,C2,Mai,Tran,1990-01-01,4,Vietnamese,,,,78201,TX",
        "5,C2,Kim,Lee,1991-01-01,5,,,,,78201,TX",
    )
    result = import_file(clinics, "patients", path, now=now)
    assert (result.inserted, result.rejected) == (5, 0)
    assert rows(
        clinics,
        sa.select(
            Patient.external_id,
            Patient.guarantor_external_id,
            Patient.language,
            Patient.state,
            Patient.status,
            Patient.do_not_call,
        ).order_by(Patient.id),
    ) == [
        ("1", "1", "es", "OR", "active", False),
        ("2", "1", "es", "OR", "active", False),
        ("3", "3", "en", "OR", "active", False),
        ("4", "4", "Vietnamese", "TX", "active", False),
        ("5", "5", None, "TX", "active", False),
    ]
    phones = rows(
        clinics,
        sa.select(
            Patient.external_id,
            Phone.kind,
            Phone.phone,
            Phone.valid,
            Phone.timezones,
            Phone.consent_source,
        ).join(Patient, Patient.id == Phone.patient_id),
    )
    assert sorted(phones, key=lambda p: (str(p[0]), str(p[1]))) == [
        ("1", "home", "+15032341111", True, "America/Los_Angeles", "provided_to_practice"),
        ("1", "mobile", "+15032345678", True, "America/Los_Angeles", "provided_to_practice"),
        ("3", "mobile", None, False, None, None),
    ]
    with clinics.connect() as conn:
        guarantors = conn.execute(
            sa.text(
                "SELECT p.external_id, g.external_id FROM patients p JOIN patients g "
                "ON g.id = p.guarantor_id ORDER BY p.id"
            )
        ).all()
    assert [tuple(g) for g in guarantors] == [
        ("1", "1"),
        ("2", "1"),
        ("3", "3"),
        ("4", "4"),
        ("5", "5"),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        pytest.param(
            "1,C1,A,B,02/03/1980,1,en,,,,97201,OR",
            "birth_date: expected a date as YYYY-MM-DD",
            id="date-format",
        ),
        pytest.param(
            "1,C1,A,B,1980-02-30,1,en,,,,97201,OR",
            "birth_date: expected a date as YYYY-MM-DD",
            id="impossible-date",
        ),
        pytest.param(
            "1,C9,A,B,1980-02-03,1,en,,,,97201,OR",
            "clinic_id: no clinic with this id; import clinics first",
            id="unknown-clinic",
        ),
        pytest.param(
            ",C1,A,B,1980-02-03,,en,,,,97201,OR", "patient_id: a value is required", id="missing-id"
        ),
        pytest.param(
            "1,C1,A,B,1980-02-03,77,en,,,,97201,OR",
            "guarantor_id: no patient with this id in the file or the store",
            id="unknown-guarantor",
        ),
        pytest.param(
            "1,C1,A,B,1980-02-03,1,en,,,,97201,Oregon",
            "state: expected a 2-letter US state code",
            id="state",
        ),
    ],
)
def test_patient_rejects(
    clinics: Engine, write_csv: WriteCsv, now: datetime, line: str, error: str
) -> None:
    path = patients_csv(write_csv, line)
    result = import_file(clinics, "patients", path, now=now)
    assert (result.rows, result.inserted, result.rejected) == (1, 0, 1)
    assert result.messages == [f"{path}:2: {error}"]
    assert rows(clinics, sa.select(sa.func.count()).select_from(Patient)) == [(0,)]


@pytest.mark.parametrize(
    ("column", "value", "error"),
    [
        (
            "status",
            "actve",
            "status: expected one of active, inactive, archived, deceased, "
            "non_patient, prospective",
        ),
        ("preferred_phone", "cell", "preferred_phone: expected one of mobile, home, work"),
        ("do_not_call", "Y", "do_not_call: expected true/false, yes/no or 1/0"),
        ("last_visit_date", "yesterday", "last_visit_date: expected a date as YYYY-MM-DD"),
        ("recall_due_date", "2026-13-01", "recall_due_date: expected a date as YYYY-MM-DD"),
    ],
)
def test_optional_column_rejects(
    clinics: Engine, write_csv: WriteCsv, now: datetime, column: str, value: str, error: str
) -> None:
    path = patients_csv(
        write_csv,
        f"1,C1,A,B,1980-02-03,1,en,,,,97201,OR,{value}",
        header=f"{PATIENT_HEADER},{column}",
    )
    result = import_file(clinics, "patients", path, now=now)
    assert result.messages == [f"{path}:2: {error}"]


@pytest.mark.parametrize(
    "word,expected",
    [
        ("TRUE", True),
        ("yes", True),
        ("1", True),
        ("False", False),
        ("NO", False),
        ("0", False),
        ("", False),
    ],
)
def test_booleans_any_case(
    clinics: Engine, write_csv: WriteCsv, now: datetime, word: str, expected: bool
) -> None:
    path = patients_csv(
        write_csv,
        f"1,C1,A,B,1980-02-03,1,en,,,,97201,OR,{word}",
        header=f"{PATIENT_HEADER},do_not_call",
    )
    import_file(clinics, "patients", path, now=now)
    assert rows(clinics, sa.select(Patient.do_not_call)) == [(expected,)]


def test_guarantor_from_the_store_and_rejected_guarantor(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    import_file(
        clinics,
        "patients",
        patients_csv(write_csv, "10,C1,A,B,1980-01-01,,en,,,,97201,OR"),
        now=now,
    )
    path = patients_csv(
        write_csv,
        "11,C1,C,B,2010-01-01,10,en,,,,97201,OR",
        "20,C1,D,E,1980-99-01,,en,,,,97201,OR",
        "21,C1,F,E,2012-01-01,20,en,,,,97201,OR",
        name="more.csv",
    )
    result = import_file(clinics, "patients", path, now=now)
    assert (result.inserted, result.rejected) == (1, 2)
    assert result.messages == [
        f"{path}:3: birth_date: expected a date as YYYY-MM-DD",
        f"{path}:4: guarantor_id: the guarantor's own row is rejected",
    ]


def test_conflicting_duplicates_reject_every_row_and_exact_repeats_are_unchanged(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    path = patients_csv(
        write_csv,
        "1,C1,A,B,1980-01-01,,en,,,,97201,OR",
        "2,C1,C,D,1981-01-01,,en,,,,97201,OR",
        "1,C1,A,B,1980-01-01,,es,,,,97201,OR",
        "2,C1,C,D,1981-01-01,,en,,,,97201,OR",
    )
    result = import_file(clinics, "patients", path, now=now)
    assert (result.rows, result.inserted, result.unchanged, result.rejected) == (4, 1, 1, 2)
    assert result.messages == [
        f"{path}:2: patient_id: id 1 appears on lines 2, 4 with different data",
        f"{path}:4: patient_id: id 1 appears on lines 2, 4 with different data",
    ]


def test_reimport_is_unchanged_then_updates(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    lines = [
        "1,C1,A,B,1980-01-01,,en,5032345678,,,97201,OR",
        "2,C1,C,B,2010-01-01,1,en,,,,97201,OR",
    ]
    path = patients_csv(write_csv, *lines)
    first = import_file(clinics, "patients", path, now=now)
    again = import_file(clinics, "patients", path, now=now)
    assert (first.inserted, again.inserted, again.updated, again.unchanged) == (2, 0, 0, 2)
    lines[0] = "1,C1,A,B,1980-01-01,,en,(503) 234-9999,,,97201,OR"
    changed = import_file(clinics, "patients", patients_csv(write_csv, *lines), now=now)
    assert (changed.updated, changed.unchanged) == (1, 1)
    assert rows(clinics, sa.select(Phone.phone)) == [("+15032349999",)]


def test_snapshot_marks_absent_rows_deleted(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    full = [
        "1,C1,A,B,1980-01-01,,en,,,,97201,OR",
        "2,C1,C,D,1981-01-01,,en,,,,97201,OR",
        "3,C1,E,F,1982-01-01,,en,,,,97201,OR",
    ]
    import_file(clinics, "patients", patients_csv(write_csv, *full), now=now)
    partial = patients_csv(write_csv, full[0], full[2], name="snapshot.csv")
    result = import_file(clinics, "patients", partial, snapshot=True, now=now)
    assert (result.rows, result.unchanged, result.deleted) == (2, 2, 1)
    assert rows(clinics, sa.select(Patient.external_id).where(Patient.deleted_at.is_not(None))) == [
        ("2",)
    ]
    back = import_file(clinics, "patients", patients_csv(write_csv, *full), now=now)
    assert (back.updated, back.unchanged) == (1, 2)


def test_rejects_file_keeps_original_cells_with_physical_lines(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    text = (
        f"{PATIENT_HEADER},notes\n"
        '1,C1,A,B,1980-01-01,,en,,,,97201,OR,"two\nline note"\n'
        "2,C1,C,D,1981-02-30,,en,,,,97201,OR,ok\n"
    )
    path = write_csv("patients.csv", text)
    result = import_file(clinics, "patients", path, now=now)
    assert result.rejects_file == f"{path}.rejects.csv"
    rejects = Path(result.rejects_file)
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").splitlines() == [
        f"{PATIENT_HEADER},notes,line,error",
        "2,C1,C,D,1981-02-30,,en,,,,97201,OR,ok,4,birth_date: expected a date as YYYY-MM-DD",
    ]
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    write_csv("patients.csv", text.replace("1981-02-30", "1981-02-28"))
    assert import_file(clinics, "patients", path, now=now).rejects_file is None
    assert not rejects.exists()


def test_missing_required_columns_import_nothing(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    path = write_csv("patients.csv", "patient_id,clinic_id,first_name\n1,C1,A\n")
    with pytest.raises(MissingColumns) as caught:
        import_file(clinics, "patients", path, now=now)
    assert caught.value.message == (
        f"{path}: missing required columns last_name, birth_date, guarantor_id, language, "
        "mobile_phone, home_phone, work_phone, postal_code, state for patients; nothing was "
        "imported (see `dialer import patients --help` for the columns, or map yours with "
        "--mapping)"
    )
    assert rows(clinics, sa.select(sa.func.count()).select_from(Patient)) == [(0,)]


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b"")]
)
def test_encodings_detected(
    clinics: Engine, tmp_path: Path, now: datetime, encoding: str, bom: bytes
) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(
        bom
        + f"{PATIENT_HEADER}\n1,C1,José,Peña Núñez,1980-01-01,,es,,,,97201,OR\n".encode(encoding)
    )
    result = import_file(clinics, "patients", path, now=now)
    assert result.inserted == 1
    assert rows(clinics, sa.select(Patient.first_name, Patient.last_name)) == [
        ("José", "Peña Núñez")
    ]


def test_encoding_override_and_undecodable_file(
    clinics: Engine, tmp_path: Path, now: datetime
) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(f"{PATIENT_HEADER}\n1,C1,José,B,1980-01-01,,es,,,,97201,OR\n".encode("cp1252"))
    import_file(clinics, "patients", path, encoding="latin-1", now=now)
    assert rows(clinics, sa.select(Patient.first_name)) == [("José",)]
    with pytest.raises(InputFileError, match="not valid utf-8 text at byte"):
        import_file(clinics, "patients", path, encoding="utf-8", now=now)


def test_mapping_renames_columns_values_and_dates(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    mapping = write_csv(
        "map.yaml",
        """
columns: {PatNum: patient_id, "First Name": first_name, Last: last_name, DOB: birth_date,
          Guar: guarantor_id, Lang: language, Cell: mobile_phone, Home: home_phone,
          Work: work_phone, Zip: postal_code, ST: state, Stat: status, Active: do_not_call}
values:
  status: {A: active, I: inactive}
  language: {Espanol: es}
  do_not_call: {Y: true, N: false}
date_format: "%m/%d/%Y"
defaults: {clinic_id: C1}
""",
    )
    path = write_csv(
        "export.csv",
        "PatNum,First Name,Last,DOB,Guar,Lang,Cell,Home,Work,Zip,ST,"
        "Stat,Active\n7,Ana,B,02/03/1980,7,Espanol,,,,97201,OR,I,y\n",
    )
    result = import_file(clinics, "patients", path, mapping_path=mapping, now=now)
    assert result.inserted == 1, result.messages
    assert rows(
        clinics,
        sa.select(
            Patient.external_id,
            Patient.birth_date,
            Patient.language,
            Patient.status,
            Patient.do_not_call,
        ),
    ) == [("7", date(1980, 2, 3), "es", "inactive", True)]


def test_prophy_recall_from_patients_file(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    path = patients_csv(
        write_csv,
        "1,C1,A,B,1980-01-01,,en,,,,97201,OR,2026-12-01",
        header=f"{PATIENT_HEADER},recall_due_date",
    )
    import_file(clinics, "patients", path, now=now)
    assert rows(
        clinics,
        sa.select(Recall.recall_type, Recall.due_date, Recall.disabled, Recall.scheduled_date),
    ) == [("prophy", date(2026, 12, 1), False, None)]


APPT_HEADER = "appointment_id,patient_id,clinic_id,start_at,duration_minutes,status,kind"


def test_appointments_local_times_become_utc(
    clinics: Engine, write_csv: WriteCsv, now: datetime
) -> None:
    import_file(
        clinics, "patients", patients_csv(write_csv, "1,C1,A,B,1980-01-01,,en,,,,97201,OR"), now=now
    )
    path = write_csv(
        "appts.csv",
        f"{APPT_HEADER}\n"
        "A1,1,C1,2026-07-01 09:30,60,scheduled,hygiene\n"
        "A2,1,C2,2026-12-01 16:00,,completed,\n"
        "A3,1,C2,2026-03-08 02:30,30,scheduled,exam\n"
        "A4,1,C1,2026-11-01 01:30,30,scheduled,exam\n"
        "A5,9,C1,2026-07-01 09:30,60,scheduled,hygiene\n"
        "A6,1,C1,2026-07-01 09:30,60,pending,cleaning\n",
    )
    result = import_file(clinics, "appointments", path, now=now)
    assert (result.inserted, result.rejected) == (3, 3)
    assert result.messages == [
        f"{path}:4: start_at: this local time does not exist in the clinic's time zone "
        "(daylight-saving change)",
        f"{path}:6: patient_id: no patient with this id; import patients first",
        f"{path}:7: status: expected one of scheduled, confirmed, completed, cancelled, broken, "
        "no_show; kind: expected one of hygiene, exam, treatment, emergency, other",
    ]
    assert rows(
        clinics,
        sa.select(
            Appointment.external_id,
            Appointment.start_at,
            Appointment.duration_minutes,
            Appointment.kind,
        ).order_by(Appointment.external_id),
    ) == [
        ("A1", datetime(2026, 7, 1, 16, 30, tzinfo=UTC), 60, "hygiene"),
        ("A2", datetime(2026, 12, 1, 22, 0, tzinfo=UTC), None, None),
        # 01:30 happens twice on 2026-11-01 in Portland: the first (daylight) one is taken.
        ("A4", datetime(2026, 11, 1, 8, 30, tzinfo=UTC), 30, "exam"),
    ]


def test_a_failed_write_leaves_nothing_behind(
    clinics: Engine, write_csv: WriteCsv, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = patients_csv(
        write_csv,
        "1,C1,A,B,1980-01-01,,en,5032345678,,,97201,OR",
        "2,C1,C,D,19800101,,en,,,,97201,OR",
    )

    def broken_link(conn: sa.Connection) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writing, "link_guarantors", broken_link)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(clinics, "patients", path, now=now)
    assert rows(clinics, sa.select(sa.func.count()).select_from(Patient)) == [(0,)]
    assert rows(clinics, sa.select(sa.func.count()).select_from(Phone)) == [(0,)]
    assert rows(clinics, sa.select(sa.func.count()).select_from(ImportRun)) == [(1,)]
    assert not Path(f"{path}.rejects.csv").exists()
    assert list(path.parent.glob(".*.tmp")) == []


def test_cli_import_json_and_messages_without_patient_data(
    store: Engine, db_url: str, write_csv: WriteCsv
) -> None:
    runner = CliRunner()
    clinics_path = write_csv("clinics.csv", CLINICS)
    assert (
        runner.invoke(cli, ["--db", db_url, "import", "clinics", str(clinics_path)]).exit_code == 0
    )
    path = patients_csv(
        write_csv,
        "1,C1,Ana,Peña,1980-02-03,,es,5032345678,,,97201,OR",
        "2,C1,Secret,Name,1999-99-99,,es,(503) 234-1111,,,97201,OR",
    )
    out = runner.invoke(cli, ["--db", db_url, "import", "patients", str(path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {
        "file": str(path),
        "rows": 2,
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "rejects_file": f"{path}.rejects.csv",
        "deleted": 0,
        "skipped": 0,
    }
    table = runner.invoke(cli, ["--db", db_url, "import", "patients", str(path)])
    assert f"{path}:3: birth_date: expected a date as YYYY-MM-DD" in table.output
    for secret in ("Secret", "Name", "1999-99-99", "234-1111", "2341111"):
        assert secret not in table.output


def test_cli_missing_columns_exit_1(store: Engine, db_url: str, write_csv: WriteCsv) -> None:
    path = write_csv("clinics.csv", "clinic_id,name\nC1,X\n")
    out = CliRunner().invoke(cli, ["--db", db_url, "import", "clinics", str(path)])
    assert out.exit_code == 1
    assert out.output == (
        f"Error: {path}: missing required columns timezone, state, phone for "
        "clinics; nothing was imported (see `dialer import clinics --help` for "
        "the columns, or map yours with --mapping)\n"
    )
