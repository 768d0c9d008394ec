"""The French ATMO air-quality index of a day (arrêté of 10 July 2020), as the CSU
estimates it: "indice ATMO estimé (CSU)"; the official index is the AASQA's.

Each pollutant's concentration, averaged as the regulation says (PM: the mean of the
day's hourly means; NO₂, O₃, SO₂: the day's largest hourly mean), falls in a class from
1 ("bon") to 6 ("extrêmement mauvais"); the day's index is the worst of them. Only
background stations (``Sensor.station_type``) give one: a roadside station measures its
road. The table and its boundary rule live in ``alerts/regulations.py``.
"""

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour

from sensors.models import Reading, Sensor, StationType

from .regulations import ATMO_2021, AtmoRegulation, Averaging


@dataclass(frozen=True)
class SubIndex:
    pollutant: str
    concentration: float
    klass: int


@dataclass(frozen=True)
class AtmoIndex:
    klass: int
    label: str
    colour: str
    text_colour: str  # the colour of text on ``colour``
    pollutant: str
    sub_indices: tuple[SubIndex, ...]
    day: date
    share: float = 1.0  # the share of the day's hours behind it


def sub_index_class(pollutant: str, concentration: float, table=ATMO_2021) -> int:
    """Return the class (1 to 6) of one pollutant's averaged concentration."""
    try:
        bounds = table.pollutants[pollutant].upper_bounds
    except KeyError:
        raise ValueError(f"{pollutant!r} is not a pollutant of {table.name}") from None
    if not concentration >= 0:  # also rejects NaN
        raise ValueError(f"{pollutant} concentration must be >= 0, got {concentration}")
    # bisect_left puts a value equal to a bound in the class that bound closes.
    return bisect_left(bounds, concentration) + 1


def atmo_index(
    concentrations: dict[str, float], day: date, table=ATMO_2021, share: float = 1.0
) -> AtmoIndex | None:
    """Return the day's index from averaged concentrations, or None if there are none.

    Pollutants that are absent (or None) are skipped, as are metrics the table does
    not know (temperature...). On a tie, the pollutant first in the table is named.
    """
    sub_indices = tuple(
        SubIndex(pollutant, value, sub_index_class(pollutant, value, table))
        for pollutant in table.pollutants
        if (value := concentrations.get(pollutant)) is not None
    )
    if not sub_indices:
        return None
    worst = max(sub_indices, key=lambda sub: sub.klass)  # max keeps the first of equals
    atmo_class = table.atmo_class(worst.klass)
    return AtmoIndex(
        klass=worst.klass,
        label=atmo_class.label,
        colour=atmo_class.colour,
        text_colour=atmo_class.text_colour,
        pollutant=worst.pollutant,
        sub_indices=sub_indices,
        day=day,
        share=share,
    )


# A pollutant's day counts when this share of the day's hours have an hourly mean, and an
# hourly mean when its hour holds this share of the readings the station's period
# promises: the 75 % of the validity criteria of directive 2008/50/EC (45 minutes of an
# hour, 18 hours of 24). Before that, the index would be that of part of a day.
DAY_COVERAGE = 0.75
HOUR_COMPLETENESS = 0.75


@dataclass(frozen=True)
class StationDay:
    """What one station's Paris day gives the index."""

    day: date
    concentrations: dict[str, float]  # the pollutants whose day is covered enough
    share: float  # the largest share of the day's hours with an hourly mean, 0 to 1


def paris_day(day: date) -> tuple[datetime, datetime]:
    """The Paris day ``day`` as [start, end) in UTC (23, 24 or 25 hours)."""
    paris = ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(day, time.min, tzinfo=paris).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=paris).astimezone(UTC)
    return start, end


def stations_days(
    stations: Sequence[Sensor], day: date, until: datetime, table: AtmoRegulation = ATMO_2021
) -> dict[int, StationDay]:
    """Each station's Paris day ``day`` up to ``until``, from its hourly means.

    PM: the mean of the hourly means (not of the readings: an hour sent twice as often
    does not weigh twice); NO₂, O₃, SO₂: the largest hourly mean. One query, grouped by
    station, metric and UTC hour (Paris is a whole number of hours off UTC, so they are
    its clock hours, and the hour repeated when summer time ends stays two hours).
    """
    start, end = paris_day(day)
    hours_in_day = (end - start) / timedelta(hours=1)
    # A station without a period gives no hourly mean: its completeness cannot be judged.
    periods = {s.pk: s.expected_interval for s in stations if s.expected_interval is not None}
    rows = (
        Reading.objects.filter(
            sensor_id__in=list(periods),
            metric__in=list(table.pollutants),
            ts__gte=start,
            ts__lt=min(end, until),
        )
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values_list("sensor_id", "metric", "hour")
        .annotate(total=Sum("value"), count=Count("value"))
        .order_by()
    )
    means: dict[int, dict[str, list[float]]] = {pk: {} for pk in periods}
    for sensor_id, metric, _hour, total, count in rows:
        if count >= HOUR_COMPLETENESS * 3600 / periods[sensor_id]:
            means[sensor_id].setdefault(metric, []).append(total / count)
    days = {}
    for sensor_id, metrics in means.items():
        concentrations = {}
        share = 0.0
        for metric, hourly in metrics.items():
            covered = len(hourly) / hours_in_day
            share = max(share, covered)
            if covered < DAY_COVERAGE:
                continue
            if table.pollutants[metric].averaging is Averaging.DAILY_MEAN:
                concentrations[metric] = math.fsum(hourly) / len(hourly)
            else:
                concentrations[metric] = max(hourly)
        days[sensor_id] = StationDay(day, concentrations, min(share, 1.0))
    return days


def background(stations: Sequence[Sensor]) -> list[Sensor]:
    """The stations the index is computed on: background ones, not trafic nor industrial."""
    return [s for s in stations if s.station_type == StationType.BACKGROUND]


def estimated_indices(
    stations: Sequence[Sensor], now: datetime, table: AtmoRegulation = ATMO_2021
) -> dict[int, tuple[AtmoIndex | None, float]]:
    """Per background station: the CSU's estimate of the ATMO index of the Paris day so
    far once enough of it is covered, else of the day before; and the share of today
    covered. The official index remains the AASQA's."""
    stations = background(stations)
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    days = stations_days(stations, today, now, table)
    found = {pk: atmo_index(d.concentrations, today, table, d.share) for pk, d in days.items()}
    late = [s for s in stations if found[s.pk] is None]
    if late:
        yesterday = today - timedelta(days=1)
        for pk, d in stations_days(late, yesterday, now, table).items():
            found[pk] = atmo_index(d.concentrations, yesterday, table, d.share)
    return {pk: (found[pk], days[pk].share) for pk in days}
