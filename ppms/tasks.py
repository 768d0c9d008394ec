from celery import shared_task


@shared_task
def escalate_pending_schools() -> int:
    from .services import ppms_escalate_pending

    return len(ppms_escalate_pending())
