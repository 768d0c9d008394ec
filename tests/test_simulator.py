import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sensors.metrics import Kind, metric_for
from sensors.models import Zone
from sensors.simulator import (
    PARIS,
    SCENARIOS,
    SimSensor,
    Simulator,
    metrics_published,
    next_ts,
    sensors_from_db,
)
from tests.conftest import make_sensor

MONDAY = datetime(2026, 11, 23, tzinfo=PARIS)
SUNDAY = datetime(2026, 11, 22, tzinfo=PARIS)
SUMMER_MONDAY = datetime(2026, 7, 13, tzinfo=PARIS)

AIR = SimSensor("jlt-air-01", Kind.AIR, 60, "37122")
RIVER = SimSensor("jlt-river-01", Kind.WATER, 300, "37122", river=True)
TAP = SimSensor("jlt-water-01", Kind.WATER, 300, "37122")
WATERING = SimSensor("jlt-watering-01", Kind.WATERING, 600, "37122")
TRAFFIC = SimSensor("jlt-traffic-01", Kind.TRAFFIC, 60, "37122")
SCHOOL_DOOR = SimSensor("jlt-opening-03", Kind.OPENING, 300, "37122", "École élémentaire Mairie")
TOWN_HALL_DOOR = SimSensor("jlt-opening-01", Kind.OPENING, 300, "37122", "Mairie")
TOWN = [AIR, RIVER, TAP, WATERING, TRAFFIC, SCHOOL_DOOR, TOWN_HALL_DOOR]


def many(kind: str, count: int = 12, **fields) -> list[SimSensor]:
    return [SimSensor(f"t-{kind}-{i:02d}", kind, 60, "37122", **fields) for i in range(count)]


def every_15_minutes(day: datetime):
    return [day + timedelta(minutes=15 * i) for i in range(24 * 4)]


def at_hour(day: datetime, hour: float) -> datetime:
    return day + timedelta(hours=hour)


def started(scenario: str, *, speed: float = 1.0, start=None) -> Simulator:
    return Simulator(
        TOWN, seed=7, scenarios=[scenario], scenario_start=start or MONDAY, speed=speed
    )


# --- Normal days -----------------------------------------------------------------------


@pytest.mark.parametrize("day", [MONDAY, SUNDAY, SUMMER_MONDAY], ids=["winter", "sunday", "summer"])
def test_values_of_every_kind_stay_inside_the_registry_ranges_over_a_day(day):
    sensors = [
        *many(Kind.AIR),
        *many(Kind.WATER),
        *many(Kind.WATER, river=True),
        *many(Kind.WATERING),
        *many(Kind.TRAFFIC),
        *many(Kind.OPENING, building="École maternelle"),
        *many(Kind.OPENING, building="Gymnase"),
    ]
    simulator = Simulator(sensors, seed=3)

    for at in every_15_minutes(day):
        for sensor in sensors:
            for name, value in simulator.values(sensor, at).items():
                metric = metric_for(sensor.kind, name)
                assert metric is not None, (sensor.ref, name)
                assert metric.in_range(value), (sensor.ref, name, value, at)


def test_normal_values_look_like_the_domain_says():
    simulator = Simulator(TOWN, seed=1)
    tap = [simulator.values(TAP, at) for at in every_15_minutes(MONDAY)]
    river = [simulator.values(RIVER, at)["level"] for at in every_15_minutes(MONDAY)]

    assert all(7.5 <= v["ph"] <= 8.0 for v in tap)
    assert all(0.15 <= v["turbidity"] <= 0.45 for v in tap)
    assert all(0.28 <= v["chlorine"] <= 0.52 for v in tap)
    assert all(400 <= v["conductivity"] <= 600 for v in tap)
    assert all(1.2 <= level <= 1.6 for level in river)


