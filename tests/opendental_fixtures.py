"""Open Dental source databases for the importer's tests, built with the real column sets.

``tests/data/opendental-columns.json`` holds every column of the Open Dental 24.3 tables (from
the schema documentation). Only the seven tables the importer reads are created; every row is
complete, with Open Dental's own defaults (0, "", and ``0001-01-01`` for empty dates) for the
columns a test does not set.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_URL, NO_MYSQL, skip_unless_configured

COLUMNS: dict[str, list[list[str]]] = json.loads(
    (Path(__file__).parent / "data" / "opendental-columns.json").read_text(encoding="utf-8")
)
TABLES = ("patient", "appointment", "recall", "recalltype", "clinic", "definition", "preference")
PRIMARY_KEYS = {"preference": "PrefNum"}  # the others: the first column
EMPTY_DATE = date(1, 1, 1)
EMPTY_DATETIME = datetime(1, 1, 1)


def sa_type(mysql_type: str) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type of a MySQL column type as the schema documentation writes it."""
    base, _, rest = mysql_type.partition("(")
    size = int(rest.rstrip(")")) if rest else None
    tiny = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")
    types: dict[str, sa.types.TypeEngine[Any]] = {
        "bigint": sa.BigInteger(),
        "int": sa.Integer(),
        "smallint": sa.SmallInteger(),
        "tinyint": tiny,
        "varchar": sa.String(size),
        "char": sa.CHAR(size),
        "text": sa.Text(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),
        "timestamp": sa.TIMESTAMP(),
        "double": sa.Double(),
        "time": sa.Time(),
    }
    return types[base]


def default(mysql_type: str) -> object:
    """Open Dental's value for a column nobody filled."""
    base = mysql_type.partition("(")[0]
    defaults: dict[str, object] = {
        "varchar": "",
        "char": "",
        "text": "",
        "date": EMPTY_DATE,
        "datetime": EMPTY_DATETIME,
        "timestamp": datetime(2026, 1, 1),
        "double": 0.0,
        "time": time(0),
    }
    return defaults.get(base, 0)


def build_metadata(tables: tuple[str, ...] = TABLES) -> sa.MetaData:
    """The Open Dental tables with every documented column."""
    metadata = sa.MetaData()
    for name in tables:
        key = PRIMARY_KEYS.get(name, COLUMNS[name][0][0])
        sa.Table(
            name,
            metadata,
            *(
                sa.Column(column, sa_type(kind), primary_key=column == key, autoincrement=False)
                for column, kind in COLUMNS[name]
            ),
        )
    return metadata


class OpenDentalDb:
    """A test Open Dental database: ``url`` is what the importer reads (SELECT only on MariaDB)."""

    def __init__(self, url: str, admin_url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(admin_url)
        self.metadata = build_metadata()
        self.metadata.create_all(self.engine)
        self.types = {name: dict(map(tuple, cols)) for name, cols in COLUMNS.items()}

    def insert(self, table: str, **values: object) -> None:
        """One complete row: ``values`` over Open Dental's defaults."""
        unknown = set(values) - set(self.types[table])
        assert not unknown, f"{table} has no columns {unknown}"
        row = {column: default(kind) for column, kind in self.types[table].items()}
        row.update(values)
        with self.engine.begin() as conn:
            conn.execute(self.metadata.tables[table].insert(), row)

    def update(self, table: str, key: int | str, **values: object) -> None:
        """Change one row, found by its primary key."""
        target = self.metadata.tables[table]
        column = next(iter(target.primary_key.columns))
        with self.engine.begin() as conn:
            conn.execute(target.update().where(column == key).values(**values))

    def drop(self, table: str) -> None:
        """Drop one of the tables."""
        self.metadata.tables[table].drop(self.engine)

    def drop_column(self, table: str, column: str) -> None:
        """Remove a column (as an older Open Dental would lack it)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def od(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenDentalDb]:
    """An empty Open Dental database: a SQLite file always, MariaDB when configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'opendental.db'}"
        db = OpenDentalDb(url, url)
        yield db
        db.engine.dispose()
        return
    if not MYSQL_URL:
        skip_unless_configured(NO_MYSQL)
    yield from mariadb_database(MYSQL_URL)


