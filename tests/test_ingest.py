"""MQTT ingestion: judging, batched writes, acknowledgement after commit, no loss."""

import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.db.models import Count
from paho.mqtt.enums import CallbackAPIVersion
from senml import SenMLDocument, SenMLMeasurement

from sensors.ingest.rates import DeviceRates
from sensors.ingest.worker import Inbound, IngestWorker, judge
from sensors.ingest.writer import write_batch
from sensors.models import LatestReading, Reading, RejectedMessage, Sensor
from sensors.signals import sensor_state_changed
from tests.brokers import Mosquitto, free_port, require_mosquitto
from tests.conftest import make_sensor
from tests.faults import CuttableProxy
from tests.stack import (
    publish,
    start_worker,
    station_messages,
    stop_worker,
    wait_until,
)

NOW = datetime.now(UTC)


def inbound(topic, payload, *, received_at=None):
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    return Inbound(1, 1, topic, payload, None, received_at or datetime.now(UTC), 0)


def ingest(*messages):
    judged = judge(list(messages))
    result = write_batch(
        judged.readings, judged.rejections, judged.seen, datetime.now(UTC), states=judged.states
    )
    return judged, result


# --- Judging and writing a batch ------------------------------------------------------


def test_readings_of_a_known_sensor_are_stored_with_its_latest_values(sensor):
    ts = NOW - timedelta(minutes=1)
    _, result = ingest(
        inbound(
            "csu/jlt-air-01/readings", {"ts": ts.isoformat(), "values": {"pm25": 12.5, "no2": 41}}
        )
    )
    assert len(result.stored) == 2
    assert sorted(Reading.objects.values_list("metric", "value")) == [("no2", 41.0), ("pm25", 12.5)]
    latest = dict(LatestReading.objects.values_list("metric", "value"))
    assert latest == {"pm25": 12.5, "no2": 41.0}
    sensor.refresh_from_db()
    assert sensor.state == Sensor.State.ONLINE
    assert sensor.last_seen is not None


def test_each_bad_message_is_recorded_with_its_reason_and_loses_nothing_else(commune, sensor):
    make_sensor(commune, "jlt-air-02", active=False)
    ingest(
        inbound("csu/unknown-sensor/readings", {"values": {"pm25": 1}}),
        inbound("csu/jlt-air-02/readings", {"values": {"pm25": 1}}),
        inbound("csu/jlt-air-01/readings", {"values": {"pm25": 5000, "no2": 40, "rain": 3}}),
        inbound("csu/jlt-air-01/readings", b"\xff not json"),
        inbound("csu/jlt-air-01/status", b"sleeping"),
    )
    reasons = sorted(RejectedMessage.objects.values_list("reason", "sensor_ref"))
    assert reasons == [
        ("inactive_sensor", "jlt-air-02"),
        ("malformed", "jlt-air-01"),
        ("malformed", "jlt-air-01"),
        ("out_of_range", "jlt-air-01"),
        ("unknown_metric", "jlt-air-01"),
        ("unknown_sensor", "unknown-sensor"),
    ]
    # The valid value of the half-bad message is kept.
    assert list(Reading.objects.values_list("metric", flat=True)) == ["no2"]
    rejected = RejectedMessage.objects.get(reason="out_of_range")
    assert rejected.metric == "pm25" and "5000" in rejected.detail
    assert "5000" in rejected.payload


def test_a_duplicate_reading_is_counted_and_changes_nothing(sensor):
    message = {"ts": (NOW - timedelta(minutes=2)).isoformat(), "values": {"pm25": 10}}
    ingest(inbound("csu/jlt-air-01/readings", message))
    again = dict(message, values={"pm25": 99})
    _, result = ingest(inbound("csu/jlt-air-01/readings", again))
    assert result.duplicates == 1 and result.stored == []
    assert list(Reading.objects.values_list("value", flat=True)) == [10.0]


