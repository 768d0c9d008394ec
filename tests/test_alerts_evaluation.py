"""Threshold rules and the alert lifecycle, with time controlled."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from alerts.evaluation import Evaluation, Observation
from alerts.lifecycle import check_due_alerts, offline_rules_follow
from alerts.models import Alert, AlertEvent, Silence
from alerts.schedule import in_schedule
from core.models import Notification
from core.outbox import dispatch_pending as dispatch_pending_events
from tests.alerting import T0, feed, make_rule
from tests.conftest import make_sensor


@pytest.fixture
def station(commune):
    return make_sensor(commune, "jlt-air-01")


def alerts_of(sensor):
    return list(Alert.objects.filter(sensor=sensor).order_by("pk"))


def test_it_opens_when_the_value_crosses_and_resolves_past_the_clearing_threshold(station):
    make_rule(threshold=80, clear_threshold=70)
    feed(station, [60, 85, 75, 72])
    [alert] = alerts_of(station)
    assert alert.state == "firing"  # 75 and 72 are still above the clearing threshold
    feed(station, [65], start=T0 + timedelta(minutes=10))
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert (alert.first_value, alert.peak_value, alert.last_value) == (85, 85, 65)
    kinds = list(alert.events.values_list("kind", flat=True))
    assert kinds == ["opened", "resolved"]


def test_it_waits_for_the_condition_to_hold_for_the_rule_duration(station):
    make_rule(duration=timedelta(minutes=10))
    feed(station, [85, 86, 70, 90, 91])  # a dip at minute 2 resets the wait
    assert alerts_of(station) == []
    feed(station, [(T0 + timedelta(minutes=12, seconds=59), 92)])
    assert alerts_of(station) == []
    feed(station, [(T0 + timedelta(minutes=13), 93)])  # held 10 min since 3'
    [alert] = alerts_of(station)
    assert alert.first_value == 93


def test_a_value_flapping_around_the_threshold_does_not_open_fifty_alerts(station):
    make_rule(threshold=80)
    feed(station, [79, 81] * 25)
    alerts = alerts_of(station)
    assert len(alerts) <= 2
    assert alerts[-1].flapping and alerts[-1].state == "firing"
    assert AlertEvent.objects.filter(kind="flapping").count() == 1


def test_a_flapping_alert_resolves_once_the_value_stayed_quiet(station):
    make_rule(threshold=80)
    feed(station, [79, 81] * 5 + [70])
    alert = alerts_of(station)[-1]
    assert alert.flapping and alert.cleared_at is not None
    check_due_alerts(alert.cleared_at + timedelta(minutes=16))
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_crossing_after_a_resolve_opens_a_new_alert(station):
    make_rule(threshold=80)
    feed(station, [90, 50], start=T0)
    feed(station, [95], start=T0 + timedelta(hours=2))
    first, second = alerts_of(station)
    assert first.state == "resolved" and second.state == "firing"


def test_late_and_replayed_readings_change_nothing(station):
    make_rule(threshold=80)
    feed(station, [90], start=T0)
    feed(station, [50], start=T0 - timedelta(minutes=5))  # late: older than what decided
    [alert] = alerts_of(station)
    assert alert.state == "firing"
    batch = [Observation(station.pk, "pm10", T0 + timedelta(minutes=1), 95)]
    Evaluation().run(batch)
    Evaluation().run(batch)  # the same batch twice (a task retried)
    assert len(alerts_of(station)) == 1
    assert AlertEvent.objects.count() == 1


def test_out_of_order_readings_within_a_batch_are_taken_in_time_order(station):
    make_rule(threshold=80)
    Evaluation().run(
        [
            Observation(station.pk, "pm10", T0 + timedelta(minutes=2), 50),
            Observation(station.pk, "pm10", T0, 90),
        ]
    )
    [alert] = alerts_of(station)
    assert alert.state == "resolved"  # 90 then 50, not 50 then 90


def test_the_database_refuses_a_second_open_alert_for_a_rule_and_sensor(station):
    rule = make_rule()
    Alert.objects.create(rule=rule, sensor=station, severity="warning", title="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule=rule, sensor=station, severity="warning", title="b")
    Alert.objects.create(rule=rule, sensor=station, severity="warning", title="c", state="resolved")


def test_below_and_outside_conditions(commune):
    chlorine = make_sensor(commune, "jlt-water-01", kind="water")
    make_rule(
        name="Chlore",
        sensor_kind="water",
        metric="chlorine",
        condition="below",
        threshold=0.1,
        clear_threshold=0.2,
    )
    make_rule(
        name="pH",
        sensor_kind="water",
        metric="ph",
        condition="outside",
        threshold=6.5,
        threshold_high=9,
    )
    feed(chlorine, [0.3, 0.05, 0.15], metric="chlorine")
    feed(chlorine, [7.5, 9.4], metric="ph")
    by_metric = {a.metric: a for a in alerts_of(chlorine)}
    assert by_metric["chlorine"].state == "firing" and by_metric["chlorine"].peak_value == 0.05
    assert by_metric["ph"].state == "firing"


def test_a_state_rule_fires_on_a_door_open_at_night_only(commune):
    door = make_sensor(commune, "jlt-opening-01", kind="opening")
    make_rule(
        name="Porte ouverte la nuit",
        sensor_kind="opening",
        metric="open",
        condition="equals",
        threshold=1,
        start_time=time(22),
        end_time=time(6),
    )
    noon = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Paris
    feed(door, [1, 0], metric="open", start=noon)
    assert alerts_of(door) == []
    night = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    feed(door, [1], metric="open", start=night)
    assert len(alerts_of(door)) == 1


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-27 21:59", False),  # Friday before the window
        ("2026-11-27 22:00", True),  # Friday night
        ("2026-11-28 03:00", True),  # after midnight: still Friday's night
        ("2026-11-28 06:00", False),
        ("2026-11-28 23:00", False),  # Saturday night is not in the rule
        ("2026-03-27 23:30", True),  # the Friday before the spring DST change
        ("2026-03-28 05:59", True),
        ("2026-10-23 22:30", True),  # the Friday before the autumn DST change
    ],
)
def test_a_schedule_across_midnight_follows_paris_time(local, expected):
    from zoneinfo import ZoneInfo

    from alerts.models import Rule

    rule = Rule(days=[4], start_time=time(22), end_time=time(6))  # Friday nights
    moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/Paris"))
    assert in_schedule(rule, moment) is expected


def test_a_schedule_window_is_in_local_time_on_both_sides_of_a_dst_change():
    from alerts.models import Rule

    rule = Rule(start_time=time(8), end_time=time(9))
    summer = datetime(2026, 10, 24, 6, 30, tzinfo=UTC)  # 08:30 CEST
    winter = datetime(2026, 10, 26, 7, 30, tzinfo=UTC)  # 08:30 CET
    assert in_schedule(rule, summer) and in_schedule(rule, winter)
    assert not in_schedule(rule, datetime(2026, 10, 26, 6, 30, tzinfo=UTC))  # 07:30 CET


def test_an_offline_sensor_opens_its_offline_alert_and_inhibits_its_thresholds(station):
    offline_rule = make_rule(
        name="Capteur hors ligne", kind="offline", metric="", threshold=None, sensor_kind=""
    )
    make_rule(threshold=80)
    station.state = "offline"
    station.save()
    offline_rules_follow(station.pk, "offline")
    feed(station, [120])
    [alert] = alerts_of(station)
    assert alert.rule == offline_rule
    offline_rules_follow(station.pk, "online")
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_stuck_value_opens_an_alert_after_the_window(station):
    make_rule(name="Valeur figée", kind="stuck", window=timedelta(minutes=30), threshold=None)
    feed(station, [42.0] * 31)
    assert alerts_of(station) != [] and alerts_of(station)[0].state == "firing"
    feed(station, [43.0], start=T0 + timedelta(minutes=40))
    assert alerts_of(station)[0].state == "resolved"


def test_a_fast_rising_river_opens_a_rate_alert(commune):
    river = make_sensor(commune, "jlt-river-01", kind="water")
    make_rule(
        name="Montée rapide du Cher",
        kind="rate",
        sensor_kind="water",
        metric="level",
        rise=0.3,
        window=timedelta(minutes=30),
        threshold=None,
    )
    feed(river, [1.50, 1.52, 1.51, 1.55], metric="level", step=timedelta(minutes=10))
    assert alerts_of(river) == []
    feed(
        river,
        [1.70, 1.90],
        metric="level",
        start=T0 + timedelta(minutes=40),
        step=timedelta(minutes=10),
    )
    [alert] = alerts_of(river)
    assert alert.state == "firing"


def test_a_rule_raises_its_severity_when_the_condition_holds_long(station):
    make_rule(escalate_after=timedelta(minutes=30))
    feed(station, [90] * 31)
    [alert] = alerts_of(station)
    assert alert.severity == "critical"
    assert alert.events.filter(kind="escalated").count() == 1


def test_a_critical_alert_left_unacknowledged_is_notified_again(station):
    make_rule(severity="critical", renotify_after=timedelta(minutes=15))
    feed(station, [90])
    [alert] = alerts_of(station)
    assert check_due_alerts(T0 + timedelta(minutes=10))["renotified"] == 0
    assert check_due_alerts(T0 + timedelta(minutes=16))["renotified"] == 1
    assert alert.events.filter(kind="renotified").count() == 1


def test_a_snoozed_acknowledgement_comes_back_if_still_firing(station, operator):
    make_rule()
    feed(station, [90])
    [alert] = alerts_of(station)
    alert.acknowledge(
        by=operator,
        comment="Vu, équipe envoyée",
        snooze=timedelta(minutes=20),
        now=T0 + timedelta(minutes=1),
    )
    assert alert.state == "acknowledged"
    check_due_alerts(T0 + timedelta(minutes=22))
    alert.refresh_from_db()
    assert alert.state == "firing"
    assert list(alert.events.values_list("kind", flat=True)) == [
        "opened",
        "acknowledged",
        "renotified",
    ]


def test_an_alert_that_resolved_by_itself_stays_visible_until_acknowledged(station, operator):
    make_rule(severity="warning")
    feed(station, [90, 50])
    [alert] = alerts_of(station)
    assert alert.state == "resolved"
    assert Alert.objects.needing_attention().filter(pk=alert.pk).exists()
    alert.acknowledge(by=operator)
    assert not Alert.objects.needing_attention().filter(pk=alert.pk).exists()


def test_operator_actions_are_recorded_with_who_and_when(station, operator):
    make_rule()
    feed(station, [90])
    [alert] = alerts_of(station)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        alert.comment(by=operator, text="Pompiers prévenus")
        alert.resolve(by=operator, text="Capteur remplacé")
    events = list(alert.events.filter(user=operator).values_list("kind", "text", "at"))
    assert events == [
        ("commented", "Pompiers prévenus", T0 + timedelta(minutes=5)),
        ("resolved", "Capteur remplacé", T0 + timedelta(minutes=5)),
    ]


def test_a_silenced_sensor_is_evaluated_and_recorded_but_not_notified(
    station, operator, mailoutbox
):
    make_rule(notify_emails="securite@joue-les-tours.fr")
    Silence.objects.create(
        sensor=station,
        starts_at=T0 - timedelta(hours=1),
        ends_at=T0 + timedelta(hours=1),
        reason="Maintenance",
        created_by=operator,
    )
    feed(station, [90])
    dispatch_pending_events()
    event = AlertEvent.objects.get(kind="opened")
    assert event.muted and Notification.objects.get().notified_at is not None
    assert mailoutbox == []


def test_an_opened_alert_is_mailed_to_the_rule_targets_once(station, mailoutbox):
    make_rule(notify_emails="securite@joue-les-tours.fr\nastreinte@joue-les-tours.fr")
    feed(station, [90])
    assert dispatch_pending_events() == 1
    assert dispatch_pending_events() == 0
    [mail] = mailoutbox
    assert mail.to == ["securite@joue-les-tours.fr", "astreinte@joue-les-tours.fr"]
    assert "PM10" in mail.subject and "90" in mail.body


def test_a_rule_only_applies_within_its_zones_and_communes(commune, other_commune, flood_zone):
    inside = make_sensor(commune, "jlt-air-01")
    inside.zones.add(flood_zone)
    outside = make_sensor(commune, "jlt-air-02")
    elsewhere = make_sensor(other_commune, "bal-air-01")
    rule = make_rule()
    rule.zones.add(flood_zone)
    for sensor in (inside, outside, elsewhere):
        feed(sensor, [90])
    assert [a.sensor for a in Alert.objects.all()] == [inside]


def test_an_unknown_metric_in_a_rule_is_a_clear_error():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        make_rule(metric="", threshold=None)
    assert set(error.value.message_dict) == {"metric", "threshold"}


def test_now_is_utc_aware():
    assert T0.tzinfo is UTC


def test_the_atmo_rule_fires_on_the_estimated_index_of_background_stations_only(station):
    from zoneinfo import ZoneInfo

    from alerts.lifecycle import evaluate_atmo_index
    from sensors.models import Reading

    make_rule(name="Indice ATMO mauvais", kind="atmo", metric="", threshold=4)
    station.station_type = "background"
    station.save()
    roadside = make_sensor(station.commune, "jlt-air-02", station_type="traffic")
    paris = ZoneInfo("Europe/Paris")  # a recent Paris noon: today is not covered enough
    now = datetime.now(paris).replace(hour=12, minute=0, second=0, microsecond=0)
    if now > datetime.now(UTC):
        now -= timedelta(days=1)
    yesterday = (now - timedelta(days=1)).replace(hour=0)
    minutes = int((now.replace(hour=0) - yesterday).total_seconds() // 60)
    for sensor in (station, roadside):  # PM10 mean of yesterday's hourly means 65: class 4
        Reading.objects.bulk_create(
            Reading(sensor=sensor, metric="pm10", ts=yesterday + timedelta(minutes=m), value=65)
            for m in range(minutes)
        )
    assert evaluate_atmo_index(now) == 1
    [alert] = alerts_of(station)
    assert alert.metric == "atmo" and alert.last_value == 4
    assert alerts_of(roadside) == []


def test_the_catch_up_evaluates_latest_values_missed_while_redis_was_away(station):
    from alerts.lifecycle import evaluate_latest_values
    from sensors.models import LatestReading

    make_rule(threshold=80)
    LatestReading.objects.create(sensor=station, metric="pm10", ts=T0, value=97)
    assert evaluate_latest_values() == 1
    assert evaluate_latest_values() == 0  # already evaluated: nothing new
    [alert] = alerts_of(station)
    assert alert.last_value == 97


def test_a_rolled_back_transaction_does_not_stop_later_notifications(
    station, mailoutbox, django_capture_on_commit_callbacks
):
    from django.db import transaction

    make_rule(notify_emails="securite@joue-les-tours.fr")
    with pytest.raises(RuntimeError), transaction.atomic():
        feed(station, [90])
        raise RuntimeError("the batch failed")
    with django_capture_on_commit_callbacks(execute=True):
        feed(station, [95], start=T0 + timedelta(hours=1))
    assert len(mailoutbox) == 1


def test_an_alert_title_gives_the_value_as_the_tiles_do_in_french(commune):
    gauge = make_sensor(commune, "jlt-river-01", kind="water", name="Niveau du Cher - amont")
    make_rule(name="Crue palier 1", sensor_kind="water", metric="level", threshold=4.2)
    feed(gauge, [4.579], metric="level")
    [alert] = alerts_of(gauge)
    assert alert.title == "Crue palier 1 — Niveau du Cher - amont\u202f: 4,58\u00a0m"


def test_an_alert_title_is_french_even_when_english_was_active(commune):
    from django.utils import translation

    gauge = make_sensor(commune, "jlt-river-01", kind="water", name="Niveau du Cher - amont")
    make_rule(name="Crue palier 1", sensor_kind="water", metric="level", threshold=4.2)
    with translation.override("en"):
        feed(gauge, [4.579], metric="level")
    [alert] = alerts_of(gauge)
    assert alert.title.endswith("\u202f: 4,58\u00a0m")
