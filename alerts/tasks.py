"""Celery tasks of the alerts app: thin, they take ids and call the domain code."""

from celery import shared_task
from django.utils import timezone

from . import aggregates, evaluation, lifecycle


@shared_task
def evaluate_pending() -> int:
    """Evaluate the ingest batches waiting for the rules (sent after each batch commits)."""
    return evaluation.evaluate_pending()


@shared_task
def evaluate_latest() -> int:
    """Catch up from the latest values (after Redis or a worker was away)."""
    return lifecycle.evaluate_latest_values()


@shared_task
def sensor_state_changed(sensor_id: int, state: str) -> None:
    lifecycle.offline_rules_follow(sensor_id, state)


@shared_task
def check_alerts() -> dict:
    """Periodic: re-notify, end snoozes, resolve quiet flapping alerts; evaluate the
    batches whose task was lost with Redis or a worker."""
    report = lifecycle.check_due_alerts(timezone.now())
    report["opened"] = evaluation.evaluate_pending()
    return report


@shared_task
def evaluate_atmo() -> int:
    return lifecycle.evaluate_atmo_index()


@shared_task
def evaluate_aggregates() -> int:
    """Periodic: judge the rules on means over the hours rolled up since the last run."""
    return aggregates.evaluate_aggregates()