def test_a_batch_mixing_a_redelivered_message_and_new_ones_stores_the_new_ones_only(sensor):
    # The batch's plain INSERT fails on the stored reading, is undone, and the new
    # readings are inserted alone: the redelivered value neither comes back nor becomes
    # the latest one.
    first = {"ts": (NOW - timedelta(minutes=3)).isoformat(), "values": {"pm25": 10, "no2": 30}}
    ingest(inbound("csu/jlt-air-01/readings", first))
    redelivered = dict(first, values={"pm25": 99, "no2": 30})
    newer = {"ts": (NOW - timedelta(minutes=4)).isoformat(), "values": {"pm25": 11}}
    newest = {"ts": (NOW - timedelta(minutes=1)).isoformat(), "values": {"no2": 31}}

    _, result = ingest(
        inbound("csu/jlt-air-01/readings", redelivered),
        inbound("csu/jlt-air-01/readings", newer),
        inbound("csu/jlt-air-01/readings", newest),
        inbound("csu/jlt-air-01/readings", newest),  # twice in the same batch
    )

    assert sorted((r.metric, r.value) for r in result.stored) == [("no2", 31.0), ("pm25", 11.0)]
    assert result.duplicates == 3
    assert sorted(Reading.objects.values_list("metric", "value")) == [
        ("no2", 30.0),
        ("no2", 31.0),
        ("pm25", 10.0),
        ("pm25", 11.0),
    ]
    assert dict(LatestReading.objects.values_list("metric", "value")) == {"pm25": 10, "no2": 31}


def test_a_batch_of_new_readings_gives_back_each_stored_reading(sensor):
    messages = [
        inbound(
            "csu/jlt-air-01/readings",
            {"ts": (NOW - timedelta(seconds=n)).isoformat(), "values": {"pm25": n, "no2": n}},
        )
        for n in range(1, 4)
    ]

    judged, result = ingest(*messages)

    assert result.duplicates == 0
    assert sorted(result.stored) == sorted(judged.readings)
    assert dict(LatestReading.objects.values_list("metric", "value")) == {"pm25": 1, "no2": 1}


@pytest.mark.django_db(transaction=True)  # the constraint is checked at a real commit
def test_a_batch_naming_a_sensor_deleted_since_it_was_judged_is_refused_whole(commune):
    # The readings table has no foreign key (checking it cost PostgreSQL a third of its
    # ingest share): the batch's latest values, whose table has one, refuse it at the
    # commit, and the worker judges the batch again (the sensor is then unknown).
    kept, gone = make_sensor(commune), make_sensor(commune, ref="jlt-air-02")
    ts = (NOW - timedelta(minutes=1)).isoformat()
    judged = judge(
        [
            inbound("csu/jlt-air-01/readings", {"ts": ts, "values": {"pm25": 12}}),
            inbound("csu/jlt-air-02/readings", {"ts": ts, "values": {"pm25": 13}}),
        ]
    )
    Sensor.objects.filter(pk=gone.pk).delete()

    with pytest.raises(IntegrityError):
        write_batch(judged.readings, judged.rejections, judged.seen, datetime.now(UTC))

    assert not Reading.objects.exists() and not LatestReading.objects.exists()
    kept.refresh_from_db()
    assert kept.last_seen is None


def test_a_late_reading_is_stored_but_does_not_replace_the_latest_value(sensor):
    ingest(inbound("csu/jlt-air-01/readings", {"ts": NOW.isoformat(), "values": {"pm25": 20}}))
    late = {"ts": (NOW - timedelta(hours=1)).isoformat(), "values": {"pm25": 5}}
    ingest(inbound("csu/jlt-air-01/readings", late))
    assert Reading.objects.count() == 2
    assert LatestReading.objects.get().value == 20


def test_a_timestamp_in_milliseconds_is_stored_at_that_instant(sensor):
    ms = int((NOW - timedelta(minutes=3)).timestamp() * 1000)
    ingest(inbound("csu/jlt-air-01/readings", {"ts": ms, "values": {"pm25": 1}}))
    assert Reading.objects.get().ts == datetime.fromtimestamp(ms / 1000, UTC)


