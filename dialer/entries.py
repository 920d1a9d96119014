"""Households to dial-list entries: which phones reach a household, in which zones, in what order.

Phone order for a household: the guarantor's preferred phone (when the campaign's ``phones``
allows that kind), then the guarantor's phones in the campaign's order, then the eligible
members' phones by patient id, each number once. Invalid, retired and consent-lacking numbers
are not usable; a number on a do-not-call list (global, the campaign's, or a member's clinic's),
or belonging to a person flagged do-not-call, is never dialed for that household.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dialer import geo

if TYPE_CHECKING:
    from dialer.campaigns import CampaignModel
    from dialer.lists import Population


def natural_order(ids: pd.Series) -> pd.Series:
    """Rank of external ids: all-digit ids numerically first, then the rest as text.

    Equal numbers are ordered by their text, so ``007`` comes just before ``7``.
    """
    text = ids.astype(str)
    digits = text.str.fullmatch(r"\d{1,18}").astype("boolean").fillna(False).to_numpy(dtype=bool)
    number = pd.to_numeric(text.where(digits), errors="coerce").fillna(0).to_numpy(dtype="int64")
    other = text.where(~digits, "").to_numpy(dtype=object)
    order = np.lexsort((text.to_numpy(dtype=object), other, number, ~digits))
    ranks = np.empty(len(text), dtype="int64")
    ranks[order] = np.arange(len(text))
    return pd.Series(ranks, index=ids.index)


@dataclass
class HouseholdPhones:
    """Per eligible candidate a phone-stage reason (or none); per household its phones."""

    reason: pd.Series  # index patient id -> do_not_call / no_valid_phone / unknown_timezone
    households: pd.DataFrame  # index household_key: phones, zones, timezone_source, blocked,
    # clinics (the members' clinic ids)
    clinic_listed: frozenset[tuple[str, int]] = frozenset()  # (phone, clinic_id) DNC listings


def _dnc_sets(pop: Population, campaign: str) -> tuple[set[str], pd.DataFrame]:
    """Numbers listed for everyone in this campaign, and (phone, clinic_id) clinic listings."""
    dnc = pop.dnc
    everywhere = dnc["scope"].eq("global") | (
        dnc["scope"].eq("campaign") & dnc["campaign"].eq(campaign)
    )
    per_clinic = dnc.loc[dnc["scope"].eq("clinic"), ["phone", "clinic_id"]].astype(
        {"clinic_id": "int64"}
    )
    return set(dnc.loc[everywhere, "phone"]), per_clinic


def _clinic_listed(
    rows: pd.DataFrame, members: pd.DataFrame, per_clinic: pd.DataFrame
) -> pd.Series:
    """Per phone row: is the number on the list of a clinic of one of the household's members?"""
    if per_clinic.empty or rows.empty:
        return pd.Series(False, index=rows.index)
    clinics = (
        members[["guarantor_key", "clinic_id"]].drop_duplicates().astype({"clinic_id": "int64"})
    )
    clinics = clinics.rename(columns={"guarantor_key": "household_key"})
    hits = (
        rows[["household_key", "phone"]]
        .merge(clinics, on="household_key")
        .merge(per_clinic, on=["phone", "clinic_id"])
    )
    listed = pd.MultiIndex.from_frame(hits[["household_key", "phone"]])
    return pd.Series(
        pd.MultiIndex.from_frame(rows[["household_key", "phone"]]).isin(listed), index=rows.index
    )


def _phone_rows(campaign: CampaignModel, pop: Population, members: pd.DataFrame) -> pd.DataFrame:
    """Every phone of the households' guarantors and eligible members, in dialing order."""
    kinds = list(campaign.calling.phones)
    phones = pop.phones[pop.phones["kind"].isin(kinds)]
    keys = members["guarantor_key"].unique()
    guarantors = pop.patients[pop.patients["external_id"].isin(keys)]
    g = phones.merge(
        guarantors[["id", "external_id", "preferred_phone"]], left_on="patient_id", right_on="id"
    )
    g["household_key"] = g["external_id"]
    g["group"] = np.where(g["kind"].eq(g["preferred_phone"]), 0, 1)
    g["member_order"] = 0
    m = phones.merge(
        members[["id", "guarantor_key", "sort_id"]], left_on="patient_id", right_on="id"
    )
    m["household_key"], m["group"], m["member_order"] = m["guarantor_key"], 2, m["sort_id"]
    rows = pd.concat([g, m], ignore_index=True)
    rows["kind_order"] = rows["kind"].map({k: i for i, k in enumerate(kinds)})
    rows = rows.sort_values(["household_key", "group", "member_order", "kind_order"], kind="stable")
    return rows


