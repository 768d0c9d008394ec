"""Which rules apply to which sensor: ``Rule.objects.by_sensor()`` (every sensor at once,
kept by the evaluation, in memory) says exactly what ``applying_to`` (one sensor, in SQL)
and its converse ``Rule.sensors_in_scope`` (one rule's sensors, in SQL) say."""

import io

import pytest
from django.core.management import call_command

from alerts import evaluation
from alerts.models import Rule
from core.cache import forget_all
from sensors.models import Commune, Sensor, Zone
from tests.alerting import make_rule
from tests.conftest import make_sensor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path


def scoped_rules():
    """The demo's rules and one of each kind of scope beside them."""
    call_command("seed_demo", stdout=io.StringIO())
    neighbour = Commune.objects.exclude(insee_code="37122").first()
    zone = Zone.objects.filter(sensors__kind="water").first()
    water = Sensor.objects.filter(kind="water").exclude(water_point="").first()
    station = Sensor.objects.filter(kind="air").first()
    make_rule(name="Une station seulement", sensor=station, sensor_kind="")
    commune_rule = make_rule(name="Chez le voisin", threshold=70)
    commune_rule.communes.set([neighbour])
    zone_rule = make_rule(name="Dans une zone", sensor_kind="water", metric="level", threshold=3)
    zone_rule.zones.set([zone])
    make_rule(name="Éteinte", active=False)
    make_rule(
        name="Au réseau",
        sensor_kind="water",
        metric="ph",
        threshold=9,
        water_points=water.water_point,
    )
    make_rule(name="Eau potable", sensor_kind="water", metric="ph", threshold=9.5,
              water_points="drinking")  # fmt: skip


def test_every_sensor_gets_the_rules_applying_to_it():
    scoped_rules()
    by_sensor = Rule.objects.by_sensor()

    sensors = list(Sensor.objects.all())
    assert len(sensors) > 50 and set(by_sensor) == {sensor.pk for sensor in sensors}
    active = {sensor.pk for sensor in sensors if sensor.active}
    for rule in Rule.objects.filter(active=True):
        applied = {pk for pk, rules in by_sensor.items() if rule in rules and pk in active}
        assert applied == set(rule.sensors_in_scope().values_list("pk", flat=True)), rule.name
    for sensor in sensors:
        assert list(Rule.objects.applying_to(sensor)) == by_sensor[sensor.pk], sensor.ref
    # Every kind of scope chose some sensors and left others out.
    for name in ("Une station seulement", "Chez le voisin", "Dans une zone", "Au réseau"):
        chosen = [pk for pk, rules in by_sensor.items() if any(r.name == name for r in rules)]
        assert 0 < len(chosen) < len(sensors), name
    assert not any(rule.name == "Éteinte" for rules in by_sensor.values() for rule in rules)


def test_the_evaluation_keeps_them_and_looks_up_a_sensor_created_since(commune):
    forget_all()
    make_rule(name="PM10 partout", threshold=70)
    first = make_sensor(commune, ref="air-1")
    assert [rule.name for rule in evaluation.rules_for(first)] == ["PM10 partout"]

    # Created after the load, without the signal that empties the caches (another process).
    Sensor.objects.bulk_create(
        [Sensor(ref="air-2", name="air-2", kind="air", commune=commune, latitude=47, longitude=0)]
    )
    second = Sensor.objects.get(ref="air-2")
    assert [rule.name for rule in evaluation.rules_for(second)] == ["PM10 partout"]
    assert [
        rule.name for rule in evaluation.rules_for(make_sensor(commune, ref="w", kind="water"))
    ] == []