def test_the_status_topic_sets_the_sensor_state_and_announces_the_change(sensor):
    changes = []

    def receiver(sender, sensor_id, state, **kwargs):
        changes.append((sensor_id, state))

    sensor_state_changed.connect(receiver)
    try:
        ingest(inbound("csu/jlt-air-01/status", b"offline"))
        sensor.refresh_from_db()
        assert sensor.state == Sensor.State.OFFLINE
        _, result = ingest(inbound("csu/jlt-air-01/readings", {"values": {"pm25": 3}}))
        sensor.refresh_from_db()
        assert sensor.state == Sensor.State.ONLINE
        assert result.state_changes == {sensor.pk: "online"}
    finally:
        sensor_state_changed.disconnect(receiver)


def test_a_senml_pack_is_stored(sensor):
    pack = [
        {"bn": "jlt-air-01:", "bt": int(NOW.timestamp()) - 60, "n": "pm25", "u": "ug/m3", "v": 8},
        {"n": "no2", "u": "µg/m³", "v": 30, "t": 1},
    ]
    _, result = ingest(inbound("csu/jlt-air-01/readings", pack))
    assert len(result.stored) == 2


# --- The worker against a real broker -------------------------------------------------


@pytest.mark.mqtt
def test_readings_published_over_mqtt_are_stored_by_the_worker(
    transactional_db, broker, commune, monkeypatch
):
    # Not the live layer's pushing thread (as in test_faults): it lives on after the test
    # with its database connection, and PostgreSQL then waited 5 s, in vain, to drop the
    # test database at the end of the run.
    monkeypatch.setattr("sensors.live.readings_coalescer.start", lambda: None)
    make_sensor(commune, "jlt-air-01")
    worker = IngestWorker(client_id="csu-ingest-test", url=broker.url_for("csu-ingest"))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # Connected once the broker granted the subscriptions (its SUBACK): a reading
        # published from then on reaches the worker.
        assert worker._connected.wait(10)
        publish(broker.port, station_messages("jlt-air-01", 200))
        assert wait_until(lambda: Reading.objects.count() == 1000, timeout=30)
        publish(broker.port, [("csu/ghost/readings", b'{"values": {"pm25": 1}}')])
        assert wait_until(lambda: RejectedMessage.objects.filter(reason="unknown_sensor").exists())
    finally:
        worker.stop()
        thread.join(15)
    counters = worker.stats.snapshot()["counters"]
    assert counters["received"] == 201
    assert counters["stored"] == 1000