def _flagged_numbers(pop: Population) -> set[str]:
    """Every number of a person flagged do-not-call, of any kind and in any household: such a
    number may reach them, so it is dialed for no one (stricter than per household)."""
    flagged = pop.patients.loc[pop.patients["do_not_call"].astype(bool), "id"]
    numbers = pop.phones.loc[pop.phones["patient_id"].isin(flagged), "phone"]
    return set(numbers.dropna())


def household_phones(
    campaign: CampaignModel, pop: Population, members: pd.DataFrame
) -> HouseholdPhones:
    """Usable phones, zones and phone-stage reasons for the households of ``members``."""
    rows = _phone_rows(campaign, pop, members)
    consent_needed = campaign.calling.require_consent_for_mobile
    usable = rows["valid"].astype(bool) & rows["phone"].notna() & ~rows["phone"].isin(pop.retired)
    if consent_needed:
        usable &= ~(rows["kind"].eq("mobile") & rows["consent_source"].isna())
    rows = rows[usable]
    everywhere, per_clinic = _dnc_sets(pop, campaign.name)
    clinic_dnc = _clinic_listed(rows, members, per_clinic)
    rows = rows.assign(
        dnc=rows["phone"].isin(everywhere) | clinic_dnc | rows["phone"].isin(_flagged_numbers(pop))
    )
    # A number is do-not-call for the whole household when it is for any of its owners there.
    rows["dnc"] = rows.groupby(["household_key", "phone"])["dnc"].transform("max")
    rows = rows.drop_duplicates(["household_key", "phone"], keep="first")
    valid_count = rows.groupby("household_key").size()
    ok = rows[~rows["dnc"]]
    listed = ok.groupby("household_key", sort=False)["phone"].agg(list)
    firsts = ok.drop_duplicates("household_key").set_index("household_key")
    first_zones = firsts["timezones"]
    blocked = rows[rows["dnc"]].groupby("household_key")["phone"].agg(frozenset)
    households = _zones(pop, pd.DataFrame({"phones": listed}), first_zones)
    households["states"] = _states(pop, households.index.to_series(), firsts["phone"])
    households["blocked"] = blocked.reindex(households.index).map(
        lambda b: b if isinstance(b, frozenset) else frozenset()
    )
    clinics = members.groupby("guarantor_key")["clinic_id"].agg(
        lambda c: frozenset(map(int, c))  # type: ignore[type-var]
    )
    households["clinics"] = clinics.reindex(households.index)
    reason = _phone_reasons(members, valid_count, households)
    pairs = frozenset(zip(per_clinic["phone"], per_clinic["clinic_id"], strict=True))
    return HouseholdPhones(reason=reason, households=households, clinic_listed=pairs)


def union_words(*columns: pd.Series) -> pd.Series:
    """Per row, the sorted distinct space-separated words of several text columns (None and
    NaN are empty). Computed once per distinct combination: there are few."""
    key = columns[0].astype(object).where(columns[0].notna(), "").astype(str)
    for column in columns[1:]:
        key = key + "|" + column.astype(object).where(column.notna(), "").astype(str)
    lookup = {
        combo: " ".join(sorted({word for part in combo.split("|") for word in part.split()}))
        for combo in key.unique()
    }
    return key.map(lookup).astype(object)


