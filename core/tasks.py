from celery import shared_task

from .models import AuditEntry


@shared_task
def purge_audit_entries():
    deleted, _ = AuditEntry.objects.expired().delete()
    return deleted