def test_traffic_at_8_is_heavier_than_at_3():
    sensors = many(Kind.TRAFFIC, 20)
    simulator = Simulator(sensors, seed=5)

    def total(hour):
        return sum(simulator.values(s, at_hour(MONDAY, hour))["vehicle_count"] for s in sensors)

    def mean_speed(hour):
        return sum(simulator.values(s, at_hour(MONDAY, hour))["speed"] for s in sensors) / 20

    assert total(8) > 5 * total(3)
    assert mean_speed(8) < mean_speed(3)


def test_air_is_worse_at_rush_hour_and_ozone_peaks_on_summer_afternoons():
    sensors = many(Kind.AIR, 20)
    simulator = Simulator(sensors, seed=5)

    def mean(day, hour, name):
        return sum(simulator.values(s, at_hour(day, hour))[name] for s in sensors) / len(sensors)

    assert mean(MONDAY, 8, "no2") > 2 * mean(MONDAY, 3, "no2")
    assert mean(MONDAY, 8.5, "pm10") > mean(MONDAY, 4, "pm10")
    assert mean(SUMMER_MONDAY, 15, "o3") > mean(MONDAY, 15, "o3")
    assert mean(SUMMER_MONDAY, 15, "o3") > mean(SUMMER_MONDAY, 6, "o3")
    assert mean(SUMMER_MONDAY, 15, "temperature") > mean(MONDAY, 15, "temperature")


def test_watering_valves_are_open_at_night_and_closed_at_noon():
    sensors = many(Kind.WATERING)
    simulator = Simulator(sensors, seed=2)

    for sensor in sensors:
        night = simulator.values(sensor, at_hour(MONDAY, 2))
        noon = simulator.values(sensor, at_hour(MONDAY, 12))
        assert night["valve"] == 1 and night["flow"] > 0
        assert noon["valve"] == 0 and noon["flow"] == 0


def test_soil_moisture_dries_by_day():
    simulator = Simulator([WATERING], seed=2)

    morning = simulator.values(WATERING, at_hour(MONDAY, 6))["soil_moisture"]
    evening = simulator.values(WATERING, at_hour(MONDAY, 21))["soil_moisture"]

    assert evening < morning - 5


def test_school_doors_are_closed_at_2_on_a_weekday_and_all_sunday():
    doors = many(Kind.OPENING, 20, building="Groupe scolaire Rabière")
    simulator = Simulator(doors, seed=4)

    for door in doors:
        assert simulator.values(door, at_hour(MONDAY, 2))["open"] == 0
        assert all(simulator.values(door, at)["open"] == 0 for at in every_15_minutes(SUNDAY))
        # Wednesday afternoon: no school.
        assert simulator.values(door, at_hour(MONDAY + timedelta(days=2), 15))["open"] == 0


def test_school_doors_open_when_pupils_arrive():
    doors = many(Kind.OPENING, 20, building="École maternelle")
    simulator = Simulator(doors, seed=4)

    opened = sum(simulator.values(door, at_hour(MONDAY, 8.25))["open"] for door in doors)

    assert opened >= 10


# --- Incidents -------------------------------------------------------------------------


def test_nothing_happens_before_the_scenario_delay():
    start = at_hour(MONDAY, 2)
    calm = Simulator(TOWN, seed=7)
    waiting = Simulator(TOWN, seed=7, scenarios=SCENARIOS, scenario_start=start)

    before = start - timedelta(seconds=1)

    assert waiting.round(before) == calm.round(before)
    assert waiting.elapsed(before) is None


def test_the_pollution_scenario_pushes_pm10_above_80_and_no2_above_200():
    simulator = started("pollution", start=at_hour(MONDAY, 14))

    def at_minute(minute):
        return simulator.values(AIR, at_hour(MONDAY, 14) + timedelta(minutes=minute))

    assert at_minute(0)["pm10"] < 50
    assert max(at_minute(m)["pm10"] for m in range(4)) > 50
    assert at_minute(6)["pm10"] > 80
    assert at_minute(6)["no2"] > 200
    assert at_minute(60)["pm10"] < 50  # the episode ends


