"""The history of one sensor metric: raw readings, or aggregated into aligned buckets.

Buckets of ``1m``, ``5m`` and ``1h`` start on multiples of their length since the UTC
epoch; a ``1d`` bucket is a local day of ``settings.TIME_ZONE`` (Europe/Paris), so it
lasts 23 or 25 hours on the days the clocks change. Only readings with
``start <= ts < end`` count, and empty buckets are left out.

PostgreSQL aggregates with ``date_bin``/``date_trunc`` under a WHERE on the primary key
columns, so the index and the daily partitions are pruned. SQLite, the embedded
default, groups on the Unix time with integer arithmetic; for days it groups quarter
hours in SQL (every UTC offset in use is a multiple of 15 minutes) and merges them into
local days in Python.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from .models import Reading, Sensor

BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
QUARTER_HOUR = 900


@dataclass(frozen=True)
class Bucket:
    t: datetime
    avg: float
    min: float
    max: float
    count: int


def readings_raw(sensor: Sensor, metric: str, start: datetime, end: datetime):
    """Return the (ts, value) pairs of one sensor metric over [start, end), oldest first."""
    return (
        Reading.objects.filter(sensor=sensor, metric=metric, ts__gte=start, ts__lt=end)
        .order_by("ts")
        .values_list("ts", "value")
    )


def readings_bucketed(
    sensor: Sensor, metric: str, start: datetime, end: datetime, bucket: str
) -> list[Bucket]:
    """Return the avg/min/max/count of one sensor metric per aligned bucket over [start, end)."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}")
    args = (sensor.pk, metric, start, end)
    if connection.vendor == "postgresql":
        if bucket == "1d":
            return _postgresql_days(*args, settings.TIME_ZONE)
        return _postgresql_fixed(*args, BUCKETS[bucket])
    step = QUARTER_HOUR if bucket == "1d" else int(BUCKETS[bucket].total_seconds())
    rows = _sqlite_fixed(*args, step)
    if bucket == "1d":
        return _merge_into_days(rows, ZoneInfo(settings.TIME_ZONE))
    return [Bucket(t, total / count, low, high, count) for t, total, low, high, count in rows]


_WHERE = "WHERE sensor_id = %s AND metric = %s AND ts >= %s AND ts < %s"


def _table() -> str:
    return connection.ops.quote_name(Reading._meta.db_table)


def _bounds(start: datetime, end: datetime) -> list:
    ops = connection.ops
    return [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]


def _postgresql_fixed(sensor_id, metric, start, end, step: timedelta) -> list[Bucket]:
    sql = (
        "SELECT date_bin(%s::interval, ts, TIMESTAMPTZ '2000-01-01T00:00:00Z') AS t, "
        f"avg(value), min(value), max(value), count(*) FROM {_table()} {_WHERE} "
        "GROUP BY t ORDER BY t"
    )
    seconds = f"{int(step.total_seconds())} seconds"
    with connection.cursor() as cursor:
        cursor.execute(sql, [seconds, sensor_id, metric, *_bounds(start, end)])
        return [Bucket(*row) for row in cursor.fetchall()]


def _postgresql_days(sensor_id, metric, start, end, zone: str) -> list[Bucket]:
    sql = (
        "SELECT date_trunc('day', ts AT TIME ZONE %s) AT TIME ZONE %s AS t, "
        f"avg(value), min(value), max(value), count(*) FROM {_table()} {_WHERE} "
        "GROUP BY t ORDER BY t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [zone, zone, sensor_id, metric, *_bounds(start, end)])
        return [Bucket(*row) for row in cursor.fetchall()]


def _sqlite_fixed(sensor_id, metric, start, end, step: int) -> list[tuple]:
    """Return (start, sum, min, max, count) per bucket of ``step`` seconds."""
    # Django stores UTC text ("YYYY-MM-DD HH:MM:SS[.ffffff]"); strftime('%s') reads it.
    sql = (
        "SELECT CAST(strftime('%%s', ts) AS INTEGER) / %s * %s AS b, "
        f"sum(value), min(value), max(value), count(*) FROM {_table()} {_WHERE} "
        "GROUP BY b ORDER BY b"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [step, step, sensor_id, metric, *_bounds(start, end)])
        return [
            (datetime.fromtimestamp(b, UTC), total, low, high, count)
            for b, total, low, high, count in cursor.fetchall()
        ]


def _merge_into_days(rows: Iterable[tuple], zone: ZoneInfo) -> list[Bucket]:
    days: dict[datetime, list] = {}
    for t, total, low, high, count in rows:
        midnight = datetime.combine(t.astimezone(zone).date(), time.min, tzinfo=zone)
        day = midnight.astimezone(UTC)
        if day not in days:
            days[day] = [total, low, high, count]
            continue
        acc = days[day]
        acc[0] += total
        acc[1] = min(acc[1], low)
        acc[2] = max(acc[2], high)
        acc[3] += count
    return [Bucket(day, s / n, low, high, n) for day, (s, low, high, n) in days.items()]
