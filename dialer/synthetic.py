"""A synthetic dental chain written as the canonical CSV files (``dialer demo``, benchmarks).

Everything is drawn from ``numpy.random.default_rng(seed)`` in whole-array steps, never a
Python loop per patient, so a million patients take seconds and the same arguments always
give byte-identical files. No real person's data: names come from small built-in lists of
common US English and Spanish names, phones are random numbers in each city's real area codes
(valid to ``phonenumbers``), ZIPs are real ZIPs of the city, clinic phones are 555-01xx.

The files look like a real practice-management export: households under a guarantor (some
guarantors are parents who are not patients), several spellings of languages, booleans and
phone formats, a few garbage phones, home phones shared between households, households across
a state line, a visit history that agrees with ``last_visit_date``, and upcoming appointments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

CLINIC_COLUMNS = ("clinic_id", "name", "timezone", "state", "phone")
PATIENT_COLUMNS = (
    "patient_id",
    "clinic_id",
    "first_name",
    "last_name",
    "birth_date",
    "guarantor_id",
    "language",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "postal_code",
    "state",
    "preferred_phone",
    "do_not_call",
    "status",
    "last_visit_date",
    "recall_due_date",
)
APPOINTMENT_COLUMNS = (
    "appointment_id",
    "patient_id",
    "clinic_id",
    "start_at",
    "duration_minutes",
    "status",
    "kind",
)
APPOINTMENT_STATUSES = ("scheduled", "confirmed", "completed", "cancelled", "broken", "no_show")
APPOINTMENT_KINDS = ("hygiene", "exam", "treatment", "emergency", "other")
#: What stands in a phone column when a clerk typed something that is not a number.
GARBAGE_PHONES = ("n/a", "N/A", "none", "unknown", "555-CALL", "123-4567", "000-000-0000", "99")

GUARANTOR, SPOUSE, CHILD = 0, 1, 2
ENGLISH, SPANISH, OTHER = 0, 1, 2
OPEN_MINUTE, CLOSE_MINUTE = 8 * 60, 17 * 60
MONTH_DAYS = 30.44


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.replace("_", " ") for word in text.split())


_EN_MALE = _words(
    "James John Robert Michael William David Richard Joseph Thomas Daniel Matthew "
    "Andrew Ethan Noah Liam Mason Logan Jacob Ryan Tyler Kevin Brian"
)
_EN_FEMALE = _words(
    "Mary Jennifer Linda Patricia Elizabeth Susan Jessica Sarah Karen Emily Emma "
    "Olivia Ava Sophia Madison Abigail Hannah Chloe Grace Lily Megan Ashley"
)
_ES_MALE = _words(
    "José Juan Luis Carlos Jesús Miguel Jorge Alejandro Francisco Diego Santiago "
    "Mateo Sebastián Emiliano Javier Ricardo Eduardo Fernando Ángel Andrés"
)
_ES_FEMALE = _words(
    "María Guadalupe Sofía Valentina Camila Lucía Ximena Daniela Gabriela Isabella "
    "Fernanda Mariana Paola Rosa Carmen Ana Juana Alejandra Verónica Leticia"
)
_EN_LAST = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas "
    "Moore Martin Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen "
    "King Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner "
    "Phillips Campbell Parker Evans Edwards O'Brien"
)
_ES_LAST = _words(
    "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres "
    "Flores Rivera Gómez Díaz Cruz Morales Reyes Gutiérrez Ortiz Chávez Ramos Ruiz "
    "Mendoza Vásquez Castillo Jiménez Moreno Romero Herrera Medina Aguilar Vargas Peña De_la_Cruz"
)
_OTHER_LANGUAGES = ("Vietnamese", "Chinese", "Russian", "Arabic", "Korean", "Tagalog")


@dataclass(frozen=True)
class _Region:
    state: str
    area_codes: tuple[int, ...]
    zips: tuple[str, ...]


@dataclass(frozen=True)
class _City:
    name: str
    brand: str
    timezone: str
    home: _Region
    neighbour: _Region  # across a state line; households there may live in another zone


def _region(state: str, area_codes: str, zips: str) -> _Region:
    return _Region(state, tuple(int(code) for code in area_codes.split()), tuple(zips.split()))


CITIES = (
    _City(
        "Portland",
        "Bright Smiles Dental",
        "America/Los_Angeles",
        _region("OR", "503 971", "97201 97202 97203 97205 97206 97209 97210 97211 97212"),
        _region("WA", "360 564", "98660 98661 98662 98663 98664 98665 98682 98683"),
    ),
    _City(
        "San Antonio",
        "Clínica Dental Sonrisa",
        "America/Chicago",
        _region("TX", "210 726", "78201 78202 78203 78204 78207 78209 78210 78211 78212"),
        _region("NM", "575", "88001 88005 88007 88011 88012"),
    ),
    _City(
        "Miami",
        "Coral Family Dentistry",
        "America/New_York",
        _region("FL", "305 786", "33125 33126 33127 33128 33129 33130 33133 33134 33135"),
        _region("AL", "251", "36602 36603 36604 36605 36606 36607 36608 36609"),
    ),
    _City(
        "Phoenix",
        "Desert Bloom Dental",
        "America/Phoenix",
        _region("AZ", "602 480 623", "85003 85004 85006 85008 85012 85013 85014 85015"),
        _region("NV", "702 725", "89002 89011 89012 89014 89015 89052 89074"),
    ),
    _City(
        "Denver",
        "Mile High Family Dental",
        "America/Denver",
        _region("CO", "303 720", "80202 80203 80204 80205 80206 80207 80209 80210 80211"),
        _region("WY", "307", "82001 82007 82009"),
    ),
    _City(
        "Chicago",
        "Lakeview Kids Dental",
        "America/Chicago",
        _region("IL", "312 773 872", "60601 60605 60607 60608 60609 60610 60611 60612"),
        _region("IN", "219", "46320 46323 46324 46327"),
    ),
    _City(
        "Atlanta",
        "Peachtree Dental Group",
        "America/New_York",
        _region("GA", "404 470 678", "30303 30305 30306 30307 30308 30309 30310 30311"),
        _region("AL", "205 659", "35203 35204 35205 35206 35207 35208 35209"),
    ),
    _City(
        "Los Angeles",
        "Sunset Smiles Dental",
        "America/Los_Angeles",
        _region("CA", "213 323 310", "90001 90002 90003 90004 90005 90006 90007 90008"),
        _region("NV", "702 725", "89101 89102 89103 89104 89106 89107 89108"),
    ),
)
_REGIONS = [region for city in CITIES for region in (city.home, city.neighbour)]


@dataclass(frozen=True)
class ChainFiles:
    """Where :func:`generate_chain` wrote each canonical CSV file."""

    clinics: Path
    patients: Path
    appointments: Path


@dataclass(frozen=True)
class _Households:
    size: Ints
    clinic: Ints
    language: Ints  # ENGLISH, SPANISH or OTHER
    away: Bools  # lives in the clinic city's neighbouring state
    carer: Bools  # the guarantor is a non_patient parent
    spouse: Bools  # the second member is the guarantor's spouse
    phoneless: Bools  # no usable phone in the whole household


@dataclass(frozen=True)
class _People:
    household: Ints
    role: Ints  # GUARANTOR, SPOUSE or CHILD
    age: Ints
    birth: Ints  # days since 1970-01-01
    city: Ints
    status: Ints  # index into _STATUSES


_STATUSES = ("active", "inactive", "archived", "deceased", "prospective", "non_patient")
ACTIVE, INACTIVE, ARCHIVED, DECEASED, PROSPECTIVE, NON_PATIENT = range(6)


def generate_chain(
    out_dir: Path, *, patients: int = 5000, clinics: int = 3, seed: int = 7, as_of: date
) -> ChainFiles:
    """Write clinics.csv, patients.csv, appointments.csv for a synthetic chain into out_dir.

    ``as_of`` is the export's date: visits and history lie before it, upcoming appointments on
    or after it (0-60 days). Clinics cycle through 8 cities in different zones and states.
    """
    if patients < 1 or clinics < 1:
        raise ValueError("generate_chain needs at least one patient and one clinic")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    today = int((np.datetime64(as_of, "D") - np.datetime64(0, "D")).astype(np.int64))
    households = _draw_households(streams[0], patients, clinics)
    people = _draw_people(streams[1], households, today)
    columns = _identity_columns(streams[2], households, people, clinics)
    columns.update(_contact_columns(streams[3], households, people))
    seen, last_visit, recall = _draw_visits(streams[4], people, today)
    columns["last_visit_date"] = _format_days(last_visit, seen)
    columns["recall_due_date"] = _format_days(recall, recall > 0)
    appointments = _draw_appointments(streams[5], people, seen, last_visit, recall, today)
    for column in ("patient_id", "clinic_id"):
        rows = appointments[column].to_numpy()
        appointments[column] = columns[column].take(rows).to_numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ChainFiles(
        clinics=out_dir / "clinics.csv",
        patients=out_dir / "patients.csv",
        appointments=out_dir / "appointments.csv",
    )
    _write(_clinic_frame(clinics), files.clinics)
    _write(pd.DataFrame({name: columns[name].array for name in PATIENT_COLUMNS}), files.patients)
    _write(appointments, files.appointments)
    return files


def generate_followup(
    appointments_csv: Path,
    out_path: Path,
    *,
    seed: int,
    kept_share: float = 0.8,
    as_of: date | None = None,
) -> Path:
    """A later PMS export of the same appointments (for attribution reports): each past-or-today
    'scheduled'/'confirmed' appointment becomes completed (kept_share) or broken; others unchanged.

    ``as_of`` is the later export's date (default: today); pass it for reproducible files.
    """
    if not 0.0 <= kept_share <= 1.0:
        raise ValueError(f"kept_share must be between 0 and 1, not {kept_share}")
    cutoff = (as_of or date.today()).isoformat()
    frame = pd.read_csv(appointments_csv, dtype=str, keep_default_na=False, encoding="utf-8")
    due = frame["status"].isin(["scheduled", "confirmed"]) & (frame["start_at"].str[:10] <= cutoff)
    kept = np.random.default_rng(seed).random(len(frame)) < kept_share
    frame.loc[due & kept, "status"] = "completed"
    frame.loc[due & ~kept, "status"] = "broken"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _write(frame, out_path)
    return out_path


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def _take(table: Sequence[str], codes: Ints) -> pd.Series:
    """The strings ``table[codes]`` as a string Series (cheap: one gather)."""
    return pd.Series(list(table), dtype="str").take(codes).reset_index(drop=True)


def _blank_unless(values: pd.Series, keep: Bools) -> pd.Series:
    return values.where(keep, "")


def _pick(
    rng: np.random.Generator, groups: Sequence[Sequence[object]], group: Ints
) -> npt.NDArray[np.object_]:
    """For each row, a uniformly random value of ``groups[group]`` (groups of any length)."""
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    flat = np.empty(int(counts.sum()), dtype=object)
    flat[:] = [value for g in groups for value in g]
    within = (rng.random(len(group)) * counts[group]).astype(np.int64)
    picked: npt.NDArray[np.object_] = flat[(np.cumsum(counts) - counts)[group] + within]
    return picked


def _draw_households(rng: np.random.Generator, patients: int, clinics: int) -> _Households:
    # Sizes 1-5 with mean about 2.5; `patients` households always hold enough people.
    size = rng.choice(5, size=patients, p=(0.27, 0.25, 0.25, 0.15, 0.08)).astype(np.int64) + 1
    ends = np.cumsum(size)
    count = int(np.searchsorted(ends, patients)) + 1
    size = size[:count]
    size[-1] -= int(ends[count - 1]) - patients
    has_dependants = size > 1
    carer = has_dependants & (rng.random(count) < 0.2 / 0.73)  # 20% of all guarantors
    spouse = has_dependants & ~carer & (rng.random(count) < 0.35)
    u = rng.random(count)
    language = np.where(u < 0.005, OTHER, np.where(u < 0.305, SPANISH, ENGLISH))
    return _Households(
        size=size,
        clinic=rng.integers(0, clinics, count),
        language=language,
        away=rng.random(count) < 0.02,
        carer=carer,
        spouse=spouse,
        phoneless=rng.random(count) < 0.025,
    )


def _draw_people(rng: np.random.Generator, hh: _Households, today: int) -> _People:
    n = int(hh.size.sum())
    household = np.repeat(np.arange(len(hh.size)), hh.size)
    member = np.arange(n) - np.repeat(np.cumsum(hh.size) - hh.size, hh.size)
    role = np.where(
        member == 0, GUARANTOR, np.where((member == 1) & hh.spouse[household], SPOUSE, CHILD)
    )
    with_children = np.bincount(household, weights=role == CHILD, minlength=len(hh.size)) > 0
    parent = np.where(
        with_children, rng.integers(25, 56, len(hh.size)), rng.integers(25, 76, len(hh.size))
    )[household]
    spouse_age = np.clip(parent + rng.integers(-6, 7, n), 21, 85)
    child_age = (rng.random(n) * (np.minimum(17, parent - 18) + 1)).astype(np.int64)
    age = np.where(role == GUARANTOR, parent, np.where(role == SPOUSE, spouse_age, child_age))
    birth = today - ((age + rng.random(n)) * 365.25).astype(np.int64)
    status = rng.choice(5, size=n, p=np.array([85, 6, 2, 0.5, 1.5]) / 95)
    status = np.where((status == DECEASED) & (age < 18), ACTIVE, status)
    # Families drift away together: most dependants share a lapsed guarantor's status.
    head = status[np.cumsum(hh.size) - hh.size][household]
    follow = (role != GUARANTOR) & np.isin(head, (INACTIVE, ARCHIVED)) & (rng.random(n) < 0.7)
    status = np.where(follow, head, status)
    status = np.where((role == GUARANTOR) & hh.carer[household], NON_PATIENT, status)
    city = (hh.clinic % len(CITIES))[household]
    return _People(
        household=household,
        role=role,
        age=age,
        birth=birth,
        city=city,
        status=status.astype(np.int64),
    )


def _identity_columns(
    rng: np.random.Generator, hh: _Households, people: _People, clinics: int
) -> dict[str, pd.Series]:
    n = len(people.household)
    ids = pd.Series(np.arange(1, n + 1)).astype("str")
    heads = (np.cumsum(hh.size) - hh.size)[people.household]
    columns = {
        "patient_id": ids,
        "clinic_id": _take([f"C{i + 1}" for i in range(clinics)], hh.clinic[people.household]),
        "guarantor_id": ids.take(heads).reset_index(drop=True),
        "birth_date": _format_days(people.birth, rng.random(n) >= 0.01),
        "status": _take(_STATUSES, people.status),
        "language": _languages(rng, hh.language[people.household], people.role),
    }
    columns["first_name"], columns["last_name"] = _names(rng, hh, people)
    return columns


def _names(
    rng: np.random.Generator, hh: _Households, people: _People
) -> tuple[pd.Series, pd.Series]:
    n, households = len(people.household), len(hh.size)
    hispanic = rng.random(households) < np.where(
        hh.language == SPANISH, 0.95, np.where(hh.language == ENGLISH, 0.12, 0.0)
    )
    surnames = (_EN_LAST, _ES_LAST)
    family = _pick(rng, surnames, hispanic.astype(np.int64))
    second = _pick(rng, surnames, np.ones(households, dtype=np.int64))
    family = np.where(hispanic & (rng.random(households) < 0.15), family + " " + second, family)
    spanish = hispanic[people.household]
    own_surname = (people.role == SPOUSE) & (rng.random(n) < np.where(spanish, 0.25, 0.15))
    last = np.where(
        own_surname, _pick(rng, surnames, spanish.astype(np.int64)), family[people.household]
    )
    female = rng.random(n) < 0.5
    head_female = female[np.cumsum(hh.size) - hh.size][people.household]
    female = np.where(people.role == SPOUSE, ~head_female, female)
    spanish_first = spanish & (rng.random(n) < np.where(people.role == CHILD, 0.6, 0.9))
    firsts = (_EN_MALE, _EN_FEMALE, _ES_MALE, _ES_FEMALE)
    first = _pick(rng, firsts, 2 * spanish_first.astype(np.int64) + female)
    return pd.Series(first, dtype="str"), pd.Series(last, dtype="str")


def _languages(rng: np.random.Generator, language: Ints, role: Ints) -> pd.Series:
    """Language as exports spell it: eng/English/en/blank, spa/Spanish/es, children often blank."""
    n = len(language)
    english = _take(("eng", "English", "en", ""), rng.choice(4, n, p=(0.35, 0.2, 0.15, 0.3)))
    spanish = _take(("spa", "Spanish", "es"), rng.choice(3, n, p=(0.5, 0.3, 0.2)))
    spanish = spanish.where(
        role != CHILD, _blank_unless(_take(("spa",), np.zeros(n, np.int64)), rng.random(n) < 0.6)
    )
    other = _take(_OTHER_LANGUAGES, rng.integers(0, len(_OTHER_LANGUAGES), n))
    other = other.where((role == GUARANTOR) | (rng.random(n) < 0.5), "")
    return english.where(language == ENGLISH, spanish.where(language == SPANISH, other))


def _contact_columns(
    rng: np.random.Generator, hh: _Households, people: _People
) -> dict[str, pd.Series]:
    phones = _phones(rng, hh, people)
    n, households = len(people.household), len(hh.size)
    region = 2 * (hh.clinic % len(CITIES)) + hh.away
    postal = pd.Series(_pick(rng, [r.zips for r in _REGIONS], region), dtype="str")
    plus4 = _take([f"{i:04d}" for i in range(10000)], rng.integers(0, 10000, households))
    postal = postal.where(rng.random(households) >= 0.05, postal + "-" + plus4)
    postal = postal.where(rng.random(households) >= 0.01, "")
    states = _take([r.state for r in _REGIONS], region)
    dnc_words = _take(
        ("false", "False", "no", "0", "FALSE", "", "true", "yes", "1", "TRUE"),
        rng.choice(10, n, p=(0.6, 0.1, 0.08, 0.06, 0.05, 0.1, 0.004, 0.003, 0.002, 0.001)),
    )
    return {
        **phones,
        "postal_code": postal.take(people.household).reset_index(drop=True),
        "state": states.take(people.household).reset_index(drop=True),
        "do_not_call": dnc_words,
        "preferred_phone": _preferred(rng, phones),
    }


def _phones(rng: np.random.Generator, hh: _Households, people: _People) -> dict[str, pd.Series]:
    """mobile/home/work columns: guarantor's own, spouse's own, teens' mobiles, copied homes."""
    n, households = len(people.household), len(hh.size)
    codes = [r.area_codes for r in _REGIONS]
    city = hh.clinic % len(CITIES)
    home_number = _numbers(rng, _pick(rng, codes, 2 * city + hh.away))
    has_home = rng.random(households) < 0.45
    home_number = _share_home_phones(rng, home_number, hh.clinic, has_home)
    home = _format_phones(rng, home_number, extensions=False)
    h, role = people.household, people.role
    # Someone who moved across the state line often keeps their old mobile number.
    moved = hh.away[h] & (rng.random(n) < 0.5)
    mobile = _format_phones(rng, _numbers(rng, _pick(rng, codes, 2 * people.city + moved)), False)
    work = _format_phones(rng, _numbers(rng, _pick(rng, codes, 2 * people.city + hh.away[h])), True)
    u = rng.random((3, n))
    teen = (role == CHILD) & (people.age >= 13)
    has = {
        "mobile": np.where(
            role == GUARANTOR,
            u[0] < 0.88,
            np.where(role == SPOUSE, u[0] < 0.95, teen & (u[0] < 0.4)),
        ),
        "home": has_home[h] & ((role != CHILD) | (u[1] < 0.5)),
        "work": u[2] < np.where(role == GUARANTOR, 0.2, np.where(role == SPOUSE, 0.3, 0.0)),
    }
    # Every guarantor leaves some number; households without one are the `phoneless` ones.
    has["mobile"] |= (role == GUARANTOR) & ~has["home"] & ~has["work"]
    values = {"mobile": mobile, "home": home.take(h).reset_index(drop=True), "work": work}
    usable = ~hh.phoneless[h]
    garbage = _take(GARBAGE_PHONES, rng.integers(0, len(GARBAGE_PHONES), n))
    columns: dict[str, pd.Series] = {}
    for kind, value in values.items():
        bad = has[kind] & (~usable | (rng.random(n) < 0.02))
        # A phoneless household usually has nothing on file; now and then a garbage entry.
        bad &= usable | ((role == GUARANTOR) & (kind == "mobile") & (rng.random(n) < 0.3))
        keep = has[kind] & usable
        columns[f"{kind}_phone"] = _blank_unless(value, keep).where(~bad, garbage)
    return columns


