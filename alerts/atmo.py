"""The French ATMO air-quality index of a day (arrêté of 10 July 2020).

Each pollutant's concentration, averaged as the regulation says, falls in a class
from 1 ("bon") to 6 ("extrêmement mauvais"); the day's index is the worst of them.
The table and its boundary rule live in ``alerts/regulations.py``.
"""

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour

from sensors.models import Reading

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
    pollutant: str
    sub_indices: tuple[SubIndex, ...]
    day: date


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


def atmo_index(concentrations: dict[str, float], day: date, table=ATMO_2021) -> AtmoIndex | None:
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
        pollutant=worst.pollutant,
        sub_indices=sub_indices,
        day=day,
    )


def stations_concentrations(
    sensor_ids: list[int], moment: datetime, table: AtmoRegulation = ATMO_2021
) -> dict[int, dict[str, float]]:
    """Average each station's readings of the Paris day containing ``moment``, up to it.

    Daily-mean pollutants get the mean of the day's readings so far; the others the
    largest of the day's clock-hour means. Stations and pollutants without readings are
    absent. One query, grouped by station, metric and hour: a daily mean is the sum of
    the hours' sums over the sum of their counts.
    """
    paris = ZoneInfo(settings.TIME_ZONE)
    day = moment.astimezone(paris).date()
    midnight = datetime.combine(day, time.min, tzinfo=paris)
    # Hours are truncated in UTC, not Paris time: Paris is a whole number of hours
    # off UTC, so the buckets are the same clock hours, but in local time the hour
    # repeated when summer time ends (02:00 CEST and 02:00 CET) gets one label and
    # its two hours would be averaged together.
    hours = (
        Reading.objects.filter(
            sensor_id__in=sensor_ids,
            metric__in=list(table.pollutants),
            ts__gte=midnight,
            ts__lte=moment,
        )
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values_list("sensor_id", "metric", "hour")
        .annotate(total=Sum("value"), count=Count("value"))
        .order_by()
    )
    sums: dict[int, dict[str, list[tuple[float, int]]]] = {}
    for sensor_id, metric, _hour, total, count in hours:
        sums.setdefault(sensor_id, {}).setdefault(metric, []).append((total, count))
    concentrations: dict[int, dict[str, float]] = {}
    for sensor_id, metrics in sums.items():
        station = concentrations[sensor_id] = {}
        for metric, hourly in metrics.items():
            if table.pollutants[metric].averaging is Averaging.DAILY_MEAN:
                station[metric] = math.fsum(t for t, _ in hourly) / sum(n for _, n in hourly)
            else:
                station[metric] = max(t / n for t, n in hourly)
    return concentrations


def station_concentrations(
    sensor_id: int, moment: datetime, table: AtmoRegulation = ATMO_2021
) -> dict[str, float]:
    """``stations_concentrations`` of one station."""
    return stations_concentrations([sensor_id], moment, table).get(sensor_id, {})


def station_index(
    sensor_id: int, moment: datetime, table: AtmoRegulation = ATMO_2021
) -> AtmoIndex | None:
    """Return the ATMO index of a sensor's Paris day so far, or None without data."""
    day = moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    return atmo_index(station_concentrations(sensor_id, moment, table), day, table)
