"""Exports of readings and alerts: csv-fr for French spreadsheets, csv, json."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert
from core import exports
from sensors.metrics import Kind
from sensors.models import Reading
from sensors.partitions import create_partition
from tests.alerting import make_rule
from tests.conftest import make_sensor, make_user, sign_in

READINGS = "/api/v1/sensors/jlt-air-01/readings/export/"
ALERTS = "/api/v1/alerts/export/"
BOM = "\ufeff"
WINTER = datetime(2026, 1, 15, 7, 0, tzinfo=UTC)  # 08:00 in Paris (UTC+1)
SUMMER = datetime(2026, 7, 15, 6, 0, tzinfo=UTC)  # 08:00 in Paris (UTC+2)
# Paris goes back from UTC+2 to UTC+1 at 03:00 on 25 October 2026: 02:30 happens twice.
DST_END = [
    datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # 02:00 UTC+2
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 UTC+2
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 UTC+1, an hour later
    datetime(2026, 10, 25, 2, 0, tzinfo=UTC),  # 03:00 UTC+1
]


@pytest.fixture
def api():
    return APIClient()


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def recent_hour() -> datetime:
    """A recent, hour-aligned instant: PostgreSQL has partitions for recent days only."""
    return (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


def partitions_for(*moments: datetime) -> None:
    if connection.vendor == "postgresql":
        for moment in moments:
            create_partition(moment.astimezone(UTC).date())


def add_readings(sensor, metric, pairs):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=ts, value=value) for ts, value in pairs
    )


def body(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM)), delimiter=delimiter))


def the_window(start: datetime, hours: int = 1) -> dict:
    return {"from": z(start), "to": z(start + timedelta(hours=hours))}


# --- Readings ---------------------------------------------------------------------------


def test_csv_fr_starts_with_the_bom_and_uses_semicolons_commas_and_paris_times(
    api, operator, sensor
):
    partitions_for(WINTER, SUMMER)
    add_readings(sensor, "pm25", [(WINTER, 12.5), (SUMMER, 7.25)])
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {"metric": "pm25", "from": "2026-01-01T00:00:00Z", "to": "2026-08-01T00:00:00Z"}
        | {"bucket": "raw", "format": "csv-fr"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert text.splitlines()[1:] == [
        "15/01/2026 08:00:00;12,5;2026-01-15T08:00:00+01:00",
        "15/07/2026 08:00:00;7,25;2026-07-15T08:00:00+02:00",
    ]
    assert rows(text, ";")[0] == [
        "Horodatage (heure de Paris)",
        "Valeur (µg/m³)",
        "Horodatage (heure de Paris) — ISO 8601",
    ]


def test_csv_fr_never_writes_numbers_in_scientific_notation(api, operator, sensor):
    start = recent_hour()
    add_readings(sensor, "pm25", [(start, 0.00001), (start + timedelta(minutes=1), 1500.0)])
    sign_in(api, operator)

    response = api.get(
        READINGS, {"metric": "pm25", "bucket": "raw", "format": "csv-fr", **the_window(start)}
    )

    values = [row[1] for row in rows(body(response), ";")[1:]]
    assert values == ["0,00001", "1500,0"]


def test_csv_uses_commas_dots_and_rfc3339_utc_times_without_bom(api, operator, sensor):
    partitions_for(WINTER, SUMMER)
    add_readings(sensor, "pm25", [(WINTER, 12.5), (SUMMER, 7.25)])
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {"metric": "pm25", "from": "2026-01-01T00:00:00Z", "to": "2026-08-01T00:00:00Z"}
        | {"bucket": "raw", "format": "csv"},
    )

    text = body(response)
    assert not text.startswith(BOM)
    assert text.splitlines() == ["t,v", "2026-01-15T07:00:00Z,12.5", "2026-07-15T06:00:00Z,7.25"]


def test_pandas_reads_the_right_instants_across_a_dst_change_in_both_csv_flavours(
    api, operator, sensor
):
    partitions_for(*DST_END)
    add_readings(sensor, "pm25", [(moment, 10.5 + n) for n, moment in enumerate(DST_END)])
    sign_in(api, operator)
    params = {"metric": "pm25", "bucket": "raw", "from": "2026-10-24T22:00:00Z"}
    params["to"] = "2026-10-25T04:00:00Z"

    plain = pd.read_csv(io.BytesIO(body(api.get(READINGS, params | {"format": "csv"})).encode()))
    french = pd.read_csv(  # as docs/exports.md says
        io.BytesIO(body(api.get(READINGS, params | {"format": "csv-fr"})).encode()),
        sep=";",
        decimal=",",
        encoding="utf-8-sig",
    )

    expected = pd.DatetimeIndex(DST_END).tolist()
    assert pd.to_datetime(plain["t"], utc=True).tolist() == expected
    iso = "Horodatage (heure de Paris) — ISO 8601"
    assert pd.to_datetime(french[iso], utc=True).tolist() == expected
    assert french[iso][1:3].tolist() == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]
    assert french["Horodatage (heure de Paris)"][1] == french["Horodatage (heure de Paris)"][2]
    assert french["Valeur (µg/m³)"].tolist() == [10.5, 11.5, 12.5, 13.5]


def test_json_is_an_array_of_the_points(api, operator, sensor):
    start = recent_hour()
    add_readings(sensor, "no2", [(start, 41.0), (start + timedelta(minutes=1), 42.5)])
    sign_in(api, operator)

    response = api.get(
        READINGS, {"metric": "no2", "bucket": "raw", "format": "json", **the_window(start)}
    )

    assert response["Content-Type"] == "application/json"
    assert json.loads(body(response)) == [
        {"t": z(start), "v": 41.0},
        {"t": z(start + timedelta(minutes=1)), "v": 42.5},
    ]


def test_an_empty_json_export_is_an_empty_array(api, operator, sensor):
    sign_in(api, operator)

    response = api.get(READINGS, {"metric": "no2", "format": "json"})

    assert json.loads(body(response)) == []


def test_the_readings_export_honours_from_to_and_bucket(api, operator, sensor):
    start = recent_hour()
    # Every 10 minutes over 3 hours: 6 readings an hour, values 0…17.
    add_readings(sensor, "pm10", [(start + timedelta(minutes=10 * i), float(i)) for i in range(18)])
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {
            "metric": "pm10",
            "from": z(start + timedelta(hours=1)),
            "to": z(start + timedelta(hours=3)),
            "bucket": "1h",
            "format": "csv",
        },
    )

    assert rows(body(response)) == [
        ["t", "avg", "min", "max", "count"],
        [z(start + timedelta(hours=1)), "8.5", "6.0", "11.0", "6"],
        [z(start + timedelta(hours=2)), "14.5", "12.0", "17.0", "6"],
    ]


def test_the_raw_export_excludes_the_end_of_the_range(api, operator, sensor):
    start = recent_hour()
    add_readings(sensor, "pm10", [(start + timedelta(minutes=i), float(i)) for i in range(5)])
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {
            "metric": "pm10",
            "from": z(start + timedelta(minutes=1)),
            "to": z(start + timedelta(minutes=4)),
            "bucket": "raw",
            "format": "json",
        },
    )

    assert [point["v"] for point in json.loads(body(response))] == [1.0, 2.0, 3.0]


def test_the_export_format_defaults_to_csv_fr(api, operator, sensor):
    sign_in(api, operator)

    response = api.get(READINGS, {"metric": "pm25"})

    assert body(response).startswith(BOM + "Début du créneau (heure de Paris);Moyenne")


def test_an_export_is_an_attachment_with_a_sensible_filename(api, operator, sensor):
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {"metric": "pm25", "from": "2026-11-23T07:00:00Z", "to": "2026-11-24T07:00:00Z"}
        | {"bucket": "5m", "format": "csv-fr"},
    )

    assert response["Content-Disposition"] == (
        'attachment; filename="jlt-air-01_pm25_5m_20261123-0800_20261124-0800.csv"'
    )


def test_an_operator_of_another_commune_gets_404_on_the_readings_export(
    api, other_operator, sensor
):
    sign_in(api, other_operator)

    response = api.get(READINGS, {"metric": "pm25", "format": "csv"})

    assert response.status_code == 404


@pytest.mark.parametrize("url", [READINGS + "?metric=pm25", ALERTS])
def test_an_anonymous_caller_gets_401_on_the_exports(api, sensor, url):
    assert api.get(url).status_code == 401


@pytest.mark.parametrize("url", [READINGS + "?metric=pm25", ALERTS])
def test_an_unknown_format_is_a_400_naming_the_field(api, operator, sensor, url):
    sign_in(api, operator)

    response = api.get(url, {"format": "xlsx"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    message = response.json()["format"][0]
    assert "xlsx" in message and "csv-fr" in message


def test_bad_readings_export_parameters_are_a_400_per_field(api, operator, sensor):
    sign_in(api, operator)

    response = api.get(READINGS, {"metric": "ph", "from": "hier", "bucket": "2h"})

    assert response.status_code == 400
    assert set(response.json()) == {"metric", "from", "bucket"}


def test_a_raw_export_over_the_limit_is_a_413_naming_it_and_one_at_the_limit_a_200(
    api, operator, sensor, settings
):
    settings.EXPORT_MAX_ROWS = 3
    start = recent_hour()
    add_readings(sensor, "pm25", [(start + timedelta(minutes=i), 1.0) for i in range(4)])
    sign_in(api, operator)
    params = {"metric": "pm25", "bucket": "raw", "format": "csv", "from": z(start)}

    refused = api.get(READINGS, {**params, "to": z(start + timedelta(minutes=4))})
    accepted = api.get(READINGS, {**params, "to": z(start + timedelta(minutes=3))})

    assert refused.status_code == 413
    assert refused["Content-Type"] == "application/json"
    assert refused.json() == {
        "detail": "Export refusé : plus de 3 lignes, la limite d'un export. Choisissez une "
        "période plus courte. Ou un créneau : bucket=1m, 5m, 1h ou 1d.",
        "limit": 3,
    }
    assert accepted.status_code == 200
    assert len(body(accepted).splitlines()) == 4  # the header and 3 rows: none cut off


def test_the_limit_is_written_the_french_way(api, operator, sensor, settings):
    settings.EXPORT_MAX_ROWS = 1500
    start = recent_hour()
    add_readings(sensor, "pm25", [(start + timedelta(seconds=i), 1.0) for i in range(1501)])
    sign_in(api, operator)

    response = api.get(
        READINGS, {"metric": "pm25", "bucket": "raw", **the_window(start), "format": "csv"}
    )

    assert response.status_code == 413
    assert "plus de 1\u202f500 lignes" in response.json()["detail"]
    assert response.json()["limit"] == 1500


def test_a_bucketed_export_of_more_buckets_than_the_limit_is_a_413(api, operator, sensor, settings):
    settings.EXPORT_MAX_ROWS = 60
    sign_in(api, operator)
    start = recent_hour()
    params = {"metric": "pm25", "bucket": "1m", "format": "csv", "from": z(start)}

    refused = api.get(READINGS, {**params, "to": z(start + timedelta(minutes=61))})
    accepted = api.get(READINGS, {**params, "to": z(start + timedelta(minutes=60))})

    assert refused.status_code == 413
    assert refused.json()["limit"] == 60
    assert "plus de 60 lignes" in refused.json()["detail"]
    assert accepted.status_code == 200


def test_an_export_may_hold_more_points_than_the_readings_api(api, operator, sensor):
    # 1-minute buckets over 30 days: 43,200, beyond the API's 10,000 but within the cap.
    sign_in(api, operator)

    response = api.get(
        READINGS,
        {"metric": "pm25", "bucket": "1m", "format": "json"}
        | {"from": z(timezone.now() - timedelta(days=30))},
    )

    assert response.status_code == 200


# --- Alerts -----------------------------------------------------------------------------


@pytest.fixture
def rule():
    return make_rule(name="PM10 technique", severity="warning")


def make_alert(rule, sensor, opened_at, **fields):
    fields.setdefault("title", f"PM10 élevé sur {sensor.ref}")
    fields.setdefault("severity", rule.severity)
    return Alert.objects.create(
        rule=rule, sensor=sensor, metric="pm10", opened_at=opened_at, **fields
    )


def test_the_alert_export_has_the_columns_of_an_after_action_report(
    api, operator, sensor, rule, django_user_model
):
    someone = make_user(django_user_model, "marie")
    alert = make_alert(
        rule,
        sensor,
        WINTER,
        state="resolved",
        first_value=81.0,
        last_value=60.5,
        peak_value=120.25,
        acknowledged_by=someone,
        acknowledged_at=WINTER + timedelta(minutes=5),
        resolved_by=someone,
        resolved_at=SUMMER,
    )
    sign_in(api, operator)

    response = api.get(
        ALERTS, {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "format": "csv"}
    )

    assert rows(body(response)) == [
        [
            "id", "title", "opened_at", "resolved_at", "state", "severity", "sensor",
            "commune", "metric", "rule", "first_value", "last_value", "peak_value",
            "acknowledged_by", "acknowledged_at", "resolved_by",
        ],
        [
            str(alert.pk), "PM10 élevé sur jlt-air-01", "2026-01-15T07:00:00Z",
            "2026-07-15T06:00:00Z", "resolved", "warning", "jlt-air-01", "Joué-lès-Tours",
            "pm10", "PM10 technique", "81.0", "60.5", "120.25", "marie",
            "2026-01-15T07:05:00Z", "marie",
        ],
    ]  # fmt: skip


def test_the_alert_export_in_csv_fr_shows_french_labels_and_paris_times(
    api, operator, sensor, rule
):
    make_alert(rule, sensor, WINTER, state="resolved", resolved_at=SUMMER, peak_value=120.25)
    sign_in(api, operator)

    response = api.get(
        ALERTS, {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "format": "csv-fr"}
    )

    text = body(response)
    assert text.startswith(BOM + "N°;Titre;Ouverte le (heure de Paris);")
    (row,) = rows(text, ";")[1:]
    assert row[2:6] == ["15/01/2026 08:00:00", "15/07/2026 08:00:00", "Résolue", "Avertissement"]
    assert row[12] == "120,25"
    assert row[13] == ""  # nobody acknowledged
    assert row[-3:] == ["2026-01-15T08:00:00+01:00", "2026-07-15T08:00:00+02:00", ""]
    assert rows(text, ";")[0][-3:] == [
        "Ouverte le (heure de Paris) — ISO 8601",
        "Résolue le (heure de Paris) — ISO 8601",
        "Acquittée le (heure de Paris) — ISO 8601",
    ]
    assert response["Content-Disposition"] == (
        'attachment; filename="alertes_20260101-0100_20261201-0100.csv"'
    )


def test_a_formula_in_a_text_cell_is_neutralised_in_csv_fr(api, operator, sensor):
    rule = make_rule(name='=HYPERLINK("http://example.com")')
    make_alert(rule, sensor, timezone.now())
    sign_in(api, operator)

    response = api.get(ALERTS, {"format": "csv-fr"})

    assert rows(body(response), ";")[1][9] == '\'=HYPERLINK("http://example.com")'


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_formula_in_a_text_cell_is_neutralised_in_plain_csv_too(api, operator, sensor, start):
    rule = make_rule(name=f"{start}cmd|' /C calc'!A0")
    make_alert(rule, sensor, timezone.now(), first_value=-3.5)
    sign_in(api, operator)

    response = api.get(ALERTS, {"format": "csv"})

    header, row = rows(body(response), ",")
    assert row[header.index("rule")] == f"'{start}cmd|' /C calc'!A0"
    assert row[header.index("first_value")] == "-3.5"  # a number stays a number


def test_the_alert_export_is_a_json_array(api, operator, sensor, rule):
    alert = make_alert(rule, sensor, timezone.now() - timedelta(hours=1), first_value=85.0)
    sign_in(api, operator)

    response = api.get(ALERTS, {"format": "json"})

    (item,) = json.loads(body(response))
    assert item["id"] == alert.pk
    assert item["state"] == "firing"
    assert item["first_value"] == 85.0
    assert item["resolved_at"] is None
    assert item["acknowledged_by"] is None


def test_the_alert_export_holds_the_alerts_active_during_the_period(api, operator, sensor, rule):
    start = timezone.now() - timedelta(days=3)
    make_alert(
        rule,
        sensor,
        start - timedelta(days=2),
        title="avant",
        state="resolved",
        resolved_at=start - timedelta(days=1),
    )
    make_alert(
        rule,
        sensor,
        start - timedelta(hours=1),
        title="à cheval",
        state="resolved",
        resolved_at=start + timedelta(hours=1),
    )
    make_alert(
        rule,
        sensor,
        start + timedelta(hours=5),
        title="pendant",
        state="resolved",
        resolved_at=start + timedelta(hours=6),
    )
    make_alert(rule, sensor, start + timedelta(days=1, hours=1), title="après")
    sign_in(api, operator)

    response = api.get(
        ALERTS, {"from": z(start), "to": z(start + timedelta(days=1)), "format": "json"}
    )

    assert [item["title"] for item in json.loads(body(response))] == ["à cheval", "pendant"]


def test_the_alert_export_filters_by_state(api, operator, sensor, rule):
    now = timezone.now()
    make_alert(
        rule,
        sensor,
        now - timedelta(hours=3),
        title="close",
        state="resolved",
        resolved_at=now - timedelta(hours=2),
    )
    make_alert(rule, sensor, now - timedelta(hours=1), title="open")
    sign_in(api, operator)

    response = api.get(ALERTS, {"state": "resolved", "format": "json"})

    assert [item["title"] for item in json.loads(body(response))] == ["close"]


def test_the_alert_export_holds_only_the_alerts_the_user_may_see(
    api, operator, director, sensor, other_commune, rule
):
    ballan = make_sensor(other_commune, ref="bal-water-01", kind=Kind.WATER)
    now = timezone.now()
    make_alert(rule, sensor, now - timedelta(hours=1), title="mine")
    make_alert(rule, ballan, now - timedelta(hours=1), title="Ballan")

    sign_in(api, operator)
    mine = json.loads(body(api.get(ALERTS, {"format": "json"})))
    sign_in(api, director)
    directors = json.loads(body(api.get(ALERTS, {"format": "json"})))

    assert [item["title"] for item in mine] == ["mine"]
    assert directors == []


def test_an_alert_export_over_the_limit_is_a_413_naming_it_and_one_at_the_limit_a_200(
    api, operator, sensor, rule, settings
):
    now = timezone.now()
    make_alert(rule, sensor, now - timedelta(hours=3), state="resolved", resolved_at=now)
    make_alert(rule, sensor, now - timedelta(hours=1))
    sign_in(api, operator)

    settings.EXPORT_MAX_ROWS = 1
    refused = api.get(ALERTS, {"format": "csv"})
    settings.EXPORT_MAX_ROWS = 2
    accepted = api.get(ALERTS, {"format": "json"})

    assert refused.status_code == 413
    assert refused.json()["limit"] == 1
    assert "plus de 1 lignes, la limite d'un export" in refused.json()["detail"]
    assert accepted.status_code == 200
    assert len(json.loads(body(accepted))) == 2


def test_an_alert_export_whose_start_follows_its_end_is_a_400(api, operator):
    sign_in(api, operator)

    response = api.get(
        ALERTS, {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z", "format": "csv"}
    )

    assert response.status_code == 400
    assert "from" in response.json()


# --- Serving ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_export_streams_in_chunks_under_asgi(async_client, operator, sensor, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 10)
    start = recent_hour()
    await sync_to_async(add_readings)(
        sensor, "pm25", [(start + timedelta(minutes=i), float(i)) for i in range(35)]
    )
    await sync_to_async(sign_in)(async_client, operator)

    response = await async_client.get(
        READINGS, {"metric": "pm25", "bucket": "raw", "format": "csv", **the_window(start)}
    )

    assert response.status_code == 200
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 4  # the header and 35 lines, 10 lines a chunk
    assert b"".join(chunks).decode().splitlines()[-1] == f"{z(start + timedelta(minutes=34))},34.0"


def test_the_alert_export_filters_by_sensor_and_names_the_file_after_it(
    api, operator, sensor, rule
):
    other = make_sensor(sensor.commune, ref="jlt-air-02")
    make_alert(rule, sensor, timezone.now() - timedelta(hours=1), title="mine")
    make_alert(rule, other, timezone.now() - timedelta(hours=1), title="neighbour")
    sign_in(api, operator)

    response = api.get(ALERTS, {"sensor": "jlt-air-01", "format": "json"})
    refused = api.get(ALERTS, {"sensor": 'x"; y', "format": "json"})

    assert [item["title"] for item in json.loads(body(response))] == ["mine"]
    assert 'filename="alertes_jlt-air-01_' in response["Content-Disposition"]
    assert refused.status_code == 400
    assert "sensor" in refused.json()
