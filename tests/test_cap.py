"""CAP 1.2 documents of alerts, checked against the OASIS schema, and the Atom feed."""

import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import xmlschema
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from alerts import feeds, triggers
from alerts.cap import alert_cap, cap_identifier
from alerts.feeds import alert_cap_view
from alerts.models import Alert, EventKind, Rule
from core import feeds as core_feeds
from core.cap import CAP_NS, CAP_SCHEMA, cap_sender
from core.feeds import FeedItem, FeedPart, cap_feed_view
from sensors.metrics import Kind
from sensors.models import Zone
from tests.conftest import api_token, make_sensor, sign_in

# The views have no URLs of their own yet: these stand for the project's /api/v1/.
api_patterns = [
    path("alerts/<int:pk>/cap/", alert_cap_view),
    path("cap/feed/", cap_feed_view),
]
urlpatterns = [path("api/v1/", include(api_patterns))]
pytestmark = pytest.mark.urls("tests.test_cap")

FEED = "/api/v1/cap/feed/"
ATOM = "{http://www.w3.org/2005/Atom}"
NS = {"cap": CAP_NS}
# 08:00:00.123456 in Paris, winter time.
T0 = datetime(2026, 11, 23, 7, 0, 0, 123456, tzinfo=UTC)
SQUARE = [[0.65, 47.34], [0.67, 47.34], [0.67, 47.36], [0.65, 47.36]]  # lon, lat; open


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(CAP_SCHEMA)


@pytest.fixture
def api():
    return APIClient()


def make_rule(**fields):
    fields = {
        "name": "PM10 au-dessus de 80 µg/m³",
        "kind": "threshold",
        "metric": "pm10",
        "condition": "above",
        "threshold": 80,
        "sensor_kind": "air",
        "severity": "warning",
        **fields,
    }
    scenario = fields.pop("ppms_scenario", "")
    rule = Rule.objects.create(**fields)
    triggers.set_for(rule, scenario)
    return rule


def make_alert(sensor, rule=None, **fields):
    rule = rule or make_rule()
    fields = {
        "metric": rule.metric,
        "severity": rule.severity,
        "title": f"{rule.name} — {sensor.name}",
        "opened_at": T0,
        "first_value": 85.0,
        "last_value": 92.5,
        "last_value_at": T0 + timedelta(minutes=10),
        "peak_value": 95.0,
        **fields,
    }
    alert = Alert.objects.create(rule=rule, sensor=sensor, **fields)
    alert.record(EventKind.OPENED, at=alert.opened_at, value=alert.first_value)
    return alert


def valid_cap(schema, alert) -> ET.Element:
    """Build the alert's CAP document, check it against the XSD and parse it."""
    document = alert_cap(alert)
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    schema.validate(io.BytesIO(document))
    return ET.fromstring(document)


def cap(root: ET.Element, path: str) -> str | None:
    return root.findtext(path, namespaces=NS)


def caps(root: ET.Element, path: str) -> list[str]:
    return [element.text for element in root.findall(path, namespaces=NS)]


def entries(response) -> list[ET.Element]:
    return ET.fromstring(response.content).findall(f"{ATOM}entry")


# --- The document -----------------------------------------------------------------------