@pytest.mark.mqtt
def test_a_message_after_a_quiet_spell_is_written_at_once_and_the_next_wait_for_their_batch(
    transactional_db, broker, commune, monkeypatch
):
    # Batches start batch_interval apart, from the start of the previous one: a message
    # with nothing written for that long is due at once, not at the next tick of a timer.
    monkeypatch.setattr("sensors.live.readings_coalescer.start", lambda: None)
    make_sensor(commune, "jlt-air-01")
    worker = IngestWorker(
        client_id="csu-ingest-cadence", url=broker.url_for("csu-ingest"), batch_interval=6
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker._connected.wait(10)
        time.sleep(1)  # somewhere in the 6 s an idle timer would be waiting out
        first, second = station_messages("jlt-air-01", 2)
        published = time.monotonic()
        publish(broker.port, [first])
        assert wait_until(lambda: Reading.objects.exists(), timeout=10)
        assert time.monotonic() - published < 2
        written = Reading.objects.count()
        publish(broker.port, [second])
        time.sleep(2)
        assert Reading.objects.count() == written  # within 6 s of the first batch: it waits
        assert wait_until(lambda: Reading.objects.count() == 2 * written, timeout=10)
        assert time.monotonic() - published >= 5.5
    finally:
        worker.stop()
        thread.join(15)


# --- Per-device rate limit -------------------------------------------------------------


def air_message(ref, ts, *, at=NOW, **values):
    """A message of ``ref`` measured at ``ts`` that reached the worker at ``at``."""
    return inbound(f"csu/{ref}/readings", {"ts": ts.isoformat(), "values": values}, received_at=at)


def test_a_device_past_its_burst_is_rate_limited_until_its_rate_refills_the_bucket(sensor):
    rates = DeviceRates(rate=10, burst=20)
    # Four messages of 5 readings empty the bucket of 20; the next ones, at once, wait.
    burst = [
        air_message("jlt-air-01", NOW - timedelta(seconds=n), pm25=n, no2=n, o3=n, so2=n, pm10=n)
        for n in range(6)
    ]
    # A second later, 10 readings are back in the bucket.
    later = air_message(
        "jlt-air-01", NOW - timedelta(seconds=10), at=NOW + timedelta(seconds=1), pm25=1
    )

    judged = judge([*burst, later], rates=rates)

    assert len(judged.readings) == 4 * 5 + 1
    [rejection] = judged.rejections
    assert (rejection.reason, rejection.sensor_ref) == ("rate_limited", "jlt-air-01")
    assert "2 messages" in rejection.detail
    assert judged.rejected == {"rate_limited": 2}


def test_a_device_over_its_rate_takes_nothing_from_another_devices_rate(commune, sensor):
    make_sensor(commune, "jlt-air-02")
    rates = DeviceRates(rate=1, burst=5)
    flood = [air_message("jlt-air-01", NOW - timedelta(seconds=n), pm25=n) for n in range(50)]
    calm = [air_message("jlt-air-02", NOW - timedelta(seconds=n), pm25=n) for n in range(5)]

    judged = judge([*flood, *calm], rates=rates)

    refs = dict(Sensor.objects.values_list("pk", "ref"))
    stored = [refs[sensor_id] for sensor_id, *_ in judged.readings]
    assert stored.count("jlt-air-01") == 5 and stored.count("jlt-air-02") == 5
    assert judged.rejected == {"rate_limited": 45}


def test_a_batch_judged_again_after_a_database_error_spends_the_rate_once(sensor):
    rates = DeviceRates(rate=1, burst=10)
    batch = [air_message("jlt-air-01", NOW - timedelta(seconds=n), pm25=n) for n in range(10)]

    first = judge(batch, rates=rates)  # then the write fails: the worker judges again
    again = judge(batch, rates=rates)
    again.rates.commit()  # written this time
    soon = NOW + timedelta(milliseconds=100)
    after = judge(
        [air_message("jlt-air-01", NOW - timedelta(seconds=30), at=soon, pm25=1)], rates=rates
    )

    assert len(first.readings) == len(again.readings) == 10
    assert after.rejected == {"rate_limited": 1}


@pytest.mark.mqtt
@pytest.mark.postgres
def test_a_device_over_its_rate_gets_rate_limited_rejections_and_nothing_else_is_lost(
    transactional_db, broker, commune, settings, monkeypatch, client
):
    monkeypatch.setattr("sensors.live.readings_coalescer.start", lambda: None)
    settings.INGEST_DEVICE_RATE, settings.INGEST_DEVICE_BURST = 100, 200
    settings.METRICS_TOKEN = "metrics-token"
    make_sensor(commune, "jlt-air-01")
    make_sensor(commune, "jlt-air-02")
    worker = IngestWorker(client_id="csu-ingest-rate", url=broker.url_for("csu-ingest"))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    flood = list(station_messages("jlt-air-01", 400))  # 2,000 readings at once
    calm_messages = list(station_messages("jlt-air-02", 20))  # 100 readings
    # The calm device's messages among the flood, as they would arrive.
    stream = [*flood[:200], *calm_messages, *flood[200:]]
    try:
        assert worker._connected.wait(10)
        publish(broker.port, stream)
        assert wait_until(
            lambda: worker.stats.snapshot()["counters"].get("messages_written") == len(stream),
            timeout=30,
        )
    finally:
        worker.stop()
        thread.join(15)

    stored = dict(
        Reading.objects.values_list("sensor__ref")
        .annotate(n=Count("*"))
        .values_list("sensor__ref", "n")
    )
    limited = worker.stats.snapshot()["rejected"]["rate_limited"]
    # Every calm reading is stored; every flood message is stored whole or rate_limited.
    assert stored["jlt-air-02"] == 100
    assert 200 <= stored["jlt-air-01"] < 2000
    assert stored["jlt-air-01"] + 5 * limited == 2000
    rows = RejectedMessage.objects.filter(reason="rate_limited")
    assert set(rows.values_list("sensor_ref", flat=True)) == {"jlt-air-01"}
    assert not RejectedMessage.objects.exclude(reason="rate_limited").exists()
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token", secure=True)
    expected = (
        f'csu_ingest_rejected_total{{reason="rate_limited",worker="csu-ingest-rate"}} {limited}.0'
    )
    assert expected in metrics.content.decode()


# --- Crashes, outages and scale-out (subprocess workers on PostgreSQL) -----------------

STACK = pytest.mark.xdist_group("stack")  # one stack's processes at a time (conftest.py)


@pytest.fixture
def station(transactional_db, commune):
    return make_sensor(commune, "jlt-air-01")


@pytest.mark.postgres
@pytest.mark.mqtt
@STACK
def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(broker, station):
    total = 3000  # messages of 5 readings: 15,000 readings
    worker = start_worker(broker, "csu-ingest-crash")
    publisher = threading.Thread(
        target=publish, args=(broker.port, station_messages("jlt-air-01", total))
    )
    publisher.start()
    assert wait_until(lambda: Reading.objects.count() > 500, timeout=30)
    worker.kill()  # SIGKILL: no flush, no goodbye
    worker.wait()
    stored_at_crash = Reading.objects.count()
    publisher.join(60)
    restarted = start_worker(broker, "csu-ingest-crash")
    try:
        assert wait_until(lambda: Reading.objects.count() >= total * 5, timeout=60)
        time.sleep(1)  # anything more would be a duplicate
    finally:
        stop_worker(restarted)
    assert stored_at_crash < total * 5
    assert Reading.objects.count() == total * 5
    assert Reading.objects.values("ts").distinct().count() == total


@pytest.mark.postgres
@pytest.mark.mqtt
@STACK
def test_a_database_outage_delays_readings_but_loses_none(broker, station):
    proxy = CuttableProxy(int(connection.settings_dict["PORT"] or 5432))
    worker = start_worker(broker, "csu-ingest-outage", db_port=proxy.port)
    try:
        publish(broker.port, station_messages("jlt-air-01", 500))
        assert wait_until(lambda: Reading.objects.count() == 2500, timeout=30)
        proxy.cut()
        later = datetime.now(UTC) - timedelta(minutes=5)
        publish(broker.port, station_messages("jlt-air-01", 500, start=later))
        time.sleep(3)
        assert Reading.objects.count() == 2500  # nothing could be written meanwhile
        proxy.restore()
        assert wait_until(lambda: Reading.objects.count() == 5000, timeout=60)
    finally:
        output = stop_worker(worker)
        proxy.close()
    assert "database unavailable" in output


@pytest.mark.postgres
@pytest.mark.mqtt
@STACK
def test_two_workers_on_a_shared_subscription_store_each_reading_once(broker, station):
    workers = [start_worker(broker, f"csu-ingest-shared-{n}", group="csu") for n in (1, 2)]
    try:
        publish(broker.port, station_messages("jlt-air-01", 2000))
        assert wait_until(lambda: Reading.objects.count() >= 10_000, timeout=60)
        time.sleep(1)
    finally:
        outputs = [stop_worker(worker) for worker in workers]
    assert Reading.objects.count() == 10_000
    for output in outputs:
        counters = output.strip().splitlines()[-1]
        assert "'received': 0" not in counters and "'received'" in counters, output


# --- SenML through the broker (a `manage.py ingest` process on PostgreSQL) -------------


def publish_one(port, topic, payload, *, retain=False):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, json.dumps(payload), qos=1, retain=retain).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.postgres
@pytest.mark.mqtt
@STACK
def test_a_senml_pack_in_kelvins_is_stored_in_celsius_and_its_bad_record_rejected(broker, station):
    worker = start_worker(broker, "csu-ingest-senml")
    try:
        bt = int(time.time()) - 60
        pack = SenMLDocument(
            [
                SenMLMeasurement(name="temperature", unit="K", value=294.65),
                SenMLMeasurement(name="pm25", unit="S/m", value=12),
            ],
            base=SenMLMeasurement(name="jlt-air-01/", time=bt),
        ).to_json()
        publish_one(broker.port, "csu/jlt-air-01/readings", pack)
        assert wait_until(lambda: RejectedMessage.objects.exists(), timeout=30)
    finally:
        stop_worker(worker)
    reading = Reading.objects.get()
    assert (reading.metric, reading.value, reading.ts.timestamp()) == ("temperature", 21.5, bt)
    rejection = RejectedMessage.objects.get()
    assert (rejection.reason, rejection.metric) == ("unit_mismatch", "pm25")
    assert "S/m" in rejection.detail and "µg/m³" in rejection.detail


