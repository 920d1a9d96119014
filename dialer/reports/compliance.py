"""The compliance report: per campaign, the figures a manager shows an auditor.

- Abandonment: abandoned / live answers (persons detected) over each successive 30-day period
  from the campaign's first attempt (:class:`dialer.compliance.AbandonLedger`, the engine's
  own ledger) and since the start, against the campaign's cap (``max_abandon_rate``).
- ``safe_harbor_played``: abandoned calls that heard the safe-harbor message (the callee was
  still on the line when the 2-second grace ran out, or the message was reported finished);
  the rest of ``abandoned`` hung up inside the grace.
- ``outside_window`` (must be 0): attempts started outside the calling window in some
  candidate zone, by the campaign's current windows, the state rules and holidays.
- ``on_dnc`` (must be 0): attempts to a number that was on an applicable do-not-call list
  (global, the attempt's clinic's, or the campaign's) when it was dialed.
- ``over_cap`` (must be 0): attempts beyond a cap when placed: the campaign's
  ``max_attempts`` per household, ``max_attempts_per_day`` per callee-local day (in any
  candidate zone), or a rolling per-phone cap over every campaign's calls (federal 1 a day
  and 3 a week, and the candidate states' caps). A callback the callee asked for (mode
  ``callback``) is held to the states' caps only, as the engine holds it
  (:mod:`dialer.compliance`, "Requested callbacks"); it still counts against later calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, and_, exists, func, or_, select

from dialer.campaigns import CampaignModel, parse_campaign
from dialer.compliance import ABANDON_GRACE_SECONDS, AbandonLedger, in_calling_window
from dialer.errors import NotFound
from dialer.reports.export import to_utc
from dialer.staterules import StateRules, load_state_rules, most_restrictive_caps
from dialer.store.models import Attempt, CallEventRecord, Campaign, DncEntry

COMPLIANCE_COLUMNS = [
    "campaign",
    "started_at",
    "cap",
    "live_answers",
    "abandoned",
    "abandon_rate",
    "periods",
    "worst_period_rate",
    "periods_over_cap",
    "safe_harbor_played",
    "outside_window",
    "on_dnc",
    "over_cap",
    "ok",
]
PERIOD_COLUMNS = [
    "campaign",
    "period",
    "period_start",
    "period_end",
    "live_answers",
    "abandoned",
    "abandon_rate",
    "cap",
    "over_cap",
]


def _read(engine: Engine, query: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))


def _campaigns(engine: Engine, names: tuple[str, ...]) -> list[tuple[int, CampaignModel]]:
    query = select(Campaign.id, Campaign.name, Campaign.definition).order_by(Campaign.name)
    rows = _read(engine, query)
    if names:
        missing = [name for name in names if name not in set(rows["name"])]
        if missing:
            known = ", ".join(rows["name"]) or "none yet"
            raise NotFound(f"No campaign named {missing[0]!r} in the store (known: {known})")
        rows = rows[rows["name"].isin(names)]
    return [
        (int(cid), parse_campaign(definition, Path(f"{name}.yaml")))
        for cid, name, definition in zip(rows["id"], rows["name"], rows["definition"], strict=True)
    ]


def _ledger(attempts: pd.DataFrame) -> AbandonLedger:
    first = attempts["started_at"].min()
    ledger = AbandonLedger(started_at=first.to_pydatetime() if pd.notna(first) else None)
    live = attempts[attempts["person_detected_at"].notna()]
    for detected, abandoned in zip(live["person_detected_at"], live["abandoned"], strict=True):
        ledger.record(detected.to_pydatetime(), bool(abandoned))
    return ledger


def abandonment_periods(engine: Engine, campaigns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per campaign and successive 30-day period (numbered from 1): the columns of
    :data:`PERIOD_COLUMNS` (``period_end`` exclusive, times aware UTC)."""
    rows = []
    for campaign_id, model in _campaigns(engine, campaigns):
        attempts = _attempts(engine, campaign_id)
        cap = model.dialing.max_abandon_rate
        for index, (start, detected, abandoned, rate) in enumerate(
            _ledger(attempts).period_rates(), start=1
        ):
            rows.append(
                (
                    model.name,
                    index,
                    start,
                    start + timedelta(days=30),
                    detected,
                    abandoned,
                    rate if detected else None,
                    cap,
                    rate > cap,
                )
            )
    return pd.DataFrame(rows, columns=PERIOD_COLUMNS)


