"""The synthetic chain: deterministic, canonical columns, consistent households and history."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest

from dialer import geo
from dialer.ingest import canonical
from dialer.synthetic import CITIES, GARBAGE_PHONES, ChainFiles, generate_chain, generate_followup

AS_OF = date(2025, 3, 12)
CLINIC_COLUMNS = ["clinic_id", "name", "timezone", "state", "phone"]
PATIENT_COLUMNS = [
    "patient_id", "clinic_id", "first_name", "last_name", "birth_date", "guarantor_id",
    "language", "mobile_phone", "home_phone", "work_phone", "postal_code", "state",
    "preferred_phone", "do_not_call", "status", "last_visit_date", "recall_due_date",
]  # fmt: skip
APPOINTMENT_COLUMNS = ["appointment_id", "patient_id", "clinic_id", "start_at",
                       "duration_minutes", "status", "kind"]  # fmt: skip
PHONE_COLUMNS = ["mobile_phone", "home_phone", "work_phone"]
SPANISH = {"spa", "spanish", "es"}


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> ChainFiles:
    return generate_chain(tmp_path_factory.mktemp("chain"), patients=20_000, as_of=AS_OF)


@pytest.fixture(scope="module")
def patients(chain: ChainFiles) -> pd.DataFrame:
    return read(chain.patients)


@pytest.fixture(scope="module")
def appointments(chain: ChainFiles) -> pd.DataFrame:
    frame = read(chain.appointments)
    frame["start"] = pd.to_datetime(frame["start_at"], format="%Y-%m-%d %H:%M")
    return frame


def valid_us(raw: str) -> bool:
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US"
    )


def file_bytes(files: ChainFiles) -> list[bytes]:
    return [
        files.clinics.read_bytes(),
        files.patients.read_bytes(),
        files.appointments.read_bytes(),
    ]


def test_same_arguments_give_the_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = generate_chain(tmp_path / "a", patients=3000, seed=11, as_of=AS_OF)
    again = generate_chain(tmp_path / "b", patients=3000, seed=11, as_of=AS_OF)
    other = generate_chain(tmp_path / "c", patients=3000, seed=12, as_of=AS_OF)
    assert file_bytes(first) == file_bytes(again)
    assert file_bytes(first)[1] != file_bytes(other)[1]
    assert file_bytes(first)[2] != file_bytes(other)[2]


def test_columns_are_the_canonical_ones_in_order(chain: ChainFiles) -> None:
    assert list(read(chain.clinics).columns) == CLINIC_COLUMNS
    assert list(read(chain.patients).columns) == PATIENT_COLUMNS
    assert list(read(chain.appointments).columns) == APPOINTMENT_COLUMNS
    assert set(PATIENT_COLUMNS) == {*canonical.PATIENT_COLUMNS, *canonical.PATIENT_OPTIONAL}
    assert list(canonical.APPOINTMENT_COLUMNS) == APPOINTMENT_COLUMNS
    assert list(canonical.CLINIC_COLUMNS) == CLINIC_COLUMNS


def test_exactly_the_requested_patients_with_ids_from_one(patients: pd.DataFrame) -> None:
    assert len(patients) == 20_000
    assert patients["patient_id"].tolist() == [str(i) for i in range(1, 20_001)]


def test_demo_clinics_are_in_different_zones_and_states(chain: ChainFiles) -> None:
    clinics = read(chain.clinics)
    assert clinics["clinic_id"].tolist() == ["C1", "C2", "C3"]
    assert clinics["timezone"].nunique() == 3
    assert clinics["state"].nunique() == 3
    assert all(geo.is_timezone(zone) for zone in clinics["timezone"])
    assert any(not name.isascii() for name in clinics["name"])
    for phone in clinics["phone"]:
        assert len(phone) == 10 and phone[3:8] == "55501"
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "US"))


def test_more_clinics_cycle_through_the_cities_with_unique_ids_and_phones(tmp_path: Path) -> None:
    files = generate_chain(tmp_path, patients=500, clinics=10, as_of=AS_OF)
    clinics = read(files.clinics)
    assert clinics["clinic_id"].tolist() == [f"C{i}" for i in range(1, 11)]
    assert clinics["name"].is_unique and clinics["phone"].is_unique
    assert clinics["timezone"].nunique() >= 5
    assert set(read(files.patients)["clinic_id"]) <= set(clinics["clinic_id"])


def test_every_guarantor_exists_and_guarantees_themselves(patients: pd.DataFrame) -> None:
    by_id = patients.set_index("patient_id")
    assert patients["guarantor_id"].isin(by_id.index).all()
    heads = by_id.loc[patients["guarantor_id"].unique()]
    assert (heads["guarantor_id"] == heads.index).all()
    same_clinic = patients["clinic_id"] == by_id.loc[patients["guarantor_id"], "clinic_id"].array
    assert same_clinic.all()


def test_households_average_about_two_and_a_half(patients: pd.DataFrame) -> None:
    heads = patients[patients["patient_id"] == patients["guarantor_id"]]
    assert 2.2 <= len(patients) / len(heads) <= 2.8
    assert 0.15 <= (heads["status"] == "non_patient").mean() <= 0.25
    assert (patients.loc[patients["patient_id"] != patients["guarantor_id"], "status"]
            != "non_patient").all()  # fmt: skip


def test_about_thirty_percent_of_households_speak_spanish(patients: pd.DataFrame) -> None:
    heads = patients[patients["patient_id"] == patients["guarantor_id"]]
    spanish = heads["language"].str.lower().isin(SPANISH)
    assert 0.25 <= spanish.mean() <= 0.35
    assert {"spa", "Spanish", "es"} <= set(heads["language"])
    assert {"eng", "English", "en", ""} <= set(heads["language"])


def test_every_phone_is_a_valid_us_number_or_known_garbage(patients: pd.DataFrame) -> None:
    sample = patients.sample(3000, random_state=1)
    values = pd.concat([sample[column] for column in PHONE_COLUMNS])
    values = values[values.ne("")]
    garbage = values.isin(GARBAGE_PHONES)
    assert 0 < garbage.mean() < 0.06
    assert [raw for raw in values[~garbage] if not valid_us(raw)] == []
    assert not any(valid_us(raw) for raw in GARBAGE_PHONES)
    formats = {r"\(\d{3}\) \d{3}-\d{4}", r"\d{3}-\d{3}-\d{4}", r"\d{10}", r"\+1 \d{3} \d{3} \d{4}",
               r"\d{3}\.\d{3}\.\d{4} x\d+"}  # fmt: skip
    for pattern in formats:
        assert values.str.fullmatch(pattern).any(), pattern


def test_phones_use_the_area_codes_of_the_clinic_or_its_neighbour(
    patients: pd.DataFrame,
) -> None:
    codes = {f"C{i + 1}": {c for r in (city.home, city.neighbour) for c in r.area_codes}
             for i, city in enumerate(CITIES[:3])}  # fmt: skip
    for column in PHONE_COLUMNS:
        present = patients[patients[column].ne("") & ~patients[column].isin(GARBAGE_PHONES)]
        digits = present[column].str.split("x").str[0].str.replace(r"\D", "", regex=True)
        area = digits.str[-10:-7].astype(int)
        assert all(a in codes[c] for a, c in zip(area, present["clinic_id"], strict=True))


def test_households_mostly_have_a_usable_phone(patients: pd.DataFrame) -> None:
    usable = pd.Series(False, index=patients.index)
    for column in PHONE_COLUMNS:
        usable |= patients[column].ne("") & ~patients[column].isin(GARBAGE_PHONES)
    without = ~usable.groupby(patients["guarantor_id"]).any()
    assert 0.01 <= without.mean() <= 0.06


def test_preferred_phone_is_always_a_kind_the_patient_has(patients: pd.DataFrame) -> None:
    named = patients[patients["preferred_phone"].ne("")]
    assert set(named["preferred_phone"]) == {"mobile", "home", "work"}
    for kind in ("mobile", "home", "work"):
        assert named.loc[named["preferred_phone"] == kind, f"{kind}_phone"].ne("").all()


def test_booleans_and_statuses_use_legal_spellings(patients: pd.DataFrame) -> None:
    assert set(patients["do_not_call"].str.lower()) <= {"true", "false", "yes", "no", "1", "0", ""}
    assert 0.002 <= patients["do_not_call"].str.lower().isin({"true", "yes", "1"}).mean() <= 0.03
    allowed = {"active", "inactive", "archived", "deceased", "prospective", "non_patient"}
    assert set(patients["status"]) == allowed


def test_postal_codes_are_real_zips_of_the_row_state(patients: pd.DataFrame) -> None:
    assert patients["state"].isin({"OR", "TX", "FL", "WA", "NM", "AL"}).all()
    assert 0.005 <= (patients["state"] != patients["clinic_id"].map(
        {"C1": "OR", "C2": "TX", "C3": "FL"})).mean() <= 0.05  # fmt: skip
    present = patients[patients["postal_code"].ne("")]
    assert present["postal_code"].str.fullmatch(r"\d{5}(-\d{4})?").all()
    for code, state in set(zip(present["postal_code"].str[:5], present["state"], strict=True)):
        assert geo.zip_state(code) == state, code


def test_dates_are_iso_and_visits_are_before_as_of(patients: pd.DataFrame) -> None:
    for column in ("birth_date", "last_visit_date", "recall_due_date"):
        present = patients.loc[patients[column].ne(""), column]
        parsed = pd.to_datetime(present, format="%Y-%m-%d")
        assert parsed.notna().all()
    visits = pd.to_datetime(patients["last_visit_date"].replace("", None), format="%Y-%m-%d")
    assert (visits.dropna() < pd.Timestamp(AS_OF)).all()
    not_treated = patients["status"].isin({"non_patient", "prospective"})
    assert patients.loc[not_treated, "last_visit_date"].eq("").all()
    assert patients.loc[not_treated, "recall_due_date"].eq("").all()


def test_recall_is_usually_six_months_and_a_day_after_the_last_visit(
    patients: pd.DataFrame,
) -> None:
    both = patients[patients["last_visit_date"].ne("") & patients["recall_due_date"].ne("")]
    visit = pd.to_datetime(both["last_visit_date"])
    expected = visit + pd.DateOffset(months=6) + pd.Timedelta(days=1)
    assert (pd.to_datetime(both["recall_due_date"]) == expected).mean() > 0.85


def test_a_realistic_share_is_due_for_recall(patients: pd.DataFrame) -> None:
    due = pd.to_datetime(patients["recall_due_date"].replace("", None))
    window = (due >= pd.Timestamp(AS_OF) - pd.DateOffset(months=24)) & (
        due <= pd.Timestamp(AS_OF) + pd.Timedelta(days=14))  # fmt: skip
    assert 0.1 <= window.mean() <= 0.4


def test_appointments_point_at_existing_patients_and_their_clinic(
    patients: pd.DataFrame, appointments: pd.DataFrame
) -> None:
    clinic_of = patients.set_index("patient_id")["clinic_id"]
    assert appointments["patient_id"].isin(clinic_of.index).all()
    assert (appointments["clinic_id"] == clinic_of.loc[appointments["patient_id"]].array).all()
    assert appointments["appointment_id"].tolist() == [
        f"A{i}" for i in range(1, len(appointments) + 1)
    ]
    assert 2.5 <= len(appointments) / len(patients) <= 3.5


def test_appointments_are_in_opening_hours_never_in_a_dst_gap(appointments: pd.DataFrame) -> None:
    start = appointments["start"]
    assert start.notna().all()
    assert (start.dt.hour != 2).all()
    minutes = start.dt.hour * 60 + start.dt.minute
    end = minutes + appointments["duration_minutes"].astype(int)
    assert (minutes >= 8 * 60).all() and (end <= 17 * 60).all()
    assert (start.dt.minute % 10 == 0).all()
    assert (start.dt.day_of_week <= 5).all()
    assert set(appointments["duration_minutes"]) <= {"30", "40", "60", "90"}
    zones = {"C1": "America/Los_Angeles", "C2": "America/Chicago", "C3": "America/New_York"}
    for clinic, zone in zones.items():
        local = start[appointments["clinic_id"] == clinic]
        assert local.dt.tz_localize(zone, nonexistent="NaT", ambiguous="NaT").notna().all()
    assert all(datetime.strptime(text, "%Y-%m-%d %H:%M") for text in appointments["start_at"][:500])


def test_statuses_and_kinds_are_the_allowed_ones(appointments: pd.DataFrame) -> None:
    assert set(appointments["status"]) == {
        "scheduled", "confirmed", "completed", "cancelled", "broken", "no_show"
    }  # fmt: skip
    assert set(appointments["kind"]) == {"hygiene", "exam", "treatment", "emergency", "other"}
    assert 0.5 <= (appointments["kind"] == "hygiene").mean() <= 0.7


def test_history_is_past_and_upcoming_is_within_sixty_days(appointments: pd.DataFrame) -> None:
    day = appointments["start"].dt.date
    upcoming = appointments["status"].isin({"scheduled", "confirmed"})
    assert (day[~upcoming] < AS_OF).all()
    assert (day[upcoming] >= AS_OF).all()
    assert (day[upcoming] <= AS_OF + timedelta(days=60)).all()


def test_some_patients_have_an_appointment_in_the_next_three_days(
    patients: pd.DataFrame, appointments: pd.DataFrame
) -> None:
    day = appointments["start"].dt.date
    soon = appointments[(day >= AS_OF + timedelta(days=1)) & (day <= AS_OF + timedelta(days=3))]
    assert (soon["status"] == "scheduled").any()
    assert 0.01 <= soon["patient_id"].nunique() / len(patients) <= 0.08


def test_the_latest_completed_appointment_is_the_last_visit(
    patients: pd.DataFrame, appointments: pd.DataFrame
) -> None:
    completed = appointments[appointments["status"] == "completed"]
    latest = completed.groupby("patient_id")["start_at"].max().str[:10]
    visits = patients.set_index("patient_id")["last_visit_date"]
    assert (latest == visits.loc[latest.index]).all()
    seen = visits[visits.ne("")]
    assert seen.index.isin(latest.index).all()


def test_followup_turns_only_past_scheduled_into_completed_or_broken(
    chain: ChainFiles, tmp_path: Path
) -> None:
    later = AS_OF + timedelta(days=7)
    out = generate_followup(chain.appointments, tmp_path / "later.csv", seed=3, as_of=later)
    before, after = read(chain.appointments), read(out)
    assert list(after.columns) == APPOINTMENT_COLUMNS
    assert after["appointment_id"].tolist() == before["appointment_id"].tolist()
    unchanged = [c for c in APPOINTMENT_COLUMNS if c != "status"]
    pd.testing.assert_frame_equal(after[unchanged], before[unchanged])
    due = before["status"].isin({"scheduled", "confirmed"}) & (
        pd.to_datetime(before["start_at"]).dt.date <= later)  # fmt: skip
    assert due.sum() > 0
    assert set(after.loc[due, "status"]) == {"completed", "broken"}
    assert 0.7 <= (after.loc[due, "status"] == "completed").mean() <= 0.9
    pd.testing.assert_series_equal(after.loc[~due, "status"], before.loc[~due, "status"])
    again = generate_followup(chain.appointments, tmp_path / "again.csv", seed=3, as_of=later)
    assert again.read_bytes() == out.read_bytes()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one patient"):
        generate_chain(tmp_path, patients=0, as_of=AS_OF)
    with pytest.raises(ValueError, match="kept_share"):
        generate_followup(tmp_path / "a.csv", tmp_path / "b.csv", seed=1, kept_share=1.5)


def test_a_single_patient_chain_is_written(tmp_path: Path) -> None:
    files = generate_chain(tmp_path, patients=1, clinics=1, as_of=AS_OF)
    patients = read(files.patients)
    assert patients["patient_id"].tolist() == ["1"]
    assert patients["guarantor_id"].tolist() == ["1"]
    assert list(read(files.appointments).columns) == APPOINTMENT_COLUMNS
