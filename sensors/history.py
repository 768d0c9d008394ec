"""The history of one sensor metric: raw readings, or aggregated into aligned buckets.

Buckets of ``1m``, ``5m`` and ``1h`` start on multiples of their length since the UTC
epoch; a ``1d`` bucket is a local day of ``settings.TIME_ZONE`` (Europe/Paris), so it
lasts 23 or 25 hours on the days the clocks change. Only readings with
``start <= ts < end`` count, and empty buckets are left out.

``1m`` and ``5m`` always read the raw readings. PostgreSQL aggregates them with
``date_bin``/``date_trunc`` under a WHERE on the primary key columns, so the index and
the daily partitions are pruned. SQLite, the embedded default, groups on the Unix time
with integer arithmetic; for days it groups quarter hours in SQL (every UTC offset in
use is a multiple of 15 minutes) and merges them into local days in Python.

``1h`` and ``1d`` read the hourly roll-ups (``sensors/rollups.py``) for the whole hours
of the range they are right for, and the raw readings for the rest: the partial hours
at both ends, the hours past the roll-up watermark (the current hour) and the dirty
hours (which received late readings not yet rolled up). Days are then summed from
hours, which nest in the local days of any zone whose offsets are whole hours. The
answer is the raw computation's (the average up to the rounding of a sum of hourly
sums), at a cost that no longer grows with the readings: 30 days are 720 roll-up rows
instead of tens of thousands of readings.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from .models import Reading, ReadingHourly, RollupDirtyHour, Sensor
from .rollups import HOUR, ceil_hour, floor_hour, rollup_progress

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
    zone = ZoneInfo(settings.TIME_ZONE)
    if bucket in ("1h", "1d"):
        hours = _hours_with_rollups(*args, zone if bucket == "1d" else None)
        if hours is not None:
            return _merge_into_days(hours, zone) if bucket == "1d" else _buckets(hours)
    if connection.vendor == "postgresql":
        if bucket == "1d":
            return _postgresql_days(*args, settings.TIME_ZONE)
        return _buckets(_postgresql_fixed(*args, BUCKETS[bucket]))
    step = QUARTER_HOUR if bucket == "1d" else int(BUCKETS[bucket].total_seconds())
    rows = _sqlite_fixed(*args, step)
    if bucket == "1d":
        return _merge_into_days(rows, zone)
    return _buckets(rows)


def _buckets(rows: Iterable[tuple]) -> list[Bucket]:
    return [Bucket(t, total / count, low, high, count) for t, total, low, high, count in rows]


def _hours_with_rollups(sensor_id, metric, start, end, zone=None) -> list[tuple] | None:
    """Return (hour, sum, min, max, count) per UTC hour over [start, end), reading the
    roll-ups where they are right; None if they cover no whole hour of the range.

    With ``zone``, also None when a local midnight of the range is not on a UTC hour.
    """
    progress = rollup_progress()
    if progress is None:
        return None
    first, last = ceil_hour(start), min(floor_hour(end), progress)
    if first >= last or (zone and not _days_begin_on_the_hour(zone, start, end)):
        return None
    dirty = set(
        RollupDirtyHour.objects.filter(hour__gte=first, hour__lt=last).values_list(
            "hour", flat=True
        )
    )
    rows = [
        row
        for row in ReadingHourly.objects.filter(
            sensor_id=sensor_id, metric=metric, hour__gte=first, hour__lt=last
        ).values_list("hour", "sum", "min", "max", "count")
        if row[0] not in dirty
    ]
    for low, high in [(start, first), *_runs(dirty), (last, end)]:
        if low < high:
            rows.extend(_raw_hours(sensor_id, metric, low, high))
    rows.sort(key=lambda row: row[0])
    return rows


def _raw_hours(sensor_id, metric, start, end) -> list[tuple]:
    if connection.vendor == "postgresql":
        return _postgresql_fixed(sensor_id, metric, start, end, HOUR)
    return _sqlite_fixed(sensor_id, metric, start, end, int(HOUR.total_seconds()))


def _runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Merge hours into [start, end) runs of consecutive hours."""
    runs: list[list[datetime]] = []
    for hour in sorted(hours):
        if runs and runs[-1][1] == hour:
            runs[-1][1] = hour + HOUR
        else:
            runs.append([hour, hour + HOUR])
    return [(low, high) for low, high in runs]


def _days_begin_on_the_hour(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    day = start.astimezone(zone).date()
    while (midnight := datetime.combine(day, time.min, tzinfo=zone)) < end:
        if midnight.utcoffset() % HOUR:
            return False
        day += timedelta(days=1)
    return True


_WHERE = "WHERE sensor_id = %s AND metric = %s AND ts >= %s AND ts < %s"


def _table() -> str:
    return connection.ops.quote_name(Reading._meta.db_table)


def _bounds(start: datetime, end: datetime) -> list:
    ops = connection.ops
    return [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]


def _postgresql_fixed(sensor_id, metric, start, end, step: timedelta) -> list[tuple]:
    """Return (start, sum, min, max, count) per bucket of ``step``."""
    # sum / count in Python is what avg() computes, to the last bit.
    sql = (
        "SELECT date_bin(%s::interval, ts, TIMESTAMPTZ '2000-01-01T00:00:00Z') AS t, "
        f"sum(value), min(value), max(value), count(*) FROM {_table()} {_WHERE} "
        "GROUP BY t ORDER BY t"
    )
    seconds = f"{int(step.total_seconds())} seconds"
    with connection.cursor() as cursor:
        cursor.execute(sql, [seconds, sensor_id, metric, *_bounds(start, end)])
        return cursor.fetchall()


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
