"""``dialer report html``: one self-contained page with the reports' tables and charts.

The page is a single HTML file with no external resource at all (its Content-Security-Policy
forbids loading any), so it opens offline and can be mailed as it is. It shows the conversion
report per campaign, the PSR leaderboard, the compliance report and attribution, and five
charts: conversion by callee-local hour and by attempt number (with Wilson 95% intervals), the
funnel per campaign, the leaderboard, and abandonment over time against the 3% line.

Charts are drawn with matplotlib and inlined as SVG. Why matplotlib: the figures are drawn here,
once, so the page needs no JavaScript and no bundled charting library (plotly's would add about
4 MB of inline script per page, Vega-Lite's a runtime too), renders the same in any browser or
mail client, and prints; SVG keeps text as text and scales. Every chart's data marks carry ids
(``<g id="hour-9">``), so tests and readers can find them. Interactivity (hover, zoom) is what
that choice gives up.

The page holds no patient data: only aggregates, campaign, clinic and PSR names.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import matplotlib
import matplotlib.ticker
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from dialer.reports.attribution import attribution_baseline, attribution_report
from dialer.reports.compliance import compliance_report
from dialer.reports.conversion import conversion_report
from dialer.reports.export import iter_dispositions
from dialer.reports.filters import Filters, report_zone
from dialer.reports.leaderboard import leaderboard

ABANDON_CAP = 0.03
PERIOD_DAYS = 30
SVG_STYLE = {
    "svg.fonttype": "none",  # text stays text: searchable, and no font outlines in the file
    "svg.hashsalt": "dialer",  # stable element ids, so the same data gives the same page
    "font.size": 9,
    "date.converter": "concise",  # time axes labelled 10:00, 11:00 ... with the day once
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLOURS = ["#1f6f8b", "#e07a1f", "#3c9d5d", "#b23a48", "#6a4c93", "#8c6d31"]
PERCENT_COLUMNS = ("rate", "occupancy", "per_attempt", "cap")


@dataclass
class ReportPage:
    """What the page shows: the report frames, and how they were selected."""

    generated_at: datetime
    zone: str
    filters: Filters
    conversion: pd.DataFrame
    by_hour: pd.DataFrame
    by_attempt: pd.DataFrame
    leaderboard: pd.DataFrame
    compliance: pd.DataFrame
    attribution: pd.DataFrame
    baseline: pd.DataFrame
    abandonment: pd.DataFrame
    charts: dict[str, str] = field(default_factory=dict)


def collect_page(
    engine: Engine,
    filters: Filters | None = None,
    *,
    zone_setting: str | None = None,
    now: datetime | None = None,
) -> ReportPage:
    """Run every report the page shows (each one the CLI's own library function)."""
    now = now or datetime.now(UTC)
    filters = filters or Filters()
    with engine.connect() as conn:
        zone = report_zone(conn, zone_setting)

    def convert(by: str) -> pd.DataFrame:
        return conversion_report(engine, filters, by=by, zone_setting=zone_setting)

    return ReportPage(
        generated_at=now,
        zone=zone.key,
        filters=filters,
        conversion=convert("campaign"),
        by_hour=convert("hour"),
        by_attempt=convert("attempt"),
        leaderboard=leaderboard(engine, period="week", zone_setting=zone_setting, now=now),
        compliance=compliance_report(engine, filters.campaigns),
        attribution=attribution_report(
            engine, filters, by="campaign-agent", zone_setting=zone_setting
        ),
        baseline=attribution_baseline(engine, filters, zone_setting=zone_setting),
        abandonment=abandonment_series(engine, filters, zone_setting=zone_setting),
    )


def abandonment_series(
    engine: Engine, filters: Filters | None = None, *, zone_setting: str | None = None
) -> pd.DataFrame:
    """Per campaign, the abandonment rate of its current 30-day period at the end of each hour
    (each day when the calls span more than three days) that had live answers.

    Periods run from the campaign's first selected attempt. Columns: ``campaign, at`` (the
    bucket's start, UTC), ``live_answers, abandoned`` (period to date), ``rate``.
    """
    parts = [
        chunk[["campaign", "started_at", "live_answer", "abandoned"]]
        for chunk in iter_dispositions(engine, filters, zone_setting=zone_setting, analysis=True)
    ]
    columns = ["campaign", "at", "live_answers", "abandoned", "rate"]
    calls = pd.concat(parts) if parts else pd.DataFrame()
    if calls.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    span = calls["started_at"].max() - calls["started_at"].min()
    bucket = "D" if span > timedelta(days=3) else "h"
    out = []
    for campaign, rows in calls.groupby("campaign", sort=True):
        rows = rows.sort_values("started_at", kind="stable")
        first = rows["started_at"].iloc[0]
        period = (rows["started_at"] - first) // timedelta(days=PERIOD_DAYS)
        frame = pd.DataFrame(
            {
                "campaign": campaign,
                "at": rows["started_at"].dt.floor(bucket),
                "live_answers": rows["live_answer"].astype("int64").groupby(period).cumsum(),
                "abandoned": rows["abandoned"].astype("int64").groupby(period).cumsum(),
            }
        )
        last = frame.groupby("at", sort=True).tail(1)
        out.append(last[last["live_answers"] > 0])
    series = pd.concat(out).reset_index(drop=True)
    series["rate"] = series["abandoned"] / series["live_answers"]
    return series[columns]


# -- charts ---------------------------------------------------------------------------------


def _svg(draw: Callable[[Figure], None], height: float = 3.0) -> str:
    with matplotlib.rc_context(cast(Any, SVG_STYLE)):
        figure = Figure(figsize=(7.5, height), layout="constrained")
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _no_data(figure: Figure, what: str) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, f"No {what} yet", ha="center", va="center", gid="no-data")


