"""``dialer report html``: the page rendered in headless Chromium, its charts and known figures.

The data is the hand-built day of :mod:`tests.reports_fixtures` plus attribution: call 1
booked patients 100 and 20, call 4 booked 300; three weeks later the PMS shows 100's visit
completed and 300's broken, and nothing for 20. Two patients nobody called made appointments
that day: one kept, one broken.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright; without it these tests skip,
or fail when ``DIALER_REQUIRE_ALL`` is set (CI installs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from dialer.cli import cli
from dialer.ingest.importer import import_file
from dialer.reports.html import write_report_page
from dialer.store.bookings import BookedSlot, record_bookings
from tests.conftest import skip_unless_configured
from tests.reports_fixtures import NOTES, build_floor

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = "Chromium is not installed at /usr/bin/chromium: browser tests skipped"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NOW = datetime(2026, 12, 22, 12, 0, tzinfo=UTC)
# Two patients nobody called (the baseline); their names must not reach the page.
OTHERS = (
    "patient_id,clinic_id,first_name,last_name,birth_date,guarantor_id,language,"
    "mobile_phone,home_phone,work_phone,postal_code,state\n"
    "900,C1,Zebulon,Quuxley,1980-01-01,,en,,5035550199,,97201,OR\n"
    "901,C1,Ysolde,Quuxley,1982-01-01,,en,,5035550198,,97201,OR\n"
)
FOLLOW_UP = (
    "appointment_id,patient_id,clinic_id,start_at,duration_minutes,status,kind,booked_at\n"
    "F1,100,C2,2026-12-07 09:00,60,completed,hygiene,2026-11-30 09:05\n"
    "F4,300,C1,2026-12-08 10:00,60,broken,hygiene,\n"
    "B1,900,C1,2026-12-09 10:00,60,completed,hygiene,2026-11-30 12:00\n"
    "B2,901,C1,2026-12-09 11:00,60,broken,hygiene,2026-11-30 12:10\n"
)
CHARTS = ["chart-funnel", "chart-hour", "chart-attempt", "chart-leaderboard", "chart-abandonment"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, once for the module."""
    if not CHROMIUM.exists():
        skip_unless_configured(NO_CHROMIUM)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def report_file(store: Engine, write_csv: Callable[..., Path], tmp_path: Path) -> Path:
    """The page of the hand-built day with its bookings followed up."""
    floor = build_floor(store)
    with store.begin() as conn:
        record_bookings(
            conn,
            floor.attempts[1],
            [
                BookedSlot("100", datetime(2026, 12, 7, 15, tzinfo=UTC), "hygiene"),
                BookedSlot("20", datetime(2026, 12, 7, 16, tzinfo=UTC), "hygiene"),
            ],
            now=datetime(2026, 11, 30, 15, 3, tzinfo=UTC),
        )
        record_bookings(
            conn,
            floor.attempts[4],
            [BookedSlot("300", datetime(2026, 12, 8, 18, tzinfo=UTC), "hygiene")],
            now=datetime(2026, 11, 30, 18, 4, tzinfo=UTC),
        )
    import_file(store, "patients", write_csv("others.csv", OTHERS), now=NOW)
    import_file(store, "appointments", write_csv("later.csv", FOLLOW_UP), now=NOW)
    path = tmp_path / "report.html"
    write_report_page(store, path, now=NOW)
    return path


def _open(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests


def _rows(page: Page, table: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.split("\t")]
        for row in page.locator(f"#{table} tbody tr").all_inner_texts()
    ]


def _bar_heights(page: Page, chart: str, prefix: str) -> dict[str, float]:
    """Drawn height of each bar of a chart, by the bar's id."""
    heights: dict[str, float] = page.evaluate(
        """([chart, prefix]) => Object.fromEntries(
            [...document.querySelectorAll(`#${chart} g[id^="${prefix}"]`)].map(
                g => [g.id, g.querySelector("path").getBBox().height]))""",
        [chart, prefix],
    )
    return heights


def _bar_widths(page: Page, chart: str, prefix: str) -> dict[str, float]:
    widths: dict[str, float] = page.evaluate(
        """([chart, prefix]) => Object.fromEntries(
            [...document.querySelectorAll(`#${chart} g[id^="${prefix}"]`)].map(
                g => [g.id, g.querySelector("path").getBBox().width]))""",
        [chart, prefix],
    )
    return widths


