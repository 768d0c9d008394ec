from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from alerts.atmo import (
    AtmoIndex,
    SubIndex,
    atmo_index,
    station_concentrations,
    station_index,
    sub_index_class,
)
from alerts.regulations import ATMO_2021
from sensors.models import Reading
from sensors.partitions import create_partition
from tests.conftest import make_sensor

PARIS = ZoneInfo("Europe/Paris")
DAY = date(2026, 11, 18)


def paris(*fields, fold=0) -> datetime:
    return datetime(*fields, tzinfo=PARIS, fold=fold)


def add_readings(sensor, metric, *points):
    """Store (moment, value) readings, creating their partitions first on PostgreSQL."""
    if connection.vendor == "postgresql":
        for day in {moment.astimezone(UTC).date() for moment, _ in points}:
            create_partition(day)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=moment, value=value) for moment, value in points
    )


@pytest.fixture
def air_sensor(commune):
    return make_sensor(commune, kind="air")


# --- Sub-indices and the index ----------------------------------------------------------

BREAKPOINTS = [
    pytest.param(pollutant, value, klass, id=f"{pollutant}-{value:g}-class{klass}")
    for pollutant, spec in ATMO_2021.pollutants.items()
    for number, bound in enumerate(spec.upper_bounds, start=1)
    for value, klass in ((bound - 0.1, number), (bound, number), (bound + 0.1, number + 1))
]


@pytest.mark.parametrize(("pollutant", "concentration", "klass"), BREAKPOINTS)
def test_a_value_on_a_bound_belongs_to_the_class_that_bound_closes(pollutant, concentration, klass):
    assert sub_index_class(pollutant, concentration) == klass


@pytest.mark.parametrize(
    ("pollutant", "concentration", "klass"),
    [
        ("pm25", 0, 1),
        ("pm25", 10, 1),
        ("pm25", 10.1, 2),
        ("pm10", 45, 3),
        ("no2", 130, 4),
        ("o3", 380, 5),
        ("o3", 380.5, 6),
        ("so2", 10_000, 6),
    ],
)
def test_the_table_matches_the_arrete(pollutant, concentration, klass):
    assert sub_index_class(pollutant, concentration) == klass


@pytest.mark.parametrize("concentration", [-0.1, float("nan")])
def test_a_negative_or_missing_concentration_is_an_error(concentration):
    with pytest.raises(ValueError):
        sub_index_class("pm10", concentration)


def test_an_unknown_pollutant_is_an_error():
    with pytest.raises(ValueError):
        sub_index_class("co", 1.0)


def test_the_index_is_the_worst_class_and_names_its_pollutant():
    index = atmo_index({"pm25": 8, "pm10": 45, "no2": 130, "o3": 60, "so2": 5}, DAY)

    assert index == AtmoIndex(
        klass=4,
        label="mauvais",
        colour="#FF5050",
        pollutant="no2",
        sub_indices=(
            SubIndex("pm25", 8, 1),
            SubIndex("pm10", 45, 3),
            SubIndex("no2", 130, 4),
            SubIndex("o3", 60, 2),
            SubIndex("so2", 5, 1),
        ),
        day=DAY,
    )


def test_on_a_tie_it_names_the_pollutant_first_in_the_table():
    assert atmo_index({"o3": 60, "pm10": 30}, DAY).pollutant == "pm10"


def test_missing_pollutants_are_skipped():
    index = atmo_index({"o3": 150, "temperature": 21.5, "so2": None}, DAY)

    assert index.klass == 4
    assert index.sub_indices == (SubIndex("o3", 150, 4),)


def test_there_is_no_index_without_any_pollutant():
    assert atmo_index({}, DAY) is None
    assert atmo_index({"humidity": 40}, DAY) is None


@pytest.mark.parametrize(
    ("pm25", "klass", "label", "colour"),
    [
        (5, 1, "bon", "#50F0E6"),
        (15, 2, "moyen", "#50CCAA"),
        (22, 3, "dégradé", "#F0E641"),
        (30, 4, "mauvais", "#FF5050"),
        (60, 5, "très mauvais", "#960032"),
        (80, 6, "extrêmement mauvais", "#872181"),
    ],
)
def test_each_class_has_its_french_label_and_atmo_colour(pm25, klass, label, colour):
    index = atmo_index({"pm25": pm25}, DAY)

    assert (index.klass, index.label, index.colour) == (klass, label, colour)


