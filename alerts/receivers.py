"""How the alerts app listens to sensors.

Each ingest batch records, in its own transaction, what the rules must evaluate (a
``PendingEvaluation``), and asks a Celery worker to evaluate once it commits. The row,
not the Celery message, is the work: a message lost with Redis or with a killed worker
only delays it until the next batch's message, or beat's check.
"""

import logging

from core import outbox
from core.cache import ProcessCache

from . import tasks
from .lifecycle import offline_rules_follow
from .models import PendingEvaluation, Rule

log = logging.getLogger(__name__)

_watched: ProcessCache[None, set[str]] = ProcessCache(
    lambda _key: set(
        Rule.objects.filter(active=True, aggregate="")
        .exclude(metric="")
        .values_list("metric", flat=True)
    )
)


def watched_metrics() -> set[str]:
    """The metrics some active rule on raw readings looks at (kept by the process: this
    runs in ingest). Rules on means read the hourly roll-ups instead."""
    return _watched.get(None)


def reduce_batch(readings, metrics: set[str]) -> list[list]:
    """Per sensor and metric keep the lowest, the highest and the last reading.

    Enough for every rule: crossings up or down and peaks come from the extremes, the
    state after the batch from the last one; a batch of thousands becomes a few items.
    """
    groups: dict[tuple[int, str], list] = {}
    for reading in readings:
        if reading.metric not in metrics:
            continue
        key = (reading.sensor_id, reading.metric)
        point = (reading.ts, reading.value)
        group = groups.get(key)
        if group is None:
            groups[key] = [point, point, point]  # lowest, highest, last
            continue
        if point[1] < group[0][1]:
            group[0] = point
        if point[1] > group[1][1]:
            group[1] = point
        if point[0] > group[2][0]:
            group[2] = point
    items = []
    for (sensor_id, metric), group in groups.items():
        for ts, value in sorted(set(group)):
            items.append([sensor_id, metric, ts.timestamp(), value])
    return items


def on_batch_writing(sender, readings, **kwargs) -> None:
    items = reduce_batch(readings, watched_metrics())
    if items:
        PendingEvaluation.objects.create(items=items)
        outbox.after_commit(tasks.evaluate_pending)


def on_sensor_state_changed(sender, sensor_id, state, **kwargs) -> None:
    if not outbox.enqueue(tasks.sensor_state_changed, sensor_id, state):
        # Redis is away. A state change is rare and kept nowhere else: follow the
        # offline rules here rather than lose it.
        offline_rules_follow(sensor_id, state)
