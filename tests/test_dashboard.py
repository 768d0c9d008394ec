"""The operator's live dashboard: access, the KPI computations, scope, commune filter, map."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection
from django.template.loader import render_to_string

from alerts.models import Alert, Rule
from dashboard.kpis import DEFAULT_FLOOD_STEPS, dashboard_kpis
from sensors.models import LatestReading, Reading, Sensor, Zone
from sensors.partitions import create_partition
from tests.conftest import make_school, make_sensor, make_user, sign_in

PARIS = ZoneInfo("Europe/Paris")
# A summer Wednesday, 10:30 in Paris (08:30 UTC).
NOW = datetime(2026, 7, 15, 10, 30, tzinfo=PARIS)

DASHBOARD, WALL, KPIS = "/dashboard/", "/dashboard/wall/", "/dashboard/kpis.json"
TILES = {"air", "water", "river", "watering", "traffic", "openings"}


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """ATMO classes are cached per station: each test starts afresh.

    Under a key prefix of its own rather than with ``cache.clear()``: on Redis that is a
    FLUSHDB, which would also empty the channel layer and the cache of the other xdist
    workers and test runs sharing the server.
    """
    backend = caches["default"]  # the backend itself: ``cache`` is a proxy to it
    monkeypatch.setattr(backend, "key_prefix", f"{backend.key_prefix}-{uuid.uuid4().hex}")


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def paris(*fields) -> datetime:
    return datetime(*fields, tzinfo=PARIS)


def latest(sensor, at=NOW, **values):
    for metric, value in values.items():
        LatestReading.objects.update_or_create(
            sensor=sensor, metric=metric, defaults={"ts": at, "value": value}
        )


def readings(sensor, metric, *points):
    """Store (moment, value) readings, creating their partitions first on PostgreSQL."""
    if connection.vendor == "postgresql":
        for day in {moment.astimezone(UTC).date() for moment, _ in points}:
            create_partition(day)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=moment, value=value) for moment, value in points
    )


def kpis_of(*sensors, now=NOW):
    chosen = Sensor.objects.filter(pk__in=[s.pk for s in sensors]).prefetch_related("zones")
    return dashboard_kpis(list(chosen), now=now)


def login(client, user):
    sign_in(client, user)
    return client


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin-csu", is_staff=True)


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DASHBOARD, WALL, KPIS])
def test_anonymous_visitors_are_sent_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("path", [DASHBOARD, WALL, KPIS])
def test_a_director_may_not_see_the_dashboard(client, director, path):
    assert login(client, director).get(path).status_code == 403


@pytest.mark.parametrize("path", [DASHBOARD, WALL, KPIS])
def test_an_operator_sees_the_dashboard(client, operator, path):
    assert login(client, operator).get(path).status_code == 200


def test_an_admin_sees_the_dashboard(client, staff, commune):
    assert login(client, staff).get(DASHBOARD).status_code == 200


def test_the_home_page_sends_operators_and_admins_to_the_dashboard(client, operator, staff):
    assert login(client, operator).get("/")["Location"] == DASHBOARD
    assert login(client, staff).get("/")["Location"] == DASHBOARD


def test_the_home_page_does_not_send_a_director_to_the_dashboard(client, director, school):
    response = login(client, director).get("/")
    # Their own start page (the PPMS page of their school), never the operators' one.
    assert response.get("Location") != DASHBOARD


def test_the_navigation_links_to_the_dashboard_and_the_wall_mode_for_operators(client, operator):
    page = login(client, operator).get(DASHBOARD).content.decode()
    assert 'href="/dashboard/"' in page
    assert 'href="/dashboard/wall/"' in page


# --- Air ----------------------------------------------------------------------------------


def every_minute(start, hours, value):
    """(moment, value) once a minute for ``hours`` hours from ``start``."""
    return [(start + timedelta(minutes=m), value) for m in range(hours * 60)]


def test_the_estimated_atmo_index_of_a_background_station_is_that_of_its_hourly_means(commune):
    station = make_sensor(commune, "jlt-air-01", "air", station_type="background")
    # 10:30 covers less than 75 % of today: the index shown is yesterday's, whole.
    # PM10 mean of hourly means 45 µg/m³: class 3, "dégradé"; NO₂ hourly max 30: class 1.
    yesterday = paris(2026, 7, 14, 0, 0)
    readings(
        station,
        "pm10",
        *every_minute(yesterday, 12, 40),
        *every_minute(yesterday + timedelta(hours=12), 12, 50),
    )
    readings(station, "no2", *every_minute(yesterday, 24, 30))
    readings(station, "pm10", *every_minute(paris(2026, 7, 15, 0, 0), 10, 400))  # 10 h of 24

    air = kpis_of(station)["air"]

    [item] = air["stations"]
    assert (item["klass"], item["label"], item["colour"]) == (3, "dégradé", "#F0E641")
    assert (item["pollutant"], item["day"], item["today"], item["share"]) == (
        "pm10",
        "2026-07-14",
        False,
        1.0,
    )
    assert air["worst"]["sensor"] == "jlt-air-01"
    assert air["state"] == "warning"


def test_a_trafic_station_gets_no_atmo_index(commune):
    station = make_sensor(commune, "jlt-air-02", "air", station_type="traffic")
    readings(station, "pm10", *every_minute(paris(2026, 7, 14, 0, 0), 24, 400))

    air = kpis_of(station)["air"]

    assert air["stations"][0]["klass"] is None and air["worst"] is None
    assert air["background"] == 0


def test_the_atmo_class_is_cached_for_a_few_minutes(commune, django_assert_num_queries):
    station = make_sensor(commune, "jlt-air-01", "air", station_type="background")
    readings(station, "pm10", *every_minute(paris(2026, 7, 14, 0, 0), 24, 10))
    kpis_of(station)
    readings(station, "pm10", *every_minute(paris(2026, 7, 15, 0, 0), 10, 500))
    sensors = list(Sensor.objects.filter(pk=station.pk).prefetch_related("zones"))

    with django_assert_num_queries(1):  # the latest values; no readings query
        air = dashboard_kpis(sensors, now=NOW)["air"]

    assert air["stations"][0]["klass"] == 1


def test_a_background_station_without_enough_readings_has_no_class(commune):
    station = make_sensor(commune, "jlt-air-01", "air", station_type="background")
    readings(station, "pm10", *every_minute(paris(2026, 7, 14, 0, 0), 17, 90))  # 17 h of 24
    air = kpis_of(station)["air"]
    assert air["stations"][0]["klass"] is None
    assert air["worst"] is None
    assert air["state"] == "unknown"


# --- Drinking water -------------------------------------------------------------------------

GOOD_WATER = {"ph": 7.6, "turbidity": 0.3, "chlorine": 0.4, "conductivity": 500, "nitrates": 12}


def test_drinking_water_within_every_reference_is_said_so_never_conforme(
    client, operator, commune, at_now
):
    probe = make_sensor(commune, "jlt-water-03", "water", water_point="network")
    latest(probe, **GOOD_WATER)

    water = kpis_of(probe)["water"]
    page = login(client, operator).get(DASHBOARD).content.decode()

    assert (water["ok"], water["within_limits"], water["state"]) == (True, True, "ok")
    # In the network: nitrates (limit), pH and conductivity (references), chlorine
    # (Vigipirate); turbidity is judged at the outlet and at the tap.
    checks = {c["metric"]: c["ok"] for c in water["sensors"][0]["checks"]}
    assert checks == dict.fromkeys(["nitrates", "ph", "conductivity", "chlorine"], True)
    assert "Dans les références" in page and "limites et références de qualité" in page
    assert "Conforme" not in page


@pytest.mark.parametrize(
    ("metric", "value", "out"),
    [
        ("ph", 6.4, "référence de qualité"),
        ("ph", 6.5, None),
        ("ph", 9.0, None),
        ("ph", 9.1, "référence de qualité"),
        ("turbidity", 0.5, None),
        ("turbidity", 0.6, "référence de qualité"),
        ("turbidity", 1.1, "limite de qualité"),
        ("chlorine", 0.3, None),
        ("chlorine", 0.25, "consigne Vigipirate"),
        ("chlorine", 0.05, "consigne Vigipirate"),
        ("conductivity", 179, "référence de qualité"),
        ("conductivity", 1000, None),
        ("nitrates", 50, None),
        ("nitrates", 51, "limite de qualité"),
    ],
)
def test_water_leaving_a_reservoir_is_judged_on_the_arrete_s_limits_and_references(
    commune, metric, value, out
):
    probe = make_sensor(commune, "jlt-water-01", "water", water_point="outlet")
    latest(probe, **{**GOOD_WATER, metric: value})

    water = kpis_of(probe)["water"]

    [point] = water["sensors"]
    assert point["out"] == out
    check = next(c for c in point["checks"] if c["metric"] == metric)
    assert (check["ok"], check["out"]) == (out is None, out)
    state = {None: "ok", "limite de qualité": "alert"}.get(out, "warning")
    assert water["state"] == state


@pytest.mark.parametrize(("value", "ok"), [(0.9, True), (2.0, True), (2.1, False)])
def test_turbidity_at_the_tap_is_a_reference_of_2_nfu(commune, value, ok):
    probe = make_sensor(commune, "jlt-water-07", "water", water_point="tap")
    latest(probe, **{**GOOD_WATER, "turbidity": value})

    [point] = kpis_of(probe)["water"]["sensors"]

    check = next(c for c in point["checks"] if c["metric"] == "turbidity")
    assert check["ok"] is ok
    assert check["criteria"] == [
        "Turbidité : 2 NFU aux robinets normalement utilisés pour la consommation (référence)"
    ]


def test_one_point_over_a_limit_makes_the_water_tile_alert(commune):
    good = make_sensor(commune, "jlt-water-01", "water", water_point="network")
    bad = make_sensor(commune, "jlt-water-02", "water", water_point="network")
    latest(good, **GOOD_WATER)
    latest(bad, **{**GOOD_WATER, "nitrates": 62})

    water = kpis_of(good, bad)["water"]

    assert (water["ok"], water["over_limits"], water["count"], water["state"]) == (
        False,
        1,
        2,
        "alert",
    )
    assert water["sensors"][0]["sensor"] == "jlt-water-02"  # failing first


def test_a_bathing_lake_raw_water_and_a_river_gauge_are_not_drinking_water(commune):
    lake = make_sensor(commune, "jlt-water-05", "water", water_point="bathing")
    resource = make_sensor(commune, "jlt-water-06", "water", water_point="resource")
    gauge = make_sensor(commune, "jlt-river-01", "water")
    latest(lake, ph=9.5, turbidity=4)
    latest(resource, nitrates=70)
    latest(gauge, level=1.2, temperature=12)

    kpis = kpis_of(lake, resource, gauge)

    assert (kpis["water"]["count"], kpis["water"]["unset"]) == (0, 0)
    assert [g["sensor"] for g in kpis["river"]["gauges"]] == ["jlt-river-01"]


def test_a_probe_whose_water_point_is_not_set_is_counted_not_judged(commune):
    probe = make_sensor(commune, "jlt-water-01", "water")
    latest(probe, **{**GOOD_WATER, "ph": 5})

    water = kpis_of(probe)["water"]

    assert (water["count"], water["unset"], water["state"]) == (0, 1, "unknown")


def test_an_old_water_value_is_still_judged_but_flagged_stale(commune):
    probe = make_sensor(
        commune, "jlt-water-01", "water", expected_interval=300, water_point="network"
    )
    latest(probe, at=NOW - timedelta(hours=2), **{**GOOD_WATER, "ph": 5.0})

    water = kpis_of(probe)["water"]

    assert water["ok"] is False
    assert water["stale"] == 1


# --- River levels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "step", "state"),
    [(2.0, 0, "ok"), (3.6, 1, "warning"), (4.6, 2, "alert"), (5.5, 3, "alert")],
)
def test_the_river_level_is_placed_against_the_default_flood_steps(commune, level, step, state):
    gauge = make_sensor(commune, "jlt-river-01", "water")
    latest(gauge, level=level)

    river = kpis_of(gauge)["river"]

    [item] = river["gauges"]
    assert tuple(item["steps"]) == DEFAULT_FLOOD_STEPS == (3.5, 4.5, 5.5)
    assert (item["step"], river["state"]) == (step, state)


def test_the_flood_steps_come_from_the_active_level_rules_of_the_gauges_zones(commune, flood_zone):
    inside = make_sensor(commune, "jlt-river-01", "water")
    inside.zones.add(flood_zone)
    outside = make_sensor(commune, "jlt-river-02", "water")
    latest(inside, level=3.2)
    latest(outside, level=3.2)
    for threshold, active in ((3.0, True), (4.0, True), (3.1, False)):
        rule = Rule.objects.create(
            name=f"Cher {threshold}",
            sensor_kind="water",
            metric="level",
            threshold=threshold,
            active=active,
        )
        rule.zones.add(flood_zone)
    Rule.objects.create(name="Chlore", sensor_kind="water", metric="chlorine", threshold=9)

    gauges = {g["sensor"]: g for g in kpis_of(inside, outside)["river"]["gauges"]}

    assert gauges["jlt-river-01"]["steps"] == [3.0, 4.0]
    assert gauges["jlt-river-01"]["step"] == 1
    assert gauges["jlt-river-02"]["steps"] == list(DEFAULT_FLOOD_STEPS)
    assert gauges["jlt-river-02"]["step"] == 0


def test_a_gauge_keeps_the_step_of_its_open_alert_while_the_level_recedes_past_the_clear_line(
    commune, flood_zone
):
    gauge = make_sensor(commune, "jlt-river-01", "water")
    gauge.zones.add(flood_zone)
    rules = {}
    for threshold, clear, severity in ((3.5, 3.3, "warning"), (4.5, 4.2, "critical")):
        rules[threshold] = Rule.objects.create(
            name=f"Cher {threshold}",
            sensor_kind="water",
            metric="level",
            threshold=threshold,
            clear_threshold=clear,
            severity=severity,
        )
        rules[threshold].zones.add(flood_zone)
    # The level passed 4,5 m, the critical alert fired; it fell to 4,4 m, above 4,2 m: the
    # alert is still open.
    Alert.objects.create(rule=rules[4.5], sensor=gauge, severity="critical", title="crue")
    latest(gauge, level=4.4)

    river = kpis_of(gauge)["river"]

    [item] = river["gauges"]
    assert (item["step"], item["of"], river["state"]) == (2, 2, "alert")
    tile = render_to_string("dashboard/tile_river.html", {"kpis": {"river": river}})
    assert "palier 2/2 atteint" in tile
    # The headline is the worst gauge's value, changed live by its readings like its row.
    assert tile.count('data-live="jlt-river-01:level"') == 2


# --- Watering -----------------------------------------------------------------------------


def test_valves_open_now_count_fresh_values_only(commune):
    open_valve = make_sensor(commune, "jlt-watering-01", "watering", expected_interval=600)
    closed = make_sensor(commune, "jlt-watering-02", "watering", expected_interval=600)
    silent = make_sensor(commune, "jlt-watering-03", "watering", expected_interval=600)
    latest(open_valve, valve=1, flow=80)
    latest(closed, valve=0, flow=0)
    latest(silent, at=NOW - timedelta(hours=3), valve=1, flow=120)

    watering = kpis_of(open_valve, closed, silent)["watering"]

    assert (watering["valves_open"], watering["valves"], watering["unknown"]) == (1, 3, 1)
    assert watering["flow_now"] == 80
    assert [v["sensor"] for v in watering["open"]] == ["jlt-watering-01"]


def test_todays_consumption_integrates_the_flow_over_the_paris_day(commune):
    valve = make_sensor(commune, "jlt-watering-01", "watering", expected_interval=600)
    # 100 L/min from 06:00 to now (10:30): 4.5 h, i.e. 27,000 L.
    start = paris(2026, 7, 15, 6, 0)
    readings(valve, "flow", *((start + timedelta(minutes=10 * i), 100) for i in range(28)))
    # Last evening's watering belongs to yesterday.
    readings(valve, "flow", (paris(2026, 7, 14, 23, 0), 500), (paris(2026, 7, 14, 23, 50), 500))

    watering = kpis_of(valve)["watering"]

    assert watering["consumption_today"] == pytest.approx(27_000)
    assert watering["consumption_today_m3"] == pytest.approx(27)


# --- Traffic ------------------------------------------------------------------------------


def test_traffic_sums_the_last_counts_and_averages_the_speeds(commune):
    a = make_sensor(commune, "jlt-traffic-01", "traffic", expected_interval=60)
    b = make_sensor(commune, "jlt-traffic-02", "traffic", expected_interval=60)
    silent = make_sensor(commune, "jlt-traffic-03", "traffic", expected_interval=60)
    latest(a, vehicle_count=10, speed=30)
    latest(b, vehicle_count=20, speed=50)
    latest(silent, at=NOW - timedelta(hours=1), vehicle_count=999, speed=5)

    traffic = kpis_of(a, b, silent)["traffic"]

    assert (traffic["vehicles"], traffic["reporting"]) == (30, 2)
    assert traffic["flow_per_hour"] == pytest.approx(1800)
    assert traffic["mean_speed"] == pytest.approx(40)
    assert traffic["points"][0]["sensor"] == "jlt-traffic-01"  # slowest first


# --- Openings -----------------------------------------------------------------------------


def test_buildings_open_now_and_those_opened_last_night(commune):
    mairie = make_sensor(commune, "jlt-opening-01", "opening", building="Mairie")
    gymnase = make_sensor(commune, "jlt-opening-02", "opening", building="Gymnase")
    ecole = make_sensor(commune, "jlt-opening-03", "opening", building="École")
    latest(mairie, open=1)
    latest(gymnase, open=0)
    latest(ecole, open=0)
    readings(gymnase, "open", (paris(2026, 7, 15, 2, 15), 1), (paris(2026, 7, 15, 2, 20), 0))
    # Before 22:00 and after 06:00: not the night.
    readings(ecole, "open", (paris(2026, 7, 14, 21, 30), 1), (paris(2026, 7, 15, 6, 30), 1))

    openings = kpis_of(mairie, gymnase, ecole)["openings"]

    assert [b["building"] for b in openings["open_now"]] == ["Mairie"]
    assert [b["building"] for b in openings["open_at_night"]] == ["Gymnase"]
    assert openings["night"]["now"] is False
    assert openings["state"] == "warning"


def test_a_building_open_now_at_night_is_an_alert(commune):
    door = make_sensor(commune, "jlt-opening-01", "opening", building="Mairie")
    night = paris(2026, 7, 15, 23, 10)
    latest(door, at=night, open=1)

    openings = kpis_of(door, now=night)["openings"]

    assert [b["building"] for b in openings["open_at_night"]] == ["Mairie"]
    assert openings["night"]["now"] is True
    assert openings["state"] == "alert"


# --- Scope and commune filter ------------------------------------------------------------


@pytest.fixture
def two_towns(commune, other_commune):
    mine = make_sensor(commune, "jlt-water-01", "water", water_point="network")
    theirs = make_sensor(other_commune, "bal-water-01", "water", water_point="network")
    latest(mine, **GOOD_WATER)
    latest(theirs, **{**GOOD_WATER, "chlorine": 0.01})
    make_school(commune, "0370001A", name="École de Joué")
    make_school(other_commune, "0370002B", name="École de Ballan")
    Zone.objects.create(commune=commune, name="Quartier A", geometry=square(0.65, 47.34))
    Zone.objects.create(commune=other_commune, name="Quartier B", geometry=square(0.60, 47.33))
    return mine, theirs


def square(west, south, size=0.01):
    east, north = west + size, south + size
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_the_kpis_and_the_map_show_only_the_operators_communes(client, operator, two_towns):
    page = login(client, operator).get(DASHBOARD).content.decode()
    kpis = client.get(KPIS).json()

    assert 'data-sensor="jlt-water-01"' in page
    assert "bal-water-01" not in page
    assert "École de Joué" in page
    assert "École de Ballan" not in page
    assert "Quartier A" in page
    assert "Quartier B" not in page
    assert [s["sensor"] for s in kpis["kpis"]["water"]["sensors"]] == ["jlt-water-01"]
    assert kpis["kpis"]["water"]["ok"] is True
    assert set(kpis["sensors"]) == {"jlt-water-01"}


def test_an_operator_of_one_commune_gets_no_commune_filter(client, operator, two_towns):
    page = login(client, operator).get(DASHBOARD).content.decode()
    assert 'data-testid="commune-filter"' not in page


def test_an_operator_may_not_select_a_commune_outside_their_perimeter(client, operator, two_towns):
    assert login(client, operator).get(f"{DASHBOARD}?commune=37018").status_code == 404
    assert client.get(f"{KPIS}?commune=37018").status_code == 404


def test_a_metropole_operator_sees_every_commune_and_may_select_one(
    client, metropole_operator, two_towns
):
    login(client, metropole_operator)
    everything = client.get(KPIS).json()
    page = client.get(f"{DASHBOARD}?commune=37018").content.decode()
    ballan = client.get(f"{KPIS}?commune=37018").json()

    assert set(everything["sensors"]) == {"jlt-water-01", "bal-water-01"}
    assert everything["kpis"]["water"]["ok"] is False
    assert 'data-testid="commune-filter"' in page
    assert '<option value="37018" selected>' in page
    assert 'data-sensor="bal-water-01"' in page
    assert 'data-sensor="jlt-water-01"' not in page
    assert "École de Joué" not in page
    assert '"kpis": "/dashboard/kpis.json?commune=37018"' in page
    assert ballan["commune"] == "37018"
    assert set(ballan["sensors"]) == {"bal-water-01"}
    assert ballan["kpis"]["water"]["failing"] == 1


def test_the_page_gives_the_scripts_the_sensors_of_the_scope_with_their_commune(
    client, metropole_operator, two_towns, other_commune
):
    page = login(client, metropole_operator).get(f"{DASHBOARD}?commune=37018").content.decode()
    config = re.search(r'id="dashboard-config" type="application/json">(.*?)</script>', page)

    data = json.loads(config.group(1))
    assert data["commune"] == other_commune.pk
    assert set(data["sensors"]) == {"bal-water-01"}
    assert data["sensors"]["bal-water-01"]["commune"] == other_commune.pk


# --- kpis.json, the page's markup, query counts -------------------------------------------


def test_kpis_json_answers_every_tiles_figures_and_html_and_the_sensors_states(
    client, operator, commune, at_now
):
    gauge = make_sensor(commune, "jlt-river-01", "water", state="online")
    latest(gauge, level=4.7)

    data = login(client, operator).get(KPIS).json()

    assert set(data) == {"generated_at", "commune", "kpis", "tiles", "sensors"}
    assert data["generated_at"] == "2026-07-15T08:30:00Z"
    assert set(data["kpis"]) == TILES | {"generated_at"}
    assert set(data["tiles"]) == TILES
    assert 'data-state="alert"' in data["tiles"]["river"]
    assert ">4,7<" in data["tiles"]["river"]  # French decimals, as the pages' scripts write
    assert data["sensors"] == {"jlt-river-01": "online"}


def test_the_page_has_stable_hooks_for_browser_tests(client, operator, commune):
    make_sensor(commune, "jlt-air-01", "air")
    page = login(client, operator).get(DASHBOARD).content.decode()

    for tile in TILES:
        assert f'data-testid="tile-{tile}"' in page
    for chart in ("pm10", "level", "traffic"):
        assert f'data-testid="chart-{chart}"' in page
    assert 'data-testid="alert-console"' in page
    assert 'aria-live="polite"' in page
    assert re.search(
        r'data-testid="connection" data-state="(connected|reconnecting|offline)"', page
    )
    assert 'data-testid="map"' in page
    assert 'data-testid="mute"' in page
    assert 'data-action="acknowledge"' in page


def test_the_wall_mode_is_dark_and_has_no_button_but_mute(client, operator, commune):
    page = login(client, operator).get(WALL).content.decode()

    assert 'class="wall"' in page
    assert 'data-testid="mute"' in page
    assert "data-action=" not in page
    assert 'data-testid="enable-alerts"' not in page
    assert '"wall": true' in page


@pytest.mark.parametrize("path", [DASHBOARD, WALL])
def test_the_page_loads_the_vendored_plotly_and_nothing_from_the_internet(
    client, operator, commune, path
):
    make_sensor(commune, "jlt-air-01", "air")
    page = login(client, operator).get(path).content.decode()

    assert '<script src="/static/vendor/plotly.min.js"' in page
    assert '<script type="module" src="/static/js/dashboard.js"' in page
    assert not re.search(r"https?://", page)


def test_a_sensor_with_an_open_alert_is_drawn_in_alert(client, operator, commune):
    from tests.alerting import feed, make_rule

    sensor = make_sensor(commune, "jlt-air-01", "air", state="online")
    make_rule()
    feed(sensor, [95])

    page = login(client, operator).get(DASHBOARD).content.decode()

    assert 'data-sensor="jlt-air-01" data-kind="air" data-state="alert"' in page
    assert 'data-sensor-state="online"' in page


def populate(commune, per_kind: int) -> None:
    """Sensors of every kind with latest values, readings today and alerts."""
    from tests.alerting import feed, make_rule

    rule = make_rule()
    flood = Zone.objects.create(commune=commune, name="Zone inondable", type="flood")
    level = Rule.objects.create(name="Cher", sensor_kind="water", metric="level", threshold=3)
    level.zones.add(flood)
    for kind in ("air", "water", "watering", "traffic", "opening"):
        for i in range(per_kind):
            sensor = make_sensor(commune, f"{kind}-{i}", kind, building=f"Bâtiment {i}")
            sensor.zones.add(flood)
            values = {
                "air": {"pm10": 30},
                "water": {**GOOD_WATER, "level": 2.0} if i % 2 else GOOD_WATER,
                "watering": {"valve": 1, "flow": 60},
                "traffic": {"vehicle_count": 12, "speed": 40},
                "opening": {"open": 1},
            }[kind]
            latest(sensor, **values)
            for metric, value in values.items():
                readings(sensor, metric, (NOW - timedelta(minutes=30), value))
            if kind == "air":
                feed(sensor, [(NOW - timedelta(minutes=5), 90)])
    assert rule.alerts.count() == per_kind
    for i in range(per_kind):
        make_school(commune, f"03700{i:02d}A")
        Zone.objects.create(commune=commune, name=f"Zone {i}", geometry=square(0.6, 47.3))


# The same ceiling for 1 and 12 sensors of each kind: the queries do not grow with them.
MAX_QUERIES = (
    19  # 18 (one for the gauges' open level alerts), and the session's device (django-otp)
)


@pytest.mark.parametrize("per_kind", [1, 12])
@pytest.mark.parametrize("path", [DASHBOARD, KPIS])
def test_the_dashboard_makes_a_constant_number_of_queries(
    client, metropole_operator, commune, django_assert_max_num_queries, at_now, per_kind, path
):
    populate(commune, per_kind)
    login(client, metropole_operator)

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path)

    assert response.status_code == 200


def test_the_air_tile_says_the_index_is_the_csu_s_estimate_and_how_much_day_it_covers(
    client, operator, commune, at_now
):
    station = make_sensor(commune, "jlt-air-01", "air", station_type="background")
    make_sensor(commune, "jlt-air-02", "air", station_type="traffic")
    readings(station, "pm10", *every_minute(paris(2026, 7, 14, 0, 0), 24, 45))

    page = login(client, operator).get(DASHBOARD).content.decode()

    assert "indice ATMO estimé (CSU)" in page
    assert "3 · dégradé" in page
    assert "hier, 100 % de la journée couverte" in page
    assert "jlt-air-02 · trafic" in page


def test_the_air_tile_writes_each_class_on_the_guide_s_colour_in_readable_text(
    client, operator, commune, at_now
):
    station = make_sensor(commune, "jlt-air-01", "air", station_type="background")
    readings(station, "pm10", *every_minute(paris(2026, 7, 14, 0, 0), 24, 120))  # class 5

    page = login(client, operator).get(DASHBOARD).content.decode()

    assert 'style="background:#960032;color:#FFFFFF">5 · très mauvais' in page
