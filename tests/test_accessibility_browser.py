"""axe-core (axe-playwright-python) in Debian's chromium over every page, for each role on
its own screen: the operator at a desk, the director on a phone, the admin. No serious
or critical violation. The pages show the demo town during a flood (alerts, a PPMS)."""

import copy

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from alerts.models import Alert
from ppms.models import School
from tests.conftest import CHROMIUM, sign_in
from tests.test_browser import CHROMIUM_ARGS
from tests.test_screens_browser import demo_town, flood_under_way  # noqa: F401 (fixtures)
from tests.tiles import tile_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESK = {"width": 1600, "height": 1000}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def audit(monkeypatch, live_server, flood_under_way, django_user_model):  # noqa: F811
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    axe = Axe()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def audit(username, paths, *, viewport, language="fr"):
            """The serious and critical violations of each page, as "path: rule (nodes)"."""
            context = browser.new_context(viewport=viewport, locale="fr-FR")
            cookies = [(settings.LANGUAGE_COOKIE_NAME, language)]
            if username:
                user = django_user_model.objects.get(username=username)
                client = sign_in(Client(), user)
                cookies.append(
                    (
                        settings.SESSION_COOKIE_NAME,
                        client.cookies[settings.SESSION_COOKIE_NAME].value,
                    )
                )
            context.add_cookies(
                [{"name": n, "value": v, "url": live_server.url} for n, v in cookies]
            )
            page = context.new_page()
            found = []
            for path in paths:
                page.goto(f"{live_server.url}{path}")
                page.wait_for_load_state("networkidle")
                for violation in axe.run(page).response["violations"]:
                    if violation["impact"] in ("serious", "critical"):
                        targets = [node["target"] for node in violation["nodes"]][:3]
                        found.append(f"{path}: {violation['id']} {targets}")
            context.close()
            return found

        yield audit
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def operator_pages(activation):
    alert = Alert.objects.order_by("pk").first()
    return [
        "/dashboard/",
        "/dashboard/wall/",
        "/sensors/jlt-river-01/",
        f"/alerts/{alert.pk}/",
        "/ppms/",
        f"/ppms/activations/{activation.pk}/",
        f"/ppms/activations/{activation.pk}/rapport/",
    ]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_operator_pages_have_no_serious_violation(audit, flood_under_way, language):  # noqa: F811
    assert audit("operateur-metropole", operator_pages(flood_under_way), viewport=DESK,
                 language=language) == []  # fmt: skip


def test_the_map_over_tiles_has_no_serious_violation(audit, settings):
    """Leaflet's map (a tile server answering): its markers and controls are labelled."""
    with tile_server() as server:
        settings.CSU_MAP_TILES = server.url
        origin = server.url.split("/{z}")[0]
        policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
        policy["DIRECTIVES"]["img-src"].append(origin)  # as the settings do for CSU_MAP_TILES
        settings.CONTENT_SECURITY_POLICY = policy

        found = audit("operateur-metropole", ["/dashboard/", "/dashboard/wall/"], viewport=DESK)

        assert len(server.requests) > 2  # the server's check, then the browser's tiles
    assert found == []


def test_the_director_page_on_a_phone_has_no_serious_violation(audit):
    school = School.objects.filter(zones__type="flood").first()
    username = school.directors.get().username

    assert audit(username, ["/ppms/ecole/"], viewport=PHONE) == []


def test_the_admin_pages_have_no_serious_violation(audit):
    pages = [
        "/admin/",
        "/admin/sensors/sensor/",
        "/admin/sensors/sensor/1/change/",
        "/admin/alerts/rule/",
        "/admin/alerts/alert/",
        "/admin/ppms/school/",
        "/admin/auth/user/",
    ]
    assert audit("admin", pages, viewport=DESK) == []


def test_the_sign_in_page_has_no_serious_violation(audit):
    assert audit(None, ["/accounts/login/"], viewport=PHONE) == []
