"""Hourly roll-ups of the readings: count, sum, min and max per sensor, metric and UTC hour.

``ReadingHourly`` serves the ``1h`` and ``1d`` history (``sensors/history.py``) and
outlives the raw readings (``ROLLUP_RETENTION_DAYS``). Which hours it is right for:

- every hour before ``RollupProgress.until`` (the *watermark*), which the task advances
  to the start of the current hour every time it runs (every 5 minutes);
- except the *dirty* hours (``RollupDirtyHour``): closed hours that received readings
  after they were rolled up. Ingest marks them from the ``batch_writing`` signal, in the
  batch's own transaction; the task recomputes them. Readings may arrive late by up to
  the readings' retention.

The history reads everything else (the current hour, dirty hours, the partial hours at
the ends of a range) from the raw readings, so an answer never lags behind ingest.

Readings are append-only (retention drops whole days), so recomputing an hour is an
upsert: ``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE``, one statement per UTC
day (one partition) on PostgreSQL. A closed hour is rolled up twice: when the watermark
passes it, and once more an hour later, for readings that were committed while it was
being rolled up or stamped by a clock slightly ahead; later arrivals are marked dirty.
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import ReadingHourly, RollupDirtyHour, RollupProgress

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
PROGRESS = "hourly"
# Recompute the last closed hour once more when the watermark moves on (see above).
GRACE = HOUR
# Any constant: keeps two roll-up runs (overlapping beat ticks) from doing the same work.
ADVISORY_LOCK = 0x637375_726F6C6C  # "csu" "roll"

_EPOCH = "TIMESTAMPTZ '2000-01-01T00:00:00Z'"
POSTGRESQL_ROLLUP_SQL = f"""
INSERT INTO sensors_readinghourly AS h (sensor_id, metric, hour, count, sum, min, max)
SELECT sensor_id, metric, date_bin('1 hour', ts, {_EPOCH}),
       count(*), sum(value), min(value), max(value)
FROM sensors_reading
WHERE ts >= %s AND ts < %s
GROUP BY 1, 2, 3
ON CONFLICT (sensor_id, metric, hour) DO UPDATE
SET count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max
WHERE (h.count, h.sum, h.min, h.max)
    IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.sum, EXCLUDED.min, EXCLUDED.max)
"""
# Django stores SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
SQLITE_ROLLUP_SQL = """
INSERT INTO sensors_readinghourly (sensor_id, metric, hour, count, sum, min, max)
SELECT sensor_id, metric, strftime('%%Y-%%m-%%d %%H:00:00', ts),
       count(*), sum(value), min(value), max(value)