def _attempts(engine: Engine, campaign_id: int) -> pd.DataFrame:
    a = Attempt
    frame = _read(
        engine,
        select(
            a.id,
            a.household_id,
            a.phone,
            a.timezones,
            a.states,
            a.started_at,
            a.person_detected_at,
            a.ended_at,
            a.abandoned,
            a.mode,
        )
        .where(a.campaign_id == campaign_id)
        .order_by(a.started_at, a.id),
    )
    for name in ("started_at", "person_detected_at", "ended_at"):
        frame[name] = to_utc(frame[name].astype(object))
    frame["abandoned"] = frame["abandoned"].astype(bool)
    return frame


def _safe_harbor_played(engine: Engine, campaign_id: int, attempts: pd.DataFrame) -> int:
    abandoned = attempts[attempts["abandoned"] & attempts["person_detected_at"].notna()]
    grace = pd.Timedelta(seconds=ABANDON_GRACE_SECONDS)
    stayed = abandoned["ended_at"].isna() | (
        abandoned["ended_at"] - abandoned["person_detected_at"] >= grace
    )
    finished = set(
        _read(
            engine,
            select(CallEventRecord.attempt_id)
            .join(Attempt, Attempt.id == CallEventRecord.attempt_id)
            .where(
                Attempt.campaign_id == campaign_id,
                Attempt.abandoned.is_(True),
                CallEventRecord.kind == "message_done",
            ),
        )["attempt_id"].astype("int64")
    )
    return int((stayed | abandoned["id"].isin(finished)).sum())


def _outside_window(attempts: pd.DataFrame, model: CampaignModel, rules: StateRules) -> int:
    # Windows, state rules and holidays change on whole minutes: one check per distinct
    # (zones, states, minute) decides every attempt of that minute.
    @cache
    def allowed(zones: str, states: str, minute: datetime) -> bool:
        return in_calling_window(zones.split(), states.split(), model, minute, rules)

    minutes = attempts["started_at"].dt.floor("min")
    return sum(
        not allowed(str(z), str(s or ""), m.to_pydatetime())
        for z, s, m in zip(attempts["timezones"], attempts["states"], minutes, strict=True)
    )


def _on_dnc(engine: Engine, campaign_id: int, name: str) -> int:
    a, d = Attempt, DncEntry
    listed = exists().where(
        d.phone == a.phone,
        d.added_at <= a.started_at,
        or_(d.removed_at.is_(None), d.removed_at > a.started_at),
        or_(
            d.scope == "global",
            and_(d.scope == "clinic", d.clinic_id == a.clinic_id),
            and_(d.scope == "campaign", d.campaign == name),
        ),
    )
    query = select(func.count()).select_from(a).where(a.campaign_id == campaign_id, listed)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _phone_history(engine: Engine, phones: pd.Series) -> pd.DataFrame:
    """Every campaign's attempts to these phones: id, phone, started_at."""
    frames = []
    unique = sorted(set(phones))
    for start in range(0, len(unique), 1000):
        batch = unique[start : start + 1000]
        query = select(Attempt.id, Attempt.phone, Attempt.started_at).where(
            Attempt.phone.in_(batch)
        )
        frames.append(_read(engine, query))
    if not frames:
        return pd.DataFrame(columns=["id", "phone", "started_at"])
    history = pd.concat(frames, ignore_index=True)
    history["started_at"] = to_utc(history["started_at"].astype(object))
    return history.sort_values(["phone", "started_at", "id"], kind="stable")


