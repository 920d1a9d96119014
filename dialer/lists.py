"""The dial-list builder: from a campaign and the practice's population to ranked entries.

Pure and vectorised: it takes frames (see :class:`Population`) and dates, never the clock or
the database. Every candidate ends up eligible or excluded with exactly one reason, the first
that applies in :func:`exclusion_reasons` order; eligible members sharing a guarantor become
one entry, and households whose first phone is the same number are merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from dialer.campaigns import CampaignModel
from dialer.entries import HouseholdPhones, assemble_entries, household_phones, natural_order

STATUS_REASONS = ("deceased", "inactive", "archived", "non_patient", "prospective")
TIMING_REASON = {
    "recall": "not_due",
    "reminder": "no_appointment_in_window",
    "reactivation": "seen_recently",
}
PHONE_REASONS = ("do_not_call", "no_valid_phone", "unknown_timezone")
RECENT_CONVERSION_DAYS = 7
REASON_TEXT = {
    "deceased": "the patient is deceased",
    "inactive": "the patient's status is inactive",
    "archived": "the patient's status is archived",
    "non_patient": "the person is not a patient (e.g. a parent who is only the guarantor)",
    "prospective": "the patient is prospective (never seen)",
    "outside_ages": "the patient's age is outside the campaign's ages (or the birth date is "
    "unknown)",
    "language": "the household's language is not one of the campaign's languages",
    "not_due": "no enabled, unscheduled recall of the campaign's types is due in its window",
    "no_appointment_in_window": "no appointment with a reminded status in the days ahead",
    "seen_recently": "the last visit is not within the campaign's months since visit (or "
    "there was none)",
    "has_future_appointment": "the patient already has a scheduled or confirmed appointment",
    "recently_converted": "this campaign converted the household in the last 7 days",
    "max_attempts_reached": "the household has had the campaign's maximum attempts",
    "do_not_call": "the patient is flagged do-not-call, or every valid phone is on a "
    "do-not-call list",
    "no_valid_phone": "no valid phone of the campaign's kinds (invalid, retired or missing)",
    "unknown_timezone": "no time zone from ZIP, area code or clinic",
}


def all_reasons() -> list[str]:
    """Every exclusion reason of every kind, in testing order."""
    timing = list(TIMING_REASON.values())
    rest = exclusion_reasons("recall")[len(STATUS_REASONS) + 3 :]
    return [*STATUS_REASONS, "outside_ages", "language", *timing, *rest]


def exclusion_reasons(kind: str) -> list[str]:
    """The exclusion reasons of a campaign kind, in the order they are tested."""
    future = [] if kind == "reminder" else ["has_future_appointment"]
    return [
        *STATUS_REASONS,
        "outside_ages",
        "language",
        TIMING_REASON[kind],
        *future,
        "recently_converted",
        "max_attempts_reached",
        *PHONE_REASONS,
    ]


@dataclass
class Population:
    """What the builder needs to know, one frame per concept (see store.population)."""

    patients: pd.DataFrame  # id, external_id, clinic_id, guarantor_key, birth_date, status,
    # language, postal_code, preferred_phone, do_not_call, last_visit_date, is_candidate
    clinics: pd.DataFrame  # id, timezone, default_language
    phones: pd.DataFrame  # patient_id, kind, phone, valid, timezones, consent_source
    visits: pd.DataFrame  # patient_id, last_completed_at, has_future, no_show_count
    recalls: pd.DataFrame  # patient_id, recall_type, due_date, disabled, disabled_until,
    # scheduled_date
    appointments: pd.DataFrame  # reminders: patient_id, clinic_id, start_at, status
    households: pd.DataFrame  # household_key, attempts, last_converted_at
    dnc: pd.DataFrame  # phone, scope, clinic_id, campaign
    retired: frozenset[str] = frozenset()


@dataclass
class DialListResult:
    """A built list: every candidate's fate and the ranked entries."""

    campaign: str
    kind: str
    as_of_by_clinic: dict[int, date]
    candidates: pd.DataFrame  # patient_id, external_id, household_key, reason, entry_key
    entries: pd.DataFrame  # rank, household_key, clinic_id, phone, phones, timezones, ...
    priority_fields: list[str]
    reasons: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> dict[str, int]:
        """Count per reason, every reason of the kind present."""
        counts = self.candidates["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in self.reasons}

    @property
    def eligible_patients(self) -> int:
        """Candidates on the list."""
        return int(self.candidates["reason"].isna().sum())


def _days(values: pd.Series) -> pd.Series:
    """Dates (python date/None or datetime64) as datetime64[s] days."""
    return pd.to_datetime(values, errors="coerce").astype("datetime64[s]")


def ages(birth: pd.Series, as_of: pd.Series) -> pd.Series:
    """Whole years from ``birth`` to ``as_of`` (NaN when the birth date is unknown)."""
    b, a = _days(birth), _days(as_of)
    years = a.dt.year - b.dt.year
    before_birthday = (a.dt.month < b.dt.month) | (
        (a.dt.month == b.dt.month) & (a.dt.day < b.dt.day)
    )
    result: pd.Series = (years - before_birthday.astype(int)).astype("float64")
    return result


def months_between(earlier: pd.Series, later: pd.Series) -> pd.Series:
    """Whole calendar months from ``earlier`` to ``later`` (NaN when either is unknown)."""
    e, l_ = _days(earlier), _days(later)
    months = (l_.dt.year - e.dt.year) * 12 + (l_.dt.month - e.dt.month)
    result: pd.Series = (months - (l_.dt.day < e.dt.day).astype(int)).astype("float64")
    return result


def household_languages(patients: pd.DataFrame, clinics: pd.DataFrame) -> pd.Series:
    """Language per household key: the guarantor's, else its members' (``es`` when any member's
    is), else the guarantor's clinic default."""
    known = patients[patients["language"].notna()].sort_values("sort_id")
    own = known[known["external_id"] == known["guarantor_key"]].drop_duplicates("guarantor_key")
    first = known.drop_duplicates("guarantor_key").set_index("guarantor_key")["language"]
    any_es = known["language"].eq("es").groupby(known["guarantor_key"]).any()
    members = first.where(~any_es.reindex(first.index, fill_value=False), "es")
    guarantor_clinic = patients.drop_duplicates("external_id").set_index("external_id")["clinic_id"]
    keys = pd.Series(patients["guarantor_key"].unique())
    clinic = keys.map(guarantor_clinic)
    default = clinic.map(clinics.set_index("id")["default_language"])
    result = pd.Series(default.fillna("en").to_numpy(), index=keys.to_numpy(), dtype=object)
    result.update(members)
    result.update(own.set_index("guarantor_key")["language"])
    return result


def _timing(campaign: CampaignModel, pop: Population, cand: pd.DataFrame) -> pd.DataFrame:
    """Per candidate: ``timing_ok`` plus the kind's priority value."""
    if campaign.kind == "recall":
        return _recall_timing(campaign, pop, cand)
    if campaign.kind == "reminder":
        return _reminder_timing(campaign, pop, cand)
    return _reactivation_timing(campaign, pop, cand)


def _recall_timing(campaign: CampaignModel, pop: Population, cand: pd.DataFrame) -> pd.DataFrame:
    audience = campaign.audience
    recalls = pop.recalls[pop.recalls["recall_type"].isin(audience.recall_types)]  # type: ignore[union-attr]
    recalls = recalls.merge(cand[["id", "as_of"]], left_on="patient_id", right_on="id")
    until = _days(recalls["disabled_until"])
    enabled = ~recalls["disabled"].astype(bool) & (until.isna() | (until < _days(recalls["as_of"])))
    open_ = enabled & recalls["scheduled_date"].isna() & recalls["due_date"].notna()
    due = _days(recalls.loc[open_, "due_date"]).groupby(recalls.loc[open_, "patient_id"]).min()
    # reindex, not map: Series.map fails on an empty datetime mapper (pandas 3.1).
    due_day = pd.Series(due.reindex(cand["id"].to_numpy()).to_numpy(), index=cand.index)
    overdue = (_days(cand["as_of"]) - _days(due_day)).dt.days
    low, high = audience.overdue_days  # type: ignore[union-attr]
    within = audience.due_within_days  # type: ignore[union-attr]
    ok = overdue.between(low, high) | overdue.between(-within, 0)
    return pd.DataFrame(
        {
            "timing_ok": ok.astype("boolean").fillna(False).astype(bool),
            "overdue_days": overdue.astype("float64"),
        },
        index=cand.index,
    )


def _local_dates(start_at: pd.Series, zones: pd.Series) -> pd.Series:
    """Aware UTC datetimes to local calendar days in per-row zones."""
    out = pd.Series(pd.NaT, index=start_at.index, dtype="datetime64[s]")
    stamps = pd.to_datetime(start_at, utc=True)
    for zone, index in stamps.groupby(zones).groups.items():
        local = stamps[index].dt.tz_convert(str(zone)).dt.tz_localize(None).dt.normalize()
        out[index] = local.astype("datetime64[s]")
    return out


def _reminder_timing(campaign: CampaignModel, pop: Population, cand: pd.DataFrame) -> pd.DataFrame:
    audience = campaign.audience
    appts = pop.appointments[pop.appointments["status"].isin(audience.statuses)]  # type: ignore[union-attr]
    appts = appts.merge(cand[["id", "as_of"]], left_on="patient_id", right_on="id")
    zones = appts["clinic_id"].map(pop.clinics.set_index("id")["timezone"])
    ahead = (_local_dates(appts["start_at"], zones) - _days(appts["as_of"])).dt.days
    low, high = audience.days_ahead  # type: ignore[union-attr]
    soonest = ahead[ahead.between(low, high)].groupby(appts["patient_id"]).min()
    days = cand["id"].map(soonest)
    return pd.DataFrame(
        {"timing_ok": days.notna(), "days_until_appointment": days.astype("float64")},
        index=cand.index,
    )


def _reactivation_timing(
    campaign: CampaignModel, pop: Population, cand: pd.DataFrame
) -> pd.DataFrame:
    visits = pop.visits.set_index("patient_id")
    completed = cand["id"].map(visits["last_completed_at"])
    zones = cand["clinic_id"].map(pop.clinics.set_index("id")["timezone"]).fillna("UTC")
    completed_day = _local_dates(completed, zones)
    recorded = _days(cand["last_visit_date"])
    last = pd.concat([completed_day, recorded], axis=1).max(axis=1)
    months = months_between(last, cand["as_of"])
    low, high = campaign.audience.months_since_visit  # type: ignore[union-attr]
    return pd.DataFrame(
        {"timing_ok": months.between(low, high), "months_since_visit": months}, index=cand.index
    )


def _first_reason(tests: list[tuple[str, pd.Series]], index: pd.Index) -> pd.Series:
    reason = pd.Series(None, index=index, dtype=object)
    for name, failed in tests:
        hit = reason.isna() & failed.reindex(index, fill_value=False).astype(bool)
        reason[hit] = name
    return reason


def _pre_phone_tests(
    campaign: CampaignModel,
    pop: Population,
    cand: pd.DataFrame,
    timing: pd.DataFrame,
) -> list[tuple[str, pd.Series]]:
    audience = campaign.audience
    tests = [(status, cand["status"].eq(status)) for status in STATUS_REASONS]
    if audience.ages is not None:
        age = ages(cand["birth_date"], cand["as_of"])
        tests.append(("outside_ages", ~age.between(*audience.ages)))
    if audience.languages is not None:
        tests.append(("language", ~cand["household_language"].isin(audience.languages)))
    tests.append((TIMING_REASON[campaign.kind], ~timing["timing_ok"]))
    if campaign.kind != "reminder":
        future = cand["id"].map(pop.visits.set_index("patient_id")["has_future"])
        tests.append(("has_future_appointment", future.astype("boolean").fillna(False)))
    return tests


def _by_household(values: pd.Series, keys: pd.Series) -> pd.Series:
    """``values`` (indexed by household key) looked up for ``keys``, index kept."""
    return pd.Series(values.reindex(keys.to_numpy()).array, index=keys.index)


def _counter_tests(
    campaign: CampaignModel,
    pop: Population,
    cand: pd.DataFrame,
    phones: HouseholdPhones,
    now: datetime,
) -> list[tuple[str, pd.Series]]:
    """recently_converted and max_attempts_reached, judged over every household that shares
    the same first phone (they would be one merged entry: one number, one conversation)."""
    counters = pop.households.set_index("household_key")
    attempts = counters["attempts"].astype("float64")
    converted = pd.to_datetime(counters["last_converted_at"], utc=True)
    first = phones.households["phones"].map(lambda numbers: numbers[0])
    if len(first):
        group_attempts = _by_household(attempts, first.index.to_series()).fillna(0)
        group_converted = _by_household(converted, first.index.to_series())
        attempts = group_attempts.groupby(first).transform("max").combine_first(attempts)
        converted = group_converted.groupby(first).transform("max").combine_first(converted)
    cutoff = pd.Timestamp(now - timedelta(days=RECENT_CONVERSION_DAYS))
    recent = _by_household(converted, cand["guarantor_key"])
    count = _by_household(attempts, cand["guarantor_key"]).fillna(0)
    return [
        ("recently_converted", recent.notna() & (recent >= cutoff)),
        ("max_attempts_reached", count >= campaign.calling.max_attempts),
    ]


def candidates_frame(
    campaign: CampaignModel, pop: Population, as_of_by_clinic: dict[int, date]
) -> pd.DataFrame:
    """The campaign's candidates with their as-of date, household language and sort id."""
    patients = pop.patients.copy()
    patients["sort_id"] = natural_order(patients["external_id"])
    patients["household_language"] = patients["guarantor_key"].map(
        household_languages(patients, pop.clinics)
    )
    cand = patients[patients["is_candidate"]].copy()
    cand["as_of"] = cand["clinic_id"].map(as_of_by_clinic)
    return cand


def build_dial_list(
    campaign: CampaignModel, pop: Population, as_of_by_clinic: dict[int, date], now: datetime
) -> DialListResult:
    """Build the campaign's list: each candidate's reason or entry, and the ranked entries."""
    cand = candidates_frame(campaign, pop, as_of_by_clinic)
    timing = _timing(campaign, pop, cand)
    cand = cand.join(timing.drop(columns="timing_ok"))
    reason = _first_reason(_pre_phone_tests(campaign, pop, cand, timing), cand.index)
    phones = household_phones(campaign, pop, cand[reason.isna()])
    counted = _first_reason(_counter_tests(campaign, pop, cand, phones, now), cand.index)
    reason = reason.fillna(counted).fillna(cand["id"].map(phones.reason))
    cand["reason"] = reason.astype(object).where(reason.notna(), None)
    visits = pop.visits.set_index("patient_id")
    cand["no_show_count"] = cand["id"].map(visits["no_show_count"]).fillna(0).astype("float64")
    entries, entry_of = assemble_entries(campaign, pop, cand[cand["reason"].isna()], phones)
    cand["entry_key"] = cand["id"].map(entry_of)
    out = cand[["id", "external_id", "guarantor_key", "reason", "entry_key"]].rename(
        columns={"id": "patient_id", "guarantor_key": "household_key"}
    )
    return DialListResult(
        campaign=campaign.name,
        kind=campaign.kind,
        as_of_by_clinic=dict(as_of_by_clinic),
        candidates=out.reset_index(drop=True),
        entries=entries,
        priority_fields=campaign.priority_fields,
        reasons=exclusion_reasons(campaign.kind),
    )


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """An empty frame with object columns (for populations with nothing in them)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def natural_sorted(values: list[str]) -> list[str]:
    """External ids sorted as people expect: numbers numerically, then the rest as text."""
    order = natural_order(pd.Series(values, dtype=object))
    return [values[i] for i in np.argsort(order.to_numpy(), kind="stable")]