def mariadb_database(admin_url: str) -> Iterator[OpenDentalDb]:
    """A fresh database, read by its own SELECT-only user with a password; dropped afterwards."""
    name = f"od_{uuid.uuid4().hex[:12]}"
    password = f"pw-{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
        conn.execute(sa.text(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(sa.text(f"GRANT SELECT ON {name}.* TO '{name}'@'%'"))
    base = make_url(admin_url)
    reader = base.set(username=name, password=password, database=name)
    db = OpenDentalDb(
        reader.render_as_string(hide_password=False),
        base.set(database=name).render_as_string(hide_password=False),
    )
    try:
        yield db
    finally:
        db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
            conn.execute(sa.text(f"DROP USER '{name}'@'%'"))
        admin.dispose()


def seed(db: OpenDentalDb) -> None:
    """A small office: three clinics and the practice, a family, every status, recalls.

    Patients 101-103 are one family (guarantor 101); 104 is deleted; 105-109 cover the other
    statuses. Appointments cover every AptStatus and confirmation case; recalls two types.
    """
    for name, value in (
        ("PracticeTitle", "Sunrise Family Dental"),
        ("PracticeZip", "97201"),
        ("PracticePhone", "5035550100"),
        ("PracticeST", "OR"),
        ("ApptEConfirmStatusAccepted", "24"),
        ("LanguagesUsedByPatients", "eng,spa"),
    ):
        db.insert(
            "preference", PrefNum=len(name) * 100 + len(value), PrefName=name, ValueString=value
        )
    for num, category, item in (
        (21, 2, "Unconfirmed"),
        (22, 2, "Left Msg on Ans Mach"),
        (23, 2, "Appointment Confirmed"),
        (24, 2, "Texted: yes"),
        (25, 13, "Confirmed"),
    ):
        db.insert("definition", DefNum=num, Category=category, ItemName=item, ItemOrder=num)
    db.insert(
        "clinic",
        ClinicNum=1,
        Description="Eastside",
        TimeZone="Eastern Standard Time",
        Zip="10001",
        State="NY",
        Phone="2125550100",
    )
    db.insert(
        "clinic",
        ClinicNum=2,
        Description="Clínica Sonrisa",
        TimeZone="America/Chicago",
        Zip="78701",
        State="TX",
        Phone="5125550100",
        IsHidden=1,
    )
    db.insert("clinic", ClinicNum=3, Description="Valley", State="CA")
    seed_patients(db)
    seed_appointments(db)
    db.insert("recalltype", RecallTypeNum=1, Description="Prophy", DefaultInterval=393217)
    db.insert("recalltype", RecallTypeNum=2, Description="Child Prophy")
    db.insert("recalltype", RecallTypeNum=3, Description="Perio", DefaultInterval=262144)
    db.insert(
        "recall",
        RecallNum=501,
        PatNum=101,
        RecallTypeNum=1,
        DateDue=date(2027, 3, 15),
        DateDueCalc=date(2027, 3, 15),
    )
    db.insert(
        "recall",
        RecallNum=502,
        PatNum=102,
        RecallTypeNum=2,
        DateDue=date(2026, 12, 10),
        DisableUntilDate=date(2027, 1, 1),
        DateScheduled=date(2026, 12, 1),
    )
    db.insert("recall", RecallNum=503, PatNum=103, RecallTypeNum=2)
    db.insert(
        "recall", RecallNum=504, PatNum=106, RecallTypeNum=1, DateDue=date(2026, 6, 1), IsDisabled=1
    )


def seed_patients(db: OpenDentalDb) -> None:
    """Nine patients (see :func:`seed`)."""
    patient = db.insert
    patient(
        "patient",
        PatNum=101,
        LName="Garcia",
        FName="Maria",
        Birthdate=date(1985, 3, 14),
        Guarantor=101,
        ClinicNum=2,
        Language="spa",
        WirelessPhone="(512) 555-0101",
        HmPhone="512-555-0102",
        Zip="78701",
        State="TX",
        PreferContactMethod=4,
        PreferConfirmMethod=2,
        Position=1,
    )
    patient(
        "patient",
        PatNum=102,
        LName="Garcia",
        FName="Sofia",
        Birthdate=date(2015, 6, 1),
        Guarantor=101,
        ClinicNum=2,
        Language="spa",
        Zip="78701",
        State="TX",
        Position=2,
    )
    patient(
        "patient",
        PatNum=103,
        LName="Garcia",
        FName="Mateo",
        Guarantor=101,
        ClinicNum=2,
        Language="eng",
        Zip="78701",
        State="tx",
        Position=2,
    )
    patient(
        "patient",
        PatNum=104,
        LName="Gone",
        FName="Deleted",
        PatStatus=4,
        Guarantor=104,
        ClinicNum=1,
    )
    patient(
        "patient",
        PatNum=105,
        LName="Smith",
        FName="John",
        PatStatus=1,
        Guarantor=105,
        ClinicNum=1,
        Language="eng",
        HmPhone="(212) 555-0105",
        PreferRecallMethod=1,
        Birthdate=date(1970, 1, 2),
    )
    patient(
        "patient",
        PatNum=106,
        LName="Lee",
        FName="Ann",
        PatStatus=2,
        Guarantor=106,
        ClinicNum=1,
        WkPhone="212-555-0106",
        HmPhone="212-555-0116",
        PreferContactMethod=5,
        PreferConfirmMethod=3,
    )
    patient(
        "patient",
        PatNum=107,
        LName="Ray",
        FName="Bob",
        PatStatus=3,
        Guarantor=107,
        ClinicNum=3,
        PreferContactMethod=2,
        WirelessPhone="415-555-0107",
    )
    patient(
        "patient", PatNum=108, LName="Doe", FName="Carl", PatStatus=5, Guarantor=108, ClinicNum=0
    )
    patient(
        "patient",
        PatNum=109,
        LName="Fox",
        FName="Dana",
        PatStatus=6,
        Guarantor=109,
        ClinicNum=0,
        WirelessPhone="503-555-0109",
        PreferContactConfidential=1,
    )


def seed_appointments(db: OpenDentalDb) -> None:
    """Every AptStatus and confirmation case (see :func:`seed`)."""
    at = datetime(2026, 12, 1, 9, 0)
    rows: list[dict[str, Any]] = [
        {
            "AptNum": 1001,
            "PatNum": 101,
            "AptStatus": 1,
            "Confirmed": 21,
            "Pattern": "XXXX//",
            "IsHygiene": 1,
            "ProcDescript": "PerEx, Pro",
            "SecDateTEntry": datetime(2026, 11, 1, 10, 15, 30),
        },
        {"AptNum": 1002, "PatNum": 102, "AptStatus": 1, "Confirmed": 23, "Pattern": "//XX"},
        {"AptNum": 1003, "PatNum": 103, "AptStatus": 1, "Confirmed": 24, "Pattern": "//XX"},
        {
            "AptNum": 1004,
            "PatNum": 105,
            "AptStatus": 2,
            "Confirmed": 23,
            "ClinicNum": 1,
            "AptDateTime": datetime(2026, 5, 1, 8, 0),
            "Pattern": "XXXXXX",
        },
        {
            "AptNum": 1005,
            "PatNum": 105,
            "AptStatus": 5,
            "ClinicNum": 1,
            "Pattern": "XX",
            "AptDateTime": datetime(2026, 6, 1, 8, 0),
        },
        {
            "AptNum": 1006,
            "PatNum": 106,
            "AptStatus": 3,
            "ClinicNum": 1,
            "AptDateTime": EMPTY_DATETIME,
        },
        {"AptNum": 1007, "PatNum": 106, "AptStatus": 6, "ClinicNum": 1},
        {"AptNum": 1008, "PatNum": 106, "AptStatus": 7, "ClinicNum": 1},
        {"AptNum": 1009, "PatNum": 106, "AptStatus": 8, "ClinicNum": 1},
        {
            "AptNum": 1010,
            "PatNum": 108,
            "AptStatus": 1,
            "Confirmed": 25,
            "ClinicNum": 0,
            "Pattern": "XXX",
            "AptDateTime": datetime(2026, 12, 2, 14, 30),
        },
    ]
    for row in rows:
        values = {"ClinicNum": 2, "AptDateTime": at, **row}
        db.insert("appointment", **values)
