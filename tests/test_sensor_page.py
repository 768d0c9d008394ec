"""The sensor page: who sees it, and what it gives its charts."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert
from sensors.models import LatestReading, RejectedMessage
from tests.alerting import make_rule
from tests.conftest import make_sensor, make_user, sign_in

URL = "/sensors/jlt-air-01/"


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin", is_staff=True)


def page_data(response) -> dict:
    match = re.search(
        r'<script id="sensor-data" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the page has no JSON data for its script"
    return json.loads(match.group(1))


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, sensor):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_operator_of_the_sensor_commune_sees_the_page(client, operator, sensor):
    sign_in(client, operator)

    response = client.get(URL)

    assert response.status_code == 200
    assert "jlt-air-01" in response.content.decode()


def test_a_metropole_operator_sees_the_page(client, metropole_operator, sensor):
    sign_in(client, metropole_operator)

    assert client.get(URL).status_code == 200


def test_an_operator_of_another_commune_gets_404(client, other_operator, sensor):
    sign_in(client, other_operator)

    assert client.get(URL).status_code == 404


def test_a_director_gets_404(client, director, sensor):
    sign_in(client, director)

    assert client.get(URL).status_code == 404


def test_an_unknown_sensor_is_a_404(client, operator):
    sign_in(client, operator)

    assert client.get("/sensors/nope/").status_code == 404


def test_staff_sees_the_last_rejections_of_the_sensor(client, staff, sensor):
    for i in range(25):
        RejectedMessage.objects.create(
            topic="csu/jlt-air-01/readings",
            sensor_ref="jlt-air-01",
            reason="out_of_range",
            detail=f"pm25 = {3000 + i} hors de 0 – 2000",
        )
    RejectedMessage.objects.create(
        topic="csu/bal-air-01/readings", sensor_ref="bal-air-01", reason="malformed", detail="x"
    )
    sign_in(client, staff)

    html = client.get(URL).content.decode()

    assert 'data-testid="rejections"' in html
    assert "pm25 = 3024 hors de 0 – 2000" in html  # the newest
    assert "pm25 = 3004 hors de" not in html  # only the last 20
    assert "Hors de la plage physique" in html
    assert "bal-air-01" not in html


def test_an_operator_does_not_see_the_rejections(client, operator, sensor):
    RejectedMessage.objects.create(
        topic="csu/jlt-air-01/readings", sensor_ref="jlt-air-01", reason="malformed", detail="oops"
    )
    sign_in(client, operator)

    html = client.get(URL).content.decode()

    assert 'data-testid="rejections"' not in html
    assert "oops" not in html


def test_the_thresholds_of_the_applicable_rules_are_in_the_page_data(
    client, operator, sensor, other_commune
):
    make_rule(name="PM10 alerte", threshold=80, clear_threshold=70, severity="critical")
    make_rule(
        name="Humidité hors plage",
        metric="humidity",
        condition="outside",
        threshold=20,
        threshold_high=90,
        clear_threshold=25,
        clear_threshold_high=85,
    )
    make_rule(name="Inactive", threshold=10, active=False)
    make_rule(name="Ailleurs", threshold=10).communes.add(other_commune)
    make_rule(name="Eau", sensor_kind="water", metric="ph", threshold=9)
    make_rule(name="Hors ligne", kind="offline", metric="", threshold=None, sensor_kind="")
    sign_in(client, operator)

    data = page_data(client.get(URL))

    lines = {(line["rule_name"], line["line"]): line["value"] for line in data["thresholds"]}
    assert lines == {
        ("Humidité hors plage", "threshold"): 20,
        ("Humidité hors plage", "threshold_high"): 90,
        ("Humidité hors plage", "clear_threshold"): 25,
        ("Humidité hors plage", "clear_threshold_high"): 85,
        ("PM10 alerte", "threshold"): 80,
        ("PM10 alerte", "clear_threshold"): 70,
    }
    pm10 = [line for line in data["thresholds"] if line["metric"] == "pm10"]
    assert pm10[0]["label"] == "PM10 alerte — seuil"
    assert pm10[0]["colour"] == "#d4351c"


def test_the_page_data_has_the_metrics_their_last_values_and_the_api_addresses(
    client, operator, sensor
):
    now = timezone.now().replace(microsecond=0)
    LatestReading.objects.create(sensor=sensor, metric="pm25", ts=now, value=12.5)
    sign_in(client, operator)

    data = page_data(client.get(URL))

    assert data["sensor"] == "jlt-air-01"
    assert data["expected_interval"] == 60
    by_name = {metric["name"]: metric for metric in data["metrics"]}
    assert by_name["pm25"]["unit"] == "µg/m³"
    assert by_name["pm25"]["latest"]["v"] == 12.5
    assert by_name["no2"]["latest"] is None
    assert data["readings_url"] == "/api/v1/sensors/jlt-air-01/readings/"
    assert data["export_url"] == "/api/v1/sensors/jlt-air-01/readings/export/"
    assert data["live_path"] == "/ws/live/"


def test_the_page_loads_no_script_or_stylesheet_from_another_site(client, operator, sensor):
    sign_in(client, operator)

    html = client.get(URL).content.decode()

    sources = re.findall(r'<script[^>]*\ssrc="([^"]*)"', html)
    sheets = re.findall(r'<link[^>]*\shref="([^"]*)"', html)
    assert "/static/vendor/plotly.min.js" in sources
    assert "/static/js/sensor.js" in sources
    assert "/static/css/sensor.css" in sheets
    for url in sources + sheets:
        assert not re.match(r"^(https?:)?//", url), url


def test_the_page_has_stable_hooks_for_browser_tests(client, operator, sensor):
    sign_in(client, operator)

    html = client.get(URL).content.decode()

    for metric in sensor.metrics:
        assert f'data-testid="chart-{metric.name}"' in html
        assert f'data-testid="latest-{metric.name}"' in html
    for hook in ("range-1h", "range-24h", "range-7d", "range-30d", "range-custom"):
        assert f'data-testid="{hook}"' in html
    assert 'data-testid="alert-history"' in html
    assert 'data-testid="sensor-state"' in html


def test_the_alert_history_lists_the_latest_50_alerts_of_the_sensor(client, operator, sensor):
    rule = make_rule(name="PM10 alerte")
    other = make_sensor(sensor.commune, ref="jlt-air-02")
    start = timezone.now() - timedelta(days=10)
    for i in range(55):
        Alert.objects.create(
            rule=rule,
            sensor=sensor,
            metric="pm10",
            state="resolved",
            severity="warning",
            title=f"Alerte {i:02d}",
            opened_at=start + timedelta(hours=i),
            resolved_at=start + timedelta(hours=i, minutes=30),
            peak_value=90.5,
        )
    newest = Alert.objects.create(
        rule=rule, sensor=sensor, metric="pm10", severity="critical", title="Alerte en cours"
    )
    Alert.objects.create(rule=rule, sensor=other, metric="pm10", severity="info", title="Voisin")
    sign_in(client, operator)

    html = client.get(URL).content.decode()
    history = html[html.index('data-testid="alert-history"') :]

    assert history.count("<tr data-alert-id=") == 50
    assert history.index("Alerte en cours") < history.index("Alerte 54")
    assert "Alerte 06" in history and "Alerte 05" not in history  # the newest, then 54…06
    assert f'href="/api/v1/alerts/{newest.pk}/"' in history
    assert "Critique" in history and "En cours" in history and "Résolue" in history
    assert "Voisin" not in history


def test_the_page_takes_a_constant_number_of_queries(
    client, operator, sensor, django_assert_max_num_queries
):
    rule = make_rule()
    for i in range(5):
        Alert.objects.create(
            rule=rule,
            sensor=sensor,
            metric="pm10",
            severity="warning",
            title=f"A{i}",
            state="resolved",
            resolved_at=timezone.now(),
        )
    sign_in(client, operator)

    with django_assert_max_num_queries(10):
        assert client.get(URL).status_code == 200


def test_a_latest_value_is_rounded_and_written_as_the_tiles_write_it(client, operator, commune):
    gauge = make_sensor(commune, "jlt-river-01", kind="water")
    LatestReading.objects.create(sensor=gauge, metric="level", ts=timezone.now(), value=4.579)
    sign_in(client, operator)

    html = client.get("/sensors/jlt-river-01/").content.decode()

    assert re.search(r'<td class="value">4,58&nbsp;m</td>', html)
    assert {
        m["name"]: m["digits"] for m in page_data(client.get("/sensors/jlt-river-01/"))["metrics"]
    }["level"] == 2
