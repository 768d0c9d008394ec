from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from sensors.models import Reading
from sensors.partitions import (
    create_partition,
    existing_partitions,
    is_partitioned,
    maintain_reading_partitions,
    partition_name,
)

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_a_reading_is_unique_on_sensor_metric_and_time(sensor):
    ts = datetime.now(UTC)
    Reading.objects.create(sensor=sensor, metric="pm25", ts=ts, value=12.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reading.objects.create(sensor=sensor, metric="pm25", ts=ts, value=13.0)
    Reading.objects.create(sensor=sensor, metric="no2", ts=ts, value=40.0)
    assert Reading.objects.count() == 2


@pytest.mark.postgres
def test_the_migrated_readings_table_is_partitioned_by_day(db):
    assert is_partitioned()
    today = datetime.now(UTC).date()
    days = existing_partitions()
    assert today in days
    assert today + timedelta(days=7) in days
    assert today - timedelta(days=29) in days


@pytest.mark.postgres
def test_it_creates_the_partitions_of_the_days_ahead(db):
    later = datetime.now(UTC) + timedelta(days=20)
    report = maintain_reading_partitions(now=later, retention_days=30, ahead_days=7)
    assert partition_name((later + timedelta(days=7)).date()) in report.created
    assert (later + timedelta(days=7)).date() in existing_partitions()
    # Run again: nothing more to do.
    again = maintain_reading_partitions(now=later, retention_days=30, ahead_days=7)
    assert again.created == [] and again.dropped == []


@pytest.mark.postgres
def test_it_drops_only_partitions_wholly_past_the_retention(sensor):
    old_day = (NOW - timedelta(days=40)).date()
    edge_day = (NOW - timedelta(days=30)).date()
    for day in (old_day, edge_day):
        create_partition(day)
    old = datetime.combine(old_day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    edge = NOW - timedelta(days=30) + timedelta(minutes=5)
    Reading.objects.create(sensor=sensor, metric="pm25", ts=old, value=1)
    Reading.objects.create(sensor=sensor, metric="pm25", ts=edge, value=2)
    # In production the rows were committed long before; here, settle the deferred FK.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    report = maintain_reading_partitions(now=NOW, retention_days=30, ahead_days=7)

    assert partition_name(old_day) in report.dropped
    assert partition_name(edge_day) not in report.dropped
    assert list(Reading.objects.values_list("value", flat=True)) == [2]


@pytest.mark.postgres
def test_a_reading_outside_every_partition_is_refused_by_the_database(sensor):
    far_future = datetime.now(UTC) + timedelta(days=400)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reading.objects.create(sensor=sensor, metric="pm25", ts=far_future, value=1)


@pytest.mark.postgres
def test_the_partition_command_reports_what_it_did(db, capsys):
    from django.core.management import call_command

    call_command("partitions")
    assert "created 0 partition(s)" in capsys.readouterr().out


def test_retention_deletes_old_rows_when_the_table_is_not_partitioned(sensor):
    if connection.vendor == "postgresql":
        pytest.skip("the partitioned path is tested above")
    Reading.objects.create(sensor=sensor, metric="pm25", ts=NOW - timedelta(days=31), value=1)
    Reading.objects.create(sensor=sensor, metric="pm25", ts=NOW - timedelta(days=1), value=2)
    report = maintain_reading_partitions(now=NOW, retention_days=30)
    assert report.deleted_rows == 1
    assert list(Reading.objects.values_list("value", flat=True)) == [2]
