"""The alerts API and admin: alerts and operator actions, silences, rules, per role."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient

from alerts import triggers
from alerts.models import Alert, EventKind, Rule, Silence
from alerts.payloads import alert_summary, event_summary
from core.models import Notification, Webhook, WebhookDelivery
from sensors.models import Zone
from tests.alerting import T0, feed, make_rule
from tests.conftest import api_token, make_sensor, make_user, sign_in

ALERTS = "/api/v1/alerts/"
SILENCES = "/api/v1/silences/"
RULES = "/api/v1/rules/"
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # an hour after the alerts open (T0)


def alert_url(alert, action=""):
    return f"{ALERTS}{alert.pk}/{action + '/' if action else ''}"


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    sign_in(api, user)
    return api


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin-csu", is_staff=True)


@pytest.fixture
def rule(db):
    return make_rule()  # PM10 above 80 on every air sensor: a rule by kind


@pytest.fixture
def alert(sensor, rule):
    [opened] = feed(sensor, [85])
    return opened


@pytest.fixture
def ballan_sensor(other_commune):
    return make_sensor(other_commune, ref="bal-air-01")


@pytest.fixture
def ballan_alert(ballan_sensor, rule):
    [opened] = feed(ballan_sensor, [90])
    return opened


def open_alert(sensor, rule, *, opened_at=T0, severity="warning", **fields):
    """An alert written directly, for the tests that need many."""
    alert = Alert.objects.create(
        rule=rule,
        sensor=sensor,
        metric=rule.metric,
        severity=severity,
        title=f"{rule.name} — {sensor.name}",
        opened_at=opened_at,
        first_value=85,
        last_value=85,
        last_value_at=opened_at,
        peak_value=85,
        **fields,
    )
    alert.record(EventKind.OPENED, at=opened_at, value=85, text=alert.title)
    return alert


def ids(response):
    return [item["id"] for item in response.json()["results"]]


# --- Authentication and visibility ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", ALERTS),
        ("get", f"{ALERTS}1/"),
        ("post", f"{ALERTS}1/acknowledge/"),
        ("post", f"{ALERTS}1/resolve/"),
        ("post", f"{ALERTS}1/comments/"),
        ("get", SILENCES),
        ("post", SILENCES),
        ("delete", f"{SILENCES}1/"),
        ("get", RULES),
        ("post", RULES),
        ("get", f"{RULES}1/"),
        ("patch", f"{RULES}1/"),
        ("delete", f"{RULES}1/"),
    ],
)
def test_an_anonymous_caller_gets_401_on_every_endpoint(api, db, method, url):
    response = getattr(api, method)(url)

    assert response.status_code == 401


def test_a_token_authenticates_a_caller(api, operator, alert):
    token = api_token(operator)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api.get(ALERTS)

    assert response.status_code == 200
    assert ids(response) == [alert.pk]


def test_a_token_lets_an_operator_act(api, operator, alert):
    token = api_token(operator)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api.post(alert_url(alert, "acknowledge"), {}, format="json")

    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "operateur"


def test_an_operator_lists_only_the_alerts_of_their_communes(api, operator, alert, ballan_alert):
    response = as_user(api, operator).get(ALERTS)

    assert response.status_code == 200
    assert ids(response) == [alert.pk]


@pytest.mark.parametrize(
    ("method", "action"),
    [("get", ""), ("post", "acknowledge"), ("post", "resolve"), ("post", "comments")],
)
def test_an_operator_gets_404_on_an_alert_of_another_commune(
    api, operator, ballan_alert, method, action
):
    response = getattr(as_user(api, operator), method)(
        alert_url(ballan_alert, action), {"text": "Vu."}, format="json"
    )

    assert response.status_code == 404
    assert ballan_alert.events.count() == 1  # opened, nothing more


def test_an_operator_gets_404_on_an_unknown_alert(api, operator):
    assert as_user(api, operator).get(f"{ALERTS}999999/").status_code == 404


def test_a_metropole_operator_sees_and_handles_the_alerts_of_every_commune(
    api, metropole_operator, alert, ballan_alert
):
    as_user(api, metropole_operator)

    listed = api.get(ALERTS)
    acknowledged = api.post(alert_url(ballan_alert, "acknowledge"), {}, format="json")

    assert sorted(ids(listed)) == sorted([alert.pk, ballan_alert.pk])
    assert acknowledged.status_code == 200


def test_a_director_sees_no_alert(api, director, alert):
    as_user(api, director)

    assert ids(api.get(ALERTS)) == []
    assert api.get(alert_url(alert)).status_code == 404


@pytest.mark.parametrize("action", ["acknowledge", "resolve", "comments"])
def test_a_director_may_not_act_on_alerts(api, director, alert, action):
    response = as_user(api, director).post(alert_url(alert, action), {"text": "Vu."}, format="json")

    assert response.status_code == 403
    assert alert.events.count() == 1


def test_an_admin_sees_every_alert_and_may_act(api, staff, alert, ballan_alert):
    as_user(api, staff)

    listed = api.get(ALERTS)
    resolved = api.post(alert_url(ballan_alert, "resolve"), {"comment": "Fausse alerte."})

    assert sorted(ids(listed)) == sorted([alert.pk, ballan_alert.pk])
    assert resolved.status_code == 200
    assert resolved.json()["resolved_by"] == "admin-csu"


# --- The shape of an alert --------------------------------------------------------------


def same_instant(a, b) -> bool:
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(b)


def assert_same_as_summary(item: dict, alert: Alert):
    summary = alert_summary(alert)
    assert set(item) - {"timeline"} == set(summary)
    for key, value in summary.items():
        if key.endswith(("_at", "_until")) and value is not None:
            assert same_instant(item[key], value), key
        else:
            assert item[key] == value, key


def test_an_alert_has_the_keys_and_values_of_the_live_push_and_webhooks(api, operator, alert, rule):
    triggers.set_for(rule, "confinement")
    with time_machine.travel(NOW, tick=False):
        alert.acknowledge(by=operator, snooze=timedelta(minutes=30))
    alert.refresh_from_db()

    as_user(api, operator)
    [item] = api.get(ALERTS).json()["results"]
    detail = api.get(alert_url(alert)).json()

    assert "timeline" not in item
    assert_same_as_summary(item, alert)
    assert_same_as_summary(detail, alert)
    assert [set(event) for event in detail["timeline"]] == [
        set(event_summary(event)) for event in alert.events.all()
    ]
    assert item["opened_at"] == "2026-11-23T10:00:00Z"  # RFC 3339 in UTC, as the whole API
    assert item["snoozed_until"] == "2026-11-23T11:30:00Z"
    assert item["ppms_scenario"] == "confinement"


def test_the_timeline_lists_every_event_with_who_and_when(api, operator, alert):
    with time_machine.travel(NOW, tick=False):
        alert.acknowledge(by=operator, comment="Équipe prévenue.")
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        alert.comment(by=operator, text="Chantier à proximité.")

    timeline = as_user(api, operator).get(alert_url(alert)).json()["timeline"]

    assert [(e["kind"], e["user"], e["at"], e["text"]) for e in timeline] == [
        ("opened", None, "2026-11-23T10:00:00Z", alert.title),
        ("acknowledged", "operateur", "2026-11-23T11:00:00Z", "Équipe prévenue."),
        ("commented", "operateur", "2026-11-23T11:05:00Z", "Chantier à proximité."),
    ]
    assert timeline[0]["value"] == 85


# --- Filters, order, pagination, queries ------------------------------------------------


@pytest.fixture
def three_alerts(commune, rule):
    """A firing critical, an acknowledged warning, a resolved info: on three sensors."""
    sensors = [make_sensor(commune, ref=f"jlt-air-{n:02}") for n in range(1, 4)]
    firing = open_alert(sensors[0], rule, severity="critical", opened_at=T0)
    acknowledged = open_alert(
        sensors[1], rule, state="acknowledged", opened_at=T0 + timedelta(minutes=1)
    )
    resolved = open_alert(
        sensors[2], rule, severity="info", state="resolved", opened_at=T0 + timedelta(minutes=2)
    )
    return firing, acknowledged, resolved


def test_alerts_come_newest_first(api, operator, three_alerts):
    firing, acknowledged, resolved = three_alerts

    response = as_user(api, operator).get(ALERTS)

    assert ids(response) == [resolved.pk, acknowledged.pk, firing.pk]
    assert response.json()["count"] == 3


def test_alerts_filter_by_state_and_severity(api, operator, three_alerts):
    firing, acknowledged, _ = three_alerts
    as_user(api, operator)

    assert ids(api.get(ALERTS, {"state": "acknowledged"})) == [acknowledged.pk]
    assert ids(api.get(ALERTS, {"severity": "critical"})) == [firing.pk]
    assert ids(api.get(ALERTS, {"state": "resolved", "severity": "warning"})) == []


def test_attention_lists_open_alerts_and_warnings_resolved_unacknowledged(
    api, operator, commune, rule, three_alerts
):
    firing, acknowledged, _info = three_alerts
    missed = open_alert(
        make_sensor(commune, ref="jlt-air-04"),
        rule,
        state="resolved",
        opened_at=T0 + timedelta(minutes=3),
    )

    response = as_user(api, operator).get(ALERTS, {"attention": "true"})

    assert ids(response) == [missed.pk, acknowledged.pk, firing.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "open"}, "state"),
        ({"severity": "fatal"}, "severity"),
        ({"attention": "oui"}, "attention"),
    ],
)
def test_an_unknown_filter_value_is_a_400_naming_the_field(api, operator, params, field):
    response = as_user(api, operator).get(ALERTS, params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_an_unknown_state_is_explained_with_the_possible_values(api, operator):
    response = as_user(api, operator).get(ALERTS, {"state": "open"})

    [message] = response.json()["state"]
    assert "firing, acknowledged, resolved" in message


def test_the_alert_list_takes_a_constant_number_of_queries(
    api, operator, commune, rule, django_assert_max_num_queries
):
    def alerts_on(refs):
        for ref in refs:
            alert = open_alert(make_sensor(commune, ref=ref), rule)
            alert.acknowledge(by=operator, comment="Vu.")

    as_user(api, operator)
    alerts_on(["jlt-air-00"])
    with CaptureQueriesContext(connection) as one:
        assert len(ids(api.get(ALERTS))) == 1
    alerts_on([f"jlt-air-{n:02}" for n in range(1, 20)])

    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(ids(api.get(ALERTS))) == 20
    # 7 with the rules' PPMS triggers, which a process reads once per CONFIG_CACHE_S, and
    # the device that verified the session (django-otp).
    assert len(one.captured_queries) <= 8


def test_an_alert_detail_takes_a_constant_number_of_queries(
    api, operator, alert, django_assert_max_num_queries
):
    as_user(api, operator)
    with CaptureQueriesContext(connection) as few:
        api.get(alert_url(alert))
    for n in range(10):
        alert.comment(by=operator, text=f"Commentaire {n}")

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get(alert_url(alert)).json()["timeline"]) == 11


# --- Acknowledge, resolve, comment ------------------------------------------------------


def test_an_operator_acknowledges_and_the_timeline_shows_who_and_when(api, operator, alert):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            alert_url(alert, "acknowledge"), {"comment": "Équipe prévenue."}, format="json"
        )

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["acknowledged_by"], body["acknowledged_at"]) == (
        "acknowledged",
        "operateur",
        "2026-11-23T11:00:00Z",
    )
    assert body["snoozed_until"] is None
    last = body["timeline"][-1]
    assert (last["kind"], last["user"], last["at"], last["text"]) == (
        "acknowledged",
        "operateur",
        "2026-11-23T11:00:00Z",
        "Équipe prévenue.",
    )
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator


def test_an_acknowledgement_with_a_snooze_sets_the_reminder(api, operator, alert):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            alert_url(alert, "acknowledge"), {"snooze_minutes": 30}, format="json"
        )

    assert response.status_code == 200
    assert response.json()["snoozed_until"] == "2026-11-23T11:30:00Z"
    alert.refresh_from_db()
    assert alert.next_check_at == NOW + timedelta(minutes=30)
    assert "30 min" in response.json()["timeline"][-1]["text"]


@pytest.mark.parametrize("snooze", [0, -5, 1441, "bientôt", 1.5])
def test_a_snooze_outside_1_to_1440_minutes_is_a_400(api, operator, alert, snooze):
    response = as_user(api, operator).post(
        alert_url(alert, "acknowledge"), {"snooze_minutes": snooze}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["snooze_minutes"]
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_acknowledging_twice_is_a_400_that_writes_nothing(api, operator, metropole_operator, alert):
    as_user(api, operator).post(alert_url(alert, "acknowledge"), {}, format="json")

    response = as_user(api, metropole_operator).post(
        alert_url(alert, "acknowledge"), {}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Cette alerte est déjà acquittée."}
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator
    assert alert.events.filter(kind="acknowledged").count() == 1


def test_a_resolved_alert_can_be_acknowledged_but_not_snoozed(api, operator, alert):
    alert.resolve(text="Retour à la normale.")
    as_user(api, operator)

    snoozed = api.post(alert_url(alert, "acknowledge"), {"snooze_minutes": 10}, format="json")
    acknowledged = api.post(alert_url(alert, "acknowledge"), {}, format="json")

    assert snoozed.status_code == 400
    assert list(snoozed.json()) == ["snooze_minutes"]
    assert acknowledged.status_code == 200
    assert acknowledged.json()["state"] == "resolved"
    assert acknowledged.json()["needs_acknowledgement"] is False


def test_an_operator_resolves_by_hand_with_a_comment(api, operator, alert):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            alert_url(alert, "resolve"), {"comment": "Capteur nettoyé."}, format="json"
        )

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["resolved_by"], body["resolved_at"]) == (
        "resolved",
        "operateur",
        "2026-11-23T11:00:00Z",
    )
    last = body["timeline"][-1]
    assert (last["kind"], last["user"], last["at"], last["text"]) == (
        "resolved",
        "operateur",
        "2026-11-23T11:00:00Z",
        "Capteur nettoyé.",
    )


def test_resolving_twice_is_a_400(api, operator, alert):
    as_user(api, operator).post(alert_url(alert, "resolve"), {}, format="json")

    response = api.post(alert_url(alert, "resolve"), {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Cette alerte est déjà résolue."}
    assert alert.events.filter(kind="resolved").count() == 1


def test_an_operator_comments_and_the_timeline_shows_who_and_when(api, operator, alert):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            alert_url(alert, "comments"), {"text": "  Riverains appelés.  "}, format="json"
        )

    assert response.status_code == 200
    last = response.json()["timeline"][-1]
    assert (last["kind"], last["user"], last["at"], last["text"]) == (
        "commented",
        "operateur",
        "2026-11-23T11:00:00Z",
        "Riverains appelés.",
    )
    assert response.json()["state"] == "firing"  # a comment changes nothing else


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}])
def test_a_missing_blank_or_too_long_comment_is_a_400_on_text(api, operator, alert, body):
    response = as_user(api, operator).post(alert_url(alert, "comments"), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["text"]
    assert alert.events.count() == 1


def test_a_too_long_acknowledgement_comment_is_a_400_on_comment(api, operator, alert):
    response = as_user(api, operator).post(
        alert_url(alert, "acknowledge"), {"comment": "x" * 2001}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["comment"]


# --- Silences ---------------------------------------------------------------------------


def silence(target, *, by, starts_at=NOW, ends_at=NOW + timedelta(hours=2), **fields):
    key = "rule" if isinstance(target, Rule) else "sensor"
    return Silence.objects.create(
        **{key: target},
        starts_at=starts_at,
        ends_at=ends_at,
        reason="Maintenance",
        created_by=by,
        **fields,
    )


def test_an_operator_silences_a_sensor_of_their_commune_from_now(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            SILENCES,
            {"sensor": "jlt-air-01", "ends_at": "2026-11-23T14:00:00+01:00", "reason": "Nettoyage"},
            format="json",
        )

    assert response.status_code == 201
    body = response.json()
    assert body["sensor"] == "jlt-air-01"
    assert body["rule"] is None
    assert (body["starts_at"], body["ends_at"]) == ("2026-11-23T11:00:00Z", "2026-11-23T13:00:00Z")
    assert body["created_by"] == "operateur"
    created = Silence.objects.get()
    assert (created.sensor, created.created_by, created.starts_at) == (sensor, operator, NOW)


def test_a_sensor_outside_the_perimeter_cannot_be_silenced(api, operator, ballan_sensor):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            SILENCES,
            {"sensor": "bal-air-01", "ends_at": z(NOW + timedelta(hours=1)), "reason": "x"},
            format="json",
        )

    assert response.status_code == 400
    assert list(response.json()) == ["sensor"]
    assert not Silence.objects.exists()


def test_a_silence_names_a_sensor_or_a_rule_not_both(api, metropole_operator, sensor, rule):
    as_user(api, metropole_operator)
    ends_at = z(NOW + timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        both = api.post(
            SILENCES,
            {"sensor": "jlt-air-01", "rule": rule.pk, "ends_at": ends_at, "reason": "x"},
            format="json",
        )
        neither = api.post(SILENCES, {"ends_at": ends_at, "reason": "x"}, format="json")

    assert both.status_code == 400
    assert set(both.json()) == {"sensor", "rule"}
    assert neither.status_code == 400
    assert list(neither.json()) == ["sensor"]
    assert not Silence.objects.exists()


@pytest.mark.parametrize(
    ("times", "field"),
    [
        (
            {"starts_at": z(NOW + timedelta(hours=2)), "ends_at": z(NOW + timedelta(hours=1))},
            "ends_at",
        ),
        ({"starts_at": z(NOW), "ends_at": z(NOW)}, "ends_at"),
        ({"ends_at": z(NOW + timedelta(days=30, minutes=1))}, "ends_at"),
        ({"ends_at": z(NOW - timedelta(minutes=1))}, "ends_at"),
        ({}, "ends_at"),
        ({"ends_at": "demain"}, "ends_at"),
        ({"ends_at": "2026-11-23T14:00:00"}, "ends_at"),  # no offset
        ({"starts_at": "hier", "ends_at": z(NOW + timedelta(hours=1))}, "starts_at"),
    ],
)
def test_bad_silence_times_are_a_400_on_the_field(api, operator, sensor, times, field):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            SILENCES, {"sensor": "jlt-air-01", "reason": "x", **times}, format="json"
        )

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_silence_may_last_30_days(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            SILENCES,
            {"sensor": "jlt-air-01", "ends_at": z(NOW + timedelta(days=30)), "reason": "Travaux"},
            format="json",
        )

    assert response.status_code == 201


def test_a_silence_needs_a_reason(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).post(
            SILENCES,
            {"sensor": "jlt-air-01", "ends_at": z(NOW + timedelta(hours=1)), "reason": " "},
            format="json",
        )

    assert response.status_code == 400
    assert list(response.json()) == ["reason"]


def test_a_commune_operator_may_silence_a_rule_of_their_commune_only(
    api, operator, commune, other_commune, rule
):
    joue_rule = make_rule(name="PM10 Joué")
    joue_rule.communes.add(commune)
    both_rule = make_rule(name="PM10 Joué et Ballan")
    both_rule.communes.add(commune, other_commune)
    as_user(api, operator)

    def post(target):
        return api.post(
            SILENCES,
            {"rule": target.pk, "ends_at": z(NOW + timedelta(hours=1)), "reason": "Épisode connu"},
            format="json",
        )

    with time_machine.travel(NOW, tick=False):
        own, shared, everywhere = post(joue_rule), post(both_rule), post(rule)

    assert own.status_code == 201
    assert own.json()["rule"] == {"id": joue_rule.pk, "name": "PM10 Joué", "kind": "threshold"}
    # Muting these would mute Ballan's alerts too.
    assert (shared.status_code, list(shared.json())) == (400, ["rule"])
    assert (everywhere.status_code, list(everywhere.json())) == (400, ["rule"])


def test_a_commune_operator_may_silence_a_rule_of_a_zone_of_their_commune(
    api, operator, flood_zone, other_commune
):
    zone_rule = make_rule(name="PM10 zone inondable")
    zone_rule.zones.add(flood_zone)
    ballan_zone = Zone.objects.create(commune=other_commune, name="Centre")
    other_zone_rule = make_rule(name="PM10 Ballan centre")
    other_zone_rule.zones.add(ballan_zone)
    as_user(api, operator)

    with time_machine.travel(NOW, tick=False):
        own, other = (
            api.post(
                SILENCES,
                {"rule": r.pk, "ends_at": z(NOW + timedelta(hours=1)), "reason": "Travaux"},
                format="json",
            )
            for r in (zone_rule, other_zone_rule)
        )

    assert own.status_code == 201
    assert other.status_code == 400


def test_a_metropole_operator_may_silence_a_rule_by_kind(api, metropole_operator, rule):
    with time_machine.travel(NOW, tick=False):
        response = as_user(api, metropole_operator).post(
            SILENCES,
            {"rule": rule.pk, "ends_at": z(NOW + timedelta(hours=1)), "reason": "Épisode connu"},
            format="json",
        )

    assert response.status_code == 201


def test_the_silence_list_shows_current_and_future_ones_and_all_on_request(api, operator, sensor):
    past = silence(
        sensor, by=operator, starts_at=NOW - timedelta(days=2), ends_at=NOW - timedelta(days=1)
    )
    current = silence(sensor, by=operator, starts_at=NOW - timedelta(hours=1))
    future = silence(
        sensor, by=operator, starts_at=NOW + timedelta(days=1), ends_at=NOW + timedelta(days=2)
    )
    as_user(api, operator)

    with time_machine.travel(NOW, tick=False):
        default = api.get(SILENCES)
        everything = api.get(SILENCES, {"all": "true"})

    assert ids(default) == [future.pk, current.pk]
    assert ids(everything) == [future.pk, current.pk, past.pk]


def test_an_unknown_all_value_is_a_400(api, operator):
    response = as_user(api, operator).get(SILENCES, {"all": "peut-être"})

    assert response.status_code == 400
    assert list(response.json()) == ["all"]


def test_operators_see_silences_of_their_sensors_and_of_rules_by_kind(
    api, operator, other_operator, director, sensor, ballan_sensor, rule, staff
):
    joue = silence(sensor, by=operator)
    ballan = silence(ballan_sensor, by=other_operator)
    by_kind = silence(rule, by=staff)
    sensor_rule = make_rule(name="PM10 Ballan", sensor=ballan_sensor, sensor_kind="")
    on_ballan_rule = silence(sensor_rule, by=other_operator)

    def listed(user):
        with time_machine.travel(NOW, tick=False):
            return sorted(ids(as_user(APIClient(), user).get(SILENCES)))

    assert listed(operator) == sorted([joue.pk, by_kind.pk])
    assert listed(other_operator) == sorted([ballan.pk, by_kind.pk, on_ballan_rule.pk])
    assert listed(director) == []
    assert listed(staff) == sorted([joue.pk, ballan.pk, by_kind.pk, on_ballan_rule.pk])


def test_deleting_a_current_silence_ends_it_now(api, operator, sensor):
    current = silence(sensor, by=operator, starts_at=NOW - timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).delete(f"{SILENCES}{current.pk}/")

    assert response.status_code == 204
    current.refresh_from_db()
    assert current.ends_at == NOW  # kept: the history says when it was muted


def test_deleting_a_silence_that_has_not_started_removes_it(api, operator, sensor):
    future = silence(sensor, by=operator, starts_at=NOW + timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).delete(f"{SILENCES}{future.pk}/")

    assert response.status_code == 204
    assert not Silence.objects.exists()


def test_deleting_a_finished_silence_changes_nothing(api, operator, sensor):
    ends_at = NOW - timedelta(hours=1)
    past = silence(sensor, by=operator, starts_at=NOW - timedelta(hours=2), ends_at=ends_at)

    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).delete(f"{SILENCES}{past.pk}/")

    assert response.status_code == 204
    past.refresh_from_db()
    assert past.ends_at == ends_at


def test_an_operator_gets_404_on_a_silence_of_another_commune(
    api, operator, other_operator, ballan_sensor
):
    ballan = silence(ballan_sensor, by=other_operator)

    with time_machine.travel(NOW, tick=False):
        response = as_user(api, operator).delete(f"{SILENCES}{ballan.pk}/")

    assert response.status_code == 404
    ballan.refresh_from_db()
    assert ballan.ends_at == NOW + timedelta(hours=2)


def test_a_commune_operator_may_not_end_the_silence_of_a_rule_by_kind(
    api, operator, metropole_operator, rule, other_commune
):
    by_kind = silence(rule, by=metropole_operator)

    with time_machine.travel(NOW, tick=False):
        seen = as_user(api, operator).get(SILENCES)
        response = api.delete(f"{SILENCES}{by_kind.pk}/")

    assert ids(seen) == [by_kind.pk]
    assert response.status_code == 403
    by_kind.refresh_from_db()
    assert by_kind.ends_at == NOW + timedelta(hours=2)


def test_a_director_may_not_create_or_end_silences(api, director, operator, sensor):
    current = silence(sensor, by=operator, starts_at=NOW - timedelta(hours=1))
    as_user(api, director)

    with time_machine.travel(NOW, tick=False):
        created = api.post(
            SILENCES,
            {"sensor": "jlt-air-01", "ends_at": z(NOW + timedelta(hours=1)), "reason": "x"},
            format="json",
        )
        ended = api.delete(f"{SILENCES}{current.pk}/")

    assert (created.status_code, ended.status_code) == (403, 403)
    assert Silence.objects.count() == 1


# --- Rules ------------------------------------------------------------------------------


@pytest.fixture
def flood_rule_body(commune, flood_zone):
    hook = Webhook.objects.create(name="SDIS 37", url="https://sdis37.example/csu", secret="s")
    return {
        "name": "Crue du Cher",
        "kind": "threshold",
        "sensor_kind": "water",
        "zones": [flood_zone.pk],
        "communes": [commune.pk],
        "metric": "level",
        "condition": "above",
        "threshold": 3.5,
        "clear_threshold": 3.2,
        "duration_s": 600,
        "severity": "critical",
        "escalate_after_s": 3600,
        "renotify_after_s": 900,
        "days": [5, 6],
        "start_time": "22:00:00",
        "end_time": "06:00:00",
        "ppms_scenario": "shelter",
        "notify_emails": "astreinte@joue.example",
        "webhooks": [hook.pk],
    }


@pytest.mark.parametrize("who", ["operator", "metropole_operator", "director"])
@pytest.mark.parametrize(
    ("method", "url"),
    [("get", RULES), ("post", RULES), ("get", "one"), ("patch", "one"), ("delete", "one")],
)
def test_only_admins_manage_rules(api, request, rule, who, method, url):
    user = request.getfixturevalue(who)
    url = f"{RULES}{rule.pk}/" if url == "one" else url

    response = getattr(as_user(api, user), method)(url, {"name": "x"}, format="json")

    assert response.status_code == 403
    assert Rule.objects.filter(pk=rule.pk, name=rule.name).exists()


def test_an_admin_creates_reads_patches_and_deletes_a_rule(
    api, staff, sensor, flood_rule_body, flood_zone, commune
):
    as_user(api, staff)

    created = api.post(RULES, flood_rule_body, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    # The zones and communes asked by their ids are answered as references.
    assert {key: body[key] for key in flood_rule_body} == flood_rule_body | {
        "zones": [{"id": flood_zone.pk, "name": "Zone inondable du Cher", "type": "flood"}],
        "communes": [{"id": commune.pk, "insee_code": "37122", "name": "Joué-lès-Tours"}],
    }
    rule = Rule.objects.get(pk=body["id"])
    assert (rule.duration, rule.escalate_after, rule.renotify_after) == (
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(minutes=15),
    )
    assert list(rule.zones.all()) == [flood_zone]
    assert list(rule.communes.all()) == [commune]
    assert api.get(f"{RULES}{rule.pk}/").json() == body
    assert [item["id"] for item in api.get(RULES).json()["results"]] == [rule.pk]

    patched = api.patch(
        f"{RULES}{rule.pk}/",
        {"threshold": 4.0, "duration_s": 300, "zones": [], "window_s": None},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    rule.refresh_from_db()
    assert (rule.threshold, rule.duration, rule.clear_threshold) == (4.0, timedelta(minutes=5), 3.2)
    assert list(rule.zones.all()) == []

    deleted = api.delete(f"{RULES}{rule.pk}/")
    assert deleted.status_code == 204
    assert not Rule.objects.filter(pk=rule.pk).exists()


def test_a_rule_on_one_sensor_names_it_by_ref(api, staff, sensor):
    response = as_user(api, staff).post(
        RULES,
        {"name": "PM2.5 école", "sensor": "jlt-air-01", "metric": "pm25", "threshold": 50},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["sensor"] == "jlt-air-01"
    assert response.json()["duration_s"] == 0
    assert response.json()["renotify_after_s"] == 900
    assert Rule.objects.get(pk=response.json()["id"]).sensor == sensor


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"condition": "above"}, ["threshold"]),
        ({"condition": "above", "clear_threshold": 70}, ["threshold"]),
        ({"condition": "outside", "threshold": 6.5}, ["threshold_high"]),
        ({"condition": "outside", "threshold": 9, "threshold_high": 6.5}, ["threshold_high"]),
        ({"threshold": 80, "clear_threshold": 90}, ["clear_threshold"]),
        ({"threshold": 80, "metric": ""}, ["metric"]),
        ({"threshold": 80, "sensor_kind": ""}, ["sensor_kind"]),
        ({"threshold": 80, "sensor": "inconnu"}, ["sensor"]),
        ({"threshold": 80, "duration_s": -1}, ["duration_s"]),
        ({"threshold": 80, "days": [7]}, ["days"]),
        ({"threshold": 80, "severity": "grave"}, ["severity"]),
        ({"kind": "stuck"}, ["window_s"]),
        ({"kind": "atmo", "threshold": 8}, ["threshold"]),
        ({"kind": "rate", "rise": 0.5}, ["rise"]),
    ],
)
def test_an_invalid_rule_is_a_400_naming_the_fields(api, staff, body, fields):
    base = {"name": "PM10", "sensor_kind": "air", "metric": "pm10"}

    response = as_user(api, staff).post(RULES, base | body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()) == sorted(fields)
    assert not Rule.objects.exists()


def test_a_rule_is_validated_whole_on_a_patch(api, staff, rule):
    response = as_user(api, staff).patch(
        f"{RULES}{rule.pk}/", {"condition": "outside"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"threshold_high": ["Une plage a une borne haute."]}
    rule.refresh_from_db()
    assert rule.condition == "above"


def test_a_rule_with_alerts_cannot_be_deleted(api, staff, alert, rule):
    response = as_user(api, staff).delete(f"{RULES}{rule.pk}/")

    assert response.status_code == 409
    assert "active=false" in response.json()["detail"]
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_put_is_not_offered_on_rules(api, staff, rule):
    response = as_user(api, staff).put(f"{RULES}{rule.pk}/", {"name": "x"}, format="json")

    assert response.status_code == 405


# --- CAP routes (alerts/feeds.py) --------------------------------------------------------


def test_the_cap_document_and_feed_are_served_under_the_api(api, operator, alert, ballan_alert):
    as_user(api, operator)

    document = api.get(f"{ALERTS}{alert.pk}/cap/")
    outside = api.get(f"{ALERTS}{ballan_alert.pk}/cap/")
    feed_page = api.get("/api/v1/cap/feed/")

    assert document.status_code == 200
    assert document["Content-Type"].startswith("application/cap+xml")
    assert outside.status_code == 404
    assert feed_page.status_code == 200
    assert feed_page["Content-Type"].startswith("application/atom+xml")
    assert APIClient().get("/api/v1/cap/feed/").status_code == 401


# --- OpenAPI ----------------------------------------------------------------------------


def test_the_schema_builds_without_warnings(tmp_path):
    GENERATOR_STATS.reset()

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    schema = (tmp_path / "schema.yml").read_text()
    for path in (
        "/api/v1/alerts/{id}/acknowledge/",
        "/api/v1/silences/{id}/",
        "/api/v1/rules/{id}/",
    ):
        assert f"{path}:" in schema
    assert "duration_s:" in schema


# --- Admin ------------------------------------------------------------------------------


@pytest.fixture
def delivery(alert):
    hook = Webhook.objects.create(name="Préfecture", url="https://pref.example/csu", secret="s")
    payload = {"type": "alert", "alert": {"id": alert.pk}}
    return WebhookDelivery.objects.create(
        webhook=hook,
        notification=Notification.objects.create(
            topic="alert", event="opened", webhook_payload=payload
        ),
        payload=payload,
        status="failed",
        attempts=5,
        last_status_code=503,
        last_error="Service Unavailable",
    )


@pytest.mark.parametrize(
    "model",
    [
        "alerts/rule",
        "alerts/alert",
        "alerts/silence",
        "core/webhook",
        "core/webhookdelivery",
        "core/notification",
    ],
)
def test_the_admin_lists_each_model_of_the_alerts_app(
    admin_client, alert, delivery, operator, model
):
    silence(alert.sensor, by=operator)

    response = admin_client.get(f"/admin/{model}/")

    assert response.status_code == 200


def test_an_alert_is_read_only_in_the_admin_with_its_timeline(admin_client, alert, operator):
    alert.acknowledge(by=operator, comment="Équipe prévenue.")

    page = admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    changed = admin_client.post(f"/admin/alerts/alert/{alert.pk}/change/", {"title": "x"})

    assert page.status_code == 200
    assert "Équipe prévenue." in page.content.decode()
    assert "operateur" in page.content.decode()
    assert changed.status_code == 403
    assert admin_client.get("/admin/alerts/alert/add/").status_code == 403
    assert admin_client.get(f"/admin/alerts/alert/{alert.pk}/delete/").status_code == 403


def test_webhook_deliveries_are_a_read_only_log(admin_client, delivery):
    page = admin_client.get(f"/admin/core/webhookdelivery/{delivery.pk}/change/")

    assert page.status_code == 200
    assert "Service Unavailable" in page.content.decode()
    assert admin_client.get("/admin/core/webhookdelivery/add/").status_code == 403


def test_the_webhook_list_links_to_its_deliveries(admin_client, delivery):
    page = admin_client.get("/admin/core/webhook/").content.decode()

    assert f"webhook__id__exact={delivery.webhook_id}" in page


def test_the_rule_form_groups_its_fields(admin_client, rule):
    page = admin_client.get(f"/admin/alerts/rule/{rule.pk}/change/").content.decode()

    for legend in ("Portée", "Condition", "Durées", "Horaires", "Notifications", "PPMS"):
        assert legend in page


def test_a_rule_saved_in_the_admin_keeps_the_checked_days(admin_client, rule):
    page = admin_client.get(f"/admin/alerts/rule/{rule.pk}/change/")
    data = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if value is not None and key not in ("zones", "communes", "webhooks", "days", "sensor")
    }
    data |= {
        "days": ["5", "6"],
        "duration": "00:10:00",
        "renotify_after": "00:15:00",
        "start_time": "22:00",
        "end_time": "06:00",
    }

    response = admin_client.post(f"/admin/alerts/rule/{rule.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.days == [5, 6]


def test_a_silence_added_in_the_admin_records_who_created_it(admin_client, admin_user, sensor):
    response = admin_client.post(
        "/admin/alerts/silence/add/",
        {
            "sensor": sensor.pk,
            "starts_at_0": "23/11/2026",
            "starts_at_1": "12:00:00",
            "ends_at_0": "23/11/2026",
            "ends_at_1": "14:00:00",
            "reason": "Étalonnage",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Silence.objects.get().created_by == admin_user


def test_a_silence_without_target_is_refused_in_the_admin(admin_client):
    response = admin_client.post(
        "/admin/alerts/silence/add/",
        {
            "starts_at_0": "23/11/2026",
            "starts_at_1": "12:00:00",
            "ends_at_0": "23/11/2026",
            "ends_at_1": "11:00:00",
            "reason": "x",
        },
    )

    errors = response.context["adminform"].form.errors
    assert set(errors) == {"sensor", "ends_at"}
    assert not Silence.objects.exists()


@pytest.mark.parametrize(
    "field", ["duration_s", "window_s", "escalate_after_s", "renotify_after_s"]
)
@pytest.mark.parametrize("seconds", [366 * 86400 + 1, 10**20])
def test_a_rule_duration_over_a_year_is_a_400_on_the_field(api, staff, rule, field, seconds):
    # Found by the API fuzzer: the number overflowed the database (or timedelta) into a 500.
    response = as_user(api, staff).patch(f"{RULES}{rule.pk}/", {field: seconds}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
