"""The dashboard's map in a real browser (Debian's chromium, Playwright) served by the real
web process: offline (the default Plan IGN out of reach) the drawing, without a console
error; with a tile server that answers, Leaflet's tiles and the layers, the operator's
only, names on hover and at high zoom, the sensor in alert and the school in PPMS drawn
apart by their shape; a tile server that stops answering the browser, the drawing again,
said once on the console as information."""

import contextlib

import playwright.sync_api
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from ppms.models import Shelter
from ppms.services import ppms_activate
from sensors.models import Zone
from tests.brokers import free_port
from tests.conftest import CHROMIUM, make_school, make_sensor, sign_in
from tests.stack import start_web, stop
from tests.test_browser import CHROMIUM_ARGS
from tests.test_cap import make_alert
from tests.test_dashboard import square
from tests.tiles import tile_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("stack"),
]

READY = '[data-testid="connection"][data-state="connected"]'


def placed(thing, latitude=47.35, longitude=0.66):
    thing.latitude, thing.longitude = latitude, longitude
    thing.save()
    return thing


@pytest.fixture
def town(commune, other_commune, operator):
    mine = make_sensor(commune, "jlt-air-01", "air", name="Station Mairie")
    placed(make_sensor(commune, "jlt-air-02", "air", name="Station Parc"), latitude=47.352)
    placed(make_sensor(other_commune, "bal-air-01", "air", name="Station Ballan"), 47.33)
    make_alert(mine)
    school = placed(make_school(commune, "0370001A", name="École Rabelais"), longitude=0.664)
    placed(make_school(other_commune, "0370002B", name="École de Ballan"), 47.33)
    Zone.objects.create(
        commune=commune, name="Zone inondable", type="flood", geometry=square(0.655, 47.345)
    )
    Shelter.objects.create(
        commune=commune, name="Gymnase", latitude=47.347, longitude=0.657, capacity=80, is_open=True
    )
    ppms_activate(
        scenario="confinement", title="Exercice", source="operator", schools=[school], by=operator
    )