def _zones(pop: Population, households: pd.DataFrame, first_zones: pd.Series) -> pd.DataFrame:
    """Candidate zones (space-separated): the guarantor's ZIP zone plus the first phone's
    area-code zones, else the guarantor's clinic zone (flagged as ``clinic``)."""
    guarantors = pop.patients.drop_duplicates("external_id").set_index("external_id")
    keys = households.index.to_series()
    postal = keys.map(guarantors["postal_code"])
    zip_zone = geo.zip_timezones(postal.where(postal.notna(), None))
    clinic_zone = keys.map(guarantors["clinic_id"]).map(pop.clinics.set_index("id")["timezone"])
    phone_zones = keys.map(first_zones).astype(object).fillna("")
    zones = union_words(zip_zone, phone_zones)
    has_phone = phone_zones.ne("")
    has_zip = zip_zone.notna()
    source = pd.Series(
        np.select(
            [has_phone & has_zip, has_phone, has_zip], ["area_code+zip", "area_code", "zip"], ""
        ),
        index=keys.index,
        dtype=object,
    )
    fallback = zones.eq("") & clinic_zone.notna()
    zones = zones.where(~fallback, clinic_zone)
    source = source.where(~fallback, "clinic").where(zones.ne(""), None)
    return households.assign(
        zones=pd.Series(zones.to_numpy(), index=households.index, dtype=object),
        timezone_source=pd.Series(source.to_numpy(), index=households.index, dtype=object),
    )


def _states(pop: Population, keys: pd.Series, first_phone: pd.Series) -> pd.Series:
    """Candidate states: the guarantor's recorded state, their ZIP's, the first phone's area
    code's (every one of them has its calling rules applied)."""
    guarantors = pop.patients.drop_duplicates("external_id").set_index("external_id")
    recorded = keys.map(guarantors["state"])
    postal = keys.map(guarantors["postal_code"])
    phones = keys.map(first_phone)
    zips = {code: geo.zip_state(code) for code in postal.dropna().unique()}
    prefixes = phones.astype(object).where(phones.notna(), "").astype(str)
    areas = {number: geo.phone_state(number) for number in prefixes.unique() if number}
    return union_words(recorded, postal.map(zips), prefixes.map(areas))


def _phone_reasons(
    members: pd.DataFrame, valid_count: pd.Series, households: pd.DataFrame
) -> pd.Series:
    key = members["guarantor_key"]
    has_valid = key.map(valid_count).fillna(0).gt(0)
    has_ok = key.isin(households.index)
    zoned = key.map(households["zones"].map(bool)).astype("boolean").fillna(False).astype(bool)
    reason = pd.Series(None, index=members.index, dtype=object)
    reason[members["do_not_call"].astype(bool) | (has_valid & ~has_ok)] = "do_not_call"
    reason[reason.isna() & ~has_valid] = "no_valid_phone"
    reason[reason.isna() & ~zoned] = "unknown_timezone"
    return pd.Series(reason.to_numpy(), index=members["id"].to_numpy(), dtype=object)


ENTRY_FRAME_COLUMNS = [
    "rank",
    "household_key",
    "households",
    "clinic_id",
    "phone",
    "phones",
    "timezones",
    "timezone_source",
    "states",
    "language",
    "patient_ids",
    "patient_count",
]


def assemble_entries(
    campaign: CampaignModel, pop: Population, eligible: pd.DataFrame, phones: HouseholdPhones
) -> tuple[pd.DataFrame, pd.Series]:
    """Ranked entries and, per eligible patient id, the key of the entry covering them."""
    if eligible.empty:
        columns = [*ENTRY_FRAME_COLUMNS, *campaign.priority_fields]
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), pd.Series(dtype=object)
    house = phones.households.loc[eligible["guarantor_key"].unique()]
    house = house.assign(first_phone=house["phones"].map(lambda p: p[0]))
    house = house.assign(order=natural_order(house.index.to_series()))
    house = house.sort_values("order")
    primary = house.groupby("first_phone")["order"].transform("min")
    key_of_order = pd.Series(house.index, index=house["order"])
    house["entry_key"] = primary.map(key_of_order)
    members = eligible.assign(entry_key=eligible["guarantor_key"].map(house["entry_key"]))
    members["household_size"] = members.groupby("entry_key")["id"].transform("size")
    attempts = pop.households.set_index("household_key")["attempts"]
    house["attempts"] = house.index.to_series().map(attempts).fillna(0)
    members["attempts"] = members["entry_key"].map(house.groupby("entry_key")["attempts"].max())
    members["entry_order"] = members["entry_key"].map(house["order"])
    fields = campaign.priority_fields
    by = [*fields, "sort_id"]
    ascending = [key.order == "asc" for key in campaign.priority] + [True]
    urgent = members.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    urgent = urgent.drop_duplicates("entry_key")
    ranked = urgent.sort_values(
        [*fields, "entry_order"],
        ascending=[*ascending[:-1], True],
        na_position="last",
        kind="stable",
    )
    entries = _entry_rows(ranked, members, house, fields, phones.clinic_listed)
    return entries, pd.Series(members["entry_key"].to_numpy(), index=members["id"].to_numpy())