def test_a_firing_alert_is_a_valid_cap_alert_message(schema, sensor):
    alert = make_alert(sensor)

    root = valid_cap(schema, alert)

    assert root.tag == f"{{{CAP_NS}}}alert"
    assert cap(root, "cap:identifier") == cap_identifier(alert)
    assert cap(root, "cap:sender") == cap_sender()
    assert cap(root, "cap:status") == "Actual"
    assert cap(root, "cap:msgType") == "Alert"
    assert cap(root, "cap:scope") == "Public"
    assert cap(root, "cap:references") is None
    assert cap(root, "cap:info/cap:language") == "fr-FR"
    assert caps(root, "cap:info/cap:category") == ["Env"]
    assert cap(root, "cap:info/cap:event") == "PM10 au-dessus de 80 µg/m³"
    assert cap(root, "cap:info/cap:responseType") == "Monitor"
    assert cap(root, "cap:info/cap:urgency") == "Immediate"
    assert cap(root, "cap:info/cap:severity") == "Moderate"
    assert cap(root, "cap:info/cap:certainty") == "Observed"
    assert cap(root, "cap:info/cap:headline") == alert.title
    assert cap(root, "cap:info/cap:instruction") is None
    assert cap(root, "cap:info/cap:web") == f"http://localhost:8000/alerts/{alert.pk}/"
    description = cap(root, "cap:info/cap:description")
    assert "jlt-air-01" in description
    assert "PM10 : 93\xa0µg/m³" in description  # to the digits shown of PM10: none
    assert "valeur extrême 95\xa0µg/m³" in description
    parameters = dict(
        zip(
            caps(root, "cap:info/cap:parameter/cap:valueName"),
            caps(root, "cap:info/cap:parameter/cap:value"),
            strict=True,
        )
    )
    assert parameters == {
        "sensor": "jlt-air-01",
        "state": "firing",
        "metric": "pm10",
        "unit": "µg/m³",
        "lastValue": "92.5",
        "peakValue": "95",
    }


def test_an_acknowledged_alert_is_an_update_that_references_the_first_message(
    schema, sensor, operator
):
    alert = make_alert(sensor)
    first = valid_cap(schema, alert)

    alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
    root = valid_cap(schema, alert)

    assert cap(root, "cap:msgType") == "Update"
    assert cap(root, "cap:identifier") != cap(first, "cap:identifier")
    assert cap(root, "cap:references") == ",".join(
        [cap(first, "cap:sender"), cap(first, "cap:identifier"), cap(first, "cap:sent")]
    )
    assert cap(root, "cap:sent") == "2026-11-23T08:20:00+01:00"
    assert cap(root, "cap:info/cap:urgency") == "Immediate"
    assert cap(root, "cap:info/cap:responseType") == "Monitor"


def test_a_resolved_alert_is_an_update_saying_all_clear(schema, sensor, operator):
    alert = make_alert(sensor)
    first = valid_cap(schema, alert)
    alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))

    alert.resolve(by=operator, now=T0 + timedelta(hours=1))
    root = valid_cap(schema, alert)

    assert cap(root, "cap:msgType") == "Update"
    assert cap(root, "cap:references") == (
        f"{cap_sender()},{cap(first, 'cap:identifier')},2026-11-23T08:00:00+01:00"
    )
    assert cap(root, "cap:identifier").endswith(f":alert:{alert.pk}:3")
    assert cap(root, "cap:sent") == "2026-11-23T09:00:00+01:00"
    assert cap(root, "cap:info/cap:responseType") == "AllClear"
    assert cap(root, "cap:info/cap:urgency") == "Past"
    assert cap(root, "cap:info/cap:instruction") == "Fin de l'alerte."
    assert "Résolue le 23/11/2026 à 09:00 (heure de Paris)." in cap(
        root, "cap:info/cap:description"
    )


def test_the_identifier_is_stable_until_the_next_change(sensor, operator):
    alert = make_alert(sensor)
    opened = cap_identifier(alert)

    alert.comment(by=operator, text="Vu, équipe prévenue.")
    after_comment = cap_identifier(Alert.objects.get(pk=alert.pk))
    alert.acknowledge(by=operator, now=T0 + timedelta(minutes=5))

    assert opened == after_comment == f"urn:csu:localhost:alert:{alert.pk}:1"
    assert cap_identifier(alert) == f"urn:csu:localhost:alert:{alert.pk}:2"


def test_a_row_without_timeline_is_read_from_its_fields(schema, sensor):
    alert = Alert.objects.create(
        rule=make_rule(),
        sensor=sensor,
        metric="pm10",
        severity="warning",
        title="Importée",
        opened_at=T0,
        state="resolved",
        acknowledged_at=T0 + timedelta(minutes=5),
        resolved_at=T0 + timedelta(minutes=30),
    )

    root = valid_cap(schema, alert)

    assert cap(root, "cap:msgType") == "Update"
    assert cap(root, "cap:sent") == "2026-11-23T08:30:00+01:00"
    assert cap(root, "cap:info/cap:responseType") == "AllClear"
    assert "lastValue" not in caps(root, "cap:info/cap:parameter/cap:valueName")


