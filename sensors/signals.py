"""The hooks by which ``sensors`` announces what it stored, without knowing who listens.

``batch_committed`` is sent once per committed ingest batch (never per reading), after
the transaction commits, with ``readings``: a list of ``StoredReading`` that were new
(duplicates are left out). The live layer pushes it to dashboards. Receivers must be
quick: enqueue work, do not do it.

``batch_writing`` is sent once per ingest batch with new readings, inside the batch's
transaction, with ``readings`` (the same list). What a receiver writes commits or rolls
back with the readings: work that must not be lost between the commit and a queue
(alerts record the batch their rules must see; roll-ups mark the late hours). Receivers
only write to the database; an exception rolls the batch back (after a database error,
ingest writes it again).

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


batch_writing = Signal()
batch_committed = Signal()
sensor_state_changed = Signal()
