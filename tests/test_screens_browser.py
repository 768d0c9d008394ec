"""The operators' screens in a real browser (Debian's chromium, driven by Playwright) on
the demo town: nothing spills out of a tile, no two names in a tile look alike, at the
widths of the operations room's screens. Screenshots go to the test's tmp_path."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from alerts import incidents
from alerts.models import Rule
from ppms.models import School
from ppms.services import ppms_activate
from sensors.metrics import metrics_of
from sensors.models import LatestReading, Sensor
from tests.conftest import CHROMIUM, sign_in
from tests.test_atmo import add_readings
from tests.test_browser import CHROMIUM_ARGS
from tests.test_cap import make_alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_town(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--password", "pw", stdout=open("/dev/null", "w"))  # noqa: SIM115
    now = timezone.now() - timedelta(seconds=30)
    LatestReading.objects.bulk_create(
        LatestReading(
            sensor=sensor,
            metric=metric.name,
            ts=now,
            # Wide values: the longest figures a tile may have to hold.
            value=metric.maximum if metric.is_state else round(metric.maximum * 0.377, 3),
        )
        for sensor in Sensor.objects.all()
        for metric in metrics_of(sensor.kind)
    )


@pytest.fixture
def open_page(monkeypatch, live_server, demo_town, django_user_model):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    operator = django_user_model.objects.get(username="operateur-metropole")
    session = sign_in(Client(), operator).cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def open_page(path, *, width, height):
            context = browser.new_context(
                viewport={"width": width, "height": height}, locale="fr-FR"
            )
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
            )
            page = context.new_page()
            page.goto(f"{live_server.url}{path}")
            if path.startswith("/dashboard/"):
                page.wait_for_selector('[data-testid="tile-river"] .rows li')
            return page

        yield open_page
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


# Whatever sticks out of its tile, or out of a scrolling list of rows, sideways; and the
# names shown cut short (an ellipsis) — "Niveau du C…" four times says nothing.
SPILLS = """() => {
  const found = [];
  for (const tile of document.querySelectorAll('[data-testid^="tile-"]')) {
    const box = tile.getBoundingClientRect();
    for (const node of tile.querySelectorAll("*")) {
      const r = node.getBoundingClientRect();
      if (!r.width) continue;
      const what = `${tile.dataset.testid}: <${node.tagName}> ${node.textContent.trim()}`;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) found.push(`spills ${what}`);
      const clips = getComputedStyle(node).overflowX !== "visible";
      if (clips && node.scrollWidth > node.clientWidth + 1) found.push(`cut ${what}`);
    }
  }
  return found;
}"""


@pytest.mark.parametrize("width", [1280, 1600, 1920])
def test_nothing_spills_out_of_a_tile_and_no_name_is_cut(open_page, width, tmp_path):
    page = open_page("/dashboard/", width=width, height=1000)
    page.screenshot(path=tmp_path / f"dashboard-{width}.png", full_page=True)

    assert page.evaluate(SPILLS) == []


@pytest.fixture
def flood_under_way(demo_town, django_user_model):
    """Fifteen open alerts (five gauges, three rules) and the flood zone's PPMS."""
    rules = list(Rule.objects.filter(metric="level")[:3])
    with transaction.atomic():  # raised as the evaluation does: each joins its incident
        for gauge in Sensor.objects.filter(kind="water", ref__contains="river"):
            for rule in rules:
                alert = make_alert(gauge, rule, opened_at=timezone.now() - timedelta(minutes=5))
                incidents.refresh(incidents.join(alert).pk)
        alert = make_alert(
            Sensor.objects.get(ref="jlt-opening-03"),
            Rule.objects.get(name="Bâtiment ouvert la nuit"),
            opened_at=timezone.now(),
        )
        incidents.refresh(incidents.join(alert).pk)
    operator = django_user_model.objects.get(username="operateur-metropole")
    return ppms_activate(
        scenario="evacuation",
        title="Crue du Cher",
        source="operator",
        schools=list(School.objects.filter(zones__type="flood").distinct()),
        by=operator,
    )


