"""Celery tasks of the PPMS app: thin, they call the domain code."""

from celery import shared_task

from .ladder import climb
from .proposals import ppms_activate_unanswered
from .services import ppms_purge


@shared_task
def escalate_pending_schools() -> int:
    """Periodic: the steps of the escalation ladder fallen due for silent schools."""
    return len(climb())


@shared_task
def activate_unanswered_proposals() -> int:
    """Periodic: activate the proposals whose rule says so when nobody answered in time."""
    return len(ppms_activate_unanswered())


@shared_task
def purge_ppms_incidents() -> dict[str, int]:
    """Nightly: PPMS incidents past their retention deleted, their free text sooner."""
    return ppms_purge()
