"""The whole chain on the real stack: MQTT publish → ingest → PostgreSQL → Celery worker on
Redis evaluates the rule → the alert reaches an operator's websocket."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from alerts.models import Alert
from tests.alerting import make_rule
from tests.conftest import make_sensor
from tests.stack import publish, start_celery_worker, start_worker, stop, stop_worker
from tests.test_live import connect_as

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.mqtt,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("stack"),  # one stack's processes at a time (conftest.py)
]


@pytest.fixture
def celery_queue(monkeypatch):
    """A queue of this test's own, served by a real Celery worker process."""
    queue = f"csu-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CELERY_QUEUE", queue)
    worker = start_celery_worker(queue)
    yield queue
    stop(worker)


async def test_a_threshold_crossing_published_over_mqtt_reaches_the_operator_as_an_alert(
    client, broker, celery_queue, operator, commune
):
    assert settings.REDIS_URL
    sensor = await sync_to_async(make_sensor)(commune, "jlt-air-01")
    await sync_to_async(make_rule)(threshold=80)
    socket = await connect_as(client, "operateur")
    ingest = await sync_to_async(start_worker)(broker, "csu-ingest-full-path")
    try:
        payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "values": {"pm10": 95}})
        await sync_to_async(publish)(broker.port, [("csu/jlt-air-01/readings", payload)])
        seen = {}
        while not {"alert", "readings"} <= seen.keys():
            message = await socket.receive_json_from(timeout=20)
            seen.setdefault(message["type"], message)
    finally:
        await sync_to_async(stop_worker)(ingest)
        await socket.disconnect()
    message = seen["alert"]
    assert message["event"] == "opened"
    assert message["alert"]["sensor"] == "jlt-air-01"
    assert message["alert"]["last_value"] == 95
    alert = await sync_to_async(Alert.objects.get)(sensor=sensor)
    assert alert.state == "firing"
    [item] = seen["readings"]["items"]  # the reading itself was pushed too
    assert (item["sensor"], item["metric"], item["value"]) == ("jlt-air-01", "pm10", 95)
