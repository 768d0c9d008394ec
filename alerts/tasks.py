"""Celery tasks of the alerts app: thin, they take ids and call the domain code."""

import logging
from datetime import UTC, datetime

from celery import shared_task
from django.core.mail import send_mail
from django.utils import timezone

from .evaluation import Evaluation, Observation

log = logging.getLogger(__name__)


class WebhookNotDelivered(Exception):
    pass


@shared_task
def evaluate_pending() -> int:
    """Evaluate the ingest batches waiting for the rules (sent after each batch commits)."""
    from .evaluation import evaluate_pending as evaluate

    return evaluate()


@shared_task(acks_late=True)
def evaluate_batch(items: list) -> int:
    """Evaluate items [sensor_id, metric, epoch, value]: the messages an earlier version
    of ingest queued (it sent each batch's items through Redis)."""
    observations = [
        Observation(sensor_id, metric, datetime.fromtimestamp(epoch, UTC), value)
        for sensor_id, metric, epoch, value in items
    ]
    return len(Evaluation().run(observations))


@shared_task
def evaluate_latest() -> int:
    """Catch up from the latest values (after Redis or a worker was away)."""
    from .lifecycle import evaluate_latest_values

    return evaluate_latest_values()


@shared_task
def sensor_state_changed(sensor_id: int, state: str) -> None:
    from .lifecycle import offline_rules_follow

    offline_rules_follow(sensor_id, state)


@shared_task
def dispatch_events() -> int:
    from .notify import dispatch_pending_events

    return dispatch_pending_events()


@shared_task
def check_alerts() -> dict:
    """Periodic: re-notify, end snoozes, resolve quiet flapping alerts; evaluate and
    dispatch the leftovers (batches and events whose task was lost with Redis or a
    worker)."""
    from .evaluation import evaluate_pending
    from .lifecycle import check_due_alerts
    from .notify import dispatch_pending_events

    report = check_due_alerts(timezone.now())
    report["opened"] = evaluate_pending()
    report["dispatched"] = dispatch_pending_events()
    return report


@shared_task
def evaluate_atmo() -> int:
    from .lifecycle import evaluate_atmo_index

    return evaluate_atmo_index()


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_alert_email(event_id: int) -> None:
    from .models import AlertEvent
    from .notify import email_text

    event = (
        AlertEvent.objects.select_related("alert__rule", "alert__sensor")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return
    subject, body = email_text(event)
    send_mail(subject, body, None, event.alert.rule.email_list)


@shared_task(
    bind=True,
    autoretry_for=(WebhookNotDelivered,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=8,
)
def deliver_webhook(self, delivery_id: int) -> str:
    from .webhooks import attempt_delivery

    outcome = attempt_delivery(delivery_id, final=self.request.retries >= self.max_retries)
    if outcome == "retry":
        raise WebhookNotDelivered(delivery_id)
    return outcome
