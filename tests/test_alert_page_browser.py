"""The alert page in a real browser (Debian's chromium, driven by Playwright): an operator
comments an alert, then resolves it, with the console's forms; the page shows the
timeline. Screenshots at a desk's and a phone's size go to the test's tmp_path."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from alerts.models import AlertEvent
from tests.conftest import CHROMIUM, sign_in
from tests.test_atmo import add_readings
from tests.test_browser import CHROMIUM_ARGS
from tests.test_cap import make_alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(monkeypatch, live_server, operator):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    session = sign_in(Client(), operator).cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="fr-FR")
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        yield context.new_page()
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def test_an_operator_comments_then_resolves_an_alert_from_its_page(
    page, live_server, sensor, tmp_path
):
    now = timezone.now().replace(microsecond=0)
    alert = make_alert(sensor, opened_at=now - timedelta(minutes=40))
    add_readings(
        sensor,
        "pm10",
        *((now - timedelta(minutes=ago), 40.0 + (90 - ago)) for ago in range(90, 0, -5)),
    )
    url = f"{live_server.url}/alerts/{alert.pk}/"

    page.goto(url)
    page.click('[data-action="comment"]')
    page.fill('[data-form="comment"] textarea', "Équipe envoyée sur place.")
    page.screenshot(path=tmp_path / "alert-desk.png", full_page=True)
    with page.expect_navigation():
        page.click('[data-form="comment"] button[type=submit]')
    page.click('[data-action="resolve"]')
    with page.expect_navigation():
        page.click('[data-form="resolve"] button[type=submit]')
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "alert-phone.png", full_page=True)

    assert list(alert.events.values_list("kind", flat=True).order_by("pk")) == [
        "opened",
        "commented",
        "resolved",
    ]
    assert AlertEvent.objects.get(alert=alert, kind="commented").text == (
        "Équipe envoyée sur place."
    )
    assert page.get_by_test_id("alert-state").inner_text() == "Résolue"
    assert "Équipe envoyée sur place." in page.get_by_test_id("alert-timeline").inner_text()
