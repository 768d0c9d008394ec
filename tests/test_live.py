"""The live layer: what ingest pushes reaches the operators who may see it, coalesced."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from csu.asgi import application
from sensors.live import ReadingsCoalescer
from sensors.signals import StoredReading
from tests.conftest import make_sensor, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def connect_as(client, username):
    """A websocket logged in like a browser: the session cookie of ``username``."""
    user = await sync_to_async(get_user_model().objects.get)(username=username)
    await sync_to_async(sign_in)(client, user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_readings_reach_the_operators_of_their_commune_only(
    client, operator, other_operator, commune, other_commune
):
    mine = await sync_to_async(make_sensor)(commune, "jlt-air-01")
    await sync_to_async(make_sensor)(other_commune, "bal-air-01")
    joue = await connect_as(client, "operateur")
    ballan = await connect_as(client, "operateur-ballan")
    coalescer = ReadingsCoalescer()
    coalescer.add([StoredReading(mine.pk, "pm25", T0, 12.0)])
    await sync_to_async(coalescer.flush)()

    event = await joue.receive_json_from(timeout=2)
    assert event == {
        "type": "readings",
        "items": [{"sensor": "jlt-air-01", "metric": "pm25", "ts": T0.isoformat(), "value": 12.0}],
    }
    assert await ballan.receive_nothing(timeout=0.3)
    await joue.disconnect()
    await ballan.disconnect()


async def test_a_director_receives_no_readings(client, director, commune):
    sensor = await sync_to_async(make_sensor)(commune, "jlt-air-01")
    socket = await connect_as(client, "directeur")
    coalescer = ReadingsCoalescer()
    coalescer.add([StoredReading(sensor.pk, "pm25", T0, 12.0)])
    await sync_to_async(coalescer.flush)()
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


def test_readings_are_coalesced_to_the_last_value_per_sensor_and_metric(commune, monkeypatch):
    sensor = make_sensor(commune, "jlt-air-01")
    sent = []
    monkeypatch.setattr("core.live.send", lambda group, payload, **_: sent.append((group, payload)))
    coalescer = ReadingsCoalescer()
    coalescer.add(
        [
            StoredReading(sensor.pk, "pm25", T0, 1.0),
            StoredReading(sensor.pk, "pm25", T0 + timedelta(seconds=2), 3.0),
            StoredReading(sensor.pk, "pm25", T0 + timedelta(seconds=1), 2.0),  # late
            StoredReading(sensor.pk, "no2", T0, 40.0),
        ]
    )
    assert coalescer.flush() == 2
    assert coalescer.flush() == 0  # nothing new: nothing sent
    [(group, payload)] = sent
    assert group == f"commune-{commune.pk}"
    values = {item["metric"]: item["value"] for item in payload["items"]}
    assert values == {"pm25": 3.0, "no2": 40.0}


def test_a_push_outage_is_logged_once_and_its_end_once(monkeypatch, caplog):
    coalescer = ReadingsCoalescer()
    outcomes = iter([ConnectionError("Redis away")] * 3 + [0, 0])

    def flush():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(coalescer, "flush", flush)

    with caplog.at_level(logging.INFO, logger="sensors.live"):
        for _ in range(5):
            coalescer.tick()

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "live readings push failed; retrying every 1 s, quietly"),
        ("WARNING", "live readings pushes resumed"),
    ]


async def test_an_incident_reaches_the_operators_of_its_commune_only(
    client, operator, other_operator, director, commune, other_commune
):
    from alerts.models import Incident
    from sensors.models import Zone
    from tests.test_incidents import flood, flood_rules, gauges

    zone = await sync_to_async(Zone.objects.create)(
        commune=commune, name="Zone inondable du Cher", type="flood"
    )
    await sync_to_async(flood_rules)(zone)
    five = await sync_to_async(gauges)(commune, zone)
    joue = await connect_as(client, "operateur")
    ballan = await connect_as(client, "operateur-ballan")
    school_director = await connect_as(client, "directeur")
    await sync_to_async(flood)(five)

    incidents = []
    while not await joue.receive_nothing(timeout=2):
        message = await joue.receive_json_from()
        if message["type"] == "incident":
            incidents.append(message)
    assert incidents[0]["event"] == "opened"
    assert incidents[0]["incident"]["alert_count"] == 1
    last = incidents[-1]["incident"]
    incident = await sync_to_async(Incident.objects.get)()
    assert (last["id"], last["alert_count"], last["version"]) == (
        incident.pk,
        15,
        incident.version,
    )
    assert last["commune"]["insee_code"] == "37122"
    assert last["severity"] == "critical"
    assert await ballan.receive_nothing(timeout=0.3)
    assert await school_director.receive_nothing(timeout=0.3)
    for socket in (joue, ballan, school_director):
        await socket.disconnect()