@pytest.mark.parametrize(
    "opened_at, sent",
    [
        (T0, "2026-11-23T08:00:00+01:00"),
        (datetime(2026, 7, 1, 6, 30, 59, 999999, tzinfo=UTC), "2026-07-01T08:30:59+02:00"),
    ],
)
def test_sent_is_local_time_with_its_offset_and_whole_seconds(schema, sensor, opened_at, sent):
    root = valid_cap(schema, make_alert(sensor, opened_at=opened_at))

    assert cap(root, "cap:sent") == sent
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", sent)


@pytest.mark.parametrize(
    "severity, expected", [("info", "Minor"), ("warning", "Moderate"), ("critical", "Severe")]
)
def test_the_severity_maps_to_cap(schema, sensor, severity, expected):
    alert = make_alert(sensor, make_rule(severity=severity))

    assert cap(valid_cap(schema, alert), "cap:info/cap:severity") == expected


@pytest.mark.parametrize(
    "scenario, response, instruction",
    [
        ("shelter", "Shelter", "Se mettre à l'abri"),
        ("confinement", "Shelter", "Se confiner"),
        ("evacuation", "Evacuate", "Évacuer"),
        ("intrusion", "Avoid", "S'échapper ou s'enfermer et se cacher"),
    ],
)
def test_a_critical_alert_that_triggers_the_ppms_is_extreme_with_instructions(
    schema, sensor, scenario, response, instruction
):
    alert = make_alert(sensor, make_rule(severity="critical", ppms_scenario=scenario))

    root = valid_cap(schema, alert)

    assert cap(root, "cap:info/cap:severity") == "Extreme"
    assert cap(root, "cap:info/cap:responseType") == response
    assert cap(root, "cap:info/cap:instruction").startswith(instruction)
    assert caps(root, "cap:info/cap:category") == ["Env", "Safety"]


def test_a_warning_that_triggers_the_ppms_keeps_its_severity(schema, sensor):
    alert = make_alert(sensor, make_rule(severity="warning", ppms_scenario="confinement"))

    assert cap(valid_cap(schema, alert), "cap:info/cap:severity") == "Moderate"


def test_the_end_of_a_ppms_alert_leaves_the_end_of_the_ppms_to_the_authorities(
    schema, sensor, operator
):
    alert = make_alert(sensor, make_rule(severity="critical", ppms_scenario="shelter"))
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))

    root = valid_cap(schema, alert)

    assert cap(root, "cap:info/cap:responseType") == "AllClear"
    assert "autorités" in cap(root, "cap:info/cap:instruction")


@pytest.mark.parametrize(
    "kind, metric, category",
    [
        (Kind.AIR, "no2", "Env"),
        (Kind.WATER, "level", "Met"),
        (Kind.WATER, "chlorine", "Health"),
        (Kind.WATERING, "flow", "Infra"),
        (Kind.TRAFFIC, "occupancy", "Transport"),
        (Kind.OPENING, "open", "Security"),
        (Kind.AIR, "battery", "Infra"),
    ],
)
def test_the_category_follows_the_sensor_kind_and_metric(schema, commune, kind, metric, category):
    sensor = make_sensor(commune, ref=f"jlt-{kind}-01", kind=kind)
    rule = make_rule(metric=metric, sensor_kind=kind, threshold=1)

    root = valid_cap(schema, make_alert(sensor, rule))

    assert caps(root, "cap:info/cap:category") == [category]


def test_an_offline_alert_is_about_infrastructure(schema, sensor):
    rule = make_rule(kind="offline", metric="", threshold=None)
    alert = make_alert(sensor, rule, first_value=None, last_value=None, peak_value=None)

    root = valid_cap(schema, alert)

    assert caps(root, "cap:info/cap:category") == ["Infra"]
    assert "valeur" not in cap(root, "cap:info/cap:description")


