"""Ask a worker to send what a transaction recorded, once it commits (the outbox pattern).

Alerts and PPMS write their events as rows in the same transaction as the change; this
enqueues the task that claims and sends them, once per transaction however many events
it wrote. A task that cannot be enqueued (Redis away) is not lost: beat dispatches the
rows left unsent.
"""

import functools
import logging

from django.db import transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@functools.cache
def _sender(task_path: str):
    def send() -> None:
        try:
            import_string(task_path).delay()
        except Exception:  # the beat task dispatches what is left
            log.exception("could not enqueue %s; beat will catch up", task_path)

    return send


def dispatch_after_commit(task_path: str) -> None:
    """Enqueue the Celery task ``task_path`` when the current transaction commits, once."""
    sender = _sender(task_path)
    # Looked up in the connection's own list, not a flag of ours: a rolled-back
    # transaction drops its callbacks, and a flag would stay set and silence the next.
    if any(entry[1] is sender for entry in transaction.get_connection().run_on_commit):
        return
    transaction.on_commit(sender)
