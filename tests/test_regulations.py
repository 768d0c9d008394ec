"""The episode thresholds against the official table, and the demo rules that use them."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from alerts.models import Aggregate, Rule
from alerts.regulations import (
    ATMO_2021,
    DRINKING_WATER_2007,
    EPISODES_R221_1,
    EpisodeLevel,
    water_criteria,
)
from core.colours import contrast_ratio, readable_text
from dashboard.management.commands.seed_demo import FORMER_DEMO_RULES
from sensors.metrics import metric_for
from sensors.models import Sensor
from tests.alerting import make_rule
from tests.conftest import make_sensor

# Code de l'environnement, article R221-1, I (décret n° 2010-1250 du 21 octobre 2010),
# transcribed by hand from the article: (pollutant, level) → (µg/m³, mean, hours).
OFFICIAL_R221_1 = {
    ("pm10", "information"): (50, "moyenne journalière", 1),
    ("pm10", "alerte"): (80, "moyenne journalière", 1),
    ("no2", "information"): (200, "moyenne horaire", 1),
    ("no2", "alerte"): (400, "moyenne horaire", 3),
    ("o3", "information"): (180, "moyenne horaire", 1),
    ("o3", "alerte"): (240, "moyenne horaire", 1),
    ("so2", "information"): (300, "moyenne horaire", 1),
    ("so2", "alerte"): (500, "moyenne horaire", 3),
}
MEANS = {"moyenne journalière": Aggregate.DAILY, "moyenne horaire": Aggregate.HOURLY}


def test_each_episode_threshold_is_the_official_one():
    ours = {
        (t.pollutant, str(t.level)): (t.value, t.aggregate, t.consecutive_hours)
        for t in EPISODES_R221_1.thresholds
    }
    official = {
        key: (value, MEANS[mean].value, hours)
        for key, (value, mean, hours) in OFFICIAL_R221_1.items()
    }
    assert ours == official


def test_each_episode_threshold_quotes_its_value_and_its_mean():
    for threshold in EPISODES_R221_1.thresholds:
        value, mean, hours = OFFICIAL_R221_1[(threshold.pollutant, str(threshold.level))]
        assert f"{value} µg/m³ en {mean}" in threshold.text
        assert ("trois heures consécutives" in threshold.text) == (hours == 3)


@pytest.mark.django_db
def test_the_demo_episode_rules_compare_the_regulatory_means():
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    for threshold in EPISODES_R221_1.thresholds:
        level = "d'information" if threshold.level == EpisodeLevel.INFORMATION else "d'alerte"
        [rule] = Rule.objects.filter(
            metric=threshold.pollutant, name__contains=f"dépassement du seuil {level}"
        )
        assert (rule.threshold, rule.aggregate, rule.consecutive_hours, rule.active) == (
            threshold.value,
            threshold.aggregate,
            threshold.consecutive_hours,
            True,
        )
        assert rule.completeness == 75 and rule.duration.total_seconds() == 0


@pytest.mark.django_db
def test_only_rules_on_a_regulatory_mean_are_named_after_a_regulatory_threshold():
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    for rule in Rule.objects.filter(active=True):
        regulatory = "seuil d'information" in rule.name or "seuil d'alerte" in rule.name
        assert regulatory == bool(rule.aggregate), rule.name
    raw_air = Rule.objects.filter(sensor_kind="air", kind="threshold", aggregate="")
    assert raw_air.exists()
    assert all("technique" in rule.name for rule in raw_air)


@pytest.mark.django_db
def test_seeding_again_switches_off_the_former_raw_reading_episode_rules():
    former = Rule.objects.create(
        name=FORMER_DEMO_RULES[0], sensor_kind="air", metric="pm10", threshold=50
    )
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    former.refresh_from_db()
    assert former.name == "PM10 : seuil d'information (50 µg/m³)" and not former.active


@pytest.mark.django_db
def test_the_demo_estimates_the_atmo_index_on_background_stations_only():
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    types = dict(Sensor.objects.filter(kind="air").values_list("ref", "station_type"))
    assert set(types.values()) == {"background", "traffic", "industrial"}
    assert types["jlt-air-02"] == "traffic"  # boulevard Jean Jaurès
    assert types["jlt-air-01"] == "background"  # Hôtel de ville
    assert not Sensor.objects.exclude(kind="air").exclude(station_type="").exists()


@pytest.mark.django_db
def test_only_an_air_station_has_a_station_type(commune):
    sensor = make_sensor(commune, "jlt-water-01", "water", station_type="background")
    with pytest.raises(ValidationError) as error:
        sensor.full_clean()
    assert list(error.value.message_dict) == ["station_type"]


# Arrêté du 11 janvier 2007, annex I, transcribed by hand: (metric, basis, minimum,
# maximum, where), "where" as the arrêté says it; chlorine from the Vigipirate plan.
OFFICIAL_WATER_2007 = [
    ("nitrates", "limite de qualité", None, 50, "eau distribuée"),
    ("turbidity", "limite de qualité", None, 1, "point de mise en distribution"),
    ("turbidity", "référence de qualité", None, 0.5, "point de mise en distribution"),
    ("turbidity", "référence de qualité", None, 2, "robinets"),
    ("ph", "référence de qualité", 6.5, 9, "eau distribuée"),
    ("conductivity", "référence de qualité", 180, 1000, "eau distribuée"),
    ("chlorine", "consigne Vigipirate", 0.3, None, "sortie des réservoirs"),
    ("chlorine", "consigne Vigipirate", 0.1, None, "eau distribuée"),
]
WHERE = {
    "eau distribuée": {"outlet", "network", "tap"},
    "point de mise en distribution": {"outlet"},
    "sortie des réservoirs": {"outlet"},
    "robinets": {"tap"},
}


def test_each_drinking_water_criterion_is_the_arrete_s_or_says_it_is_not():
    ours = [
        (c.metric, str(c.basis), c.minimum, c.maximum, set(c.points)) for c in DRINKING_WATER_2007
    ]
    official = [(m, b, low, high, WHERE[where]) for m, b, low, high, where in OFFICIAL_WATER_2007]
    assert ours == official
    for criterion in DRINKING_WATER_2007:
        assert ("Vigipirate" in criterion.text) == (criterion.basis == "consigne Vigipirate")


def test_no_drinking_water_criterion_applies_to_a_lake_or_to_raw_water():
    assert water_criteria("bathing") == water_criteria("resource") == water_criteria("") == ()


def test_nitrates_are_a_water_metric_in_mg_per_litre():
    nitrates = metric_for("water", "nitrates")
    assert (nitrates.unit, nitrates.label) == ("mg/L", "Nitrates")


@pytest.mark.django_db
def test_the_demo_lake_is_a_bathing_water_and_nitrates_have_their_limit_rule():
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    points = dict(Sensor.objects.filter(kind="water").values_list("ref", "water_point"))
    assert points["jlt-water-05"] == "bathing"  # lac des Bretonnières
    assert points["jlt-water-03"] == "network" and points["jlt-river-01"] == ""
    rule = Rule.objects.get(metric="nitrates")
    assert (rule.threshold, rule.severity) == (50, "critical")
    assert "limite de qualité" in rule.name


@pytest.mark.django_db
def test_only_a_water_sensor_has_a_water_point(commune):
    sensor = make_sensor(commune, "jlt-air-01", "air", water_point="tap")
    with pytest.raises(ValidationError) as error:
        sensor.full_clean()
    assert list(error.value.message_dict) == ["water_point"]


@pytest.mark.django_db
def test_the_demo_s_drinking_water_rules_leave_the_lake_alone():
    call_command("seed_demo", "--password", "x-Demo-2026!", stdout=StringIO())
    lake = Sensor.objects.get(ref="jlt-water-05")
    reservoir = Sensor.objects.get(ref="jlt-water-01")
    network = Sensor.objects.get(ref="jlt-water-03")
    drinking = Rule.objects.filter(name__startswith="Eau potable")

    assert not Rule.objects.applying_to(lake).filter(pk__in=drinking).exists()
    at_reservoir = set(Rule.objects.applying_to(reservoir).filter(pk__in=drinking))
    in_network = set(Rule.objects.applying_to(network).filter(pk__in=drinking))
    assert at_reservoir == set(drinking)  # every criterion applies leaving a reservoir
    assert {rule.metric for rule in in_network} == {"ph", "chlorine", "nitrates", "conductivity"}
    [chlorine] = [rule for rule in in_network if rule.metric == "chlorine"]
    assert chlorine.threshold == 0.1
    assert set(drinking[0].sensors_in_scope()) <= {reservoir, network} | set(
        Sensor.objects.filter(water_point__in=["outlet", "network", "tap"])
    )


@pytest.mark.django_db
def test_a_rule_on_water_points_must_be_on_water_sensors():
    with pytest.raises(ValidationError) as error:
        make_rule(water_points="drinking")  # an air rule
    assert list(error.value.message_dict) == ["water_points"]


# --- ATMO colours -------------------------------------------------------------------------------

# Atmo France, guide de calcul de l'indice ATMO (2021), the classes of the arrêté of
# 10 July 2020 and their colours, as the guide's table gives them.
ATMO_GUIDE_COLOURS = {
    1: ("bon", "#50F0E6"),
    2: ("moyen", "#50CCAA"),
    3: ("dégradé", "#F0E641"),
    4: ("mauvais", "#FF5050"),
    5: ("très mauvais", "#960032"),
    6: ("extrêmement mauvais", "#872181"),
}


def test_the_atmo_classes_have_the_guide_s_labels_and_colours():
    assert {c.number: (c.label, c.colour) for c in ATMO_2021.classes} == ATMO_GUIDE_COLOURS
    assert "guide de calcul de l'indice ATMO" in ATMO_2021.colours_source


def test_text_on_each_atmo_colour_contrasts_at_least_4_5_to_1_and_as_much_as_it_can():
    for atmo_class in ATMO_2021.classes:
        ratio = contrast_ratio(atmo_class.text_colour, atmo_class.colour)
        assert ratio >= 4.5, (atmo_class.label, ratio)
        assert atmo_class.text_colour == readable_text(atmo_class.colour)


def test_the_contrast_ratio_is_wcag_s():
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21)
    assert contrast_ratio("#FFFFFF", "#FFFFFF") == pytest.approx(1)
    # WCAG's own example of a grey just passing AA on white.
    assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)
    assert readable_text("#960032") == "#FFFFFF" and readable_text("#F0E641") == "#000000"