def _rate_bars(frame: pd.DataFrame, key: str, label: str) -> Callable[[Figure], None]:
    """Conversion rate per contact by ``key``, with its Wilson interval."""

    def draw(figure: Figure) -> None:
        rows = frame[frame["contacts"] > 0] if not frame.empty else frame
        if rows.empty:
            _no_data(figure, "contacts")
            return
        axes = figure.add_subplot()
        rate = rows["conversion_rate"].astype(float)
        low = (rate - rows["conversion_rate_low"].astype(float)).clip(lower=0)
        high = (rows["conversion_rate_high"].astype(float) - rate).clip(lower=0)
        positions = range(len(rows))
        bars = axes.bar(positions, rate, color=COLOURS[0], yerr=[low, high], capsize=3)
        for bar, value, contacts in zip(bars, rows[key], rows["contacts"], strict=True):
            bar.set_gid(f"{key}-{value}")
            axes.annotate(
                f"n={contacts}",
                (bar.get_x() + bar.get_width() / 2, 0),
                ha="center",
                va="bottom",
                fontsize=7,
                color="white",
            )
        axes.set_xticks(list(positions), [str(v) for v in rows[key]])
        axes.set_xlabel(label)
        axes.set_ylabel("conversions per contact")
        axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))

    return draw


FUNNEL = [
    ("attempts", "attempts"),
    ("live_answers", "live answers"),
    ("contacts", "contacts"),
    ("conversions", "conversions"),
]


def _funnel(frame: pd.DataFrame) -> Callable[[Figure], None]:
    """Per campaign: attempts, live answers, contacts, conversions (log scale)."""

    def draw(figure: Figure) -> None:
        if frame.empty:
            _no_data(figure, "attempts")
            return
        axes = figure.add_subplot()
        campaigns = list(frame["campaign"])
        height = 0.8 / len(FUNNEL)
        for step, (column, label) in enumerate(FUNNEL):
            ys = [n + step * height for n in range(len(campaigns))]
            values = frame[column].astype(int)
            bars = axes.barh(ys, values, height, label=label, color=COLOURS[step])
            for bar, campaign, value in zip(bars, campaigns, values, strict=True):
                bar.set_gid(f"funnel-{campaign}-{column}")
                axes.annotate(
                    f" {value:,}",
                    (bar.get_width(), bar.get_y() + height / 2),
                    va="center",
                    fontsize=7,
                )
        axes.set_yticks([n + 0.4 - height / 2 for n in range(len(campaigns))], campaigns)
        axes.invert_yaxis()
        axes.set_xscale("symlog")
        axes.set_xlabel("calls (log scale)")
        axes.legend(loc="lower right", fontsize=7)

    return draw


