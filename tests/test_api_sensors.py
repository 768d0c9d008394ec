"""The sensors API: sensors, their history, latest values and rejections, per role."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from sensors import api as sensors_api
from sensors.metrics import Kind
from sensors.models import LatestReading, Reading, RejectedMessage, Sensor, Zone
from sensors.partitions import create_partition
from tests.conftest import api_token, make_sensor, make_user, sign_in

SENSORS = "/api/v1/sensors/"
LATEST = "/api/v1/latest/"
REJECTIONS = "/api/v1/rejections/"


def readings_url(ref="jlt-air-01"):
    return f"{SENSORS}{ref}/readings/"


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def an_hour_ago_on_the_hour() -> datetime:
    """A recent, hour-aligned instant: PostgreSQL has partitions for recent days only."""
    return (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin", is_staff=True)


@pytest.fixture
def ballan_sensor(other_commune):
    return make_sensor(other_commune, ref="bal-water-01", kind=Kind.WATER)


def as_user(api, user):
    sign_in(api, user)
    return api


def refs(response):
    return [item["ref"] for item in response.json()["results"]]


# --- Authentication and visibility ------------------------------------------------------


@pytest.mark.parametrize(
    "url", [SENSORS, f"{SENSORS}jlt-air-01/", readings_url() + "?metric=pm25", LATEST, REJECTIONS]
)
def test_an_anonymous_caller_gets_401_on_every_endpoint(api, sensor, url):
    response = api.get(url)

    assert response.status_code == 401


def test_a_token_authenticates_a_caller(api, operator, sensor):
    token = api_token(operator)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api.get(SENSORS)

    assert response.status_code == 200
    assert refs(response) == ["jlt-air-01"]


def test_a_wrong_token_gets_401(api, operator, sensor):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert api.get(SENSORS).status_code == 401


def test_an_operator_lists_only_the_sensors_of_their_communes(api, operator, sensor, ballan_sensor):
    response = as_user(api, operator).get(SENSORS)

    assert response.status_code == 200
    assert refs(response) == ["jlt-air-01"]
    assert response.json()["count"] == 1


def test_an_operator_gets_404_on_a_sensor_outside_their_communes(api, operator, ballan_sensor):
    as_user(api, operator)

    assert api.get(f"{SENSORS}bal-water-01/").status_code == 404
    assert api.get(readings_url("bal-water-01") + "?metric=ph").status_code == 404


def test_an_operator_gets_404_on_an_unknown_sensor(api, operator):
    assert as_user(api, operator).get(f"{SENSORS}nope/").status_code == 404


def test_a_metropole_operator_sees_every_commune(api, metropole_operator, sensor, ballan_sensor):
    as_user(api, metropole_operator)

    assert refs(api.get(SENSORS)) == ["bal-water-01", "jlt-air-01"]
    assert api.get(f"{SENSORS}bal-water-01/").status_code == 200


def test_a_director_sees_no_sensor(api, director, sensor):
    LatestReading.objects.create(sensor=sensor, metric="pm25", ts=timezone.now(), value=3)
    as_user(api, director)

    assert refs(api.get(SENSORS)) == []
    assert api.get(f"{SENSORS}jlt-air-01/").status_code == 404
    assert api.get(readings_url() + "?metric=pm25").status_code == 404
    assert api.get(LATEST).json() == {"items": []}


def test_staff_sees_every_sensor(api, staff, sensor, ballan_sensor):
    assert refs(as_user(api, staff).get(SENSORS)) == ["bal-water-01", "jlt-air-01"]


# --- Sensors ----------------------------------------------------------------------------


def test_a_sensor_comes_with_its_commune_zones_and_metrics(api, operator, sensor, flood_zone):
    sensor.zones.add(flood_zone)
    sensor.last_seen = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    sensor.state = Sensor.State.ONLINE
    sensor.building = "Mairie"
    sensor.save()

    body = as_user(api, operator).get(f"{SENSORS}jlt-air-01/").json()

    assert body["ref"] == "jlt-air-01"
    assert body["name"] == "jlt-air-01"
    assert body["kind"] == "air"
    assert body["kind_label"] == "Qualité de l'air"
    assert body["commune"] == {
        "id": sensor.commune_id,
        "insee_code": "37122",
        "name": "Joué-lès-Tours",
    }
    assert body["zones"] == [
        {"id": flood_zone.pk, "name": "Zone inondable du Cher", "type": "flood"}
    ]
    assert (body["latitude"], body["longitude"]) == (47.35, 0.66)
    assert body["building"] == "Mairie"
    assert body["expected_interval"] == 60
    assert body["active"] is True
    assert body["state"] == "online"
    assert body["last_seen"] == "2026-11-20T09:30:00Z"
    assert {"name": "pm25", "unit": "µg/m³", "label": "PM2,5", "min": 0.0, "max": 2000.0} in (
        body["metrics"]
    )
    assert body["metrics"][-1]["name"] == "battery"


def test_the_sensor_list_takes_a_constant_number_of_queries(
    api, operator, commune, flood_zone, django_assert_max_num_queries
):
    as_user(api, operator)
    make_sensor(commune, ref="s-00").zones.add(flood_zone)
    with CaptureQueriesContext(connection) as few:
        assert api.get(SENSORS).status_code == 200

    for number in range(1, 30):
        make_sensor(commune, ref=f"s-{number:02}").zones.add(flood_zone)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api.get(SENSORS)

    assert response.json()["count"] == 30


def test_sensors_filter_by_kind_commune_zone_and_state(
    api, metropole_operator, sensor, ballan_sensor, flood_zone
):
    sensor.zones.add(flood_zone)
    make_sensor(sensor.commune, ref="jlt-traffic-01", kind=Kind.TRAFFIC, state="offline")
    as_user(api, metropole_operator)

    assert refs(api.get(SENSORS, {"kind": "water"})) == ["bal-water-01"]
    assert refs(api.get(SENSORS, {"commune": "37122"})) == ["jlt-air-01", "jlt-traffic-01"]
    assert refs(api.get(SENSORS, {"zone": flood_zone.pk})) == ["jlt-air-01"]
    assert refs(api.get(SENSORS, {"state": "offline"})) == ["jlt-traffic-01"]
    assert refs(api.get(SENSORS, {"kind": "air", "commune": "37018"})) == []


def test_the_commune_filter_does_not_reveal_other_communes(api, operator, ballan_sensor):
    assert refs(as_user(api, operator).get(SENSORS, {"commune": "37018"})) == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"kind": "radar"}, "kind"),
        ({"state": "sleeping"}, "state"),
        ({"commune": "Tours"}, "commune"),
        ({"zone": "flood"}, "zone"),
    ],
)
def test_an_unknown_filter_value_is_a_400_naming_the_field(api, operator, params, field):
    response = as_user(api, operator).get(SENSORS, params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_an_unknown_kind_is_explained_with_the_possible_values(api, operator):
    response = as_user(api, operator).get(SENSORS, {"kind": "radar"})

    message = response.json()["kind"][0]
    assert "radar" in message
    assert "air, water, watering, traffic, opening" in message


def test_a_zone_of_a_commune_outside_the_perimeter_lists_nothing(api, operator, other_commune):
    zone = Zone.objects.create(commune=other_commune, name="Centre")
    make_sensor(other_commune, ref="bal-air-01").zones.add(zone)

    assert refs(as_user(api, operator).get(SENSORS, {"zone": zone.pk})) == []


# --- Readings ---------------------------------------------------------------------------


def add_readings(sensor, metric, start, step, values):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=start + i * step, value=value)
        for i, value in enumerate(values)
    )


def test_raw_readings_are_the_points_of_the_range_oldest_first(api, operator, sensor):
    start = an_hour_ago_on_the_hour()
    add_readings(sensor, "pm25", start, timedelta(minutes=1), [10.0, 11.5, 12.0, 13.0])
    add_readings(sensor, "no2", start, timedelta(minutes=1), [99.0])

    response = as_user(api, operator).get(
        readings_url(),
        {"metric": "pm25", "from": z(start), "to": z(start + timedelta(minutes=3))},
    )

    assert response.status_code == 200
    assert response.json() == {
        "sensor": "jlt-air-01",
        "metric": "pm25",
        "unit": "µg/m³",
        "bucket": "raw",
        "from": z(start),
        "to": z(start + timedelta(minutes=3)),
        # "to" is excluded.
        "points": [
            {"t": z(start), "v": 10.0},
            {"t": z(start + timedelta(minutes=1)), "v": 11.5},
            {"t": z(start + timedelta(minutes=2)), "v": 12.0},
        ],
    }


def test_the_1h_bucket_aggregates_twelve_readings_exactly(api, operator, sensor):
    start = an_hour_ago_on_the_hour()
    add_readings(sensor, "pm25", start, timedelta(minutes=5), [float(v) for v in range(1, 13)])
    add_readings(sensor, "pm25", start + timedelta(hours=1), timedelta(minutes=5), [40.0])

    response = as_user(api, operator).get(
        readings_url(),
        {
            "metric": "pm25",
            "from": z(start),
            "to": z(start + timedelta(hours=2)),
            "bucket": "1h",
        },
    )

    assert response.status_code == 200
    assert response.json()["bucket"] == "1h"
    assert response.json()["points"] == [
        {"t": z(start), "avg": 6.5, "min": 1.0, "max": 12.0, "count": 12},
        {"t": z(start + timedelta(hours=1)), "avg": 40.0, "min": 40.0, "max": 40.0, "count": 1},
    ]


def test_the_5m_bucket_starts_on_multiples_of_five_minutes(api, operator, sensor):
    start = an_hour_ago_on_the_hour()
    # Two readings in 10:00-10:05, one in 10:05-10:10, none after.
    first = start + timedelta(minutes=1)
    add_readings(sensor, "no2", first, timedelta(minutes=3), [10.0, 20.0, 60.0])

    response = as_user(api, operator).get(
        readings_url(),
        {"metric": "no2", "from": z(first), "to": z(start + timedelta(hours=1)), "bucket": "5m"},
    )

    assert response.json()["points"] == [
        {"t": z(start), "avg": 15.0, "min": 10.0, "max": 20.0, "count": 2},
        {"t": z(start + timedelta(minutes=5)), "avg": 60.0, "min": 60.0, "max": 60.0, "count": 1},
    ]


def test_the_1m_bucket_groups_the_readings_of_each_minute(api, operator, sensor):
    start = an_hour_ago_on_the_hour()
    add_readings(sensor, "o3", start, timedelta(seconds=20), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])

    response = as_user(api, operator).get(
        readings_url(),
        {"metric": "o3", "from": z(start), "to": z(start + timedelta(minutes=5)), "bucket": "1m"},
    )

    assert response.json()["points"] == [
        {"t": z(start), "avg": 2.0, "min": 1.0, "max": 3.0, "count": 3},
        {"t": z(start + timedelta(minutes=1)), "avg": 5.0, "min": 4.0, "max": 6.0, "count": 3},
        {"t": z(start + timedelta(minutes=2)), "avg": 7.0, "min": 7.0, "max": 7.0, "count": 1},
    ]


def test_the_1d_bucket_follows_paris_days_across_the_dst_change(api, operator, sensor):
    if connection.vendor == "postgresql":
        for day in range(22, 28):
            create_partition(date(2026, 10, day))
    at = [
        datetime(2026, 10, 24, 21, 59, tzinfo=UTC),  # 23:59 CEST on Saturday the 24th
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # midnight CEST: Sunday the 25th begins
        datetime(2026, 10, 25, 22, 30, tzinfo=UTC),  # 23:30 CET, still Sunday (25 h long)
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # midnight CET: Monday the 26th
    ]
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric="pm10", ts=ts, value=value)
        for ts, value in zip(at, [1.0, 2.0, 4.0, 8.0], strict=True)
    )

    response = as_user(api, operator).get(
        readings_url(),
        {
            "metric": "pm10",
            "from": "2026-10-23T00:00:00Z",
            "to": "2026-10-27T00:00:00Z",
            "bucket": "1d",
        },
    )

    assert response.status_code == 200
    assert response.json()["points"] == [
        {"t": "2026-10-23T22:00:00Z", "avg": 1.0, "min": 1.0, "max": 1.0, "count": 1},
        {"t": "2026-10-24T22:00:00Z", "avg": 3.0, "min": 2.0, "max": 4.0, "count": 2},
        {"t": "2026-10-25T23:00:00Z", "avg": 8.0, "min": 8.0, "max": 8.0, "count": 1},
    ]


def test_by_default_readings_cover_the_last_24_hours_in_5_minute_buckets(api, operator, sensor):
    now = timezone.now()
    Reading.objects.create(sensor=sensor, metric="pm25", ts=now - timedelta(hours=2), value=5)
    Reading.objects.create(sensor=sensor, metric="pm25", ts=now - timedelta(hours=25), value=9)

    body = as_user(api, operator).get(readings_url(), {"metric": "pm25"}).json()

    assert body["bucket"] == "5m"
    assert datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"]) == timedelta(
        hours=24
    )
    assert [point["count"] for point in body["points"]] == [1]


@pytest.mark.parametrize(
    "span, bucket",
    [(timedelta(hours=6), "raw"), (timedelta(days=3), "5m"), (timedelta(days=4), "1h")],
)
def test_the_default_bucket_grows_with_the_range(api, operator, sensor, span, bucket):
    end = timezone.now()
    params = {"metric": "pm25", "from": z(end - span), "to": z(end)}

    assert as_user(api, operator).get(readings_url(), params).json()["bucket"] == bucket


def test_a_battery_history_is_available_for_any_kind(api, operator, sensor):
    response = as_user(api, operator).get(readings_url(), {"metric": "battery"})

    assert response.status_code == 200
    assert response.json()["unit"] == "%"


def test_an_offset_whose_plus_was_not_encoded_is_still_understood(api, operator, sensor):
    # A "+" left unencoded in a query string arrives as a space.
    url = readings_url() + "?metric=pm25&from=2026-11-20T10:00:00+01:00&to=2026-11-20T12:00:00Z"

    body = as_user(api, operator).get(url).json()

    assert body["from"] == "2026-11-20T09:00:00Z"


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "metric"),
        ({"metric": "ph"}, "metric"),
        ({"metric": "pm25", "from": "yesterday"}, "from"),
        ({"metric": "pm25", "from": "2026-11-20T10:00:00"}, "from"),
        ({"metric": "pm25", "to": "2026-13-20T10:00:00Z"}, "to"),
        ({"metric": "pm25", "from": "2026-11-20T10:00:00Z", "to": "2026-11-20T10:00:00Z"}, "from"),
        ({"metric": "pm25", "bucket": "15m"}, "bucket"),
        ({"metric": "pm25", "from": "2026-01-01T00:00:00Z", "bucket": "1m"}, "bucket"),
    ],
)
def test_bad_readings_parameters_are_a_400_naming_the_field(api, operator, sensor, params, field):
    response = as_user(api, operator).get(readings_url(), params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_metric_of_another_kind_is_refused_with_the_sensor_metrics(api, operator, sensor):
    message = as_user(api, operator).get(readings_url(), {"metric": "ph"}).json()["metric"][0]

    assert "ph" in message and "pm25" in message


def test_too_many_raw_points_ask_for_a_bucket(api, operator, sensor, monkeypatch):
    monkeypatch.setattr(sensors_api, "MAX_POINTS", 5)
    start = an_hour_ago_on_the_hour()
    add_readings(sensor, "pm25", start, timedelta(minutes=1), [1.0] * 6)
    params = {"metric": "pm25", "from": z(start), "bucket": "raw"}
    as_user(api, operator)

    refused = api.get(readings_url(), {**params, "to": z(start + timedelta(minutes=6))})
    accepted = api.get(readings_url(), {**params, "to": z(start + timedelta(minutes=5))})

    assert refused.status_code == 400
    assert "bucket" in refused.json()["bucket"][0]
    assert accepted.status_code == 200
    assert len(accepted.json()["points"]) == 5


# --- Latest values ----------------------------------------------------------------------


def test_latest_lists_the_last_value_of_each_visible_sensor_metric(
    api, operator, sensor, ballan_sensor
):
    ts = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    LatestReading.objects.create(sensor=sensor, metric="pm25", ts=ts, value=12.5)
    LatestReading.objects.create(sensor=sensor, metric="no2", ts=ts, value=30)
    LatestReading.objects.create(sensor=ballan_sensor, metric="ph", ts=ts, value=7.2)

    body = as_user(api, operator).get(LATEST).json()

    assert body == {
        "items": [
            {
                "sensor": "jlt-air-01",
                "kind": "air",
                "commune": {
                    "id": sensor.commune_id,
                    "insee_code": "37122",
                    "name": "Joué-lès-Tours",
                },
                "metric": "no2",
                "unit": "µg/m³",
                "ts": "2026-11-23T08:00:00Z",
                "value": 30.0,
                "state": "unknown",
            },
            {
                "sensor": "jlt-air-01",
                "kind": "air",
                "commune": {
                    "id": sensor.commune_id,
                    "insee_code": "37122",
                    "name": "Joué-lès-Tours",
                },
                "metric": "pm25",
                "unit": "µg/m³",
                "ts": "2026-11-23T08:00:00Z",
                "value": 12.5,
                "state": "unknown",
            },
        ]
    }


def test_latest_filters_by_kind(api, metropole_operator, sensor, ballan_sensor):
    ts = timezone.now()
    LatestReading.objects.create(sensor=sensor, metric="pm25", ts=ts, value=12.5)
    LatestReading.objects.create(sensor=ballan_sensor, metric="ph", ts=ts, value=7.2)
    as_user(api, metropole_operator)

    items = api.get(LATEST, {"kind": "water"}).json()["items"]

    assert [(item["sensor"], item["metric"], item["unit"]) for item in items] == [
        ("bal-water-01", "ph", "pH")
    ]
    assert api.get(LATEST, {"kind": "radar"}).status_code == 400


def test_latest_takes_the_same_few_queries_whatever_the_number_of_sensors(
    api, operator, commune, django_assert_max_num_queries
):
    as_user(api, operator)
    ts = timezone.now()
    LatestReading.objects.create(
        sensor=make_sensor(commune, ref="s-00"), metric="o3", ts=ts, value=1
    )
    with CaptureQueriesContext(connection) as few:
        api.get(LATEST)
    # Session, user, its second factor, roles and perimeter, then the readings and their
    # communes (the roles come from the cache on PostgreSQL and Redis, from the database
    # embedded).
    assert len(few.captured_queries) <= 7

    for number in range(1, 30):
        new = make_sensor(commune, ref=f"s-{number:02}")
        LatestReading.objects.create(sensor=new, metric="o3", ts=ts, value=1)
    with django_assert_max_num_queries(len(few.captured_queries)):
        items = api.get(LATEST).json()["items"]

    assert len(items) == 30


# --- Rejections -------------------------------------------------------------------------


def reject(reason, sensor_ref="jlt-air-01", minutes_ago=0, **fields):
    return RejectedMessage.objects.create(
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
        topic=f"csu/{sensor_ref}/readings",
        sensor_ref=sensor_ref,
        reason=reason,
        **fields,
    )


def test_staff_sees_the_rejections_newest_first(api, staff):
    old = reject("malformed", minutes_ago=10, detail="not JSON", payload="{")
    new = reject("out_of_range", metric="pm25", detail="9999 > 2000", payload="[]")

    body = as_user(api, staff).get(REJECTIONS).json()

    assert body["count"] == 2
    first = body["results"][0]
    assert first == {
        "received_at": z(new.received_at),
        "topic": "csu/jlt-air-01/readings",
        "sensor_ref": "jlt-air-01",
        "reason": "out_of_range",
        "reason_label": "Hors de la plage physique",
        "detail": "9999 > 2000",
        "metric": "pm25",
        "payload": "[]",
    }
    assert body["results"][1]["received_at"] == z(old.received_at)


def test_rejections_filter_by_reason_and_sensor(api, staff):
    reject("malformed")
    reject("unknown_sensor", sensor_ref="ghost")
    as_user(api, staff)

    by_reason = api.get(REJECTIONS, {"reason": "unknown_sensor"}).json()["results"]
    by_sensor = api.get(REJECTIONS, {"sensor": "jlt-air-01"}).json()["results"]

    assert [item["sensor_ref"] for item in by_reason] == ["ghost"]
    assert [item["reason"] for item in by_sensor] == ["malformed"]


def test_an_unknown_rejection_reason_is_a_400(api, staff):
    response = as_user(api, staff).get(REJECTIONS, {"reason": "bored"})

    assert response.status_code == 400
    assert list(response.json()) == ["reason"]


def test_rejections_are_paginated(api, staff):
    for minutes in range(3):
        reject("malformed", minutes_ago=minutes)

    body = as_user(api, staff).get(REJECTIONS, {"limit": 2}).json()

    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_an_operator_gets_403_on_rejections(api, metropole_operator):
    assert as_user(api, metropole_operator).get(REJECTIONS).status_code == 403


# --- OpenAPI ----------------------------------------------------------------------------


def test_the_schema_documents_the_sensors_api_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("sensors.api_urls"))])

    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned about the sensors API"
    assert set(schema["paths"]) == {
        "/api/v1/sensors/",
        "/api/v1/sensors/{ref}/",
        "/api/v1/sensors/{ref}/readings/",
        "/api/v1/sensors/{ref}/readings/export/",
        "/api/v1/latest/",
        "/api/v1/rejections/",
    }
    readings = schema["paths"]["/api/v1/sensors/{ref}/readings/"]["get"]
    assert {p["name"] for p in readings["parameters"]} == {"ref", "metric", "from", "to", "bucket"}


def test_a_zone_beyond_any_identifier_is_a_400_naming_the_field(api, operator):
    # Found by the API fuzzer: the number overflowed the database's integer into a 500.
    response = as_user(api, operator).get(SENSORS, {"zone": 10**20})

    assert response.status_code == 400
    assert list(response.json()) == ["zone"]