def _merged_households(
    house: pd.DataFrame, clinic_listed: frozenset[tuple[str, int]]
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series, pd.Series]:
    """Per entry key: its households, phones (each number once), zones and zone sources.

    Almost every entry is one household, taken as is; only merged entries are combined.
    """
    alone = ~house["entry_key"].duplicated(keep=False)
    single = house[alone].set_index("entry_key")
    households = single.index.to_series().map(lambda key: [key])
    phones = single["phones"]
    zones = single["zones"]
    sources = single["timezone_source"]
    states = single["states"]
    groups = house[~alone].groupby("entry_key")
    if len(groups):
        households = pd.concat([households, groups.apply(lambda g: list(g.index))])
        merged = _merged_phones(house[~alone], clinic_listed)
        phones = pd.concat([phones, merged])
        zones = pd.concat(
            [
                zones,
                groups["zones"].agg(
                    lambda zs: " ".join(sorted({z for t in zs for z in t.split()}))
                ),
            ]
        )
        sources = pd.concat(
            [
                sources,
                groups["timezone_source"].agg(
                    lambda s: "+".join(sorted(set("+".join(s).split("+"))))
                ),
            ]
        )
        states = pd.concat(
            [
                states,
                groups["states"].agg(
                    lambda ss: " ".join(sorted({x for s in ss for x in s.split()}))
                ),
            ]
        )
    return households, phones, zones, sources, states


def _merged_phones(house: pd.DataFrame, clinic_listed: frozenset[tuple[str, int]]) -> pd.Series:
    """Per merged entry: its households' phones in order, each number once, without any number
    that is do-not-call for one of its households or listed by a clinic of one of its members.
    """
    out: dict[object, list[str]] = {}
    for key, group in house.groupby("entry_key"):
        blocked: frozenset[str] = frozenset().union(*group["blocked"])
        clinics: frozenset[int] = frozenset().union(*group["clinics"])
        numbers = dict.fromkeys(p for listed in group["phones"] for p in listed)
        out[key] = [
            p
            for p in numbers
            if p not in blocked and not any((p, c) in clinic_listed for c in clinics)
        ]
    return pd.Series(out, dtype=object)


def _entry_rows(
    ranked: pd.DataFrame,
    members: pd.DataFrame,
    house: pd.DataFrame,
    fields: list[str],
    clinic_listed: frozenset[tuple[str, int]],
) -> pd.DataFrame:
    households, merged_phones, zones, sources, states = _merged_households(house, clinic_listed)
    own = members.drop_duplicates("guarantor_key").set_index("guarantor_key")["household_language"]
    any_es = members["household_language"].eq("es").groupby(members["entry_key"]).any()
    primary = any_es.index.to_series().map(own)
    language = primary.where(~any_es, "es")
    by_order = members.sort_values("sort_id")
    patient_ids = by_order.groupby("entry_key")["external_id"].agg(";".join)
    keys = ranked["entry_key"]
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(ranked) + 1),
            "household_key": keys.to_numpy(),
            "households": keys.map(households).to_numpy(),
            "clinic_id": ranked["clinic_id"].astype("int64").to_numpy(),
            "phone": keys.map(merged_phones.map(lambda p: p[0])).to_numpy(),
            "phones": keys.map(merged_phones.map(" ".join)).to_numpy(),
            "timezones": keys.map(zones).to_numpy(),
            "timezone_source": keys.map(sources).to_numpy(),
            "states": keys.map(states).to_numpy(),
            "language": keys.map(language).to_numpy(),
            "patient_ids": keys.map(patient_ids).to_numpy(),
            "patient_count": keys.map(members.groupby("entry_key").size()).to_numpy(),
        }
    )
    for name in fields:
        frame[name] = ranked[name].to_numpy()
    return frame