def _numbers(rng: np.random.Generator, area_codes: npt.NDArray[np.object_]) -> Ints:
    """Random valid 10-digit numbers: exchange 200-999 but never N11 or the 555 exchange."""
    n = len(area_codes)
    exchange = rng.integers(200, 1000, n)
    exchange = np.where((exchange % 100 == 11) | (exchange == 555), exchange + 1, exchange)
    numbers: Ints = area_codes.astype(np.int64) * 10**7 + exchange * 10**4
    return numbers + rng.integers(0, 10000, n)


def _share_home_phones(
    rng: np.random.Generator, numbers: Ints, clinic: Ints, has_home: Bools
) -> Ints:
    """About 1% of households share a home number with another household of the same clinic."""
    shared = numbers.copy()
    homes = np.flatnonzero(has_home)
    order = homes[np.argsort(clinic[homes], kind="stable")]
    # The donor is the next household with a home phone at the same clinic (grandparents).
    donor = np.roll(order, -1)
    receives = (rng.random(len(order)) < 0.011) & (clinic[donor] == clinic[order])
    shared[order[receives]] = numbers[donor[receives]]
    return shared


def _format_phones(rng: np.random.Generator, numbers: Ints, extensions: bool) -> pd.Series:
    """Numbers typed as clerks type them; work numbers sometimes with an extension."""
    n = len(numbers)
    area = _take([f"{i:03d}" for i in range(1000)], numbers // 10**7)
    exchange = _take([f"{i:03d}" for i in range(1000)], numbers // 10**4 % 1000)
    line = _take([f"{i:04d}" for i in range(10000)], numbers % 10**4)
    styles = [
        "(" + area + ") " + exchange + "-" + line,
        area + "-" + exchange + "-" + line,
        area + exchange + line,
        "+1 " + area + " " + exchange + " " + line,
    ]
    style = rng.choice(4, n, p=(0.35, 0.3, 0.25, 0.1))
    text = styles[0].where(
        style == 0, styles[1].where(style == 1, styles[2].where(style == 2, styles[3]))
    )
    if extensions:
        extension = _take([str(i) for i in range(1000)], rng.integers(10, 1000, n))
        dotted = area + "." + exchange + "." + line + " x" + extension
        text = text.where(rng.random(n) >= 0.3, dotted)
    return text


def _preferred(rng: np.random.Generator, phones: dict[str, pd.Series]) -> pd.Series:
    """About 40% name a preferred kind, always one the person has on file."""
    kinds = ("mobile", "home", "work")
    has = np.stack([phones[f"{kind}_phone"].ne("").to_numpy() for kind in kinds])
    score = np.where(has, rng.random(has.shape), -1.0)
    choice = score.argmax(axis=0)
    chosen = _take(kinds, choice)
    named: Bools = (has.sum(axis=0) > 0) & (rng.random(has.shape[1]) < 0.4)
    return chosen.where(named, "")


def _draw_visits(rng: np.random.Generator, people: _People, today: int) -> tuple[Bools, Ints, Ints]:
    """(seen, last visit day, recall due day or 0); families often visit on the same day."""
    n, status = len(people.household), people.status
    edges = np.array([0, 6, 12, 18, 60, 120])
    recent = (0.48, 0.12, 0.15, 0.17, 0.05, 0.03)  # last bucket: never seen
    lapsed = (0.0, 0.0, 0.1, 0.55, 0.3, 0.05)
    households = int(people.household.max()) + 1
    family = _days_ago(rng, rng.choice(6, households, p=recent), edges)[people.household]
    own_recent = _days_ago(rng, rng.choice(6, n, p=recent), edges)
    own_lapsed = _days_ago(rng, rng.choice(6, n, p=lapsed), edges)
    active = status == ACTIVE
    ago = np.where(active, np.where(rng.random(n) < 0.7, family, own_recent), own_lapsed)
    ago = np.where(np.isin(status, (PROSPECTIVE, NON_PATIENT)), -1, ago)
    # A first visit comes at about age one: toddlers get a visit since then, if there is time.
    first = people.birth + 365
    toddler = (today - ago < first) & (first < today - 7)
    ago = np.where(toddler, ((today - first) * rng.random(n)).astype(np.int64) + 1, ago)
    visit = _before_weekend(rng, today - ago)
    seen = (ago > 0) & (visit >= first)
    months = rng.choice(np.array([6, 4, 12]), n, p=(0.9, 0.07, 0.03))
    recall = _add_months(visit, months) + 1
    recall = np.where(seen & (rng.random(n) >= 0.05), recall, 0)
    return seen, np.where(seen, visit, 0), recall


def _days_ago(rng: np.random.Generator, bucket: Ints, edges: Ints) -> Ints:
    """Days before as_of uniformly within month buckets; the last bucket means never (-1)."""
    last = len(edges) - 1
    low = edges[np.minimum(bucket, last - 1)] * MONTH_DAYS
    high = edges[np.minimum(bucket + 1, last)] * MONTH_DAYS
    ago = np.maximum(1, (low + rng.random(len(bucket)) * (high - low)).astype(np.int64))
    return np.where(bucket == last, -1, ago)


def _closed(rng: np.random.Generator, days: Ints) -> tuple[Ints, Bools]:
    """(weekday 0=Monday, closed mask): Sundays and most Saturdays (some practices open)."""
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    return weekday, (weekday == 6) | ((weekday == 5) & (rng.random(len(days)) < 0.75))


def _before_weekend(rng: np.random.Generator, days: Ints) -> Ints:
    """Move a closed day back to a random weekday of the same week."""
    weekday, closed = _closed(rng, days)
    return np.where(closed, days - weekday + rng.integers(0, 5, len(days)), days)


def _after_weekend(rng: np.random.Generator, days: Ints) -> Ints:
    """Move a closed day on to a random weekday of the next week."""
    weekday, closed = _closed(rng, days)
    return np.where(closed, days - weekday + 7 + rng.integers(0, 5, len(days)), days)


def _add_months(days: Ints, months: Ints) -> Ints:
    """Calendar months later, the day clipped to the month's end (Aug 31 + 6 -> Feb 28)."""
    day = days.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months.astype("timedelta64[M]")
    start = target.astype("datetime64[D]").astype(np.int64)
    length = (target + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - start
    result: Ints = start + np.minimum(day_of_month, length - 1)
    return result


def _format_days(days: Ints, keep: Bools) -> pd.Series:
    """ISO dates; blank where not ``keep``."""
    if not keep.any():
        return pd.Series([""] * len(days), dtype="str")
    low, high = int(days[keep].min()), int(days[keep].max())
    table = np.datetime_as_string(np.arange(low, high + 1).astype("datetime64[D]"))
    return _blank_unless(_take(table.tolist(), np.clip(days, low, high) - low), keep)


def _draw_appointments(
    rng: np.random.Generator, people: _People, seen: Bools, visit: Ints, recall: Ints, today: int
) -> pd.DataFrame:
    """History (completed every ~6 months back from the last visit, some failed) and upcoming."""
    person_c, day_c = _completed(rng, people, seen, visit)
    person_f, day_f, status_f = _failed(rng, people, seen, visit, today)
    person_u, day_u, status_u, hygiene_u = _upcoming(rng, people, recall, today)
    person = np.concatenate([person_c, person_f, person_u])
    day = np.concatenate([day_c, day_f, day_u])
    status = np.concatenate([np.full(len(person_c), 2), status_f, status_u])
    kind = rng.choice(5, len(person), p=(0.6, 0.15, 0.18, 0.04, 0.03))
    kind[len(person) - len(person_u) :][hygiene_u] = 0
    options = np.array([[40, 60], [30, 40], [60, 90], [30, 40], [30, 30]])
    duration = options[kind, rng.integers(0, 2, len(kind))]
    slots = (CLOSE_MINUTE - OPEN_MINUTE - duration) // 10 + 1
    minute = OPEN_MINUTE + 10 * (rng.random(len(kind)) * slots).astype(np.int64)
    order = np.lexsort((person, minute, day))
    start = _format_starts(day[order], minute[order])
    return pd.DataFrame(
        {
            "appointment_id": ("A" + pd.Series(np.arange(1, len(order) + 1)).astype("str")).array,
            "patient_id": person[order],  # row numbers until generate_chain puts in the ids
            "clinic_id": person[order],
            "start_at": start.array,
            "duration_minutes": duration[order],
            "status": _take(APPOINTMENT_STATUSES, status[order]).array,
            "kind": _take(APPOINTMENT_KINDS, kind[order]).array,
        }
    )


def _completed(
    rng: np.random.Generator, people: _People, seen: Bools, visit: Ints
) -> tuple[Ints, Ints]:
    """Completed visits: the last visit, then about every six months before it."""
    count = np.where(seen, 1 + rng.poisson(2.05, len(seen)), 0)
    person = np.repeat(np.arange(len(seen)), count)
    back = np.arange(len(person)) - np.repeat(np.cumsum(count) - count, count)
    jitter = np.where(back > 0, rng.integers(0, 60, len(person)), 0)
    day = visit[person] - back * 182 - jitter
    day = np.where(back > 0, _before_weekend(rng, day), day)
    keep = day >= people.birth[person] + 365
    return person[keep], day[keep]


def _failed(
    rng: np.random.Generator, people: _People, seen: Bools, visit: Ints, today: int
) -> tuple[Ints, Ints, Ints]:
    """Cancelled, broken and no-show appointments in the past (lapsed ones near the last visit)."""
    status = people.status
    eligible = seen | (status == PROSPECTIVE)
    count = np.where(eligible, rng.poisson(0.48, len(seen)), 0)
    person = np.repeat(np.arange(len(seen)), count)
    span = np.where(seen[person], today - visit[person] + 3 * 182, 180)
    day = today - 1 - (rng.random(len(person)) * span).astype(np.int64)
    lapsed = seen[person] & (status[person] != ACTIVE)
    day = np.where(lapsed, np.minimum(day, visit[person] + 180), day)
    day = _before_weekend(rng, day)
    keep = (day >= people.birth[person] + 365) & (day < today)
    kinds = rng.choice(np.array([3, 4, 5]), len(person), p=np.array([3, 6, 4]) / 13)
    return person[keep], day[keep], kinds[keep]


def _upcoming(
    rng: np.random.Generator, people: _People, recall: Ints, today: int
) -> tuple[Ints, Ints, Ints, Bools]:
    """Scheduled/confirmed in the next 0-60 days, mostly patients whose recall is about due.

    About a fifth fall 1-3 days out (reminder work); siblings are often booked the same day.
    """
    n, status = len(recall), people.status
    due = (recall > 0) & (recall - today >= -183) & (recall - today <= 60)
    chance = np.where(
        status == ACTIVE, np.where(due, 0.75, 0.07), np.where(status == PROSPECTIVE, 0.3, 0.0)
    )
    booked = rng.random(n) < chance
    households = int(people.household.max()) + 1
    family = _days_ahead(rng, households)[people.household]
    ahead = np.where(rng.random(n) < 0.6, family, _days_ahead(rng, n))
    day = _after_weekend(rng, today + ahead)
    day = np.where(day - today > 60, day - 7, day)  # a weekend moved past the horizon
    confirmed = rng.random(n) < np.where(day - today <= 3, 0.35, 0.1)
    person = np.flatnonzero(booked).astype(np.int64)
    hygiene = due & (rng.random(n) < 0.85)
    return person, day[person], np.where(confirmed, 1, 0)[person], hygiene[person]


def _days_ahead(rng: np.random.Generator, n: int) -> Ints:
    """0 days (5%), 1-3 days (25%) or 4-60 days (70%) from as_of."""
    u = rng.random(n)
    near = rng.integers(1, 4, n)
    far = rng.integers(4, 61, n)
    return np.where(u < 0.05, 0, np.where(u < 0.3, near, far))


def _format_starts(day: Ints, minute: Ints) -> pd.Series:
    """``YYYY-MM-DD HH:MM`` from day numbers and minutes after midnight."""
    dates = _format_days(day, np.ones(len(day), dtype=bool))
    times = _take([f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)], minute)
    return dates + " " + times


def _clinic_frame(clinics: int) -> pd.DataFrame:
    """C1..Cn cycling through the cities; phones are fictional 555-01xx numbers."""
    rows = []
    for i in range(clinics):
        city = CITIES[i % len(CITIES)]
        round_ = i // len(CITIES)
        name = f"{city.brand} - {city.name}" + (f" {round_ + 1}" if round_ else "")
        phone = f"{city.home.area_codes[0]}5550{100 + round_ % 100:03d}"
        rows.append((f"C{i + 1}", name, city.timezone, city.home.state, phone))
    return pd.DataFrame(rows, columns=list(CLINIC_COLUMNS))