def over_cap_ids(
    engine: Engine, attempts: pd.DataFrame, model: CampaignModel, rules: StateRules
) -> set[int]:
    """Ids of the campaign's attempts that went beyond a cap when they were placed."""
    calling = model.calling
    over: set[int] = set()
    ordered = attempts.sort_values(["household_id", "started_at", "id"], kind="stable")
    ordered = ordered.assign(requested=ordered["mode"] == "callback")
    earlier = ordered.groupby("household_id").cumcount()
    beyond = (earlier >= calling.max_attempts) & ~ordered["requested"]
    over.update(ordered.loc[beyond, "id"].astype("int64"))
    zones = (
        ordered.assign(zone=ordered["timezones"].str.split())
        .explode("zone")
        .dropna(subset=["zone"])
    )
    if not zones.empty:
        zones["local_day"] = [
            at.astimezone(_zone(str(zone))).date()
            for at, zone in zip(zones["started_at"], zones["zone"], strict=True)
        ]
        same_day = zones.groupby(["household_id", "zone", "local_day"]).cumcount()
        beyond = (same_day >= calling.max_attempts_per_day) & ~zones["requested"]
        over.update(zones.loc[beyond, "id"].astype("int64"))
    history = _phone_history(engine, attempts["phone"])
    caps_of = {
        (states, federal): most_restrictive_caps(rules, str(states or "").split(), federal=federal)
        for states in attempts["states"].unique()
        for federal in (True, False)
    }
    ours = attempts.set_index("id")
    for cap in sorted({cap for caps in caps_of.values() for cap in caps}):
        window = pd.Timedelta(hours=cap.window_hours)
        before = history.groupby("phone")["started_at"].shift(cap.calls)
        hit = history.loc[before > history["started_at"] - window, "id"].astype("int64")
        bound = {
            i
            for i in hit
            if i in ours.index
            and cap in caps_of[ours.at[i, "states"], bool(ours.at[i, "mode"] != "callback")]
        }
        over.update(bound)
    return over


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def compliance_report(
    engine: Engine,
    campaigns: tuple[str, ...] = (),
    *,
    rules: StateRules | None = None,
) -> pd.DataFrame:
    """One row per campaign (all, or those named) with the columns of
    :data:`COMPLIANCE_COLUMNS`; ``ok`` is True when no period is over the cap and every
    must-be-zero count is 0. Campaigns that have not dialed yet are left out."""
    rules = rules or load_state_rules()
    rows = []
    for campaign_id, model in _campaigns(engine, campaigns):
        attempts = _attempts(engine, campaign_id)
        if attempts.empty:
            continue
        cap = model.dialing.max_abandon_rate
        periods = _ledger(attempts).period_rates()
        live = int(attempts["person_detected_at"].notna().sum())
        abandoned = int((attempts["abandoned"] & attempts["person_detected_at"].notna()).sum())
        rates = [rate for _, detected, _, rate in periods if detected]
        counts = {
            "outside_window": _outside_window(attempts, model, rules),
            "on_dnc": _on_dnc(engine, campaign_id, model.name),
            "over_cap": len(over_cap_ids(engine, attempts, model, rules)),
        }
        over_periods = sum(1 for rate in rates if rate > cap)
        rows.append(
            {
                "campaign": model.name,
                "started_at": attempts["started_at"].min().to_pydatetime().astimezone(UTC),
                "cap": cap,
                "live_answers": live,
                "abandoned": abandoned,
                "abandon_rate": abandoned / live if live else None,
                "periods": len(periods),
                "worst_period_rate": max(rates) if rates else None,
                "periods_over_cap": over_periods,
                "safe_harbor_played": _safe_harbor_played(engine, campaign_id, attempts),
                **counts,
                "ok": over_periods == 0 and not any(counts.values()),
            }
        )
    return pd.DataFrame(rows, columns=COMPLIANCE_COLUMNS)
