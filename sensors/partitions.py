"""Daily range partitions of the readings table on PostgreSQL.

Partitions are named ``sensors_reading_pYYYYMMDD`` and cover one UTC day. They are
created ``READINGS_PARTITIONS_AHEAD_DAYS`` ahead and dropped once wholly older than
``READINGS_RETENTION_DAYS``: dropping a partition is instant, where deleting rows is
not. Elsewhere (the embedded SQLite default) retention deletes the old rows.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

PARENT = "sensors_reading"
NAME_RE = re.compile(rf"^{PARENT}_p(\d{{8}})$")


@dataclass
class PartitionReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def is_partitioned(conn=connection) -> bool:
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
            "ON c.oid = p.partrelid WHERE c.relname = %s",
            [PARENT],
        )
        return cursor.fetchone() is not None


def existing_partitions(conn=connection) -> dict[date, str]:
    """Return the day of each existing partition, from its name."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = %s",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = NAME_RE.match(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def _bound(day: date) -> str:
    return datetime.combine(day, time.min, tzinfo=UTC).isoformat()


def create_partition(day: date, conn=connection) -> str:
    name = partition_name(day)
    with conn.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{PARENT}" '
            f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
        )
    return name


def maintain_reading_partitions(
    *,
    now: datetime | None = None,
    retention_days: int | None = None,
    ahead_days: int | None = None,
    conn=connection,
) -> PartitionReport:
    """Create the partitions the retention window and the days ahead need; drop expired ones."""
    now = now or timezone.now()
    retention_days = retention_days or settings.READINGS_RETENTION_DAYS
    ahead_days = ahead_days or settings.READINGS_PARTITIONS_AHEAD_DAYS
    cutoff = now - timedelta(days=retention_days)
    report = PartitionReport()

    if not is_partitioned(conn):
        from .models import Reading

        report.deleted_rows, _ = Reading.objects.using(conn.alias).filter(ts__lt=cutoff).delete()
        return report

    today = now.astimezone(UTC).date()
    first = cutoff.astimezone(UTC).date()
    with transaction.atomic(using=conn.alias):
        existing = existing_partitions(conn)
        for offset in range((today - first).days + ahead_days + 1):
            day = first + timedelta(days=offset)
            if day not in existing:
                report.created.append(create_partition(day, conn))
        for day, name in sorted(existing.items()):
            # A partition goes only when every row it can hold is past the retention.
            if datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) <= cutoff:
                with conn.cursor() as cursor:
                    cursor.execute(f'DROP TABLE "{name}"')
                report.dropped.append(name)
    if report.created or report.dropped:
        log.info(
            "reading partitions: %d created (%s), %d dropped (%s)",
            len(report.created),
            " … ".join(report.created[:: max(1, len(report.created) - 1)]),
            len(report.dropped),
            ", ".join(report.dropped),
        )
    return report


CREATE_PARTITIONED_SQL = f"""
DROP TABLE "{PARENT}";
CREATE TABLE "{PARENT}" (
    "sensor_id" bigint NOT NULL
        REFERENCES "sensors_sensor" ("id") DEFERRABLE INITIALLY DEFERRED,
    "metric" varchar(32) NOT NULL,
    "ts" timestamp with time zone NOT NULL,
    "value" double precision NOT NULL,
    PRIMARY KEY ("sensor_id", "metric", "ts")
) PARTITION BY RANGE ("ts");
"""

CREATE_PLAIN_SQL = f"""
DROP TABLE "{PARENT}";
CREATE TABLE "{PARENT}" (
    "sensor_id" bigint NOT NULL
        REFERENCES "sensors_sensor" ("id") DEFERRABLE INITIALLY DEFERRED,
    "metric" varchar(32) NOT NULL,
    "ts" timestamp with time zone NOT NULL,
    "value" double precision NOT NULL,
    PRIMARY KEY ("sensor_id", "metric", "ts")
);
"""