@pytest.mark.postgres
@pytest.mark.mqtt
@STACK
def test_a_retained_reading_without_a_time_is_stored_once_not_on_each_reconnection(broker, station):
    topic = "csu/jlt-air-01/readings"
    worker = start_worker(broker, "csu-ingest-retained")
    try:
        publish_one(broker.port, topic, [{"n": "pm25", "v": 7}], retain=True)
        assert wait_until(lambda: Reading.objects.count() == 1, timeout=30)
    finally:
        stop_worker(worker)
    for delivered in (1, 2):  # each new subscription gets the retained message again
        worker = start_worker(broker, "csu-ingest-retained")
        try:
            assert wait_until(lambda n=delivered: RejectedMessage.objects.count() == n, timeout=30)
        finally:
            stop_worker(worker)
    assert Reading.objects.count() == 1
    reasons = set(RejectedMessage.objects.values_list("reason", "metric"))
    assert reasons == {("bad_timestamp", "pm25")}
    assert "retained" in RejectedMessage.objects.first().detail


# --- Device credentials ---------------------------------------------------------------


def connack(port, username, password, client_id="probe"):
    """Connect to the broker's ``port`` and return the CONNACK's reason code."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(username, password)
    codes = []
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert wait_until(lambda: codes, timeout=5), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


@pytest.fixture
def generated_broker(transactional_db, tmp_path, commune, settings):
    """A Mosquitto with our config and the files `manage.py mosquitto_auth` writes for a
    device (jlt-air-01), another sensor without a password, ingest and the simulator."""
    require_mosquitto()
    own = make_sensor(commune, "jlt-air-01")
    own.set_mqtt_password("device-password-1")
    own.save()
    make_sensor(commune, "jlt-air-02")
    settings.MQTT_INGEST_PASSWORD = "ingest-password-1"
    settings.MQTT_SIMULATOR_PASSWORD = "simulator-password-1"
    call_command("mosquitto_auth", "--output", str(tmp_path), stdout=io.StringIO())
    broker = Mosquitto(tmp_path, free_port(), auth=True).start()
    yield broker
    broker.stop()


@pytest.mark.mqtt
def test_the_generated_acl_lets_a_device_publish_only_its_own_topics(generated_broker):
    broker = generated_broker
    received = []
    reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reader")
    reader.username_pw_set("csu-ingest", "ingest-password-1")
    reader.on_message = lambda c, u, m: received.append(m.topic)
    reader.connect("127.0.0.1", broker.port)
    reader.subscribe("csu/#", qos=1)
    reader.loop_start()
    try:
        time.sleep(0.5)
        publish(
            broker.device_port,
            [("csu/jlt-air-01/readings", b"mine"), ("csu/jlt-air-02/readings", b"not mine")],
            username="jlt-air-01",
            password="device-password-1",
        )
        assert wait_until(lambda: "csu/jlt-air-01/readings" in received, timeout=5)
        time.sleep(0.5)
        assert "csu/jlt-air-02/readings" not in received
    finally:
        reader.loop_stop()
    assert connack(broker.device_port, "jlt-air-01", "wrong-password").is_failure


@pytest.mark.mqtt
def test_the_generated_files_let_only_ingest_on_the_services_listener(generated_broker):
    broker = generated_broker

    device = connack(broker.port, "jlt-air-01", "device-password-1")
    simulator = connack(broker.port, "csu-simulator", "simulator-password-1")
    ingest = connack(broker.port, "csu-ingest", "ingest-password-1")

    assert device.is_failure and simulator.is_failure
    assert not ingest.is_failure
    # Where their client id is their username, the device and the simulator log in.
    assert not connack(broker.device_port, "jlt-air-01", "device-password-1").is_failure
    assert not connack(broker.device_port, "csu-simulator", "simulator-password-1").is_failure


def test_a_sensor_whose_ref_has_the_services_prefix_gets_no_broker_login(
    tmp_path, commune, settings
):
    # Created around the model's validation (a script, a raw import): its ref would be
    # its client id on the devices' listeners, that of an ingest worker.
    rogue = make_sensor(commune, "csu-ingest-csu-ingest-1")
    rogue.set_mqtt_password("rogue-password")
    rogue.save()
    settings.MQTT_INGEST_PASSWORD = "ingest-password-1"

    call_command("mosquitto_auth", "--output", str(tmp_path), stdout=io.StringIO())

    users = {
        name: [line.split(":")[0] for line in (tmp_path / name).read_text().splitlines()]
        for name in ("passwords", "services")
    }
    assert users == {"passwords": ["csu-ingest"], "services": ["csu-ingest"]}


@pytest.mark.mqtt
def test_with_the_generated_files_ingest_stores_what_the_simulator_and_a_device_publish(
    generated_broker, monkeypatch
):
    monkeypatch.setattr("sensors.live.readings_coalescer.start", lambda: None)
    broker = generated_broker
    Sensor.objects.filter(ref="jlt-air-02").update(active=False)  # the simulator skips it
    worker = IngestWorker(
        client_id="csu-ingest-csu-ingest-1",
        url=broker.url_for("csu-ingest", "ingest-password-1"),
        group="csu-ingest",
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker._connected.wait(10)
        simulator = f"mqtt://csu-simulator:simulator-password-1@127.0.0.1:{broker.device_port}"
        call_command("simulate", "--once", "--seed", "1", "--url", simulator, stdout=io.StringIO())
        ts = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        publish(
            broker.device_port,
            [("csu/jlt-air-01/readings", json.dumps({"ts": ts, "values": {"pm25": 4.5}}))],
            username="jlt-air-01",
            password="device-password-1",
        )
        # The simulator's seven values of the air station, and the device's own.
        assert wait_until(lambda: Reading.objects.count() == 8, timeout=15)
    finally:
        worker.stop()
        thread.join(15)
    assert not RejectedMessage.objects.exists()


@pytest.mark.postgres
def test_workers_of_a_group_take_numbered_slots_and_reuse_a_freed_one(transactional_db):
    from sensors.ingest.slots import claim_client_id

    first, holder_1 = claim_client_id("csu-ingest-test")
    second, holder_2 = claim_client_id("csu-ingest-test")
    assert (first, second) == ("csu-ingest-test-1", "csu-ingest-test-2")
    holder_1.close()  # the first worker dies: its lock goes with its connection
    again, holder_3 = claim_client_id("csu-ingest-test")
    assert again == "csu-ingest-test-1"
    holder_2.close()
    holder_3.close()


def test_a_sensor_silent_for_three_intervals_is_marked_offline_and_announced(commune):
    from sensors.tasks import mark_silent_sensors_offline

    now = datetime.now(UTC)
    silent = make_sensor(
        commune,
        "jlt-air-01",
        expected_interval=60,
        state="online",
        last_seen=now - timedelta(seconds=200),
    )
    chatty = make_sensor(
        commune,
        "jlt-air-02",
        expected_interval=60,
        state="online",
        last_seen=now - timedelta(seconds=100),
    )
    changes = []

    def receiver(sender, sensor_id, state, **kwargs):
        changes.append((sensor_id, state))

    sensor_state_changed.connect(receiver)
    try:
        assert mark_silent_sensors_offline() == 1
    finally:
        sensor_state_changed.disconnect(receiver)
    silent.refresh_from_db()
    chatty.refresh_from_db()
    assert (silent.state, chatty.state) == ("offline", "online")
    assert changes == [(silent.pk, "offline")]


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--batch-interval", "0", "invalid float value: '0'"),
        ("--batch-interval", "-1", "invalid float value: '-1'"),
        ("--batch-size", "0", "invalid int value: '0'"),
        ("--batch-interval", "soon", "invalid float value: 'soon'"),
    ],
)
def test_the_ingest_command_refuses_a_batch_option_that_is_not_above_zero(option, value, said):
    # A zero interval or size would write empty batches in a loop, never waiting.
    with pytest.raises(CommandError, match=said):
        call_command("ingest", option, value)
