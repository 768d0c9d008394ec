"""Incidents: alerts sharing a cause grouped where they are raised (alerts/incidents.py)."""

from datetime import timedelta

import pytest

from alerts.evaluation import Evaluation, Observation
from alerts.lifecycle import offline_rules_follow
from alerts.models import Alert, Incident
from alerts.notify import tell
from core.models import Notification
from sensors.models import Sensor, Zone
from tests.alerting import T0, make_rule
from tests.conftest import make_sensor


def flood_rules(zone):
    """The demo's three rules on the river's level (seed_demo's), watching ``zone``."""
    rules = [
        make_rule(
            name="Cher : vigilance crue (3,5 m)",
            sensor_kind="water",
            metric="level",
            threshold=3.5,
            severity="warning",
        ),
        make_rule(
            name="Cher : crue (4,5 m)",
            sensor_kind="water",
            metric="level",
            threshold=4.5,
            severity="critical",
        ),
        make_rule(
            name="Cher : montée rapide",
            kind="rate",
            sensor_kind="water",
            metric="level",
            threshold=None,
            rise=0.2,
            window=timedelta(minutes=30),
            severity="warning",
        ),
    ]
    for rule in rules:
        rule.zones.set([zone])
    return rules


def gauges(commune, zone, count=5, prefix="jlt-water"):
    made = []
    for i in range(1, count + 1):
        gauge = make_sensor(commune, f"{prefix}-{i:02d}", kind="water")
        gauge.zones.set([zone])
        made.append(gauge)
    return made


def flood(sensors, start=T0, levels=(1.5, 2.5, 3.6, 4.0, 4.6, 5.0)):
    """The river rises on every gauge, one batch a minute."""
    for i, level in enumerate(levels):
        at = start + timedelta(minutes=i)
        Evaluation(now=at).run([Observation(s.pk, "level", at, level) for s in sensors])


@pytest.fixture
def zone(flood_zone):
    return flood_zone


def test_one_flood_on_five_gauges_and_three_rules_is_one_incident_of_fifteen_alerts(commune, zone):
    flood_rules(zone)
    five = gauges(commune, zone)
    flood(five)
    assert Alert.objects.count() == 15
    [incident] = Incident.objects.all()
    assert incident.alerts.count() == 15
    assert incident.family == "water.level"
    assert (incident.commune, incident.zone) == (commune, zone)
    assert incident.severity == "critical"  # the worst of its members
    assert incident.state == "firing"
    assert incident.first_at == T0 + timedelta(minutes=1)  # the rate of rise came first
    assert incident.last_at == T0 + timedelta(minutes=4)
    assert "Zone inondable du Cher" in incident.title


def test_another_zone_makes_another_incident(commune, zone):
    other_zone = Zone.objects.create(commune=commune, name="Bords de Loire", type="flood")
    for rule in flood_rules(zone):
        rule.zones.add(other_zone)
    flood(gauges(commune, zone, 2) + gauges(commune, other_zone, 2, prefix="jlt-loire"))
    incidents = list(Incident.objects.order_by("zone__name"))
    assert [(i.zone.name, i.alerts.count()) for i in incidents] == [
        ("Bords de Loire", 6),
        ("Zone inondable du Cher", 6),
    ]


def test_an_alert_outside_the_window_starts_a_new_incident(commune, zone, settings):
    settings.CSU_INCIDENT_WINDOW_MINUTES = 120
    flood_rules(zone)
    first, second = gauges(commune, zone, 2)
    flood([first])
    flood([second], start=T0 + timedelta(hours=3))
    assert Incident.objects.count() == 2
    assert {i.alerts.count() for i in Incident.objects.all()} == {3}
    # Within the window, it joins.
    [third] = gauges(commune, zone, 1, prefix="jlt-late")
    flood([third], start=T0 + timedelta(hours=4))
    assert Incident.objects.count() == 2
    assert Incident.objects.order_by("-last_at").first().alerts.count() == 6


def test_other_families_and_communes_stay_apart(commune, other_commune, zone):
    rules = flood_rules(zone)
    make_rule(name="PM10", metric="pm10", threshold=80)
    river = gauges(commune, zone, 1)
    air = make_sensor(commune, "jlt-air-01")
    ballan_zone = Zone.objects.create(commune=other_commune, name="Zone inondable", type="flood")
    for rule in rules:
        rule.zones.add(ballan_zone)
    ballan = make_sensor(other_commune, "bam-water-01", kind="water")
    ballan.zones.set([ballan_zone])
    flood([*river, ballan])
    Evaluation(now=T0).run([Observation(air.pk, "pm10", T0, 120)])
    families = sorted((i.commune.name, i.family) for i in Incident.objects.all())
    assert families == [
        ("Ballan-Miré", "water.level"),
        ("Joué-lès-Tours", "air.pm10"),
        ("Joué-lès-Tours", "water.level"),
    ]


def test_offline_sensors_of_a_commune_group_as_one_incident(commune):
    make_rule(name="Capteur hors ligne", kind="offline", sensor_kind="", metric="", threshold=None)
    sensors = [make_sensor(commune, f"jlt-air-0{i}") for i in range(1, 4)]
    for sensor in sensors:
        offline_rules_follow(sensor.pk, Sensor.State.OFFLINE, now=T0)
    [incident] = Incident.objects.all()
    assert (incident.family, incident.alerts.count()) == ("offline", 3)


def test_a_member_change_is_followed_and_pushed(commune, zone, operator):
    flood_rules(zone)
    five = gauges(commune, zone)
    flood(five)
    incident = Incident.objects.get()
    version = incident.version
    pushes = [
        push["payload"]
        for notification in Notification.objects.order_by("pk")
        for push in notification.live
        if push["payload"]["type"] == "incident"
    ]
    assert pushes[0]["event"] == "opened"
    assert {p["event"] for p in pushes[1:]} == {"updated"}
    assert pushes[-1]["incident"]["alert_count"] == 15
    for alert in incident.alerts.all():
        tell(alert.acknowledge(by=operator))
    incident.refresh_from_db()
    assert incident.state == "acknowledged"
    assert incident.version == version + 15
    # The river goes down: every member resolves by itself, the incident too.
    flood(five, start=T0 + timedelta(hours=1), levels=(2.0,))
    incident.refresh_from_db()
    assert incident.state == "resolved"
    last = Notification.objects.order_by("pk").last().live[-1]["payload"]
    assert (last["type"], last["event"]) == ("incident", "resolved")


def test_a_title_is_written_in_the_towns_language_whatever_the_request(commune, zone):
    from django.utils import translation

    flood_rules(zone)
    with translation.override("en"):
        flood(gauges(commune, zone, 1))
    assert Incident.objects.get().title == "Niveau — Zone inondable du Cher"


def test_a_stuck_value_is_a_family_of_its_own(commune):
    make_rule(name="PM10", metric="pm10", threshold=80)
    make_rule(
        name="PM10 figé", kind="stuck", metric="pm10", threshold=None, window=timedelta(minutes=3)
    )
    air = make_sensor(commune, "jlt-air-01")
    for i in range(6):
        at = T0 + timedelta(minutes=i)
        Evaluation(now=at).run([Observation(air.pk, "pm10", at, 120)])
    assert sorted(Incident.objects.values_list("family", "title")) == [
        ("air.pm10", "PM10 — Joué-lès-Tours"),
        ("stuck:air.pm10", "Valeur figée\u202f: PM10 — Joué-lès-Tours"),
    ]
