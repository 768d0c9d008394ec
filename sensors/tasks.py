from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import RejectedMessage, Sensor
from .partitions import maintain_reading_partitions as maintain
from .rollups import purge_rollups, rollup_recent
from .signals import sensor_state_changed


@shared_task
def maintain_reading_partitions():
    report = maintain()
    # Roll-ups outlive the readings; their retention is kept here too, an hour at a time.
    rollups_deleted = purge_rollups()
    return {
        "created": report.created,
        "dropped": report.dropped,
        "deleted": report.deleted_rows,
        "rollups_deleted": rollups_deleted,
    }


@shared_task
def rollup_recent_hours():
    report = rollup_recent()
    return {
        "hours": report.hours,
        "rows": report.rows,
        "cleared": report.cleared,
        "until": report.until.isoformat() if report.until else None,
        "skipped": report.skipped,
    }


@shared_task
def purge_rejected_messages():
    cutoff = timezone.now() - timedelta(days=settings.REJECTED_MESSAGES_RETENTION_DAYS)
    deleted, _ = RejectedMessage.objects.filter(received_at__lt=cutoff).delete()
    return deleted


@shared_task
def mark_silent_sensors_offline():
    silent = Sensor.objects.mark_silent_offline()
    for sensor_id in silent:
        sensor_state_changed.send_robust(sender=Sensor, sensor_id=sensor_id, state="offline")
    return len(silent)
