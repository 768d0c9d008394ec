from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from alerts.atmo import (
    AtmoIndex,
    SubIndex,
    atmo_index,
    estimated_indices,
    stations_days,
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
        text_colour="#000000",
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


def every_minute(start, minutes, value):
    start = start.astimezone(UTC)  # elapsed minutes, not wall-clock ones
    return [(start + timedelta(minutes=m), value) for m in range(minutes)]


def day_of(sensor, day=DAY, until=None):
    until = until or datetime.combine(day + timedelta(days=1), time.min, tzinfo=PARIS)
    return stations_days([sensor], day, until)[sensor.pk]


def test_pm_is_the_mean_of_the_hourly_means_not_of_the_readings(air_sensor):
    start = paris(2026, 11, 18, 0, 0)
    add_readings(air_sensor, "pm10", *every_minute(start, 23 * 60, 10))
    # The last hour sends every 6 s: 600 readings, one hourly mean among 24.
    add_readings(
        air_sensor,
        "pm10",
        *[(paris(2026, 11, 18, 23, 0) + timedelta(seconds=6 * n), 250) for n in range(600)],
    )
    add_readings(air_sensor, "pm10", (paris(2026, 11, 17, 23, 30), 900))  # the day before

    found = day_of(air_sensor)

    # Weighted by readings the day would be (1,380 x 10 + 600 x 250) / 1,980 = 82.7.
    assert found.concentrations == {"pm10": pytest.approx((23 * 10 + 250) / 24)}
    assert found.share == 1.0


def test_no2_is_the_largest_hourly_mean_of_the_day(air_sensor):
    start = paris(2026, 11, 18, 0, 0)
    add_readings(air_sensor, "no2", *every_minute(start, 24 * 60, 40))
    Reading.objects.filter(
        sensor=air_sensor, ts__gte=paris(2026, 11, 18, 10, 0), ts__lt=paris(2026, 11, 18, 11, 0)
    ).update(value=130)
    # A 5-minute spike at 400 in another hour: its hourly mean is 70.
    Reading.objects.filter(
        sensor=air_sensor, ts__gte=paris(2026, 11, 18, 15, 0), ts__lt=paris(2026, 11, 18, 15, 5)
    ).update(value=400)

    found = day_of(air_sensor)

    assert found.concentrations == {"no2": pytest.approx(130)}
    assert sub_index_class("no2", found.concentrations["no2"]) == 4


def test_an_hour_with_too_few_readings_has_no_mean(air_sensor):
    start = paris(2026, 11, 18, 0, 0)
    add_readings(air_sensor, "o3", *every_minute(start, 24 * 60, 40))
    # 44 readings in one hour at 300 (fewer than 75 % of 60): no hourly mean.
    add_readings(air_sensor, "so2", *every_minute(paris(2026, 11, 18, 9, 0), 44, 300))

    found = day_of(air_sensor)

    assert found.concentrations == {"o3": pytest.approx(40)}


def test_a_day_with_too_few_hours_gives_nothing_and_says_how_much_it_covered(air_sensor):
    add_readings(air_sensor, "pm10", *every_minute(paris(2026, 11, 18, 0, 0), 17 * 60, 90))

    found = day_of(air_sensor)

    assert found.concentrations == {}
    assert found.share == pytest.approx(17 / 24)
    assert atmo_index(found.concentrations, DAY) is None


def test_it_reads_only_this_sensor_and_the_atmo_pollutants(commune, air_sensor):
    other = make_sensor(commune, ref="jlt-air-02", kind="air")
    start = paris(2026, 11, 18, 0, 0)
    add_readings(air_sensor, "o3", *every_minute(start, 24 * 60, 90))
    add_readings(air_sensor, "temperature", *every_minute(start, 24 * 60, 12))
    add_readings(other, "o3", *every_minute(start, 24 * 60, 300))

    assert day_of(air_sensor).concentrations == {"o3": pytest.approx(90)}


def test_it_averages_in_one_query(air_sensor, django_assert_num_queries):
    add_readings(air_sensor, "pm25", (paris(2026, 11, 18, 1, 0), 12))
    add_readings(air_sensor, "so2", (paris(2026, 11, 18, 1, 0), 40))

    with django_assert_num_queries(1):
        day_of(air_sensor)


def test_the_hours_repeated_when_summer_time_ends_are_two_hours(air_sensor):
    # 2026-10-25 in Paris lasts 25 hours: 02:00-03:00 happens in CEST, then in CET.
    day = date(2026, 10, 25)
    start = paris(2026, 10, 25, 0, 0)
    add_readings(air_sensor, "no2", *every_minute(start, 25 * 60, 30))
    Reading.objects.filter(
        sensor=air_sensor,
        ts__gte=paris(2026, 10, 25, 2, 0, fold=0),
        ts__lt=paris(2026, 10, 25, 2, 0, fold=1),
    ).update(value=130)  # the first 02:00-03:00 only

    found = day_of(air_sensor, day)

    assert found.concentrations == {"no2": pytest.approx(130)}
    assert found.share == 1.0


def test_today_is_estimated_once_three_quarters_of_it_are_covered(air_sensor):
    air_sensor.station_type = "background"
    add_readings(air_sensor, "pm25", *every_minute(paris(2026, 11, 17, 0, 0), 24 * 60, 15))
    add_readings(air_sensor, "pm25", *every_minute(paris(2026, 11, 18, 0, 0), 18 * 60, 30))

    [(index, share)] = estimated_indices([air_sensor], paris(2026, 11, 18, 17, 0)).values()
    assert (index.day, index.klass, index.share) == (date(2026, 11, 17), 2, 1.0)  # yesterday
    assert share == pytest.approx(17 / 24)

    [(index, share)] = estimated_indices([air_sensor], paris(2026, 11, 18, 18, 0)).values()
    assert (index.day, index.klass, index.label) == (DAY, 4, "mauvais")
    assert index.share == share == 0.75


def test_only_background_stations_are_estimated(commune, air_sensor):
    kinds = {"background": air_sensor}
    for ref, kind in (("jlt-air-02", "traffic"), ("jlt-air-03", "industrial"), ("jlt-air-04", "")):
        kinds[kind] = make_sensor(commune, ref=ref, kind="air", station_type=kind)
    air_sensor.station_type = "background"
    air_sensor.save()
    for sensor in kinds.values():
        add_readings(sensor, "pm10", *every_minute(paris(2026, 11, 18, 0, 0), 24 * 60, 60))

    found = estimated_indices(list(kinds.values()), paris(2026, 11, 19, 0, 0))

    assert list(found) == [air_sensor.pk]