def _leaderboard(frame: pd.DataFrame) -> Callable[[Figure], None]:
    """Conversions per logged-in hour by PSR, best at the top."""

    def draw(figure: Figure) -> None:
        if frame.empty:
            _no_data(figure, "PSR with a logged-in hour")
            return
        axes = figure.add_subplot()
        values = frame["conversions_per_hour"].astype(float)
        bars = axes.barh(range(len(frame)), values, color=COLOURS[2])
        for bar, agent in zip(bars, frame["agent"], strict=True):
            bar.set_gid(f"agent-{agent}")
        axes.set_yticks(list(range(len(frame))), list(frame["agent"]))
        axes.invert_yaxis()
        axes.set_xlabel("conversions per logged-in hour")

    return draw


def _abandonment(frame: pd.DataFrame, zone: str) -> Callable[[Figure], None]:
    """Period-to-date abandonment per campaign over time, and the 3% cap."""

    def draw(figure: Figure) -> None:
        if frame.empty:
            _no_data(figure, "live answers")
            return
        axes = figure.add_subplot()
        for n, (campaign, rows) in enumerate(frame.groupby("campaign", sort=True)):
            local = rows["at"].dt.tz_convert(zone).dt.tz_localize(None)
            (line,) = axes.plot(
                local,
                rows["rate"].astype(float),
                marker="o",
                markersize=3,
                color=COLOURS[n % len(COLOURS)],
                label=str(campaign),
            )
            line.set_gid(f"abandonment-{campaign}")
        cap = axes.axhline(ABANDON_CAP, color="#b23a48", linestyle="--", linewidth=1)
        cap.set_gid("cap")
        axes.annotate(
            "3% cap",
            (0.01, ABANDON_CAP),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=7,
            color="#b23a48",
        )
        top = max(ABANDON_CAP * 1.5, float(frame["rate"].max()) * 1.1)
        axes.set_ylim(0, top)
        axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=1))
        axes.set_ylabel("abandoned / live answers")
        axes.set_xlabel(f"time ({zone})")
        axes.legend(loc="upper right", fontsize=7)

    return draw


def draw_charts(page: ReportPage) -> dict[str, str]:
    """Every chart of the page as inline SVG, by id."""
    leaders = page.leaderboard
    return {
        "chart-hour": _svg(_rate_bars(page.by_hour, "hour", "callee-local hour")),
        "chart-attempt": _svg(_rate_bars(page.by_attempt, "attempt", "attempt number")),
        "chart-funnel": _svg(_funnel(page.conversion), 1.2 + 0.8 * max(1, len(page.conversion))),
        "chart-leaderboard": _svg(_leaderboard(leaders), 1.2 + 0.3 * max(1, len(leaders))),
        "chart-abandonment": _svg(_abandonment(page.abandonment, page.zone)),
    }


# -- page -----------------------------------------------------------------------------------


def _cell(column: str, value: Any, zone: str) -> str:
    """One table cell as text: rates as percentages, seconds whole, times in the report zone."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).tz_convert(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        if any(part in column for part in PERCENT_COLUMNS):
            return f"{value:.1%}"
        if column.endswith("_seconds"):
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _with_interval(frame: pd.DataFrame) -> pd.DataFrame:
    """The conversion report with its interval folded into the rate's cell."""
    out = frame.drop(columns=["conversion_rate_low", "conversion_rate_high"]).astype(object)
    out["conversion_rate"] = [
        "–" if rate is None or pd.isna(rate) else f"{rate:.1%} ({low:.1%}–{high:.1%})"
        for rate, low, high in zip(
            frame["conversion_rate"],
            frame["conversion_rate_low"],
            frame["conversion_rate_high"],
            strict=True,
        )
    ]
    return out


