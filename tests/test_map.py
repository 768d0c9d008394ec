"""The dashboard's map: Leaflet over the tiles of CSU_MAP_TILES when the tile server
answers, the plan drawn from the coordinates when there is none or it does not answer;
the layers' data scoped to the operator's communes; a bad CSU_MAP_TILES stops the start.
(In a browser: tests/test_map_browser.py.)"""

import json
import logging
import re

import pytest

from ppms.models import Shelter
from sensors.models import Zone
from tests.brokers import free_port
from tests.conftest import make_school, make_sensor
from tests.test_cap import make_alert
from tests.test_dashboard import DASHBOARD, WALL, login, square
from tests.test_settings import run_settings
from tests.tiles import tile_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_towns(commune, other_commune):
    """A sensor, a school and a district in the operator's commune and in another."""
    mine = make_sensor(commune, "jlt-water-01", "water", water_point="network")
    theirs = make_sensor(other_commune, "bal-water-01", "water", water_point="network")
    make_school(commune, "0370001A", name="École de Joué")
    make_school(other_commune, "0370002B", name="École de Ballan")
    Zone.objects.create(commune=commune, name="Quartier A", geometry=square(0.65, 47.34))
    Zone.objects.create(commune=other_commune, name="Quartier B", geometry=square(0.60, 47.33))
    for town, name in ((commune, "Gymnase de Joué"), (other_commune, "Salle de Ballan")):
        Shelter.objects.create(
            commune=town, name=name, latitude=47.351, longitude=0.652, capacity=120, occupancy=30
        )
    return mine, theirs


def layers_of(page: str) -> dict | None:
    found = re.search(r'<script id="map-layers" type="application/json">(.*?)</script>', page)
    return json.loads(found.group(1)) if found else None


@pytest.mark.parametrize("path", [DASHBOARD, WALL])
def test_a_tile_server_that_answers_gets_leaflet_with_the_operators_layers_only(
    client, operator, two_towns, settings, path
):
    mine, _theirs = two_towns
    make_alert(mine)
    with tile_server() as server:
        settings.CSU_MAP_TILES = server.url
        settings.CSU_MAP_ATTRIBUTION = "© Ville de Joué-lès-Tours"
        page = login(client, operator).get(path).content.decode()

    layers = layers_of(page)
    assert layers["tiles"] == {"url": server.url, "attribution": "© Ville de Joué-lès-Tours"}
    assert [s["ref"] for s in layers["sensors"]] == ["jlt-water-01"]
    assert layers["sensors"][0]["state"] == "alert"
    assert layers["sensors"][0]["at"] == [47.35, 0.66]
    assert [s["name"] for s in layers["schools"]] == ["École de Joué"]
    assert [z["name"] for z in layers["zones"]] == ["Quartier A"]
    [shelter] = layers["shelters"]
    assert shelter["label"] == "Gymnase de Joué — centre d'accueil fermé, 30 / 120"
    assert shelter["at"] == [47.351, 0.652] and shelter["open"] is False
    assert layers["zones"][0]["rings"][0][0] == [47.34, 0.65]  # (lat, lon), as Leaflet
    (south, west), (north, east) = layers["bounds"]
    assert south < 47.34 < 47.35 < north and west < 0.65 < 0.66 < east
    assert '<script src="/static/leaflet/leaflet.js" defer>' in page
    assert '<link rel="stylesheet" href="/static/leaflet/leaflet.css">' in page
    for theirs in ("bal-water-01", "Quartier B", "École de Ballan", "Salle de Ballan"):
        assert theirs not in page
    # The drawing is still there, for the browser that cannot load the tiles.
    assert 'data-testid="map-drawing"' in page
    # One tile asked for, around the map's middle, at zoom 12.
    assert server.requests == ["/12/2055/1434.png"]


