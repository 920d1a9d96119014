"""The conversion report: what converts, per campaign, PSR, clinic, callee-local hour or
weekday, attempt number or language.

Definitions (per group of attempts):

- ``attempts``: attempts started; ``live_answers``: a person was detected (the denominator of
  abandonment); ``contacts``: the outcome table's contact flag (the right party spoke with a
  PSR); ``contact_rate`` = contacts / attempts.
- ``conversions``: attempts whose disposition counts as success for the campaign's kind;
  ``conversion_rate`` = conversions / contacts, with its Wilson 95% score interval
  ``conversion_rate_low`` .. ``conversion_rate_high``; ``conversions_per_attempt`` =
  conversions / attempts.
- ``avg_talk_seconds``: mean of connected calls' talk (bridged to hang-up);
  ``avg_wrap_seconds``: mean of their wrap-up (hang-up to disposition).

Rates are None where their denominator is 0. ``hour`` (0-23) and ``weekday`` (``mon`` ..
``sun``) are callee-local: the attempt's start in the entry's primary zone (the export's
``timezone``). The report streams the same chunks as the export, so it runs in flat memory.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from dialer.campaigns import WEEKDAYS
from dialer.errors import ConfigError
from dialer.reports.export import iter_dispositions
from dialer.reports.filters import Filters

GROUPINGS = ("campaign", "agent", "clinic", "hour", "weekday", "attempt", "language")
CONVERSION_COLUMNS = [
    "attempts",
    "live_answers",
    "contacts",
    "contact_rate",
    "conversions",
    "conversion_rate",
    "conversion_rate_low",
    "conversion_rate_high",
    "conversions_per_attempt",
    "avg_talk_seconds",
    "avg_wrap_seconds",
]
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
_SUMS = ["attempts", "live_answers", "contacts", "conversions", "talk", "talks", "wrap", "wraps"]


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None with no trials."""
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _local(chunk: pd.DataFrame) -> pd.DataFrame:
    """Callee-local hour and weekday of each attempt's start, zone by zone."""
    hour = pd.Series(0, index=chunk.index, dtype="int64")
    weekday = pd.Series(0, index=chunk.index, dtype="int64")
    zones = chunk["timezone"].fillna("UTC")
    for zone in zones.unique():
        rows = zones == zone
        local = chunk.loc[rows, "started_at"].dt.tz_convert(str(zone))
        hour[rows] = local.dt.hour.to_numpy()
        weekday[rows] = local.dt.day_of_week.to_numpy()
    return pd.DataFrame({"hour": hour, "weekday": weekday})


def _keys(chunk: pd.DataFrame, by: str) -> pd.Series:
    if by in ("hour", "weekday"):
        return _local(chunk)[by]
    source = {"clinic": "clinic_id", "attempt": "attempt_number"}.get(by, by)
    return chunk[source].astype(object)


def _partial(chunk: pd.DataFrame, by: str) -> pd.DataFrame:
    talk, wrap = chunk["talk_seconds"], chunk["wrap_seconds"]
    parts = pd.DataFrame(
        {
            "key": _keys(chunk, by).where(lambda k: k.notna(), "\0none"),
            "attempts": 1,
            "live_answers": chunk["live_answer"].astype("int64"),
            "contacts": chunk["is_contact"].astype("int64"),
            "conversions": chunk["is_conversion"].astype("int64"),
            "talk": talk.fillna(0).astype("float64"),
            "talks": talk.notna().astype("int64"),
            "wrap": wrap.fillna(0).astype("float64"),
            "wraps": wrap.notna().astype("int64"),
        }
    )
    return parts.groupby("key", sort=False)[_SUMS].sum()


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (
        (numerator / denominator.where(denominator > 0)).astype(object).where(denominator > 0, None)
    )


def _finish(sums: pd.DataFrame, by: str) -> pd.DataFrame:
    out = pd.DataFrame(index=sums.index)
    for name in ("attempts", "live_answers", "contacts", "conversions"):
        out[name] = sums[name].astype("int64")
    out["contact_rate"] = _ratio(sums["contacts"], sums["attempts"])
    out["conversion_rate"] = _ratio(sums["conversions"], sums["contacts"])
    bounds = [
        wilson_interval(int(x), int(n))
        for x, n in zip(sums["conversions"], sums["contacts"], strict=True)
    ]
    out["conversion_rate_low"] = pd.Series(
        [b[0] if b else None for b in bounds], index=out.index, dtype=object
    )
    out["conversion_rate_high"] = pd.Series(
        [b[1] if b else None for b in bounds], index=out.index, dtype=object
    )
    out["conversions_per_attempt"] = _ratio(sums["conversions"], sums["attempts"])
    out["avg_talk_seconds"] = _ratio(sums["talk"], sums["talks"])
    out["avg_wrap_seconds"] = _ratio(sums["wrap"], sums["wraps"])
    out = out.reset_index(names=by)
    out[by] = out[by].astype(object).where(out[by] != "\0none", None)
    return _ordered(out[[by, *CONVERSION_COLUMNS]], by)


def _ordered(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Groups in their natural order: numbers ascending, weekdays Monday first, names A-Z,
    the group without a value (no PSR, no clinic) last."""
    missing = frame[by].isna()
    present = frame[~missing].copy()
    if by == "weekday":
        present = present.sort_values(by)
        present[by] = present[by].map(lambda day: WEEKDAYS[int(day)])
    elif by in ("hour", "attempt"):
        present = present.sort_values(by, key=lambda s: s.astype("int64"))
        present[by] = present[by].astype("int64")
    else:
        present = present.sort_values(by, key=lambda s: s.astype(str))
    return pd.concat([present, frame[missing]]).reset_index(drop=True)


def conversion_report(
    engine: Engine,
    filters: Filters | None = None,
    *,
    by: str = "campaign",
    zone_setting: str | None = None,
) -> pd.DataFrame:
    """Per group (column named after ``by``): the columns of :data:`CONVERSION_COLUMNS`.

    ``by`` is one of :data:`GROUPINGS`; a group with no value (attempts no PSR took, for
    ``by="agent"``) comes last with ``None`` as its name.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"Cannot group by {by!r} (one of {', '.join(GROUPINGS)})")
    partials: list[pd.DataFrame] = []
    for chunk in iter_dispositions(engine, filters, zone_setting=zone_setting, analysis=True):
        partials.append(_partial(chunk, by))
        if len(partials) > 16:  # keep memory flat: fold the partial sums as they come
            partials = [pd.concat(partials).groupby(level=0, sort=False).sum()]
    if not partials:
        empty: dict[str, Any] = {by: pd.Series(dtype=object)}
        empty.update({name: pd.Series(dtype=object) for name in CONVERSION_COLUMNS})
        return pd.DataFrame(empty)
    sums = pd.concat(partials).groupby(level=0, sort=False).sum()
    return _finish(sums, by)
