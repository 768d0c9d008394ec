"""Celery tasks of the PPMS app: thin, they call the domain code."""

from celery import shared_task

from .proposals import ppms_activate_unanswered
from .services import ppms_escalate_pending


@shared_task
def escalate_pending_schools() -> int:
    """Periodic: escalate the schools still silent past their delay."""
    return len(ppms_escalate_pending())


@shared_task
def activate_unanswered_proposals() -> int:
    """Periodic: activate the proposals whose rule says so when nobody answered in time."""
    return len(ppms_activate_unanswered())
