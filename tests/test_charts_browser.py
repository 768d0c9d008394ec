"""The pages' language in a real browser (Debian's chromium, driven by Playwright): charts
in French (months, decimal comma, Paris time whatever the browser's zone) or in English after
the language switch, and the scripts' words from the JavaScript catalogue in either."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import CHROMIUM, sign_in
from tests.test_atmo import add_readings
from tests.test_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FRENCH_MONTHS = [
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
]
ENGLISH_MONTHS = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def open_page(monkeypatch, live_server, operator):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    session = sign_in(Client(), operator).cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def open_page(path, *, language):
            # A browser in New York: the charts keep to Paris time all the same.
            context = browser.new_context(
                viewport={"width": 1600, "height": 1000},
                locale="fr-FR",
                timezone_id="America/New_York",
            )
            context.add_cookies(
                [
                    {"name": name, "value": value, "url": live_server.url}
                    for name, value in (
                        (settings.SESSION_COOKIE_NAME, session),
                        (settings.LANGUAGE_COOKIE_NAME, language),
                    )
                ]
            )
            page = context.new_page()
            page.goto(f"{live_server.url}{path}")
            return page

        yield open_page
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def sensor_with_a_day_of_readings(sensor):
    now = timezone.now().replace(microsecond=0)
    add_readings(
        sensor,
        "pm10",
        *((now - timedelta(minutes=ago), 12345.6 + ago / 10) for ago in range(24 * 60, 0, -15)),
    )
    return now - timedelta(minutes=15)


def chart_ticks(page, chart_id):
    # The chart is drawn once empty ("chargement…") before its readings arrive: read the
    # ticks once the readings are drawn, not the empty chart's.
    page.wait_for_function(
        """id => {
            const chart = document.getElementById(id);
            return (chart.data || []).some(trace => trace.x.length > 0)
                && chart.querySelector(".scatterlayer .trace") !== null;
        }""",
        arg=chart_id,
    )
    page.wait_for_selector(f"#{chart_id} .xtick text")
    return page.eval_on_selector_all(
        f"#{chart_id} .xtick text, #{chart_id} .ytick text",
        "nodes => nodes.map(n => n.textContent)",
    )


def test_a_chart_speaks_french_with_paris_time_and_a_decimal_comma(open_page, sensor):
    last = sensor_with_a_day_of_readings(sensor)

    page = open_page(f"/sensors/{sensor.ref}/", language="fr")
    ticks = chart_ticks(page, "chart-pm10")

    month = FRENCH_MONTHS[last.astimezone(PARIS).month - 1]
    assert any(month in tick for tick in ticks), ticks
    assert not any(english in tick for tick in ticks for english in ENGLISH_MONTHS), ticks
    assert any("12\u202f" in tick for tick in ticks), ticks[-8:]  # 12 3xx: thousands apart
    xs = page.evaluate("document.getElementById('chart-pm10').data[2].x")
    points = [x for x in xs if x]
    paris = last.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")
    assert points[-1].startswith(paris[:13]), (points[-1], paris)


def test_after_the_switch_to_english_the_chart_speaks_english(open_page, sensor):
    last = sensor_with_a_day_of_readings(sensor)

    page = open_page(f"/sensors/{sensor.ref}/", language="en")
    ticks = chart_ticks(page, "chart-pm10")

    month = ENGLISH_MONTHS[last.astimezone(PARIS).month - 1]
    assert any(month in tick for tick in ticks), ticks
    assert not any(french in tick for tick in ticks for french in FRENCH_MONTHS[:3]), ticks


@pytest.mark.parametrize(
    ("language", "said"), [("fr", "Aucune alerte à traiter."), ("en", "No alert to handle.")]
)
def test_the_dashboard_script_speaks_the_page_language(open_page, sensor, language, said):
    page = open_page("/dashboard/", language=language)

    console = page.get_by_test_id("alert-console")
    console.get_by_text(said).wait_for()
    assert page.evaluate("document.documentElement.lang") == language