def test_the_headline_is_cut_below_160_characters(schema, sensor):
    root = valid_cap(schema, make_alert(sensor, title="x" * 255))

    headline = cap(root, "cap:info/cap:headline")
    assert len(headline) < 160
    assert headline.endswith("…")


def test_the_sender_comes_from_settings_or_else_the_first_allowed_host(schema, sensor):
    alert = make_alert(sensor)

    with override_settings(ALLOWED_HOSTS=[".csu.example.org", "localhost"]):
        by_host = valid_cap(schema, alert)
    with override_settings(CSU_CAP_SENDER="csu@joue-les-tours.fr"):
        by_setting = valid_cap(schema, alert)

    assert cap(by_host, "cap:sender") == "csu@csu.example.org"
    assert cap(by_host, "cap:identifier") == f"urn:csu:csu.example.org:alert:{alert.pk}:1"
    assert cap(by_setting, "cap:sender") == "csu@joue-les-tours.fr"


# --- The area ---------------------------------------------------------------------------


def test_a_zone_polygon_becomes_a_closed_ring_in_lat_lon_order(schema, commune, sensor):
    zone = Zone.objects.create(
        commune=commune, name="Centre", geometry={"type": "Polygon", "coordinates": [SQUARE]}
    )
    sensor.zones.add(zone)

    root = valid_cap(schema, make_alert(sensor))

    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "Centre"
    assert caps(root, "cap:info/cap:area/cap:polygon") == [
        "47.34,0.65 47.34,0.67 47.36,0.67 47.36,0.65 47.34,0.65"
    ]
    assert caps(root, "cap:info/cap:area/cap:circle") == []


def test_a_multipolygon_gives_one_polygon_per_outer_ring_without_holes(schema, commune, sensor):
    hole = [[0.655, 47.345], [0.66, 47.345], [0.66, 47.35], [0.655, 47.345]]
    east = [[1.0, 47.0], [1.1, 47.0], [1.1, 47.1], [1.0, 47.0]]
    zone = Zone.objects.create(
        commune=commune,
        name="Bords du Cher",
        geometry={"type": "MultiPolygon", "coordinates": [[SQUARE, hole], [east]]},
    )
    broken = Zone.objects.create(
        commune=commune, name="Brouillon", geometry={"type": "Polygon", "coordinates": [[[1]]]}
    )
    sensor.zones.add(zone, broken)

    root = valid_cap(schema, make_alert(sensor))

    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "Bords du Cher, Brouillon"
    assert caps(root, "cap:info/cap:area/cap:polygon") == [
        "47.34,0.65 47.34,0.67 47.36,0.67 47.36,0.65 47.34,0.65",
        "47,1 47,1.1 47.1,1.1 47,1",
    ]


def test_a_sensor_without_a_zone_polygon_gets_a_circle_around_it(schema, sensor, flood_zone):
    sensor.zones.add(flood_zone)  # a zone without geometry

    root = valid_cap(schema, make_alert(sensor))

    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "Zone inondable du Cher"
    assert caps(root, "cap:info/cap:area/cap:polygon") == []
    assert caps(root, "cap:info/cap:area/cap:circle") == ["47.35,0.66 0.1"]


def test_a_sensor_without_zones_is_described_by_its_commune(schema, sensor):
    root = valid_cap(schema, make_alert(sensor))

    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "Joué-lès-Tours"
    assert caps(root, "cap:info/cap:area/cap:circle") == ["47.35,0.66 0.1"]


# --- The CAP view -----------------------------------------------------------------------


