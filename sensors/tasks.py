from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import RejectedMessage
from .partitions import maintain_reading_partitions as maintain


@shared_task
def maintain_reading_partitions():
    report = maintain()
    return {"created": report.created, "dropped": report.dropped, "deleted": report.deleted_rows}


@shared_task
def purge_rejected_messages():
    cutoff = timezone.now() - timedelta(days=settings.REJECTED_MESSAGES_RETENTION_DAYS)
    deleted, _ = RejectedMessage.objects.filter(received_at__lt=cutoff).delete()
    return deleted
