"""A sensor without a period (``expected_interval`` None): nothing is guessed from it."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from alerts.aggregates import evaluate_aggregates
from alerts.models import Alert, RuleState
from dashboard.kpis import traffic_kpi
from sensors.models import LatestReading, Reading, Sensor
from sensors.rollups import rollup_hours, set_rollup_progress
from tests.alerting import make_rule
from tests.conftest import make_sensor, sign_in

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
DAY = (datetime.now(PARIS) - timedelta(days=2)).date()
TEN = datetime.combine(DAY, time(10), PARIS).astimezone(UTC)


def test_a_rule_on_a_mean_says_it_cannot_judge_a_sensor_without_a_period(commune):
    sensor = make_sensor(commune, "jlt-air-01", expected_interval=None)
    make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    # A full hour far over the threshold: with a guessed period it would open an alert.
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric="no2", ts=TEN + k * timedelta(minutes=1), value=450)
        for k in range(60)
    )
    rollup_hours(TEN - HOUR, TEN + 2 * HOUR)
    set_rollup_progress(TEN + HOUR)
    evaluate_aggregates()
    assert not Alert.objects.exists()
    state = RuleState.objects.get(sensor=sensor)
    assert state.last_value is None and state.coverage is None
    assert state.no_mean.startswith("Complétude impossible à juger : le capteur n'a pas")


def test_a_daily_rule_says_so_at_once_not_at_the_end_of_the_day(commune):
    sensor = make_sensor(commune, "jlt-air-01", expected_interval=None)
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    set_rollup_progress(TEN + HOUR)
    evaluate_aggregates()
    assert RuleState.objects.get(sensor=sensor).no_mean.startswith("Complétude impossible")


def test_a_sensor_without_a_period_is_neither_current_nor_marked_offline(commune):
    now = timezone.now()
    sensor = make_sensor(
        commune, "jlt-air-01", expected_interval=None, state="online", last_seen=now - HOUR
    )
    assert not sensor.is_current(now - timedelta(seconds=1), now)
    assert Sensor.objects.mark_silent_offline(now) == []
    sensor.refresh_from_db()
    assert sensor.state == "online"


def test_a_counter_without_a_period_gives_a_count_but_no_flow(commune):
    now = timezone.now()
    counter = make_sensor(commune, "jlt-traffic-01", "traffic", expected_interval=None)
    timed = make_sensor(commune, "jlt-traffic-02", "traffic", expected_interval=60)
    for sensor in (counter, timed):
        LatestReading.objects.create(sensor=sensor, metric="vehicle_count", ts=now, value=10)

    class Fresh:  # every value current: the flow is what is tested
        def fresh_value(self, sensor, metric):
            return 10 if metric == "vehicle_count" else None

    traffic = traffic_kpi([counter, timed], Fresh())
    assert traffic["vehicles"] == 20 and traffic["flow_per_hour"] == 600
    assert {p["sensor"]: p["per_hour"] for p in traffic["points"]} == {
        "jlt-traffic-01": None,
        "jlt-traffic-02": 600,
    }


def test_the_sensor_page_and_api_say_the_period_is_not_set(client, operator, commune):
    make_sensor(commune, "jlt-air-01", expected_interval=None)
    sign_in(client, operator)
    page = client.get("/sensors/jlt-air-01/").content.decode()
    assert "non renseigné\u202f: fraîcheur et complétude non jugées" in page
    body = client.get("/api/v1/sensors/jlt-air-01/").json()
    assert body["expected_interval"] is None


def test_the_admin_accepts_a_sensor_without_a_period(admin_client, commune):
    sensor = make_sensor(commune, "jlt-air-01")
    page = admin_client.get(f"/admin/sensors/sensor/{sensor.pk}/change/")
    form = page.context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None}
    data |= {"expected_interval": "", "commune": commune.pk, "zones": []}
    data = {k: v for k, v in data.items() if k not in ("zones",)}
    response = admin_client.post(f"/admin/sensors/sensor/{sensor.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    sensor.refresh_from_db()
    assert sensor.expected_interval is None