def render_table(frame: pd.DataFrame, table_id: str, caption: str, zone: str) -> str:
    """An HTML table of a report frame (escaped; column names with spaces for underscores)."""
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f"<td>{html.escape(_cell(str(column), value, zone))}</td>"
            for column, value in zip(frame.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(frame.columns)}">No rows</td></tr>')
    return (
        f'<table id="{table_id}"><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _figure(chart_id: str, svg: str, caption: str) -> str:
    return (
        f'<figure class="chart" id="{chart_id}">{svg}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0; } header p { color: #555; margin-top: .3rem; }
nav a { margin-right: 1rem; }
section { margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f6f8; }
figure.chart { margin: 1rem 0; } figure.chart svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 12px; }
@media print { section { break-inside: avoid; } }
"""
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _describe(filters: Filters) -> str:
    parts = [
        f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in filters.as_json().items()
    ]
    return "; ".join(parts) if parts else "all attempts"


def render_page(page: ReportPage) -> str:
    """The whole page as one HTML document."""
    charts = page.charts or draw_charts(page)
    zone = page.zone
    period = page.leaderboard["period"].iloc[0] if not page.leaderboard.empty else "latest week"
    sections = [
        (
            "conversion",
            "Conversion",
            [
                _figure("chart-funnel", charts["chart-funnel"], "Funnel per campaign."),
                render_table(
                    _with_interval(page.conversion),
                    "table-conversion",
                    "Conversion by campaign (rate per contact, Wilson 95% interval)",
                    zone,
                ),
                _figure(
                    "chart-hour",
                    charts["chart-hour"],
                    "Conversion per contact by callee-local hour (bars: Wilson 95% interval).",
                ),
                _figure(
                    "chart-attempt",
                    charts["chart-attempt"],
                    "Conversion per contact by attempt number.",
                ),
            ],
        ),
        (
            "leaderboard",
            "PSR leaderboard",
            [
                _figure(
                    "chart-leaderboard",
                    charts["chart-leaderboard"],
                    f"Conversions per logged-in hour, {period}.",
                ),
                render_table(page.leaderboard, "table-leaderboard", f"Leaderboard, {period}", zone),
            ],
        ),
        (
            "compliance",
            "Compliance",
            [
                _figure(
                    "chart-abandonment",
                    charts["chart-abandonment"],
                    "Abandonment rate of each campaign's current 30-day period, to date, "
                    "against the 3% cap.",
                ),
                render_table(page.compliance, "table-compliance", "Compliance by campaign", zone),
            ],
        ),
        (
            "attribution",
            "Attribution",
            [
                render_table(
                    page.attribution,
                    "table-attribution",
                    "Bookings made on calls, matched to later PMS appointments",
                    zone,
                ),
                render_table(
                    page.baseline,
                    "table-baseline",
                    "Appointments of patients not called in the period, by kind",
                    zone,
                ),
            ],
        ),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'
        for key, title, parts in sections
    )
    generated = page.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Dialer report</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Dialer report</h1><p>Generated {generated}; dates in {html.escape(zone)}"
        f" unless a column says callee-local; {html.escape(_describe(page.filters))}.</p></header>"
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )


def write_report_page(
    engine: Engine,
    path: Path,
    filters: Filters | None = None,
    *,
    zone_setting: str | None = None,
    now: datetime | None = None,
) -> ReportPage:
    """Collect the reports, draw the charts and write the page to ``path``."""
    page = collect_page(engine, filters, zone_setting=zone_setting, now=now)
    page.charts = draw_charts(page)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(render_page(page))
    return page