# --- From the readings of a station -----------------------------------------------------


def test_pm_is_the_mean_of_the_paris_day_so_far(air_sensor):
    add_readings(
        air_sensor,
        "pm10",
        (paris(2026, 11, 17, 23, 30), 500),  # the previous Paris day, same UTC day
        (paris(2026, 11, 18, 0, 0), 10),
        (paris(2026, 11, 18, 8, 15), 20),
        (paris(2026, 11, 18, 16, 0), 30),  # on the moment itself
        (paris(2026, 11, 18, 16, 1), 900),  # after the moment
    )

    concentrations = station_concentrations(air_sensor.pk, paris(2026, 11, 18, 16, 0))

    assert concentrations == {"pm10": pytest.approx(20)}


def test_no2_is_the_largest_hourly_mean_of_the_day(air_sensor):
    add_readings(
        air_sensor,
        "no2",
        (paris(2026, 11, 18, 9, 10), 70),
        (paris(2026, 11, 18, 9, 50), 90),
        (paris(2026, 11, 18, 10, 10), 120),
        (paris(2026, 11, 18, 10, 50), 140),
    )

    concentrations = station_concentrations(air_sensor.pk, paris(2026, 11, 18, 12, 0))

    # The day's mean (105) would be class 3, the largest reading (140) too: it is 130.
    assert concentrations == {"no2": pytest.approx(130)}
    assert sub_index_class("no2", concentrations["no2"]) == 4


def test_it_reads_only_this_sensor_and_the_atmo_pollutants(commune, air_sensor):
    other = make_sensor(commune, ref="jlt-air-02", kind="air")
    moment = paris(2026, 11, 18, 12, 0)
    add_readings(air_sensor, "o3", (moment - timedelta(minutes=5), 90))
    add_readings(air_sensor, "temperature", (moment - timedelta(minutes=5), 12))
    add_readings(other, "o3", (moment - timedelta(minutes=5), 300))

    assert station_concentrations(air_sensor.pk, moment) == {"o3": pytest.approx(90)}


def test_it_averages_in_one_query(air_sensor, django_assert_num_queries):
    add_readings(air_sensor, "pm25", (paris(2026, 11, 18, 1, 0), 12))
    add_readings(air_sensor, "so2", (paris(2026, 11, 18, 1, 0), 40))

    with django_assert_num_queries(1):
        station_concentrations(air_sensor.pk, paris(2026, 11, 18, 12, 0))


def test_the_hours_repeated_when_summer_time_ends_are_two_hours(air_sensor):
    # 2026-10-25 in Paris lasts 25 hours: 02:00-03:00 happens in CEST, then in CET.
    add_readings(
        air_sensor,
        "no2",
        (paris(2026, 10, 25, 2, 30, fold=0), 130),  # 00:30 UTC
        (paris(2026, 10, 25, 2, 30, fold=1), 30),  # 01:30 UTC
    )
    add_readings(
        air_sensor,
        "pm25",
        (paris(2026, 10, 24, 23, 30), 400),  # the previous Paris day
        (paris(2026, 10, 25, 0, 30), 10),  # 2026-10-24 22:30 UTC
        (paris(2026, 10, 25, 23, 30), 20),  # the 25th hour of the day
    )

    concentrations = station_concentrations(air_sensor.pk, paris(2026, 10, 25, 23, 59))

    assert concentrations == {"no2": pytest.approx(130), "pm25": pytest.approx(15)}


def test_the_station_index_is_that_of_the_paris_day(air_sensor):
    # 00:30 in Paris is still the previous day in UTC.
    moment = paris(2026, 11, 18, 0, 30)
    add_readings(air_sensor, "pm25", (paris(2026, 11, 18, 0, 5), 30))
    add_readings(air_sensor, "o3", (paris(2026, 11, 18, 0, 10), 40))

    index = station_index(air_sensor.pk, moment)

    assert index.day == DAY
    assert (index.klass, index.label, index.pollutant) == (4, "mauvais", "pm25")


def test_a_station_without_readings_has_no_index(air_sensor):
    assert station_index(air_sensor.pk, paris(2026, 11, 18, 12, 0)) is None
