"""The operators' screens in a real browser (Debian's chromium, driven by Playwright) on
the demo town: nothing spills out of a tile, no two names in a tile look alike, at the
widths of the operations room's screens. Screenshots go to the test's tmp_path."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from sensors.metrics import metrics_of
from sensors.models import LatestReading, Sensor
from tests.conftest import CHROMIUM, sign_in
from tests.test_browser import CHROMIUM_ARGS

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
