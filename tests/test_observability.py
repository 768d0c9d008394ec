"""/metrics and /healthz: what operators' monitoring sees of ingest."""

import time

import pytest
import time_machine
from django.core.cache import cache

from sensors.health import STARTUP_GRACE_S
from sensors.ingest.stats import WORKERS_KEY, IngestStats
from tests.conftest import sign_in


@pytest.fixture(autouse=True)
def no_workers():
    cache.delete(WORKERS_KEY)
    yield
    cache.delete(WORKERS_KEY)


def published_worker(name="csu-ingest-1", *, lagging_for=0.0, connected=True, ever_connected=True):
    stats = IngestStats()
    stats.received(10)
    stats.batch(messages=10, stored=60, duplicates=2, seconds=0.03)
    stats.rejected_for("out_of_range")
    stats.connected = connected
    stats.ever_connected = ever_connected
    if lagging_for:
        stats.oldest_pending = time.time() - lagging_for
        stats.queue_depth = 42
    stats.publish(name, force=True)
    return stats


def test_metrics_require_a_staff_session_or_the_token(client, operator, settings, db):
    assert client.get("/metrics").status_code == 401
    sign_in(client, operator)
    assert client.get("/metrics").status_code == 401
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_metrics_show_every_live_workers_counters(admin_client):
    published_worker("csu-ingest-1")
    published_worker("csu-ingest-2")
    text = admin_client.get("/metrics").content.decode()
    assert 'csu_ingest_readings_stored_total{worker="csu-ingest-1"} 60.0' in text
    assert 'csu_ingest_readings_stored_total{worker="csu-ingest-2"} 60.0' in text
    assert 'csu_ingest_rejected_total{reason="out_of_range",worker="csu-ingest-1"} 1.0' in text
    assert 'csu_ingest_commit_seconds_bucket{le="0.05",worker="csu-ingest-1"} 1.0' in text


def test_healthz_summarises_ingest_and_flags_a_lagging_worker(admin_client):
    client = admin_client  # the details are for an admin or the metrics token
    published_worker("csu-ingest-1")
    body = client.get("/healthz").json()
    assert body["ingest"]["workers"] == 1
    assert body["checks"]["broker"] == "ok"
    published_worker("csu-ingest-2", lagging_for=120)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["ingest"] == "error: lagging"
    assert response.json()["ingest"]["queue_depth"] == 42


def test_healthz_says_the_broker_is_down_when_no_worker_is_connected(admin_client):
    client = admin_client
    published_worker("csu-ingest-1", connected=False)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error: no ingest worker connected"


def test_the_web_probe_checks_only_what_the_web_needs(admin_client, settings):
    client = admin_client
    settings.MQTT_URL = "mqtt://127.0.0.1:9"
    response = client.get("/healthz?service=web")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}


def test_healthz_says_starting_while_a_new_worker_connects_and_logs_no_error(admin_client, caplog):
    published_worker("csu-ingest-1", connected=False, ever_connected=False)  # started now
    with caplog.at_level("INFO", logger="django.request"):
        response = admin_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "starting"
    assert response.json()["checks"]["broker"] == "starting"
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_healthz_says_error_once_a_worker_was_connected_and_lost_the_broker(admin_client):
    published_worker("csu-ingest-1", connected=False, ever_connected=True)
    assert admin_client.get("/healthz").json()["status"] == "error"


def test_healthz_says_error_when_a_worker_never_connects_past_the_grace(admin_client):
    published_worker("csu-ingest-1", connected=False, ever_connected=False)
    with time_machine.travel(time.time() + STARTUP_GRACE_S + 1):
        assert admin_client.get("/healthz").json()["status"] == "error"
