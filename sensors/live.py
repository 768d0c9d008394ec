"""Readings and sensor states pushed live to the operators of each sensor's commune.

Readings are coalesced: at most one item per sensor and metric per second, the last
value winning, so a 20,000 readings/s stream stays a few pushes per second per commune.
"""

import asyncio
import logging
import threading
import time

from core import live

from . import directory

log = logging.getLogger(__name__)


class ReadingsCoalescer:
    """Keep the last value per sensor and metric; push them at most once a second."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._pending: dict[tuple[int, str], tuple] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing = False

    def add(self, readings) -> None:
        with self._lock:
            for reading in readings:
                key = (reading.sensor_id, reading.metric)
                previous = self._pending.get(key)
                if previous is None or previous[0] <= reading.ts:
                    self._pending[key] = (reading.ts, reading.value)

    def start(self) -> None:
        """Push what is pending every ``interval`` seconds from a thread of this process."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live-readings", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        while True:
            time.sleep(self.interval)
            self.tick()

    def tick(self) -> None:
        """Push what is pending; an outage (Redis away) is logged when it starts and ends,
        not every second."""
        try:
            self.flush()
        except Exception:
            if not self._failing:
                log.exception(
                    "live readings push failed; retrying every %g s, quietly", self.interval
                )
            self._failing = True
            return
        if self._failing:
            log.warning("live readings pushes resumed")
            self._failing = False

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
        by_group: dict[str, list[live.ReadingItem]] = {}
        for (sensor_id, metric), (ts, value) in pending.items():
            sensor = directory.by_id(sensor_id)
            if sensor is None:
                continue
            by_group.setdefault(live.commune_group(sensor.commune_id), []).append(
                live.ReadingItem(sensor=sensor.ref, metric=metric, ts=ts.isoformat(), value=value)
            )
        for group, items in by_group.items():
            live.send(group, live.ReadingsEvent(type="readings", items=items), loop=self._loop)
        return len(pending)


readings_coalescer = ReadingsCoalescer()


def on_batch_committed(sender, readings, **kwargs) -> None:
    readings_coalescer.add(readings)
    readings_coalescer.start()


def on_sensor_state_changed(sender, sensor_id, state, **kwargs) -> None:
    sensor = directory.by_id(sensor_id)
    if sensor is not None:
        live.send(
            live.commune_group(sensor.commune_id),
            live.SensorEvent(type="sensor", event=state, sensor=sensor.ref),
        )