def test_pollution_reaches_only_the_air_stations_of_the_main_town():
    elsewhere = SimSensor("bal-air-01", Kind.AIR, 60, "37018")
    start = at_hour(MONDAY, 14)
    simulator = Simulator([*TOWN, elsewhere], seed=7, scenarios=["pollution"], scenario_start=start)

    assert simulator.incidents["pollution"].sensors == ("jlt-air-01",)
    assert simulator.values(elsewhere, start + timedelta(minutes=6))["pm10"] < 50


def test_the_flood_scenario_pushes_the_river_level_above_4_5_m():
    simulator = started("flood")
    levels = [
        simulator.values(RIVER, MONDAY + timedelta(minutes=minute))["level"]
        for minute in range(0, 120, 5)
    ]

    assert levels[0] < 1.7
    assert levels == sorted(levels)  # it rises steadily
    assert max(levels) > 5.5
    assert levels[12] == pytest.approx(levels[0] + 0.05 * 60, abs=0.05)  # 5 cm per minute


def test_the_flood_unfolds_faster_with_speed():
    simulator = started("flood", speed=10)

    level = simulator.values(RIVER, MONDAY + timedelta(minutes=7))["level"]

    assert level > 4.5


def test_the_flood_leaves_drinking_water_probes_alone():
    simulator = started("flood")

    assert "level" not in simulator.values(TAP, MONDAY + timedelta(hours=1))


def test_intrusion_opens_a_school_door_at_night():
    start = at_hour(MONDAY, 2)
    simulator = started("intrusion", start=start)

    assert simulator.incidents["intrusion"].sensors == ("jlt-opening-03",)
    assert simulator.values(SCHOOL_DOOR, start - timedelta(minutes=1))["open"] == 0
    assert simulator.values(SCHOOL_DOOR, start + timedelta(minutes=1))["open"] == 1
    assert simulator.incident_reporters() == [SCHOOL_DOOR]


def test_incidents_have_begun_for_a_reading_stamped_in_their_first_millisecond():
    start = at_hour(MONDAY, 2) + timedelta(microseconds=1500)
    simulator = started("intrusion", start=start)

    at = next_ts(start + timedelta(microseconds=200), None)

    assert simulator.values(SCHOOL_DOOR, at)["open"] == 1


def test_failing_sensors_are_picked_in_the_main_town():
    neighbours = [
        SimSensor("bal-traffic-01", Kind.TRAFFIC, 60, "37018"),
        SimSensor("bal-water-01", Kind.WATER, 300, "37018"),
    ]
    simulator = Simulator(
        [*neighbours, *TOWN], seed=11, scenarios=["sensor-failure"], scenario_start=MONDAY
    )

    assert simulator.incidents["sensor-failure"].sensors == ("jlt-traffic-01", "jlt-water-01")


def test_sensor_failure_silences_one_sensor_and_corrupts_another():
    start = at_hour(MONDAY, 10)
    simulator = started("sensor-failure", start=start)
    silent, faulty = simulator.incidents["sensor-failure"].sensors

    [offline] = simulator.incident_statuses()
    assert (offline.topic, offline.payload, offline.retain) == (
        f"csu/{silent}/status",
        b"offline",
        True,
    )
    assert silent != faulty
    during = simulator.round(start + timedelta(seconds=1))
    assert f"csu/{silent}/readings" not in {m.topic for m in during}

    sensor = simulator.by_ref[faulty]
    bad = [
        simulator.message(sensor, start + timedelta(seconds=sensor.interval * turn)).payload
        for turn in range(3)
    ]
    out_of_range = json.loads(bad[0])["values"]
    assert any(not metric_for(sensor.kind, n).in_range(v) for n, v in out_of_range.items())
    assert "n/a" in json.loads(bad[1])["values"].values()
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad[2])


def test_unknown_scenarios_are_refused():
    with pytest.raises(ValueError):
        Simulator(TOWN, scenarios=["earthquake"])


# --- Payloads --------------------------------------------------------------------------