@pytest.fixture
def dashboard(monkeypatch, town, operator):
    """open(tiles=None) -> (page, console errors, console infos) of the dashboard, served
    by a web process with CSU_MAP_TILES=tiles (None: the default, out of reach here)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    session = sign_in(Client(), operator).cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright, contextlib.ExitStack() as running:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        running.callback(browser.close)

        def open_dashboard(tiles=None, *, path="/dashboard/", width=1600, height=1000):
            port = free_port()
            env = {} if tiles is None else {"CSU_MAP_TILES": tiles}
            running.callback(stop, start_web(port, **env))
            base = f"http://127.0.0.1:{port}"
            context = browser.new_context(
                viewport={"width": width, "height": height}, locale="fr-FR"
            )
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}]
            )
            page = context.new_page()
            errors, infos = [], []
            page.on(
                "console",
                lambda m: (errors if m.type == "error" else infos).append(m.text),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            response = page.goto(f"{base}{path}")
            page.wait_for_selector(READY, timeout=20_000)
            page.csp = response.headers["content-security-policy"]
            return page, errors, infos

        yield open_dashboard
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def test_offline_the_map_is_the_drawing_without_a_console_error(dashboard, tmp_path):
    page, errors, _infos = dashboard()

    frame = page.get_by_test_id("map")
    assert frame.get_attribute("data-view") == "drawing"
    assert page.get_by_test_id("map-drawing").is_visible()
    assert page.locator(".leaflet-container").count() == 0
    assert page.locator('svg.map [data-sensor="jlt-air-01"]').get_attribute("data-state") == (
        "alert"
    )
    assert page.locator('svg.map [data-sensor="bal-air-01"]').count() == 0
    page.wait_for_selector('svg.map [data-school="0370001A"][data-ppms="on"]')
    page.wait_for_timeout(1000)  # whatever would fail late
    page.get_by_test_id("map").screenshot(path=tmp_path / "drawing.png")
    assert errors == []


@pytest.mark.parametrize(
    ("path", "width", "height"), [("/dashboard/", 1600, 1000), ("/dashboard/wall/", 1920, 1080)]
)
def test_a_tile_server_that_answers_shows_leaflet_with_the_layers(
    dashboard, path, width, height, tmp_path
):
    with tile_server() as server:
        page, errors, _infos = dashboard(server.url, path=path, width=width, height=height)
        page.wait_for_selector(".leaflet-tile-loaded")
        page.screenshot(path=tmp_path / f"map-{width}.png")

        frame = page.get_by_test_id("map")
        assert frame.get_attribute("data-view") == "tiles"
        assert not page.get_by_test_id("map-drawing").is_visible()
        port = server.url.split(":")[2].split("/")[0]
        assert f"img-src 'self' data: blob: http://127.0.0.1:{port}" in page.csp
        tiles = page.locator(".map-tiles-view")
        # The operator's sensors and schools, not the other commune's.
        sensors = tiles.locator("[data-sensor]")
        assert sorted(sensors.evaluate_all("ns => ns.map(n => n.dataset.sensor)")) == [
            "jlt-air-01",
            "jlt-air-02",
        ]
        assert tiles.locator("[data-school]").evaluate_all(
            "ns => ns.map(n => n.dataset.school)"
        ) == ["0370001A"]
        assert tiles.locator("path.zone-flood").count() == 1
        shelter = tiles.locator("[data-shelter]")
        assert shelter.get_attribute("data-open") == "true"
        shelter.hover()
        assert shelter.locator(".pin-label").inner_text() == (
            "Gymnase — centre d'accueil ouvert, 0 / 80"
        )
        # In alert, in PPMS: a shape of their own, not only a colour.
        alert = tiles.locator('[data-sensor="jlt-air-01"]')
        assert alert.get_attribute("data-state") == "alert"
        shape = "n => getComputedStyle(n.querySelector('.shape')).transform"
        assert alert.evaluate(shape) != "none"  # a diamond
        assert tiles.locator('[data-sensor="jlt-air-02"]').evaluate(shape) == "none"
        school = tiles.locator('[data-school="0370001A"]')
        school.and_(page.locator('[data-ppms="on"]')).wait_for()
        # The names: on hover (with the tooltip), and all of them at high zoom.
        label = tiles.locator('[data-sensor="jlt-air-02"] .pin-label')
        assert not label.is_visible()
        tiles.locator('[data-sensor="jlt-air-02"]').hover()
        assert label.is_visible() and label.inner_text() == "Station Parc"
        assert page.locator("#map-tooltip").inner_text().startswith("Station Parc")
        page.mouse.move(5, 5)
        zoom_in = tiles.locator(".leaflet-control-zoom-in")
        for _ in range(8):
            if "leaflet-disabled" in zoom_in.get_attribute("class"):
                break
            try:
                # The button may become disabled between the look and the click: the
                # zoom of the click before ends late on a loaded machine (CI saw it).
                zoom_in.click(timeout=3000)
            except playwright.sync_api.TimeoutError:
                continue
            page.wait_for_timeout(300)
        assert page.get_by_test_id("map").evaluate("n => n.classList.contains('labels')")
        assert tiles.locator('[data-school="0370001A"] .pin-label').is_visible()
        assert "IGN" not in tiles.locator(".leaflet-control-attribution").inner_text()
        if path == "/dashboard/wall/":
            assert page.evaluate("document.documentElement.scrollHeight") <= 1080
        page.screenshot(path=tmp_path / f"map-{width}-zoomed.png")
        assert errors == []
        assert len(server.requests) > 1  # the server's check, then the browser's tiles


def test_tiles_the_browser_cannot_load_give_the_drawing_said_once(dashboard):
    # The web process's check gets its tile; the browser's requests all fail.
    with tile_server(answer=lambda n: n == 0) as server:
        page, _errors, infos = dashboard(server.url)

        page.wait_for_function(
            "document.querySelector('[data-testid=map]').dataset.view === 'drawing'"
        )
        page.wait_for_timeout(1000)
        assert page.get_by_test_id("map-drawing").is_visible()
        assert page.locator(".leaflet-container .leaflet-tile").count() == 0
        said = [text for text in infos if "tile server does not answer" in text]
        assert len(said) == 1
        # The drawing works: its sensor's tooltip on hover.
        page.locator('svg.map [data-sensor="jlt-air-02"]').hover()
        assert page.locator("#map-tooltip").inner_text().startswith("Station Parc")
