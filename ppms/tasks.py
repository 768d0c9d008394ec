"""Celery tasks of the PPMS app: thin, they call the domain code."""

from celery import shared_task
from django.core.mail import send_mail


@shared_task
def escalate_pending_schools() -> int:
    """Periodic: escalate the silent schools, and send the notices left unsent."""
    from .notify import dispatch_pending_events
    from .services import ppms_escalate_pending

    escalated = len(ppms_escalate_pending())
    dispatch_pending_events()  # leftovers, if the commit hook could not enqueue
    return escalated


@shared_task
def dispatch_activation_events() -> int:
    """Send what the safety services must hear of (webhooks, e-mails); also on beat."""
    from .notify import dispatch_pending_events

    return dispatch_pending_events()


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_ppms_mail(subject: str, body: str, recipients: list[str]) -> None:
    # The text is built once, when the event is claimed: a retry sends the same e-mail.
    send_mail(subject, body, None, recipients)