def test_payloads_are_json_with_an_rfc3339_ts_with_offset_and_the_metrics_of_the_kind():
    simulator = Simulator(TOWN, seed=1)
    at = at_hour(MONDAY, 9.5) + timedelta(milliseconds=123)

    messages = simulator.round(at)

    assert len(messages) == len(TOWN)
    for sensor, message in zip(simulator.sensors, messages, strict=True):
        assert message.topic == f"csu/{sensor.ref}/readings"
        assert (message.qos, message.retain) == (1, False)
        body = json.loads(message.payload)
        assert body["ts"] == "2026-11-23T09:30:00.123+01:00"
        assert datetime.fromisoformat(body["ts"]) == at
        assert set(body["values"]) == set(metrics_published(sensor))
        assert all(metric_for(sensor.kind, name) for name in body["values"])
    air = json.loads(messages[0].payload)["values"]
    assert set(air) == {"pm25", "pm10", "no2", "o3", "so2", "temperature", "humidity"}


def test_the_offset_follows_summer_time():
    simulator = Simulator([AIR], seed=1)

    body = json.loads(simulator.message(AIR, at_hour(SUMMER_MONDAY, 9)).payload)

    assert body["ts"].endswith("+02:00")


def test_every_sensor_says_it_is_online_retained():
    simulator = Simulator(TOWN)

    statuses = simulator.status_messages()

    assert {(m.topic, m.payload, m.qos, m.retain) for m in statuses} == {
        (f"csu/{s.ref}/status", b"online", 1, True) for s in TOWN
    }


def test_the_same_seed_gives_the_same_values_and_another_seed_others():
    at = at_hour(MONDAY, 8)

    same = Simulator(TOWN, seed=42).round(at) == Simulator(TOWN, seed=42).round(at)
    other = Simulator(TOWN, seed=42).round(at) == Simulator(TOWN, seed=43).round(at)

    assert same and not other


# --- From the database -----------------------------------------------------------------


def test_river_sensors_are_known_by_their_ref_or_a_flood_zone(commune, flood_zone):
    make_sensor(commune, "jlt-river-01", Kind.WATER)
    make_sensor(commune, "jlt-water-06", Kind.WATER).zones.add(flood_zone)
    make_sensor(commune, "jlt-water-01", Kind.WATER).zones.add(
        Zone.objects.create(commune=commune, name="Centre")
    )
    make_sensor(commune, "jlt-air-08", Kind.AIR).zones.add(flood_zone)
    make_sensor(commune, "jlt-air-99", Kind.AIR, active=False)

    sensors = {sensor.ref: sensor for sensor in sensors_from_db()}

    assert set(sensors) == {"jlt-river-01", "jlt-water-06", "jlt-water-01", "jlt-air-08"}
    assert sensors["jlt-river-01"].river and sensors["jlt-water-06"].river
    assert not sensors["jlt-water-01"].river and not sensors["jlt-air-08"].river
    assert sensors["jlt-air-08"].commune == "37122"


def test_the_command_refuses_an_unknown_scenario(commune):
    make_sensor(commune)

    with pytest.raises(CommandError, match="earthquake"):
        call_command("simulate", "--once", "--scenario", "flood,earthquake")


def test_the_command_says_when_the_broker_is_unreachable(commune):
    make_sensor(commune)

    with pytest.raises(CommandError, match="broker"):
        call_command("simulate", "--once", "--url", "mqtt://127.0.0.1:9")


# --- End to end, through a real broker -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker(tmp_path, request):
    """Start a throwaway Mosquitto on a free port; return its port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        if os.environ.get("CI") == "true":
            pytest.fail("Mosquitto is needed under CI=true")
        pytest.skip("Mosquitto is not installed")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def stop():
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    request.addfinalizer(stop)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("Mosquitto did not start")
            time.sleep(0.05)


class Collector:
    """A subscriber to csu/# that keeps what it receives."""

    def __init__(self, port: int):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-collector")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("csu/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the collector could not subscribe"

    def on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def wait_for(self, predicate, timeout: float = 10) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                messages = list(self.messages)
            if predicate(messages):
                break
            time.sleep(0.05)
        return messages

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collector(broker):
    collector = Collector(broker)
    yield collector
    collector.close()