def test_an_operator_of_the_commune_gets_the_cap_document(schema, api, sensor, operator):
    alert = make_alert(sensor)
    sign_in(api, operator)

    response = api.get(f"/api/v1/alerts/{alert.pk}/cap/", HTTP_ACCEPT="application/xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/cap+xml; charset=utf-8"
    assert response.content == alert_cap(alert)
    schema.validate(io.BytesIO(response.content))


def test_an_operator_of_another_commune_gets_404_for_the_cap_document(api, sensor, other_operator):
    alert = make_alert(sensor)
    sign_in(api, other_operator)

    response = api.get(f"/api/v1/alerts/{alert.pk}/cap/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("url", ["/api/v1/alerts/{pk}/cap/", FEED])
def test_anonymous_gets_401(api, sensor, url):
    alert = make_alert(sensor)

    response = api.get(url.format(pk=alert.pk))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- The feed ---------------------------------------------------------------------------


def test_the_feed_lists_the_open_alerts_an_operator_may_see(api, commune, sensor, operator):
    fired = make_alert(sensor)
    other = make_sensor(commune, ref="jlt-air-02")
    acknowledged = make_alert(other, opened_at=T0 + timedelta(minutes=1))
    acknowledged.acknowledge(by=operator, now=T0 + timedelta(minutes=30))
    resolved = make_alert(make_sensor(commune, ref="jlt-air-03"))
    resolved.resolve(by=operator, now=T0 + timedelta(minutes=40))
    sign_in(api, operator)

    response = api.get(FEED)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/atom+xml; charset=utf-8"
    found = entries(response)
    assert [entry.findtext(f"{ATOM}id") for entry in found] == [
        cap_identifier(acknowledged),  # the most recently updated first
        cap_identifier(fired),
    ]
    first = found[0]
    assert first.findtext(f"{ATOM}title") == acknowledged.title
    assert first.find(f"{ATOM}link").get("href") == (
        f"http://localhost:8000/api/v1/alerts/{acknowledged.pk}/cap/"
    )
    assert first.findtext(f"{ATOM}updated") == "2026-11-23T08:30:00+01:00"
    assert "jlt-air-02" in first.findtext(f"{ATOM}summary")


def test_the_feed_shows_nothing_of_another_commune(api, sensor, other_operator):
    make_alert(sensor)
    sign_in(api, other_operator)

    response = api.get(FEED)

    assert response.status_code == 200
    assert entries(response) == []


def test_an_integrator_reads_the_feed_with_a_token(api, sensor, operator):
    alert = make_alert(sensor)
    token = api_token(operator)

    response = api.get(FEED, HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    assert [e.findtext(f"{ATOM}id") for e in entries(response)] == [cap_identifier(alert)]


def test_a_registered_provider_adds_its_items_to_the_feed(api, operator, monkeypatch):
    def activations(user):
        return FeedPart(
            [
                FeedItem(
                    id="urn:csu:localhost:ppms:7:1",
                    title=f"PPMS pour {user.username}",
                    link="http://localhost:8000/api/v1/ppms/activations/7/",
                    updated=T0,
                    summary="Confinement <école>",
                )
            ]
        )

    monkeypatch.setattr(core_feeds, "FEED_PROVIDERS", list(core_feeds.FEED_PROVIDERS))
    core_feeds.register_feed_provider(activations)
    core_feeds.register_feed_provider(activations)  # registering twice adds it once
    sign_in(api, operator)

    found = entries(api.get(FEED))

    assert [entry.findtext(f"{ATOM}title") for entry in found] == ["PPMS pour operateur"]
    assert found[0].findtext(f"{ATOM}summary") == "Confinement <école>"  # plain text


def test_the_alerts_of_the_feed_are_read_in_a_fixed_number_of_queries(commune, operator):
    make_alert(make_sensor(commune, ref="jlt-air-01"))
    feeds.open_alert_items(operator)  # the user's roles are read once, then kept
    with CaptureQueriesContext(connection) as one:
        feeds.open_alert_items(operator)
    for n in range(2, 5):
        make_alert(make_sensor(commune, ref=f"jlt-air-0{n}"))
    feeds.open_alert_items(operator)  # new rules: their triggers are read once, then kept

    with CaptureQueriesContext(connection) as four:
        items = feeds.open_alert_items(operator).items

    assert len(items) == 4
    assert len(four) == len(one)


def test_the_schema_documents_the_cap_views_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=urlpatterns)

    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned about the CAP views"
    cap_get = schema["paths"]["/api/v1/alerts/{id}/cap/"]["get"]
    assert "application/cap+xml" in cap_get["responses"]["200"]["content"]
    feed_get = schema["paths"]["/api/v1/cap/feed/"]["get"]
    assert "application/atom+xml" in feed_get["responses"]["200"]["content"]