def test_the_page_renders_offline_with_every_chart_drawn(
    browser: Browser, report_file: Path
) -> None:
    page, requests = _open(browser, report_file)
    assert requests == [report_file.as_uri()]  # nothing but the file itself
    assert page.title() == "Dialer report"
    for chart in CHARTS:
        assert page.locator(f"#{chart} svg").count() == 1, chart
    assert page.locator("#no-data").count() == 0
    # Contacts by callee-local hour: 9 (booked), 10 (booked), 13 (declined), 23 (confirmed).
    hours = _bar_heights(page, "chart-hour", "hour-")
    assert sorted(hours) == ["hour-10", "hour-13", "hour-23", "hour-9"]
    assert hours["hour-13"] == 0
    assert hours["hour-9"] == hours["hour-10"] == hours["hour-23"] > 50
    attempts = _bar_heights(page, "chart-attempt", "attempt-")
    assert sorted(attempts) == ["attempt-1", "attempt-2"]
    # Every first-call contact converted; the one second-call contact declined.
    assert attempts["attempt-2"] == 0 < attempts["attempt-1"]
    funnel = _bar_widths(page, "chart-funnel", "funnel-")
    assert len(funnel) == 8  # two campaigns, four steps each
    recall = [
        funnel[f"funnel-hygiene-recall-{step}"]
        for step in ("attempts", "live_answers", "contacts", "conversions")
    ]
    assert recall == sorted(recall, reverse=True) and recall[-1] > 0  # 6, 4, 3, 2
    leaders = _bar_widths(page, "chart-leaderboard", "agent-")
    assert set(leaders) == {"agent-Ana", "agent-Ben"}  # Cy was logged in under an hour
    assert leaders["agent-Ana"] == pytest.approx(2 * leaders["agent-Ben"], rel=0.01)
    assert page.locator("#chart-abandonment g[id^='abandonment-']").count() == 2
    assert page.locator("#chart-abandonment g#cap").count() == 1
    assert page.locator("#chart-abandonment text", has_text="3% cap").count() == 1
    page.close()


def test_the_tables_show_the_known_figures(browser: Browser, report_file: Path) -> None:
    page, _ = _open(browser, report_file)
    conversion = _rows(page, "table-conversion")
    assert [row[:6] for row in conversion] == [
        ["hygiene-recall", "6", "4", "3", "50.0%", "2"],
        ["reminders", "2", "1", "1", "50.0%", "1"],
    ]
    assert conversion[0][6].startswith("66.7% (")
    leaderboard = _rows(page, "table-leaderboard")
    assert [(row[1], row[2], row[7]) for row in leaderboard] == [
        ("1", "Ana", "0.67"),
        ("2", "Ben", "0.33"),
    ]
    compliance = {row[0]: row for row in _rows(page, "table-compliance")}
    assert compliance["hygiene-recall"][5] == "25.0%"  # 1 abandoned of 4 live answers
    assert _rows(page, "table-attribution") == [
        ["hygiene-recall", "Ana", "2", "1", "0", "0", "0", "1", "100.0%", "50.0%"],
        ["hygiene-recall", "Ben", "1", "0", "1", "0", "0", "0", "0.0%", "50.0%"],
    ]
    assert _rows(page, "table-baseline") == [["hygiene", "2", "1", "1", "0", "0", "50.0%"]]
    page.close()


def test_the_page_holds_no_patient_data(report_file: Path) -> None:
    text = report_file.read_text(encoding="utf-8")
    for phi in ("+1210555", "210555", "5035550199", "Zebulon", "Ysolde", "Quuxley"):
        assert phi not in text
    for note in NOTES.values():
        assert note not in text
    assert "<script" not in text
    assert "default-src 'none'" in text


def test_report_html_command(store: Engine, db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    result = CliRunner().invoke(cli, ["--db", db_url, "report", "html", "-o", str(target)])
    assert (result.exit_code, result.output) == (
        0,
        f"Wrote {target} (5 charts); it opens offline in any browser.\n",
    )
    text = target.read_text(encoding="utf-8")
    for chart in CHARTS:
        assert f'id="{chart}"' in text
    assert text.count('id="no-data"') == 5  # an empty store: every chart says so