FROM sensors_reading
WHERE ts >= %s AND ts < %s
GROUP BY 1, 2, 3
ON CONFLICT (sensor_id, metric, hour) DO UPDATE
SET count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max
"""


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def rollup_hours(start: datetime, end: datetime) -> int:
    """Recompute the roll-ups of the hours in [start, end) from the raw readings.

    Return the number of roll-up rows written (unchanged ones are left alone on
    PostgreSQL).
    """
    start, end = floor_hour(start), ceil_hour(end)
    sql = POSTGRESQL_ROLLUP_SQL if connection.vendor == "postgresql" else SQLITE_ROLLUP_SQL
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
        )
        return cursor.rowcount


def rollup_progress() -> datetime | None:
    """Return the watermark: every hour before it is rolled up (but the dirty ones)."""
    return RollupProgress.objects.filter(name=PROGRESS).values_list("until", flat=True).first()


def set_rollup_progress(until: datetime) -> None:
    RollupProgress.objects.update_or_create(name=PROGRESS, defaults={"until": until})


def mark_dirty_hours(hours: Iterable[datetime]) -> None:
    """Mark hours as needing a roll-up again, in one statement."""
    hours = sorted({floor_hour(hour) for hour in hours})  # sorted: no deadlock between workers
    if not hours:
        return
    table = RollupDirtyHour._meta.db_table
    values = ", ".join(["(%s, 1)"] * len(hours))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (hour, version) VALUES {values} "
            f"ON CONFLICT (hour) DO UPDATE SET version = {table}.version + 1",
            [connection.ops.adapt_datetimefield_value(hour) for hour in hours],
        )


def on_batch_writing(sender, readings, **kwargs) -> None:
    """Mark the closed hours that receive readings (the ``batch_writing`` hook).

    In the batch's transaction: the mark commits with the readings, so ingest dying
    after the commit cannot leave a stale roll-up behind. The current hour needs no mark:
    it is past the watermark, read raw until the task rolls it up after it closes.
    """
    current = floor_hour(timezone.now())
    # A message's readings share their time: floor each time once (a backlog of late
    # readings made this a tenth of ingest's CPU, one astimezone() per reading).
    late_times = {reading.ts for reading in readings if reading.ts < current}
    late = {floor_hour(ts) for ts in late_times}
    if late:
        mark_dirty_hours(late)


@dataclass
class RollupReport:
    hours: int = 0
    rows: int = 0
    cleared: int = 0
    until: datetime | None = None
    skipped: bool = False


def rollup_recent(*, now: datetime | None = None) -> RollupReport:
    """Roll up the hours closed since the last run and the dirty hours; advance the watermark.

    On the first run, roll up the whole retention window of the readings. Each UTC day is
    one transaction, so a long catch-up keeps what it did if interrupted.
    """
    now = now or timezone.now()
    until = floor_hour(now)
    report = RollupReport()
    with _single_run() as acquired:
        if not acquired:
            report.skipped = True
            return report
        progress = rollup_progress()
        if progress is None:
            sweep_from = floor_hour(now - timedelta(days=settings.READINGS_RETENTION_DAYS))
        else:
            sweep_from = progress - GRACE if progress < until else until
        marks = dict(RollupDirtyHour.objects.filter(hour__lt=until).values_list("hour", "version"))
        hours = set(marks) | set(_hours_between(sweep_from, until))
        for first, last in _spans_by_day(hours):
            with transaction.atomic():
                report.rows += rollup_hours(first, last)
                report.cleared += _clear_marks(
                    {hour: version for hour, version in marks.items() if first <= hour < last}
                )
                if last > sweep_from and (progress is None or last > progress):
                    set_rollup_progress(last)
                    progress = last
        report.hours = len(hours)
        report.until = progress
    if report.hours > 2 or report.cleared:
        log.info(
            "roll-ups: %d hours recomputed (%d rows), %d dirty hours cleared, up to %s",
            report.hours,
            report.rows,
            report.cleared,
            report.until,
        )
    return report


def purge_rollups(*, now: datetime | None = None) -> int:
    """Delete the roll-ups older than ``ROLLUP_RETENTION_DAYS``; return how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ROLLUP_RETENTION_DAYS)
    deleted, _ = ReadingHourly.objects.filter(hour__lt=cutoff).delete()
    return deleted


def _hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


def _spans_by_day(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Group hours by UTC day (one partition): [first hour, last hour + 1 h) per day.

    Hours in between that need nothing are recomputed too: on PostgreSQL the day's
    partition is read once either way.
    """
    days: dict = {}
    for hour in sorted(hours):
        span = days.setdefault(hour.date(), [hour, hour])
        span[1] = hour
    return [(first, last + HOUR) for first, last in days.values()]


def _clear_marks(marks: dict[datetime, int]) -> int:
    """Delete the marks still at the version read: one made meanwhile stays."""
    if not marks:
        return 0
    condition = reduce(or_, (Q(hour=hour, version=version) for hour, version in marks.items()))
    deleted, _ = RollupDirtyHour.objects.filter(condition).delete()
    return deleted


@contextmanager
def _single_run():
    if connection.vendor != "postgresql":
        # SQLite's IMMEDIATE transactions already run one writer at a time.
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK])
