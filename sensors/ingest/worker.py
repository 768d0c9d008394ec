"""The ingest worker: MQTT in, batched writes, acknowledgement after commit.

paho's network thread only queues messages. The worker's own thread judges each one
(topic, sensor, payload), writes the batch in one transaction and only then PUBACKs
its QoS 1 messages: a crash before the commit leaves them unacknowledged, so the
broker delivers them again, and ``ON CONFLICT DO NOTHING`` makes a second delivery
harmless. While the database is down nothing is acknowledged and the broker holds the
rest (its in-flight window gives back-pressure).
"""

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connection

from .. import directory
from ..models import RejectedMessage, Sensor
from ..partitions import maintain_reading_partitions
from ..signals import batch_committed, sensor_state_changed
from .mqtt import make_client
from .parser import parse_readings, parse_topic
from .rates import BatchRates, DeviceRates
from .stats import IngestStats
from .writer import write_batch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes
    content_type: str | None
    received_at: datetime
    generation: int
    # Set by the broker on a retained message sent because of a new subscription.
    retained: bool = False


@dataclass
class Judged:
    readings: list = field(default_factory=list)
    rejections: list = field(default_factory=list)
    seen: set = field(default_factory=set)
    states: dict = field(default_factory=dict)
    # Rejected messages or readings by reason (a rate_limited row stands for several).
    rejected: Counter = field(default_factory=Counter)
    # The devices' rate buckets after this batch, to keep once it is committed.
    rates: BatchRates | None = None


def reject(msg: Inbound, reason: str, detail: str, ref: str = "", metric: str = ""):
    return RejectedMessage(
        received_at=msg.received_at,
        topic=msg.topic[:255],
        sensor_ref=ref[:255],
        reason=reason,
        detail=detail[:500],
        metric=metric[:64],
        payload=RejectedMessage.bounded_payload(msg.payload),
    )


def judge(messages: list[Inbound], *, rates: DeviceRates | None = None) -> Judged:
    """Sort a batch of messages into readings to store, rejections and state changes.

    With ``rates``, a device's readings beyond its rate are rejected as ``rate_limited``:
    one row per device and batch, its first message kept, the count in its detail.
    """
    out = Judged()
    retention = timedelta(days=settings.READINGS_RETENTION_DAYS)
    Reason = RejectedMessage.Reason
    if rates is not None:
        out.rates = rates.batch()
    limited: dict[int, list] = {}  # sensor id -> [its first rate_limited message, count]
    for msg in messages:
        parsed_topic = parse_topic(msg.topic)
        if parsed_topic is None:
            out.rejections.append(reject(msg, Reason.MALFORMED, "topic is not csu/<ref>/readings"))
            continue
        ref, channel = parsed_topic
        sensor = directory.by_ref(ref)
        if sensor is None:
            out.rejections.append(reject(msg, Reason.UNKNOWN_SENSOR, f"no sensor {ref!r}", ref))
            continue
        sensor_id, kind = sensor.id, sensor.kind
        if not sensor.active:
            out.rejections.append(reject(msg, Reason.INACTIVE_SENSOR, "sensor disabled", ref))
            continue
        if channel == "status":
            state = msg.payload.strip().decode("utf-8", "replace").lower()
            if state in (Sensor.State.ONLINE, Sensor.State.OFFLINE):
                out.states[sensor_id] = state
            else:
                out.rejections.append(
                    reject(msg, Reason.MALFORMED, "status must be online or offline", ref)
                )
            continue
        if out.rates is not None and not out.rates.admits(sensor_id, msg.received_at.timestamp()):
            if sensor_id in limited:
                limited[sensor_id][1] += 1
            else:
                limited[sensor_id] = [reject(msg, Reason.RATE_LIMITED, "", ref), 1]
            continue
        out.seen.add(sensor_id)
        result = parse_readings(
            msg.payload,
            kind=kind,
            received_at=msg.received_at,
            content_type=msg.content_type,
            retention=retention,
            retained=msg.retained,
        )
        if out.rates is not None:
            out.rates.spend(sensor_id, len(result.readings))
        for reading in result.readings:
            out.readings.append((sensor_id, reading.metric, reading.ts, reading.value))
        for rejection in result.rejections:
            out.rejections.append(
                reject(msg, rejection.reason, rejection.detail, ref, rejection.metric)
            )
    out.rejected.update(rejection.reason for rejection in out.rejections)
    for rejection, count in limited.values():
        rejection.detail = (
            f"{count} message{'s' if count > 1 else ''} over the device's rate of "
            f"{rates.rate:g} readings/s (burst {rates.burst:g}) in this batch; "
            "the first one is kept here"
        )
        out.rejections.append(rejection)
        out.rejected[Reason.RATE_LIMITED] += count
    return out