def test_a_tile_server_that_does_not_answer_gets_the_drawing_logged_once(
    client, operator, two_towns, settings, caplog
):
    settings.CSU_MAP_TILES = f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"
    login(client, operator)

    with caplog.at_level(logging.INFO, logger="dashboard.tiles"):
        pages = [client.get(DASHBOARD).content.decode() for _ in range(3)]

    for page in pages:
        assert layers_of(page) is None
        assert "leaflet" not in page
        assert 'data-testid="map-drawing"' in page
        assert "Plan dessiné à partir des coordonnées" in page
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "does not answer" in record.getMessage()


def test_a_tile_server_that_answers_again_is_used_again(client, operator, two_towns, settings):
    from dashboard import tiles

    calls = iter([False, True])
    with tile_server(answer=lambda n: next(calls)) as server:
        settings.CSU_MAP_TILES = server.url
        login(client, operator)
        assert layers_of(client.get(DASHBOARD).content.decode()) is None
        # A failed answer is kept a minute: past it, the server is asked again.
        url, (answered, when) = server.url, tiles._answers[server.url]
        tiles._answers[url] = (answered, when - tiles.KEEP_ANSWER_S[False] - 1)
        assert layers_of(client.get(DASHBOARD).content.decode())["tiles"]["url"] == url
    assert len(server.requests) == 2


def test_no_tile_url_no_tile_server_asked(client, operator, two_towns, settings):
    settings.CSU_MAP_TILES = ""

    page = login(client, operator).get(DASHBOARD).content.decode()

    assert layers_of(page) is None
    assert 'data-sensor="jlt-water-01"' in page
    # The drawing has every layer: zones, schools, shelters, sensors.
    assert 'data-zone-type="district"' in page and 'data-school="0370001A"' in page
    assert 'data-open="false"' in page and "<title>Gymnase de Joué — centre d" in page


def test_a_sensor_in_alert_and_a_school_have_shapes_not_only_colours(client, operator, commune):
    make_alert(make_sensor(commune, "jlt-air-01", "air"))

    page = login(client, operator).get(DASHBOARD).content.decode()

    assert '<path class="mark" d="M0,-11 L11,0 L0,11 L-11,0 Z">' in page  # a diamond
    assert 'data-ppms="on"' in page  # the legend's school under a PPMS


def settings_of(tmp_path, tiles: str) -> tuple[int, str]:
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    )
    result = run_settings(tmp_path, CSU_MAP_TILES=tiles, CSU_DATA_DIR=str(tmp_path), _script=script)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("tiles", "allowed"),
    [
        ("", []),
        (
            "https://tuiles.ville.example:8443/{z}/{x}/{y}.png",
            ["https://tuiles.ville.example:8443"],
        ),
        ("http://10.0.0.5/osm/{z}/{x}/{y}.png", ["http://10.0.0.5"]),
    ],
)
def test_the_csp_lets_images_come_from_the_tile_server_only(tmp_path, tiles, allowed):
    code, output = settings_of(tmp_path, tiles)

    assert code == 0, output
    assert json.loads(output.splitlines()[-1]) == ["'self'", "data:", "blob:", *allowed]


@pytest.mark.parametrize(
    ("tiles", "why"),
    [
        ("https://tuiles.ville.example/{z}/{x}.png", "(missing: {y})"),
        ("https://tuiles.ville.example/tiles.png", "(missing: {z}, {x}, {y})"),
        ("ftp://tuiles.ville.example/{z}/{x}/{y}.png", "an http(s) tile URL"),
        ("tuiles.ville.example/{z}/{x}/{y}.png", "an http(s) tile URL"),
    ],
)
def test_a_tile_url_without_its_placeholders_stops_the_start_with_a_clear_message(
    tmp_path, tiles, why
):
    code, output = settings_of(tmp_path, tiles)

    assert code != 0
    assert f"CSU_MAP_TILES={tiles!r}: an http(s) tile URL with {{z}}, {{x}} and {{y}}" in output
    assert why in output
