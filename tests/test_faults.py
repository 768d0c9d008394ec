"""Faults between ingest and the alerts: Redis away, a worker dying, a process killed.

bench/faults.py strikes the faults at the whole stack under load; these tests pin down
each behaviour it relies on, with an ingest worker fed by hand. One runs the real
processes against a private Redis that it stops (the machine's shared Redis is never
touched).
"""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery.app.task import Task
from kombu.exceptions import OperationalError

from alerts.models import Alert, PendingEvaluation
from sensors.ingest.worker import Inbound, IngestWorker
from sensors.models import Reading
from tests.alerting import make_rule
from tests.conftest import IN_CI, make_sensor
from tests.services import PrivateRedis, redis_available
from tests.stack import (
    celery_ready,
    publish,
    start_celery_worker,
    start_worker,
    station_messages,
    stop,
    stop_worker,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


class RedisAway:
    """Celery cannot reach its broker and the cache raises, as with Redis stopped."""

    def __init__(self):
        import redis

        self.monkeypatch = monkeypatch = pytest.MonkeyPatch()
        self.attempts = 0

        def refuse(*args, **kwargs):
            self.attempts += 1
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        def refuse_cache(*args, **kwargs):
            raise redis.exceptions.ConnectionError("Connection refused.")

        monkeypatch.setattr(Task, "apply_async", refuse)
        monkeypatch.setattr("django.core.cache.cache.set", refuse_cache)
        monkeypatch.setattr("django.core.cache.cache.get", refuse_cache)

    def back(self):
        """Redis is back, and long enough for its clients to try it again."""
        from core import outbox

        self.monkeypatch.undo()
        outbox.resume()


@pytest.fixture
def redis_away():
    away = RedisAway()
    yield away
    away.back()


@pytest.fixture
def worker(monkeypatch):
    """An ingest worker fed by hand (no broker): the batch path of the real one."""
    # Not the live layer's pushing thread: its database connection would outlive the test.
    monkeypatch.setattr("sensors.live.readings_coalescer.start", lambda: None)
    return IngestWorker(client_id="csu-ingest-faults")


def feed(worker, ref, values, ts):
    payload = json.dumps({"ts": ts.isoformat(), "values": values}).encode()
    worker._queue.append(Inbound(0, 0, f"csu/{ref}/readings", payload, None, ts, 0))
    return worker.flush()


@pytest.fixture
def station(commune):
    make_rule(threshold=80, auto_resolve=False)  # a spike's alert stays open
    return make_sensor(commune, "jlt-air-01")


def test_the_ingest_worker_keeps_storing_while_redis_is_away(redis_away, worker, station):
    now = datetime.now(UTC)
    assert feed(worker, "jlt-air-01", {"pm10": 20, "no2": 30}, now) == 1
    assert Reading.objects.count() == 2


def test_a_crossing_stored_while_redis_is_away_opens_its_alert_once_redis_is_back(
    redis_away, worker, station
):
    now = datetime.now(UTC)
    feed(worker, "jlt-air-01", {"pm10": 95}, now - timedelta(seconds=2))
    assert not Alert.objects.exists()  # nothing can evaluate it yet
    redis_away.back()  # the next batch's request goes through
    feed(worker, "jlt-air-01", {"pm10": 20}, now - timedelta(seconds=1))
    alert = Alert.objects.get()
    assert (alert.first_value, alert.state) == (95, "firing")


def test_while_redis_is_away_ingest_does_not_wait_for_it_at_every_batch(
    redis_away, worker, station
):
    now = datetime.now(UTC)
    for n in range(5):
        feed(worker, "jlt-air-01", {"pm10": 20}, now - timedelta(seconds=10 - n))
    # Each attempt costs ingest over half a second of Celery's retries: one is enough
    # to know; the batches' evaluations wait in the database meanwhile.
    assert redis_away.attempts == 1
    assert PendingEvaluation.objects.count() == 5


def test_an_evaluation_cut_short_by_a_dying_worker_is_done_again(worker, station):
    def dies(states):
        raise SystemExit("killed mid-evaluation")  # its transaction never commits

    now = datetime.now(UTC)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr("alerts.evaluation.save_states", dies)
        feed(worker, "jlt-air-01", {"pm10": 95}, now - timedelta(seconds=2))
    assert not Alert.objects.exists()
    feed(worker, "jlt-air-01", {"pm10": 20}, now - timedelta(seconds=1))  # a new worker
    assert Alert.objects.get().first_value == 95


def test_a_batch_whose_ingest_died_before_asking_for_its_evaluation_is_evaluated_by_beat(
    worker, station
):
    from alerts.tasks import check_alerts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Task, "apply_async", lambda *args, **kwargs: None)  # never sent
        feed(worker, "jlt-air-01", {"pm10": 95}, datetime.now(UTC))
    assert not Alert.objects.exists()
    check_alerts()  # the periodic task
    assert Alert.objects.get().first_value == 95


