"""Hourly roll-ups: how they are computed, kept right under late data, read and purged."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from sensors import rollups, tasks
from sensors.ingest.writer import write_batch
from sensors.models import Reading, ReadingHourly, RollupDirtyHour
from sensors.partitions import create_partition
from sensors.rollups import (
    HOUR,
    floor_hour,
    mark_dirty_hours,
    rollup_hours,
    rollup_progress,
    rollup_recent,
)
from sensors.signals import batch_committed
from tests.conftest import sign_in

# Mid-hour, recent: PostgreSQL has partitions for the last 30 days and the next 7 only.
NOW = floor_hour(datetime.now(UTC)) + timedelta(minutes=20)
THIS_HOUR = floor_hour(NOW)


@pytest.fixture
def api(operator):
    client = APIClient()
    sign_in(client, operator)
    return client


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def add_readings(sensor, metric, start, step, values):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric=metric, ts=start + i * step, value=value)
        for i, value in enumerate(values)
    )


def points(api, sensor, metric, start, end, bucket):
    response = api.get(
        f"/api/v1/sensors/{sensor.ref}/readings/",
        {"metric": metric, "from": z(start), "to": z(end), "bucket": bucket},
    )
    assert response.status_code == 200, response.content
    return response.json()["points"]


def hourly(sensor, metric, hour):
    row = ReadingHourly.objects.get(sensor=sensor, metric=metric, hour=hour)
    return row.count, row.sum, row.min, row.max


def read_rollups(queries) -> bool:
    return any("sensors_readinghourly" in query["sql"] for query in queries.captured_queries)


@pytest.fixture
def without_live_push():
    """The live layer's receiver starts a pushing thread: not wanted in these tests."""
    from sensors import live

    batch_committed.disconnect(dispatch_uid="live-readings")
    yield
    batch_committed.connect(live.on_batch_committed, dispatch_uid="live-readings")


def ingest(sensor, metric, ts, value):
    """Store a reading as the ingest worker does: write the batch, then announce it."""
    result = write_batch([(sensor.pk, metric, ts, value)], [], set(), timezone.now())
    batch_committed.send_robust(sender=None, readings=result.stored)
    return result


# --- Computing -------------------------------------------------------------------------


def test_an_hourly_rollup_holds_the_count_sum_min_and_max_of_its_readings(sensor):
    hour = THIS_HOUR - 3 * HOUR
    add_readings(sensor, "pm25", hour, timedelta(minutes=10), [4.0, 1.5, 9.25, 6.0])
    add_readings(sensor, "pm25", hour + HOUR, timedelta(minutes=30), [20.0, 30.0])
    add_readings(sensor, "no2", hour + timedelta(minutes=59, seconds=59), HOUR, [7.0])
    add_readings(sensor, "pm25", hour + 2 * HOUR, HOUR, [99.0])  # outside the range

    rollup_hours(hour, hour + 2 * HOUR)

    assert hourly(sensor, "pm25", hour) == (4, 20.75, 1.5, 9.25)
    assert hourly(sensor, "pm25", hour + HOUR) == (2, 50.0, 20.0, 30.0)
    assert hourly(sensor, "no2", hour) == (1, 7.0, 7.0, 7.0)
    assert ReadingHourly.objects.count() == 3


def test_the_hourly_bucket_gives_the_rollup_average_and_extremes(api, sensor):
    hour = THIS_HOUR - 3 * HOUR
    add_readings(sensor, "pm25", hour, timedelta(minutes=10), [4.0, 1.5, 9.25, 6.0])
    rollup_recent(now=NOW)

    with CaptureQueriesContext(connection) as queries:
        answer = points(api, sensor, "pm25", hour, hour + HOUR, "1h")

    assert answer == [{"t": z(hour), "avg": 5.1875, "min": 1.5, "max": 9.25, "count": 4}]
    assert read_rollups(queries)


def test_recomputing_an_hour_replaces_its_rollup(sensor):
    hour = THIS_HOUR - 2 * HOUR
    add_readings(sensor, "o3", hour, timedelta(minutes=1), [1.0, 2.0])
    rollup_hours(hour, hour + HOUR)
    add_readings(sensor, "o3", hour + timedelta(minutes=5), timedelta(minutes=1), [0.5])

    rollup_hours(hour, hour + HOUR)

    assert hourly(sensor, "o3", hour) == (3, 3.5, 0.5, 2.0)
    assert ReadingHourly.objects.count() == 1


# --- Keeping them right: the watermark and late data -----------------------------------