@pytest.mark.mqtt
def test_once_publishes_a_reading_of_every_sensor_to_the_broker(commune, broker, collector):
    make_sensor(commune, "jlt-air-01", Kind.AIR)
    make_sensor(commune, "jlt-river-01", Kind.WATER)
    expected = {
        "csu/jlt-air-01/readings": {"pm25", "pm10", "no2", "o3", "so2", "temperature", "humidity"},
        "csu/jlt-river-01/readings": {"level", "temperature", "battery"},
    }

    call_command("simulate", "--once", "--seed", "1", "--url", f"mqtt://127.0.0.1:{broker}")
    messages = collector.wait_for(lambda got: set(expected) <= {m.topic for m in got})

    readings = {m.topic: json.loads(m.payload) for m in messages if m.topic in expected}
    assert set(readings) == set(expected)
    for topic, body in readings.items():
        assert set(body["values"]) == expected[topic]
        assert datetime.fromisoformat(body["ts"]).utcoffset() is not None
    statuses = {m.topic: m.payload for m in messages if m.topic.endswith("/status")}
    assert statuses == {
        "csu/jlt-air-01/status": b"online",
        "csu/jlt-river-01/status": b"online",
    }


@pytest.mark.mqtt
def test_rate_mode_publishes_about_the_rate_asked(commune, broker, collector, capsys):
    make_sensor(commune, "jlt-air-01", Kind.AIR)
    make_sensor(commune, "jlt-traffic-01", Kind.TRAFFIC)

    call_command(
        "simulate", "--rate", "400", "--duration", "2", "--url", f"mqtt://127.0.0.1:{broker}"
    )
    messages = collector.wait_for(lambda got: False, timeout=1)

    readings = [m for m in messages if m.topic.endswith("/readings")]
    assert 400 <= len(readings) <= 900
    timestamps = [
        json.loads(m.payload)["ts"] for m in readings if m.topic.startswith("csu/jlt-air")
    ]
    assert len(timestamps) == len(set(timestamps))  # never twice the same instant
    assert "Published" in capsys.readouterr().out


@pytest.mark.mqtt
def test_each_sensor_reports_every_interval_divided_by_the_speed(commune, broker, collector):
    make_sensor(commune, "jlt-air-01", Kind.AIR, expected_interval=60)
    make_sensor(commune, "jlt-opening-01", Kind.OPENING, expected_interval=600)

    call_command(
        "simulate", "--speed", "60", "--duration", "2.5", "--url", f"mqtt://127.0.0.1:{broker}"
    )
    messages = collector.wait_for(lambda got: False, timeout=0.5)

    topics = [m.topic for m in messages]
    assert 3 <= topics.count("csu/jlt-air-01/readings") <= 4  # at 0 s, then every second
    assert topics.count("csu/jlt-opening-01/readings") == 1  # then only after 10 s


@pytest.mark.mqtt
def test_the_sensor_failure_scenario_sends_offline_and_bad_payloads(commune, broker, collector):
    make_sensor(commune, "jlt-traffic-01", Kind.TRAFFIC)
    make_sensor(commune, "jlt-water-01", Kind.WATER)
    url = f"mqtt://127.0.0.1:{broker}"

    call_command(
        "simulate", "--once", "--scenario", "sensor-failure", "--scenario-delay", "0", "--url", url
    )
    messages = collector.wait_for(
        lambda got: (
            any(m.payload == b"offline" for m in got)
            and any(m.topic == "csu/jlt-water-01/readings" for m in got)
        )
    )

    topics = [(m.topic, m.payload) for m in messages]
    assert ("csu/jlt-traffic-01/status", b"offline") in topics
    assert not any(topic == "csu/jlt-traffic-01/readings" for topic, _ in topics)
    [(_, bad)] = [(t, p) for t, p in topics if t == "csu/jlt-water-01/readings"]
    assert json.loads(bad)["values"]["ph"] > 14