# A batch starts at once when BATCH_SIZE messages wait, else BATCH_INTERVAL seconds after
# the previous one started. The interval trades latency for CPU: at 5,000 readings/s,
# 0.15 s gave a committed row's p99 of 187–195 ms against 245 with 0.2 s, for 6–14 % more
# CPU a reading (docs/reliability.md, "The batch interval").
BATCH_SIZE = 500
BATCH_INTERVAL = 0.15


class IngestWorker:
    def __init__(
        self,
        *,
        client_id: str,
        url: str | None = None,
        group: str | None = None,
        batch_size: int = BATCH_SIZE,
        batch_interval: float = BATCH_INTERVAL,
    ):
        self.client_id = client_id
        self.group = group
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.stats = IngestStats()
        self.rates = None
        if settings.INGEST_DEVICE_RATE:
            self.rates = DeviceRates(
                rate=settings.INGEST_DEVICE_RATE, burst=settings.INGEST_DEVICE_BURST
            )
        self._queue: deque[Inbound] = deque()
        self._batch_started = 0.0  # time.monotonic() when the last batch began
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self.client, self._connect_args = make_client(
            client_id, url=url, persistent=True, manual_ack=True, default_username="csu-ingest"
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(100)

    # --- paho's thread ----------------------------------------------------------------

    def topics(self) -> list[str]:
        base = ["csu/+/readings", "csu/+/status"]
        if self.group:
            return [f"$share/{self.group}/{topic}" for topic in base]
        return base

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("MQTT connection refused: %s", reason_code)
            return
        client.subscribe([(topic, 1) for topic in self.topics()])
        log.info("connected to the broker, subscribing to %s", ", ".join(self.topics()))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        # Connected for the readings only once the broker granted the subscriptions (its
        # SUBACK): before, a message published is not yet routed to this worker.
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("MQTT subscription refused: %s", ", ".join(map(str, refused)))
            return
        self._connected.set()
        self.stats.connected = True
        self.stats.ever_connected = True
        # At once: /healthz would otherwise see the snapshot taken before connecting.
        self.stats.publish(self.client_id, force=True)
        log.info("subscribed to %s", ", ".join(self.topics()))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        # Message ids of the old connection must not be acknowledged on the new one.
        self._generation += 1
        self._connected.clear()
        self.stats.connected = False
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg):
        content_type = None
        props = getattr(msg, "properties", None)
        if props is not None:
            content_type = getattr(props, "ContentType", None)
        self._queue.append(
            Inbound(
                msg.mid,
                msg.qos,
                msg.topic,
                msg.payload,
                content_type,
                datetime.now(UTC),
                self._generation,
                bool(msg.retain),
            )
        )
        self.stats.received()
        if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
            self._wake.set()  # the first after a quiet spell may be due at once

    # --- the worker's thread ----------------------------------------------------------

    def run(self) -> None:
        """Connect, then write batches until ``stop()``; flush what is left before leaving."""
        maintain_reading_partitions()
        self.client.connect_async(**self._connect_args)
        self.client.loop_start()
        try:
            while not self._stop.is_set():
                wait = self._due_in()
                if wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()
                    if self._queue and self._due_in() > 0:
                        continue  # a message came before its batch is due: wait for it
                while self.flush() >= self.batch_size:
                    pass  # a backlog (after an outage): write it without waiting
            # Write what has arrived, for a few seconds at most: anything left is not
            # acknowledged, so the broker gives it to the next worker.
            deadline = time.monotonic() + 5
            while self.flush() and time.monotonic() < deadline:
                pass
        finally:
            self.stats.connected = False
            self.stats.publish(self.client_id, force=True)
            self.client.disconnect()
            self.client.loop_stop()
            connection.close()

    def _due_in(self) -> float:
        """Seconds until the next batch is due.

        A batch starts ``batch_interval`` after the previous one started, not after it
        ended (a write's own time does not add to the wait of the messages that came
        during it), at once when ``batch_size`` messages wait, and at once for a message
        arriving after a quiet spell (nothing to wait for). With none waiting: in
        ``batch_interval``, when the flush only publishes the statistics.
        """
        if len(self._queue) >= self.batch_size:
            return 0.0
        if not self._queue:
            return self.batch_interval
        return self._batch_started + self.batch_interval - time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def flush(self) -> int:
        """Judge, write and acknowledge what has arrived; return the messages handled."""
        messages = []
        while self._queue and len(messages) < self.batch_size:
            messages.append(self._queue.popleft())
        self.stats.queue_depth = len(self._queue)
        self.stats.oldest_pending = self._queue[0].received_at.timestamp() if self._queue else None
        if not messages:
            self.stats.publish(self.client_id)
            return 0
        self._batch_started = time.monotonic()
        delay = 0.5
        while True:
            try:
                close_old_connections()
                judged = judge(messages, rates=self.rates)
                started = time.perf_counter()
                result = write_batch(
                    judged.readings,
                    judged.rejections,
                    judged.seen,
                    datetime.now(UTC),
                    states=judged.states,
                )
                elapsed = time.perf_counter() - started
                break
            except DatabaseError as exc:
                self.stats.database_error()
                self.stats.publish(self.client_id)
                connection.close()
                if isinstance(exc, IntegrityError):
                    # A missing partition or a sensor deleted meanwhile: repair, judge again.
                    log.warning("batch refused (%s); repairing, retrying in %.1f s", exc, delay)
                    try:
                        maintain_reading_partitions()
                    except DatabaseError:
                        connection.close()
                    directory.forget()
                else:
                    log.error("database unavailable (%s); retrying in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    # Shutting down with the database still away: leave these messages
                    # unacknowledged; the broker delivers them again to the next worker.
                    return 0
                delay = min(delay * 2, 10.0)
        if judged.rates is not None:
            judged.rates.commit()
        self._acknowledge(messages)
        self.stats.batch(
            messages=len(messages),
            stored=len(result.stored),
            duplicates=result.duplicates,
            seconds=elapsed,
        )
        for reason, count in judged.rejected.items():
            self.stats.rejected_for(reason, count)
        self.stats.publish(self.client_id)
        self._announce(result, judged)
        return len(messages)

    def _acknowledge(self, messages: list[Inbound]) -> None:
        generation = self._generation
        for msg in messages:
            if msg.qos > 0 and msg.generation == generation:
                self.client.ack(msg.mid, msg.qos)

    def _announce(self, result, judged: Judged) -> None:
        if result.stored:
            for receiver, error in batch_committed.send_robust(
                sender=IngestWorker, readings=result.stored
            ):
                if isinstance(error, Exception):
                    log.error("batch_committed receiver %s failed: %r", receiver, error)
        for sensor_id, state in result.state_changes.items():
            sensor_state_changed.send_robust(sender=IngestWorker, sensor_id=sensor_id, state=state)