def test_the_first_run_rolls_up_the_retention_window_and_sets_the_watermark(sensor):
    old = THIS_HOUR - timedelta(days=settings.READINGS_RETENTION_DAYS - 1)
    add_readings(sensor, "pm10", old, HOUR, [1.0, 2.0])

    report = rollup_recent(now=NOW)

    assert rollup_progress() == THIS_HOUR
    assert report.until == THIS_HOUR
    assert hourly(sensor, "pm10", old + HOUR) == (1, 2.0, 2.0, 2.0)


def test_a_run_rolls_up_the_hours_closed_since_the_last_one_and_the_previous_hour_again(
    sensor,
):
    rollup_recent(now=NOW)
    add_readings(sensor, "pm25", THIS_HOUR + timedelta(minutes=5), timedelta(minutes=1), [3.0])

    same_hour = rollup_recent(now=NOW + timedelta(minutes=5))
    assert same_hour.hours == 0
    assert not ReadingHourly.objects.exists()

    next_hour = rollup_recent(now=NOW + HOUR)
    assert next_hour.hours == 2
    assert rollup_progress() == THIS_HOUR + HOUR
    assert hourly(sensor, "pm25", THIS_HOUR) == (1, 3.0, 3.0, 3.0)


def test_a_late_reading_marks_its_hour_dirty_and_the_task_updates_the_bucket(
    api, sensor, without_live_push
):
    hour = THIS_HOUR - 3 * HOUR
    with time_machine.travel(NOW, tick=False):
        add_readings(sensor, "pm25", hour, timedelta(minutes=10), [1.0, 2.0, 3.0])
        tasks.rollup_recent_hours()
        before = points(api, sensor, "pm25", hour, hour + HOUR, "1h")

        ingest(sensor, "pm25", hour + timedelta(minutes=45), 10.0)

        assert list(RollupDirtyHour.objects.values_list("hour", flat=True)) == [hour]
        assert hourly(sensor, "pm25", hour) == (3, 6.0, 1.0, 3.0)  # stale...
        dirty = points(api, sensor, "pm25", hour, hour + HOUR, "1h")  # ...so read raw

        tasks.rollup_recent_hours.delay()

        assert hourly(sensor, "pm25", hour) == (4, 16.0, 1.0, 10.0)
        assert not RollupDirtyHour.objects.exists()
        with CaptureQueriesContext(connection) as queries:
            after = points(api, sensor, "pm25", hour, hour + HOUR, "1h")

    assert before == [{"t": z(hour), "avg": 2.0, "min": 1.0, "max": 3.0, "count": 3}]
    assert dirty == after == [{"t": z(hour), "avg": 4.0, "min": 1.0, "max": 10.0, "count": 4}]
    assert read_rollups(queries)


def test_a_late_readings_mark_commits_with_it_even_if_ingest_dies_before_announcing(sensor):
    hour = THIS_HOUR - 3 * HOUR
    with time_machine.travel(NOW, tick=False):
        # Written, committed, then ingest is killed: batch_committed is never sent.
        write_batch([(sensor.pk, "pm25", hour + timedelta(minutes=45), 10.0)], [], set(), NOW)

    assert list(RollupDirtyHour.objects.values_list("hour", flat=True)) == [hour]


def test_a_rolled_back_batch_leaves_no_mark(sensor):
    hour = THIS_HOUR - 3 * HOUR
    with (
        time_machine.travel(NOW, tick=False),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        write_batch([(sensor.pk, "pm25", hour + timedelta(minutes=45), 1.0)], [], set(), NOW)
        raise RuntimeError("the database went away before the commit")

    assert not RollupDirtyHour.objects.exists()


def test_a_reading_of_the_current_hour_marks_nothing(sensor, without_live_push):
    with time_machine.travel(NOW, tick=False):
        ingest(sensor, "pm25", NOW - timedelta(minutes=5), 3.0)
        ingest(sensor, "pm25", THIS_HOUR - timedelta(seconds=1), 4.0)

    assert list(RollupDirtyHour.objects.values_list("hour", flat=True)) == [THIS_HOUR - HOUR]


def test_the_current_hour_is_read_from_the_raw_readings(api, sensor):
    add_readings(sensor, "pm25", THIS_HOUR - HOUR, timedelta(minutes=30), [1.0, 2.0])
    rollup_recent(now=NOW)
    add_readings(sensor, "pm25", THIS_HOUR, timedelta(minutes=5), [8.0, 9.0])

    answer = points(api, sensor, "pm25", THIS_HOUR - HOUR, THIS_HOUR + HOUR, "1h")

    assert answer == [
        {"t": z(THIS_HOUR - HOUR), "avg": 1.5, "min": 1.0, "max": 2.0, "count": 2},
        {"t": z(THIS_HOUR), "avg": 8.5, "min": 8.0, "max": 9.0, "count": 2},
    ]


def test_a_mark_made_while_its_hour_is_recomputed_survives_the_run(sensor, monkeypatch):
    hour = THIS_HOUR - 5 * HOUR
    rollup_recent(now=NOW)
    add_readings(sensor, "no2", hour, HOUR, [5.0])
    mark_dirty_hours([hour])
    recompute = rollups.rollup_hours

    def a_late_batch_commits_meanwhile(start, end):
        written = recompute(start, end)
        mark_dirty_hours([hour])
        return written

    monkeypatch.setattr(rollups, "rollup_hours", a_late_batch_commits_meanwhile)
    report = rollup_recent(now=NOW)

    assert report.cleared == 0
    assert RollupDirtyHour.objects.get(hour=hour).version == 2
    monkeypatch.undo()
    assert rollup_recent(now=NOW).cleared == 1
    assert not RollupDirtyHour.objects.exists()


@pytest.mark.postgres
def test_a_run_is_skipped_while_another_one_holds_the_lock(db):
    import psycopg

    db = connection.settings_dict
    params = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"]}
    params |= {"host": db["HOST"], "port": db["PORT"]}
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [rollups.ADVISORY_LOCK])
        assert rollup_recent(now=NOW).skipped
        other.execute("SELECT pg_advisory_unlock(%s)", [rollups.ADVISORY_LOCK])

    assert not rollup_recent(now=NOW).skipped


