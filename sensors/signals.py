"""The hooks by which ``sensors`` announces what it stored, without knowing who listens.

``batch_committed`` is sent once per committed ingest batch (never per reading), after
the transaction commits, with ``readings``: a list of ``StoredReading`` that were new
(duplicates are left out). Alerts evaluate their rules from it; the live layer pushes
it to dashboards. Receivers must be quick: enqueue work, do not do it.

``sensor_state_changed`` is sent with ``sensor`` (a Sensor) and ``state`` ("online" or
"offline") when a sensor's state flips.
"""

from typing import NamedTuple

from django.dispatch import Signal


class StoredReading(NamedTuple):
    sensor_id: int
    metric: str
    ts: object  # datetime, timezone-aware
    value: float


batch_committed = Signal()
sensor_state_changed = Signal()
