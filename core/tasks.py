"""Celery tasks of the bottom layer: the notifications' (defined with the outbox they
send), and the retention of the audit trail and of the notifications sent."""

from celery import shared_task

from .models import AuditEntry, Notification
from .outbox import deliver_webhook, dispatch, push_to_devices, send_email, send_sms

__all__ = [
    "deliver_webhook",
    "dispatch",
    "purge_audit_entries",
    "purge_notifications",
    "push_to_devices",
    "send_email",
    "send_sms",
]


@shared_task
def purge_audit_entries():
    deleted, _ = AuditEntry.objects.expired().delete()
    return deleted


@shared_task
def purge_notifications():
    deleted, _ = Notification.objects.expired().delete()
    return deleted