# --- The real processes, Redis stopped and started again ---------------------------------


def celery_idle(redis_server, queue: str) -> bool:
    """No evaluation pending, and no task of ``queue`` waiting or unacknowledged.

    Seen twice, half a second apart: kombu pops a message before it records it as
    unacknowledged, and between the two it is in neither of the keys read here.
    """
    import redis

    def idle() -> bool:
        return (
            not PendingEvaluation.objects.exists()
            and client.llen(queue) == 0
            and client.hlen("unacked") == 0  # kombu's hash of delivered, unacked messages
        )

    client = redis.Redis(port=redis_server.port)
    try:
        if not idle():
            return False
        time.sleep(0.5)
        return idle()
    finally:
        client.close()


def pm10(ts, value):
    return "csu/jlt-air-01/readings", json.dumps({"ts": ts.isoformat(), "values": {"pm10": value}})


@pytest.mark.postgres
@pytest.mark.mqtt
@pytest.mark.xdist_group("stack")  # one stack's processes at a time (conftest.py)
def test_ingest_stores_through_a_redis_outage_and_the_alerts_catch_up_when_it_returns(
    broker, station, monkeypatch
):
    missing = redis_available()
    if missing and IN_CI:
        pytest.fail(f"{missing} (CI=true: a missing service fails the run)")
    if missing:
        pytest.skip(missing)
    queue = f"csu-test-{uuid.uuid4().hex[:8]}"
    with PrivateRedis() as redis_server:
        monkeypatch.setenv("REDIS_URL", redis_server.url())
        monkeypatch.setenv("CELERY_QUEUE", queue)
        celery = start_celery_worker(queue)
        assert celery_ready(celery), "".join(celery.output)
        ingest = start_worker(broker, "csu-ingest-redis-outage")
        start = datetime.now(UTC) - timedelta(minutes=5)
        try:
            publish(broker.port, station_messages("jlt-air-01", 100, start=start, metrics=["pm10"]))
            assert wait_until(lambda: Reading.objects.count() == 100, timeout=30)
            # Redis goes away once Celery holds no task: a worker holding unacknowledged
            # ones when its connection drops exits (kombu cannot restore them then), and
            # on a busy machine the evaluations of these readings were still running.
            assert wait_until(lambda: celery_idle(redis_server, queue), timeout=30)
            redis_server.stop()
            later = start + timedelta(minutes=2)
            publish(
                broker.port,
                [
                    pm10(start + timedelta(minutes=1), 95),
                    *station_messages("jlt-air-01", 100, start=later, metrics=["pm10"]),
                ],
            )
            assert wait_until(lambda: Reading.objects.count() == 201, timeout=30)
            assert ingest.poll() is None, "".join(ingest.output)
            time.sleep(1)
            assert not Alert.objects.exists()  # no worker can hear of the spike yet
            redis_server.start()
            # The station goes on reporting, calm; ingest tries Redis again within
            # outbox.PAUSE_S and the spike waiting in the database is evaluated.
            for second in range(60):
                publish(broker.port, [pm10(start + timedelta(minutes=3, seconds=second), 20)])
                if wait_until(Alert.objects.exists, timeout=1):
                    break
            assert Alert.objects.exists(), "".join(ingest.output + celery.output)
        finally:
            stop_worker(ingest)
            stop(celery)
    alert = Alert.objects.get()
    assert (alert.first_value, alert.state) == (95, "firing")


def test_the_catch_up_from_latest_values_comes_after_the_batches_still_waiting(station):
    from alerts.tasks import evaluate_latest
    from sensors.models import LatestReading

    now = datetime.now(UTC)
    spike = now - timedelta(minutes=1)
    PendingEvaluation.objects.create(items=[[station.pk, "pm10", spike.timestamp(), 95]])
    LatestReading.objects.create(sensor=station, metric="pm10", ts=now, value=20)
    evaluate_latest()
    # Evaluated first, the latest value would have made the spike look late.
    assert Alert.objects.get().first_value == 95
    assert not PendingEvaluation.objects.exists()


def test_a_sensor_going_offline_while_redis_is_away_still_opens_its_offline_alert(
    redis_away, worker, commune
):
    make_rule(name="Capteur hors ligne", kind="offline", metric="", threshold=None, sensor_kind="")
    sensor = make_sensor(commune, "jlt-air-01", state="online")
    now = datetime.now(UTC)
    worker._queue.append(Inbound(0, 0, "csu/jlt-air-01/status", b"offline", None, now, 0))
    worker.flush()
    alert = Alert.objects.get(sensor=sensor)
    assert (alert.rule.kind, alert.state) == ("offline", "firing")
