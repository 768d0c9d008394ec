"""Publish realistic readings of the database's active sensors over MQTT.

The values and the incidents come from ``sensors/simulator.py``; this command only
connects, keeps time and bounds what is outstanding at the broker.
"""

import heapq
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.management.arguments import positive
from sensors.simulator import (
    SCENARIOS,
    Message,
    Simulator,
    metrics_published,
    next_ts,
    sensors_from_db,
)

DEFAULT_USERNAME = "csu-simulator"
MAX_INFLIGHT = 100
# paho fails past ~65k unacknowledged messages (measured): wait for acks well before.
MAX_PENDING = 2000
CONNECT_TIMEOUT_S = 10
DRAIN_TIMEOUT_S = 30


def now() -> datetime:
    return datetime.now(UTC)


class Publisher:
    """A paho client that counts what it publishes and bounds what is unacknowledged."""

    def __init__(self, url: str, client_id: str, *, stop: threading.Event):
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise CommandError(f"Unsupported broker URL scheme: {parts.scheme or url!r}")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.stop = stop
        self.published = 0
        self.pending = 0
        self.changed = threading.Condition()
        self.connected = threading.Event()
        self.refused: str | None = None

        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        # The embedded broker refuses anonymous clients.
        username = unquote(parts.username) if parts.username else DEFAULT_USERNAME
        password = unquote(parts.password) if parts.password else None
        self.client.username_pw_set(username, password)
        if self.tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.refused = str(reason_code)
        self.connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.changed:
            self.pending -= 1
            self.changed.notify_all()

    def connect(self) -> None:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as error:
            raise CommandError(
                f"Cannot reach the MQTT broker at {self.host}:{self.port}: {error}"
            ) from error
        self.client.loop_start()
        if not self.connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise CommandError(f"No answer from the MQTT broker at {self.host}:{self.port}")
        if self.refused:
            self.close()
            raise CommandError(f"The MQTT broker refused the connection: {self.refused}")

    def publish(self, message: Message) -> bool:
        """Publish ``message`` once fewer than MAX_PENDING are unacknowledged."""
        with self.changed:
            while self.pending >= MAX_PENDING:
                if self.stop.is_set():
                    return False
                self.changed.wait(0.5)
            self.pending += 1
        info = self.client.publish(*message)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            with self.changed:
                self.pending -= 1
            return False
        # Other errors (no connection) leave the message queued for the reconnection.
        self.published += 1
        return True

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until the broker has acknowledged everything; tell whether it has."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def stop_on_signals(stop: threading.Event):
    """Set ``stop`` on SIGINT and SIGTERM while inside the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Command(BaseCommand):
    help = (
        "Publish realistic readings of the active sensors over MQTT, each at its expected "
        "interval, with optional scripted incidents (pollution, flood, intrusion, "
        "sensor-failure)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", help="Broker URL, mqtt://[user:pass@]host:port (default: MQTT_URL)."
        )
        parser.add_argument("--client-id", help="MQTT client id (default: csu-simulator-<random>).")
        parser.add_argument(
            "--speed",
            type=positive(float),
            default=1.0,
            help="Report that many times more often, and play incidents that much faster "
            "(timestamps stay real).",
        )
        parser.add_argument(
            "--rate",
            type=positive(float),
            help="Load mode: publish this many messages per second in total, round-robin "
            "over the sensors, instead of following their intervals.",
        )
        parser.add_argument(
            "--scenario",
            action="append",
            default=[],
            metavar="NAME",
            help=f"Play an incident ({', '.join(SCENARIOS)}); repeat or separate with commas.",
        )
        parser.add_argument(
            "--scenario-delay",
            type=float,
            default=20.0,
            help="Seconds of normal data before the incidents begin (default 20).",
        )
        parser.add_argument(
            "--duration", type=positive(float), help="Stop after that many seconds."
        )
        parser.add_argument(
            "--once", action="store_true", help="Publish one reading of every sensor and exit."
        )
        parser.add_argument("--seed", type=int, help="Seed of the noise (default: random).")

    def handle(self, *args, **options):
        scenarios = [
            name.strip()
            for value in options["scenario"]
            for name in value.split(",")
            if name.strip()
        ]
        unknown = sorted(set(scenarios) - set(SCENARIOS))
        if unknown:
            raise CommandError(
                f"Unknown scenario {', '.join(unknown)}; choose among {', '.join(SCENARIOS)}."
            )
        sensors = sensors_from_db()
        if not sensors:
            raise CommandError("No active sensor: seed the demo town first (seed_demo).")

        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(2**31)
        started = now()
        self.simulator = Simulator(
            sensors,
            seed=seed,
            scenarios=scenarios,
            scenario_start=started + timedelta(seconds=options["scenario_delay"]),
            speed=options["speed"],
        )
        self.last_ts: dict[str, datetime] = {}
        self.values = 0
        self.announced = False
        self.stop = threading.Event()
        url = options["url"] or settings.MQTT_URL
        client_id = options["client_id"] or f"csu-simulator-{secrets.token_hex(4)}"
        publisher = Publisher(url, client_id, stop=self.stop)
        publisher.connect()
        self.stdout.write(
            f"Simulating {len(sensors)} sensors on {publisher.host}:{publisher.port} "
            f"(seed {seed}, speed {options['speed']:g}"
            + (f", {options['rate']:g} msg/s" if options["rate"] else "")
            + (f", incidents in {options['scenario_delay']:g} s" if scenarios else "")
            + ")"
        )
        self.stdout.flush()
        clock = time.monotonic()
        acknowledged = True
        try:
            with stop_on_signals(self.stop):
                for message in self.simulator.status_messages():
                    publisher.publish(message)
                if options["once"]:
                    self.publish_round(publisher)
                elif options["rate"]:
                    self.run_at_rate(publisher, options["rate"], options["duration"])
                else:
                    self.run_at_intervals(publisher, options["duration"])
                # After Ctrl+C, do not make the user wait long for a lost broker.
                acknowledged = publisher.drain(5 if self.stop.is_set() else DRAIN_TIMEOUT_S)
        finally:
            publisher.close()
        elapsed = time.monotonic() - clock
        self.stdout.write(
            f"Published {publisher.published} messages ({self.values} values) "
            f"in {elapsed:.1f} s"
            + ("" if acknowledged else f"; {publisher.pending} not acknowledged")
            + "."
        )

    # -- Modes

    def publish_round(self, publisher: Publisher) -> None:
        at = now()
        self.announce_incidents(publisher, at)
        for sensor in self.simulator.sensors:
            if not self.simulator.is_silent(sensor, at):
                self.publish_reading(publisher, sensor, at)

    def run_at_intervals(self, publisher: Publisher, duration: float | None) -> None:
        """Publish each sensor every interval / speed, spread over the interval."""
        start = time.monotonic()
        end = start + duration if duration else None
        speed = self.simulator.speed
        self.publish_round(publisher)
        # Spread the next readings so the broker does not see one burst per interval.
        due = [
            (start + sensor.interval / speed * (index + 1) / len(self.simulator.sensors), index)
            for index, sensor in enumerate(self.simulator.sensors)
        ]
        heapq.heapify(due)
        while not self.stop.is_set():
            wake, index = due[0]
            wake = min(wake, self.incidents_due() or wake)
            if end is not None:
                wake = min(wake, end)
            if self.stop.wait(max(0.0, wake - time.monotonic())):
                break
            clock = time.monotonic()
            if end is not None and clock >= end:
                break
            self.announce_incidents(publisher, now())
            if due[0][0] > clock:
                continue
            sensor = self.simulator.sensors[index]
            if not self.simulator.is_silent(sensor, now()):
                self.publish_reading(publisher, sensor, now())
            period = sensor.interval / speed
            # After a stall (laptop asleep), carry on from now instead of catching up.
            heapq.heapreplace(due, (max(due[0][0] + period, clock), index))

    def run_at_rate(self, publisher: Publisher, rate: float, duration: float | None) -> None:
        """Publish ``rate`` messages per second in total, round-robin over the sensors."""
        sensors = self.simulator.sensors
        start = time.monotonic()
        base, sent_since_base, turn = start, 0, 0
        while not self.stop.is_set():
            clock = time.monotonic()
            if duration and clock - start >= duration:
                break
            target = int((clock - base) * rate)
            if target - sent_since_base > rate:
                # More than a second late (the broker is slower than the rate): do not
                # burst to catch up, keep the pace from here.
                base, sent_since_base, target = clock, 0, 1
            if sent_since_base >= target:
                self.stop.wait(min(0.01, (sent_since_base + 1) / rate - (clock - base)))
                continue
            at = now()
            self.announce_incidents(publisher, at)
            for _ in range(min(target - sent_since_base, 1000)):
                sensor = sensors[turn % len(sensors)]
                turn += 1
                sent_since_base += 1
                if self.simulator.is_silent(sensor, at):
                    continue
                if not self.publish_reading(publisher, sensor, at):
                    break

    # -- Helpers

    def publish_reading(self, publisher: Publisher, sensor, at: datetime) -> bool:
        at = next_ts(at, self.last_ts.get(sensor.ref))
        self.last_ts[sensor.ref] = at
        message = self.simulator.message(sensor, at)
        if not publisher.publish(message):
            return False
        self.values += len(metrics_published(sensor))
        return True

    def incidents_due(self) -> float | None:
        """Return the monotonic time the incidents begin, if they have not yet."""
        simulator = self.simulator
        if self.announced or not simulator.incidents:
            return None
        left = (simulator.scenario_start - now()).total_seconds()
        return time.monotonic() + max(left, 0.0)

    def announce_incidents(self, publisher: Publisher, at: datetime) -> None:
        simulator = self.simulator
        if self.announced or simulator.elapsed(at) is None:
            return
        self.announced = True
        for incident in simulator.incidents.values():
            self.stdout.write(self.style.WARNING(f"Incident: {incident.description}"))
        self.stdout.flush()  # seen at once when the output is a pipe
        for message in simulator.incident_statuses():
            publisher.publish(message)
        for sensor in simulator.incident_reporters():
            self.publish_reading(publisher, sensor, at)
