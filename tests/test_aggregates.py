"""Rules on means (alerts/aggregates.py), with controlled readings rolled up by the hour."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from rest_framework.test import APIClient

from alerts.aggregates import evaluate_aggregates
from alerts.cap import alert_cap
from alerts.models import Alert, RuleState
from alerts.receivers import watched_metrics
from sensors.models import Reading
from sensors.rollups import rollup_hours, set_rollup_progress
from tests.alerting import feed, make_rule
from tests.conftest import make_sensor, sign_in

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# A Paris day two days ago: recent enough for PostgreSQL's daily partitions.
DAY = (datetime.now(PARIS) - timedelta(days=2)).date()
MIDNIGHT = datetime.combine(DAY, time(0), PARIS).astimezone(UTC)
NEXT_MIDNIGHT = datetime.combine(DAY + timedelta(days=1), time(0), PARIS).astimezone(UTC)
TEN = datetime.combine(DAY, time(10), PARIS).astimezone(UTC)


@pytest.fixture
def station(commune):
    return make_sensor(commune, "jlt-air-01", expected_interval=60)


def minutes(sensor, metric, start, values):
    """One reading a minute from ``start``."""
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=start + i * MINUTE, value=value)
        for i, value in enumerate(values)
    )


def roll_up_to(until):
    """Roll up the readings and move the watermark to ``until``, as the roll-up task does."""
    rollup_hours(MIDNIGHT - 26 * HOUR, until)
    set_rollup_progress(until)


def alerts_of(sensor):
    return list(Alert.objects.filter(sensor=sensor).order_by("pk"))


def no2_alert_rule(**fields):
    fields = {
        "name": "NO₂ seuil d'alerte",
        "metric": "no2",
        "threshold": 400,
        "aggregate": "hourly",
        "consecutive_hours": 3,
        "severity": "critical",
        **fields,
    }
    return make_rule(**fields)


def test_a_five_minute_spike_that_does_not_move_the_hourly_mean_opens_nothing(station):
    make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    minutes(station, "no2", TEN, [30] * 25 + [450] * 5 + [30] * 30)  # mean 65
    roll_up_to(TEN + HOUR)
    evaluate_aggregates()
    assert alerts_of(station) == []
    state = RuleState.objects.get(sensor=station)
    assert (state.last_value, state.coverage, state.no_mean) == (65, 1.0, "")


def test_three_consecutive_hourly_means_over_the_threshold_open_the_alert(station):
    no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 180)
    roll_up_to(TEN + 2 * HOUR)
    evaluate_aggregates()
    assert alerts_of(station) == []  # two hours only
    roll_up_to(TEN + 3 * HOUR)
    evaluate_aggregates()
    [alert] = alerts_of(station)
    assert alert.opened_at == TEN + 3 * HOUR  # when the third hourly mean is known
    assert alert.first_value == 420 and alert.severity == "critical"
    assert alert.title == "NO₂ seuil d'alerte — jlt-air-01\u202f: 420\xa0µg/m³ (moyenne horaire)"


def test_an_hour_without_enough_readings_breaks_the_run_of_consecutive_hours(station):
    no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 60)
    minutes(station, "no2", TEN + HOUR, [420] * 30)  # half an hour: 50 % < 75 %
    minutes(station, "no2", TEN + 2 * HOUR, [420] * 120)
    roll_up_to(TEN + 4 * HOUR)
    evaluate_aggregates()
    assert alerts_of(station) == []
    state = RuleState.objects.get(sensor=station)
    assert state.no_mean == ""  # the last hour had its mean
    roll_up_to(TEN + 5 * HOUR)
    evaluate_aggregates()  # the fourth hour has no reading at all
    state.refresh_from_db()
    assert state.coverage == 0 and state.no_mean.startswith("Pas de moyenne horaire le ")
    assert "de 14:00 à 15:00 (heure de Paris) : 0 % des mesures attendues" in state.no_mean


def test_a_day_with_too_few_readings_gives_no_daily_mean_and_says_so(station):
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    minutes(station, "pm10", TEN, [90] * 600)  # ten full hours of 24 (or 23, 25)
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    assert alerts_of(station) == []
    state = RuleState.objects.get(sensor=station)
    assert state.last_value is None
    assert state.no_mean.startswith("Pas de moyenne journalière jusqu'au ")
    assert "10 heures sur" in state.no_mean and "il en faut 75 %" in state.no_mean


def test_a_daily_mean_is_the_mean_of_the_hourly_means_of_the_paris_day(station):
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    hours = int((NEXT_MIDNIGHT - MIDNIGHT) / HOUR)
    for hour in range(hours):
        start = MIDNIGHT + hour * HOUR
        if start != TEN:
            minutes(station, "pm10", start, [45] * 60)
    # One hour sends every 6 s: one hourly mean of the day, not 600 readings of 1,980
    # (weighted by readings, the day would be at 61.7 and over the threshold).
    Reading.objects.bulk_create(
        Reading(sensor=station, metric="pm10", ts=TEN + i * timedelta(seconds=6), value=100)
        for i in range(600)
    )
    roll_up_to(NEXT_MIDNIGHT - HOUR)
    evaluate_aggregates()
    assert RuleState.objects.get(sensor=station).last_value is None  # the day is not over
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    assert alerts_of(station) == []
    state = RuleState.objects.get(sensor=station)
    assert state.last_value == round((45 * (hours - 1) + 100) / hours, 1)
    assert (state.last_ts, state.coverage) == (NEXT_MIDNIGHT, 1.0)


def test_a_daily_mean_over_the_threshold_opens_an_alert_at_the_end_of_the_paris_day(station):
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    minutes(station, "pm10", MIDNIGHT, [62] * int((NEXT_MIDNIGHT - MIDNIGHT) / MINUTE))
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    roll_up_to(NEXT_MIDNIGHT + 2 * HOUR)
    evaluate_aggregates()  # the next day's first hours judge nothing
    [alert] = alerts_of(station)
    assert (alert.first_value, alert.opened_at, alert.state) == (62, NEXT_MIDNIGHT, "firing")
    assert alert.title.endswith("(moyenne journalière)")


def test_a_sliding_daily_mean_is_judged_every_hour(station):
    make_rule(name="PM10 information", threshold=50, aggregate="daily", daily_window="sliding")
    minutes(station, "pm10", TEN - 24 * HOUR, [60] * 24 * 60)
    roll_up_to(TEN)
    evaluate_aggregates()
    [alert] = alerts_of(station)
    assert alert.first_value == 60 and alert.opened_at == TEN


def test_an_eight_hour_mean_needs_six_hours_of_eight(station):
    make_rule(name="O₃ valeur cible", metric="o3", threshold=120, aggregate="8h")
    for hour in range(6):
        minutes(station, "o3", TEN + hour * HOUR, [130] * 60)
    roll_up_to(TEN + 8 * HOUR)
    evaluate_aggregates()
    [alert] = alerts_of(station)
    assert alert.first_value == 130
    assert RuleState.objects.get(sensor=station).coverage == 6 / 8


def test_rules_on_means_are_not_evaluated_from_ingest_batches(station):
    make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    raw = make_rule(name="PM10 technique", threshold=80)
    assert watched_metrics() == {"pm10"}  # ingest records nothing for the means
    feed(station, [450], metric="no2", start=TEN)
    feed(station, [95], start=TEN)
    minutes(station, "no2", TEN, [450])
    roll_up_to(TEN + HOUR)
    evaluate_aggregates()  # one reading of the 60 expected: no hourly mean
    [alert] = alerts_of(station)
    assert alert.rule == raw


def test_judging_the_same_hours_twice_changes_nothing(station):
    no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 180)
    roll_up_to(TEN + 3 * HOUR)
    evaluate_aggregates()
    evaluate_aggregates()
    assert len(alerts_of(station)) == 1


def test_an_alert_on_a_mean_resolves_when_an_hourly_mean_falls_back(station):
    no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 180 + [100] * 60)
    roll_up_to(TEN + 3 * HOUR)
    evaluate_aggregates()
    roll_up_to(TEN + 4 * HOUR)
    evaluate_aggregates()
    [alert] = alerts_of(station)
    assert alert.state == "resolved" and alert.last_value == 100


# --- Bad input --------------------------------------------------------------------------------


def test_a_completeness_above_100_percent_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as error:
        make_rule(aggregate="hourly", completeness=101)
    assert "completeness" in error.value.message_dict


def test_a_mean_of_a_state_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as error:
        make_rule(
            sensor_kind="opening",
            metric="open",
            condition="equals",
            threshold=1,
            aggregate="hourly",
        )
    [message] = error.value.message_dict["aggregate"]
    assert "« open » n'a pas de moyenne horaire" in message


def test_consecutive_hours_are_refused_on_a_raw_reading_rule():
    with pytest.raises(ValidationError) as error:
        make_rule(consecutive_hours=3)
    assert "consecutive_hours" in error.value.message_dict


def test_the_api_refuses_a_mean_of_a_state_and_a_completeness_over_100(admin_user):
    client = APIClient()
    sign_in(client, admin_user)
    rule = {
        "name": "Porte",
        "kind": "threshold",
        "sensor_kind": "opening",
        "metric": "open",
        "condition": "equals",
        "threshold": 1,
        "aggregate": "hourly",
        "completeness": 120,
    }
    response = client.post("/api/v1/rules/", rule, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"aggregate", "completeness"}


def test_the_api_creates_a_rule_on_three_consecutive_hourly_means(admin_user):
    client = APIClient()
    sign_in(client, admin_user)
    rule = {
        "name": "NO₂ seuil d'alerte",
        "kind": "threshold",
        "sensor_kind": "air",
        "metric": "no2",
        "threshold": 400,
        "aggregate": "hourly",
        "consecutive_hours": 3,
    }
    response = client.post("/api/v1/rules/", rule, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["aggregate"], body["consecutive_hours"], body["completeness"]) == (
        "hourly",
        3,
        75,
    )


def test_an_open_alert_whose_mean_goes_missing_stays_open_and_its_timeline_says_why(station):
    no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 180)
    roll_up_to(TEN + 3 * HOUR)
    evaluate_aggregates()
    roll_up_to(TEN + 5 * HOUR)  # two hours without a reading
    evaluate_aggregates()
    [alert] = alerts_of(station)
    assert alert.state == "firing"
    events = list(alert.events.values_list("kind", "user", "text"))
    assert len(events) == 2  # opened, then one line for the gap, not one per hour
    kind, user, text = events[1]
    assert (kind, user) == ("commented", None)
    assert text.startswith("Pas de moyenne horaire le ")


def test_the_rule_admin_shows_each_sensor_s_last_mean_and_why_one_is_missing(admin_client, station):
    rule = make_rule(name="PM10 information", threshold=50, aggregate="daily")
    minutes(station, "pm10", TEN, [90] * 600)
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    page = admin_client.get(f"/admin/alerts/rule/{rule.pk}/change/").content.decode()
    assert "Dernières moyennes" in page
    assert "jlt-air-01" in page and "Pas de moyenne journalière jusqu&#x27;au" in page


def test_the_rule_admin_refuses_a_completeness_over_100_on_its_field(admin_client):
    rule = make_rule(name="PM10 information", threshold=50, aggregate="daily")
    page = admin_client.get(f"/admin/alerts/rule/{rule.pk}/change/")
    data = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if value is not None and key not in ("zones", "communes", "webhooks", "days", "sensor")
    }
    data |= {"completeness": "150", "renotify_after": "00:15:00", "duration": "00:00:00"}
    response = admin_client.post(f"/admin/alerts/rule/{rule.pk}/change/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["completeness"]
    assert "ne peut dépasser 100 %" in errors["completeness"][0]


def test_the_cap_text_of_an_alert_on_a_mean_names_the_mean_and_when_it_ends(station):
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    minutes(station, "pm10", MIDNIGHT, [62.5] * int((NEXT_MIDNIGHT - MIDNIGHT) / MINUTE))
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    [alert] = alerts_of(station)
    with translation.override("en"):
        document = alert_cap(alert).decode()
    end = NEXT_MIDNIGHT.astimezone(PARIS)
    assert (
        "PM10 en moyenne journalière : 63\xa0µg/m³ "
        f"jusqu'au {end:%d/%m/%Y} à 00:00 (heure de Paris)" in document
    )


def test_the_rule_list_tells_raw_reading_rules_from_rules_on_means(admin_client):
    make_rule(name="PM10 information", threshold=50, aggregate="daily")
    make_rule(name="PM10 technique", threshold=80)

    page = admin_client.get("/admin/alerts/rule/?aggregate=daily").content.decode()

    assert "PM10 information" in page and "PM10 technique" not in page
    assert "moyenne journalière" in page


# --- The rule's state in the API --------------------------------------------------------------


def rule_states(admin_user, rule):
    client = APIClient()
    sign_in(client, admin_user)
    response = client.get(f"/api/v1/rules/{rule.pk}/")
    assert response.status_code == 200
    return {state["sensor"]: state for state in response.json()["states"]}


def test_the_api_gives_each_sensor_s_last_mean_with_its_window_and_completeness(
    admin_user, station
):
    rule = make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    assert rule_states(admin_user, rule)["jlt-air-01"]["status"] == "not_judged"
    minutes(station, "no2", TEN, [30] * 25 + [450] * 5 + [30] * 30)  # mean 65
    roll_up_to(TEN + HOUR)
    evaluate_aggregates()
    state = rule_states(admin_user, rule)["jlt-air-01"]
    assert state == {
        "sensor": "jlt-air-01",
        "status": "normal",
        "value": 65,
        "window_start": TEN.isoformat().replace("+00:00", "Z"),
        "window_end": (TEN + HOUR).isoformat().replace("+00:00", "Z"),
        "completeness": 100.0,
        "judged_until": (TEN + HOUR).isoformat().replace("+00:00", "Z"),
        "cannot_judge": None,
        "alert": None,
    }


def test_the_api_says_a_run_of_hours_pending_then_firing_with_its_alert(admin_user, station):
    rule = no2_alert_rule()
    minutes(station, "no2", TEN, [420] * 180)
    roll_up_to(TEN + 2 * HOUR)
    evaluate_aggregates()
    assert rule_states(admin_user, rule)["jlt-air-01"]["status"] == "pending"
    roll_up_to(TEN + 3 * HOUR)
    evaluate_aggregates()
    state = rule_states(admin_user, rule)["jlt-air-01"]
    [alert] = alerts_of(station)
    assert (state["status"], state["alert"], state["value"]) == ("firing", alert.pk, 420)


def test_the_api_gives_the_calendar_day_of_the_last_daily_mean(admin_user, station):
    rule = make_rule(name="PM10 information", threshold=50, aggregate="daily")
    minutes(station, "pm10", MIDNIGHT, [40] * int((NEXT_MIDNIGHT - MIDNIGHT) / MINUTE))
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    roll_up_to(NEXT_MIDNIGHT + 3 * HOUR)  # three hours of the next day judged since
    evaluate_aggregates()
    state = rule_states(admin_user, rule)["jlt-air-01"]
    assert state["value"] == 40 and state["status"] == "normal"
    assert state["window_start"] == MIDNIGHT.isoformat().replace("+00:00", "Z")
    assert state["window_end"] == NEXT_MIDNIGHT.isoformat().replace("+00:00", "Z")


def test_the_api_says_why_a_mean_cannot_be_judged(admin_user, station, commune):
    rule = make_rule(name="PM10 information", threshold=50, aggregate="daily")
    make_sensor(commune, "jlt-air-02", expected_interval=None)
    minutes(station, "pm10", TEN, [90] * 600)  # ten hours of the day
    roll_up_to(NEXT_MIDNIGHT)
    evaluate_aggregates()
    states = rule_states(admin_user, rule)
    incomplete, no_period = states["jlt-air-01"], states["jlt-air-02"]
    assert (incomplete["status"], incomplete["value"]) == ("cannot_judge", None)
    assert incomplete["cannot_judge"]["reason"] == "incomplete"
    assert incomplete["cannot_judge"]["message"].startswith("Pas de moyenne journalière")
    assert no_period["status"] == "cannot_judge"
    assert no_period["cannot_judge"] == {
        "reason": "no_period",
        "message": "Complétude impossible à juger : le capteur n'a pas de période "
        "(intervalle attendu), aucune moyenne n'est comparée.",
    }
    assert not Alert.objects.filter(sensor__ref="jlt-air-02").exists()


def test_the_rule_state_may_not_be_written(admin_user, station):
    rule = make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    client = APIClient()
    sign_in(client, admin_user)
    response = client.patch(
        f"/api/v1/rules/{rule.pk}/", {"states": [{"sensor": "x"}], "threshold": 210}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["threshold"] == 210
    assert response.json()["states"][0]["sensor"] == "jlt-air-01"


def test_an_operator_may_not_read_the_rules_and_their_states(client, operator):
    rule = make_rule(name="NO₂ information", metric="no2", threshold=200, aggregate="hourly")
    api = APIClient()
    sign_in(api, operator)
    assert api.get(f"/api/v1/rules/{rule.pk}/").status_code == 403


def test_the_api_refuses_raising_a_rule_s_completeness_over_100_under_its_field(admin_user):
    rule = no2_alert_rule()
    client = APIClient()
    sign_in(client, admin_user)
    response = client.patch(f"/api/v1/rules/{rule.pk}/", {"completeness": 101}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "completeness": ["La complétude exigée est un pourcentage : elle ne peut dépasser 100 %."]
    }


def test_the_api_refuses_a_mean_of_a_metric_the_sensor_kind_has_not(admin_user):
    client = APIClient()
    sign_in(client, admin_user)
    rule = {
        "name": "Débit moyen",
        "kind": "threshold",
        "sensor_kind": "air",
        "metric": "flow",
        "threshold": 10,
        "aggregate": "daily",
    }
    response = client.post("/api/v1/rules/", rule, format="json")
    assert response.status_code == 400
    [message] = response.json()["aggregate"]
    assert message.startswith("La grandeur « flow » n'a pas de moyenne horaire")


def test_the_api_gives_a_raw_reading_rule_s_last_reading_without_a_window(admin_user, station):
    rule = make_rule()  # PM10 over 80, raw readings
    feed(station, [70])
    state = rule_states(admin_user, rule)["jlt-air-01"]
    assert (state["status"], state["value"], state["window_start"]) == ("normal", 70, None)
    assert (state["completeness"], state["cannot_judge"]) == (None, None)
    feed(station, [(datetime.now(UTC), 95)])
    state = rule_states(admin_user, rule)["jlt-air-01"]
    assert (state["status"], state["value"]) == ("firing", 95)