# --- Reading them: the same answer as the raw readings ---------------------------------


@pytest.mark.parametrize("bucket", ["1h", "1d"])
def test_the_api_buckets_read_the_rollups_and_equal_the_raw_computation(api, sensor, bucket):
    start = THIS_HOUR - timedelta(days=3)
    values = [(i * 7 % 37) * 0.25 for i in range(3 * 24 * 6 + 2)]
    add_readings(sensor, "pm25", start, timedelta(minutes=10), values)
    add_readings(sensor, "pm10", start, timedelta(minutes=10), values[:50])
    # Neither end on the hour: the partial hours come from the raw readings.
    low, high = start + timedelta(minutes=17), NOW
    raw = points(api, sensor, "pm25", low, high, bucket)

    rollup_recent(now=NOW)
    mark_dirty_hours([start + 5 * HOUR])
    with CaptureQueriesContext(connection) as queries:
        rolled = points(api, sensor, "pm25", low, high, bucket)

    assert read_rollups(queries)
    assert rolled == raw
    assert sum(point["count"] for point in raw) == len(values) - 2  # two before 'from'
    if bucket == "1h":
        assert len(raw) == 3 * 24 + 1


@pytest.mark.parametrize(
    "day, hours",
    [(date(2026, 10, 25), 25), (date(2026, 3, 29), 23)],
    ids=["autumn-25h", "spring-23h"],
)
def test_a_paris_day_across_a_dst_change_sums_its_hours_from_the_rollups(api, sensor, day, hours):
    if connection.vendor == "postgresql":
        for offset in range(-2, 4):
            create_partition(day + timedelta(days=offset))
    paris_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=2)
    if day.month == 3:
        paris_midnight += HOUR  # still winter time (UTC+1) at midnight on 29 March
    start = paris_midnight - timedelta(days=1)
    values = [(i % 11) * 0.5 for i in range(3 * 24 * 2)]
    add_readings(sensor, "pm10", start, timedelta(minutes=30), values)
    low, high = start - timedelta(hours=5), start + timedelta(days=3, hours=1)
    raw = points(api, sensor, "pm10", low, high, "1d")

    rollup_recent(now=high + timedelta(days=1))
    with CaptureQueriesContext(connection) as queries:
        rolled = points(api, sensor, "pm10", low, high, "1d")

    assert read_rollups(queries)
    assert rolled == raw
    the_day = next(point for point in rolled if point["t"] == z(paris_midnight))
    assert the_day["count"] == 2 * hours


# --- Retention and schedule ------------------------------------------------------------


def test_rollups_older_than_their_retention_are_purged_by_the_partition_task(sensor):
    now = timezone.now()
    for days in (settings.ROLLUP_RETENTION_DAYS + 1, settings.ROLLUP_RETENTION_DAYS - 1):
        ReadingHourly.objects.create(
            sensor=sensor,
            metric="pm25",
            hour=floor_hour(now - timedelta(days=days)),
            count=1,
            sum=1.0,
            min=1.0,
            max=1.0,
        )

    result = tasks.maintain_reading_partitions()

    assert result["rollups_deleted"] == 1
    kept = ReadingHourly.objects.get()
    assert kept.hour == floor_hour(now - timedelta(days=settings.ROLLUP_RETENTION_DAYS - 1))


def test_beat_rolls_up_every_five_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["readings-rollups"]

    assert entry == {"task": "sensors.tasks.rollup_recent_hours", "schedule": 300.0}
