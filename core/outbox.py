"""Ask a worker to send what a transaction recorded, once it commits (the outbox pattern).

Alerts and PPMS write their events as rows in the same transaction as the change; this
enqueues the task that claims and sends them, once per transaction however many events
it wrote. A task that cannot be enqueued (Redis away) is not lost: beat dispatches the
rows left unsent.

While Redis is away, each attempt to enqueue costs the caller over half a second of
the broker client's retries: after a failure, this process does not try again for
PAUSE_S seconds (its rows wait meanwhile), so ingest keeps its pace during an outage.
"""

import functools
import logging
import time

from django.db import transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

PAUSE_S = 5.0
_paused_until = 0.0


def enqueue(task_path: str, *args) -> bool:
    """Send the Celery task ``task_path`` now; False if the broker is away (or was, less
    than PAUSE_S ago)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return False
    try:
        import_string(task_path).delay(*args)
    except Exception as exc:  # noqa: BLE001 (whatever the broker's client raises)
        _paused_until = time.monotonic() + PAUSE_S
        log.warning(
            "could not enqueue %s (%s); not trying again for %g s, beat catches up",
            task_path,
            exc,
            PAUSE_S,
        )
        return False
    return True


def resume() -> None:
    """Try the broker again at the next enqueue, paused or not."""
    global _paused_until
    _paused_until = 0.0


@functools.cache
def _sender(task_path: str):
    def send() -> None:
        enqueue(task_path)  # not enqueued: the rows wait for the next one, or beat

    return send


def dispatch_after_commit(task_path: str) -> None:
    """Enqueue the Celery task ``task_path`` when the current transaction commits, once."""
    sender = _sender(task_path)
    # Looked up in the connection's own list, not a flag of ours: a rolled-back
    # transaction drops its callbacks, and a flag would stay set and silence the next.
    if any(entry[1] is sender for entry in transaction.get_connection().run_on_commit):
        return
    transaction.on_commit(sender)
