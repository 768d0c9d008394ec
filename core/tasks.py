"""Celery tasks of the bottom layer: the notifications' (defined with the outbox they
send) and the audit trail's retention."""

from celery import shared_task

from .models import AuditEntry
from .outbox import deliver_webhook, dispatch, send_email

__all__ = ["deliver_webhook", "dispatch", "purge_audit_entries", "send_email"]


@shared_task
def purge_audit_entries():
    deleted, _ = AuditEntry.objects.expired().delete()
    return deleted