# Every visible text of the page: its size, and the contrast of its colour against the
# background it is drawn on (the first ancestor's that is not transparent, blended).
TEXTS = """() => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number).concat([1]).slice(0, 4);
  const lum = ([r, g, b]) => {
    const linear = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    const c = [r, g, b].map(linear);
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
  const background = (node) => {
    const layers = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const colour = rgba(getComputedStyle(n).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    let result = [255, 255, 255];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const node = text.parentElement;
    if (!text.textContent.trim() || !node || node.closest("svg.main-svg, .modebar")) continue;
    const r = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    if (!r.width || style.visibility === "hidden" || node.closest("[hidden]")) continue;
    const fg = over(rgba(style.color), background(node));
    const [a, b] = [lum(fg), lum(background(node))].sort((x, y) => y - x);
    found.push({
      text: text.textContent.trim().slice(0, 50),
      size: parseFloat(style.fontSize),
      contrast: Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100,
      bold: Number(style.fontWeight) >= 700,
    });
  }
  return found;
}"""

# From 5 m: no text under 16 px on a 1920 px wide screen (about 1 cm on a 55" one).
MIN_WALL_FONT_PX = 16


def test_the_wall_fits_1920_by_1080_and_is_readable_from_five_metres(
    open_page, flood_under_way, tmp_path
):
    page = open_page("/dashboard/wall/", width=1920, height=1080)
    page.wait_for_selector("[data-incident-id]")
    page.get_by_test_id("ppms-strip-activation").wait_for()  # its own request, maybe later
    # The sound's banner (the browser blocks the alarm) and the mute button as it looks
    # pressed, both on pale yellow.
    page.evaluate(
        """() => {
      document.getElementById("audio-locked").hidden = false;
      document.querySelector('[data-testid="mute"]').setAttribute("aria-pressed", "true");
    }"""
    )
    page.evaluate(
        """() => {  // a live value just changed: its highlight at its brightest
      const node = document.querySelector("[data-live]");
      node.classList.add("flash");
      for (const animation of node.getAnimations()) {
        animation.pause();
        animation.currentTime = 0;
      }
    }"""
    )
    page.screenshot(path=tmp_path / "wall.png")

    assert page.evaluate("document.documentElement.scrollHeight") <= 1080
    for testid in ("ppms-strip", "alert-console", "map", "tile-river"):
        box = page.get_by_test_id(testid).first.bounding_box()
        assert box and box["y"] + 40 <= 1080, testid  # on the screen
    texts = page.evaluate(TEXTS)
    assert [(t["text"], t["size"]) for t in texts if t["size"] < MIN_WALL_FONT_PX] == []
    assert [(t["text"], t["contrast"]) for t in texts if t["contrast"] < 4.5] == []


# --- Charts an operator reads ----------------------------------------------------------

BOXES = """(selector) => [...document.querySelectorAll(selector)].map((node) => {
  const r = node.getBoundingClientRect();
  return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, text: node.textContent };
})"""


def overlap(a, b) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


def test_a_gauge_chart_labels_its_thresholds_apart_with_its_legend_outside_the_plot(
    open_page, tmp_path
):
    gauge = Sensor.objects.get(ref="jlt-river-01")
    now = timezone.now()
    add_readings(gauge, "level", *((now - timedelta(minutes=m), 3.9) for m in range(300, 0, -10)))

    page = open_page("/sensors/jlt-river-01/", width=1600, height=1000)
    page.wait_for_selector("#chart-level .annotation")
    page.wait_for_selector("#chart-level .legend")
    page.screenshot(path=tmp_path / "sensor.png", full_page=True)

    labels = page.evaluate(BOXES, "#chart-level .annotation")
    assert len(labels) == 4  # 3,3 / 3,5 m and 4,2 / 4,5 m: two rules and their clearing lines
    assert [
        (a["text"], b["text"]) for a in labels for b in labels if a is not b and overlap(a, b)
    ] == []
    [legend] = page.evaluate(BOXES, "#chart-level .legend")
    [plot] = page.evaluate(BOXES, "#chart-level .nsewdrag")
    assert not overlap(legend, plot)


def test_a_chart_never_goes_below_what_its_quantity_can_be(open_page):
    station = Sensor.objects.get(ref="jlt-air-01")
    now = timezone.now()
    add_readings(station, "pm10", *((now - timedelta(minutes=m), 1.0) for m in range(120, 0, -5)))

    page = open_page("/sensors/jlt-air-01/", width=1600, height=1000)
    page.wait_for_selector("#chart-pm10 .ytick")

    bottom = page.evaluate("document.getElementById('chart-pm10')._fullLayout.yaxis.range[0]")
    assert bottom >= 0


def test_an_empty_dashboard_chart_says_why(open_page):
    page = open_page("/dashboard/", width=1600, height=1000)

    page.wait_for_selector("#chart-pm10 .annotation")
    assert page.text_content("#chart-pm10 .annotation") == "Aucune mesure sur 6 h"
