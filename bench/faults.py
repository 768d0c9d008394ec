#!/usr/bin/env python
"""Fault suite: through five faults struck mid-stream, no acknowledged reading is lost,
none is stored twice, and the alerts come out right.

    python bench/faults.py                        (the five faults, about 3 minutes)
    python bench/faults.py --only stop_redis --rate 6000 --logs /tmp/faults-logs

Nothing shared is touched: the script starts its own PostgreSQL cluster (initdb into a
temporary directory, from /usr/lib/postgresql/15/bin or $CSU_PG_BIN), redis-server
(append-only file, as docker-compose.yml) and Mosquitto (deploy/mosquitto/mosquitto.conf)
on free ports, then the real processes: `manage.py ingest`, a Celery worker and, for the
Redis fault, uvicorn. A supervisor thread restarts ingest or the Celery worker if one
exits by itself (as docker compose's `restart: unless-stopped` would) and counts it as
a crash. No Celery beat runs: what recovers here recovers without its catch-ups.

Each fault has its own sensors. A publisher sends a steady QoS 1 stream (5 readings a
message); a reading counts as published only once the broker returned its PUBACK.
Mid-stream the fault strikes; after recovery the stream runs on, stops, the pipeline
drains, and the script counts what was published, stored, lost (published and not
stored) and duplicated (rows stored twice: the primary key forbids them, counted
anyway).

Alerts: four probe sensors per fault publish PM10 every half second, 20 µg/m³, except
`before` (one reading of 95 a few seconds before the fault), `during` (one while the
fault lasts), `after` (one after recovery) and `steady` (95 from the fault on). The
rule fires above 80 and does not resolve by itself, so the right end state is exactly
one open alert per probe whose 95 the broker acknowledged, and none elsewhere: a
one-reading spike whose evaluation was dropped leaves its alert missing for good.

The faults:
  kill_ingest        kill -9 the ingest worker; restart it 3 s later (same client id)
  restart_mosquitto  stop Mosquitto (SIGTERM: it saves its queues), start it again
  stop_postgres      stop PostgreSQL (fast shutdown) for --outage seconds
  stop_redis         stop Redis for --outage seconds: ingest must keep storing; an
                     operator's websocket, retrying every half second, shows when
                     the server closes it and when live pushes resume
  kill_celery        kill -9 the Celery worker as soon as the `during` reading is
                     stored, while its evaluation is on its way; restart it 3 s later

Per fault, besides published, stored, lost and duplicates: `redelivered` (readings
ingest received again after storing them: its duplicates counter), `stored_unacked`,
`messages_acked`/`messages_unacked`, `drain_s` (end of the stream → every published
reading stored), `alerts_expected`/`alerts_found`/`alerts_ok`/`alerts_settled_s`,
`crashes`; stop_redis adds what was published and stored while Redis was away and the
websocket's `live` figures, kill_celery what the killed worker held. The last line is
one JSON object with these per fault and the totals `lost`, `duplicates`, `alerts_ok`
and `crashes`.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    Broker,
    air_stations,
    prepare_database,
    print_result,
    session_key_for,
    setup_django,
    start_celery,
    start_ingest,
    start_web,
    wait_until,
)

from tests.brokers import free_port
from tests.services import PrivatePostgres, PrivateRedis, postgres_available, redis_available

FAULTS = ("kill_ingest", "restart_mosquitto", "stop_postgres", "stop_redis", "kill_celery")
# Sensor refs allow [a-z0-9-] only: each fault's sensors are fault-<code>-…
CODES = {
    "kill_ingest": "ki",
    "restart_mosquitto": "rm",
    "stop_postgres": "sp",
    "stop_redis": "sr",
    "kill_celery": "kc",
}
METRICS = ("pm25", "pm10", "no2", "o3", "so2")
PROBES = ("before", "during", "after", "steady")
PROBE_EVERY_S = 0.5
LOW, HIGH, THRESHOLD = 20.0, 95.0, 80.0
RULE_NAME = "faults: PM10 above 80"
INGEST_ID = "bench-ingest"  # bench/common.start_ingest's client id: its session survives


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sensor_refs(fault: str, stations: int) -> tuple[list[str], dict[str, str]]:
    code = CODES[fault]
    background = [f"fault-{code}-air-{n:02d}" for n in range(stations)]
    probes = {name: f"fault-{code}-probe-{name}" for name in PROBES}
    return background, probes


# --- The stream ---------------------------------------------------------------------------


def acknowledged(info) -> bool:
    """Whether the broker returned the message's PUBACK.

    Not ``info.is_published()``: it raises for a message published while the broker was
    away (rc "not connected"), which paho nevertheless keeps and sends on reconnection.
    """
    with info._condition:
        return info._published


class Stream:
    """One fault's QoS 1 stream: background stations at a steady rate plus the probes.

    Every message is kept with its ``MQTTMessageInfo``: at the end, the ones the broker
    acknowledged (PUBACK) are the published readings. paho keeps the others and sends
    them again after a reconnection (a broker restart), with their PUBACK then.
    """

    def __init__(self, port: int, fault: str, background, probes, rate: float):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.background = background
        self.probes = probes  # name → ref
        self.messages_per_s = rate / len(METRICS)
        client_id = f"faults-{CODES[fault]}-{uuid.uuid4().hex[:6]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(client_id)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(min_delay=0.25, max_delay=2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent: list[tuple] = []  # (info, ref, ts, {metric: value})
        self._last_ts: dict[str, datetime] = {}
        self._spike: set[str] = set()
        self._steady: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{fault}", daemon=True)

    def start(self) -> "Stream":
        self._thread.start()
        return self

    def spike(self, probe: str) -> None:
        """The probe's next reading is one HIGH value, then LOW again."""
        with self._lock:
            self._spike.add(probe)

    def hold(self, probe: str) -> None:
        """The probe reads HIGH from now on."""
        with self._lock:
            self._steady.add(probe)

    def stop(self, timeout: float = 60) -> None:
        """Stop publishing; wait for the PUBACKs of what was sent (at most ``timeout``)."""
        self._stop.set()
        self._thread.join()
        wait_until(lambda: all(acknowledged(info) for info, *_ in self.sent), timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def _ts(self, ref: str) -> datetime:
        ts = datetime.now(UTC)
        last = self._last_ts.get(ref)
        if last is not None and ts <= last:
            ts = last + timedelta(microseconds=1)  # one reading per sensor and instant
        self._last_ts[ref] = ts
        return ts

    def _publish(self, ref: str, values: dict) -> None:
        ts = self._ts(ref)
        body = json.dumps({"ts": ts.isoformat(), "values": values})
        info = self.client.publish(f"csu/{ref}/readings", body, qos=1)
        self.sent.append((info, ref, ts, values))

    def _probe_value(self, name: str) -> float:
        with self._lock:
            if name in self._steady:
                return HIGH
            if name in self._spike:
                self._spike.discard(name)
                return HIGH
        return LOW

    def _run(self) -> None:
        interval = 1 / self.messages_per_s
        next_message = next_probe = time.monotonic()
        i = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_probe:
                for name, ref in self.probes.items():
                    self._publish(ref, {"pm10": self._probe_value(name)})
                next_probe += PROBE_EVERY_S
            while now >= next_message:
                ref = self.background[i % len(self.background)]
                # PM10 stays far below the threshold: no background alert is right.
                values = {m: round(5 + (i * 7 + k) % 40 / 2, 2) for k, m in enumerate(METRICS)}
                self._publish(ref, values)
                i += 1
                next_message += interval
            time.sleep(max(0.0, min(next_message, next_probe) - time.monotonic()))

    def acked(self) -> list[tuple]:
        return [entry for entry in self.sent if acknowledged(entry[0])]


# --- The private stack ----------------------------------------------------------------------


class Stack:
    """Private PostgreSQL, Redis and Mosquitto; ingest, Celery worker and web processes.

    A supervisor thread restarts the ingest worker or the Celery worker when one exits
    by itself (what docker compose's `restart: unless-stopped` does), and notes it:
    a crash is a finding even when nothing is lost.
    """

    def __init__(self, args):
        self.args = args
        self.pg = PrivatePostgres()
        self.redis = PrivateRedis()
        self._broker = Broker()
        self.broker = None
        self.ingest = None
        self.celery = None
        self.web = None
        self.web_port = None
        self.queue = f"csu-faults-{uuid.uuid4().hex[:8]}"
        self.ingest_logs: list[str] = []
        self.crashes: list[dict] = []  # {"process", "exit_code", "fault"}
        self.fault = None
        self._lock = threading.Lock()  # held while a process is stopped or started
        self._stopping = threading.Event()

    def start(self, with_web: bool) -> None:
        self.pg.start()
        self.redis.start()
        self.database_url = self.pg.create_database("csu_faults")
        os.environ.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url(),
            CELERY_QUEUE=self.queue,
            CHANNEL_LAYER_PREFIX="faults",
        )
        prepare_database(self.database_url)
        setup_django(self.database_url)
        self.broker = self._broker.__enter__()
        # Open for the processes' life: Celery workers and uvicorn write to them.
        self.celery_log = open(self.redis.tmp / "celery.log", "ab")  # noqa: SIM115
        self.start_ingest()
        self.start_celery()
        if with_web:
            self.web_port = free_port()
            self.web_log = open(self.redis.tmp / "web.log", "ab")  # noqa: SIM115
            self.web = start_web(self.database_url, self.web_port, log=self.web_log)
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()

    # Processes ----------------------------------------------------------------------------

    def start_ingest(self) -> None:
        with self._lock:
            self.ingest = start_ingest(self.database_url, self.broker)

    def kill_ingest(self) -> None:
        with self._lock:
            self.ingest.kill()
            self.ingest.wait()
            self.ingest_logs += self.ingest.lines
            self.ingest = None

    def start_celery(self) -> None:
        with self._lock:
            self._start_celery()

    def _start_celery(self) -> None:
        self.celery = start_celery(
            self.database_url, self.redis.url(), self.queue, log=self.celery_log
        )

    def kill_celery(self) -> None:
        with self._lock:
            self.celery.kill()
            self.celery.wait()
            self.celery = None

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for name in ("ingest", "celery"):
                    process = getattr(self, name)
                    if process is None or process.poll() is None or self._stopping.is_set():
                        continue
                    self.crashes.append(
                        {"process": name, "exit_code": process.returncode, "fault": self.fault}
                    )
                    log(f"{name} exited by itself ({process.returncode}): restarting it")
                    if name == "ingest":
                        self.ingest_logs += process.lines
                        self.ingest = start_ingest(self.database_url, self.broker)
                    else:
                        self._start_celery()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            processes = [p for p in (self.ingest, self.celery, self.web) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.ingest is not None:
            self.ingest_logs += self.ingest.lines
        if self.broker is not None:
            self.broker.stop()

    def keep_logs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ingest.log").write_text("".join(self.ingest_logs))
        for name, source in (
            ("postgres.log", self.pg.tmp / "postgres.log"),
            ("redis.log", self.redis.tmp / "redis.log"),
            ("mosquitto.log", self.broker.tmp / "mosquitto.log" if self.broker else None),
        ):
            if source and source.exists():
                shutil.copy(source, directory / name)
        for name in ("celery.log", "web.log"):
            if (self.redis.tmp / name).exists():
                shutil.copy(self.redis.tmp / name, directory / name)

    def remove(self) -> None:
        if self.broker is not None:
            self._broker.__exit__(None, None, None)
        self.pg.remove()
        self.redis.remove()

    # What the pipeline holds ----------------------------------------------------------------

    def ingest_counters(self) -> dict:
        """The ingest worker's counters, as it last shared them (every 2 s, in Redis)."""
        from django.core.cache import cache

        try:
            snapshot = cache.get(f"csu:ingest:{INGEST_ID}") or {}
        except Exception:  # noqa: BLE001 (Redis away: no figure, not a failure)
            return {}
        return snapshot.get("counters", {})

    def evaluation_backlog(self) -> int:
        """Batches the rules have not evaluated yet, plus task messages still queued."""
        import redis
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM alerts_pendingevaluation")
            waiting = cursor.fetchone()[0]
        client = redis.Redis.from_url(self.redis.url(), socket_timeout=2)
        try:
            waiting += client.llen(self.queue)
        except redis.RedisError:
            pass  # Redis away: the batches waiting are the figure
        finally:
            client.close()
        return waiting

    def in_flight_tasks(self) -> int:
        """Task messages delivered to a worker and not acknowledged (kombu's `unacked`)."""
        import redis

        client = redis.Redis.from_url(self.redis.url(), socket_timeout=2)
        try:
            return client.hlen("unacked")
        finally:
            client.close()


def retry_database(function, *args, attempts: int = 60):
    """Run a query of the bench's own; while PostgreSQL is away, wait for it."""
    from django.db import InterfaceError, OperationalError, connection

    for attempt in range(attempts):
        try:
            return function(*args)
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return None


# --- The scene ----------------------------------------------------------------------------


def seed(faults, stations: int) -> dict:
    """The sensors of each fault, the rule, and an operator's session (for the websocket)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from alerts.models import Rule
    from core.roles import OPERATORS
    from sensors.models import Operator

    refs = []
    for fault in faults:
        background, probes = sensor_refs(fault, stations)
        refs += [*background, *probes.values()]
    air_stations(refs, insee_code="99998", commune="Pannes")
    Rule.objects.update_or_create(
        name=RULE_NAME,
        defaults={
            "kind": "threshold",
            "sensor_kind": "air",
            "metric": "pm10",
            "condition": "above",
            "threshold": THRESHOLD,
            "severity": "warning",
            # A one-reading spike must leave its alert open: the end state tells whether
            # the spike was evaluated at all.
            "auto_resolve": False,
        },
    )
    user, _ = get_user_model().objects.get_or_create(username="faults-operator")
    Operator.objects.get_or_create(user=user, defaults={"all_communes": True})
    user.groups.add(Group.objects.get_or_create(name=OPERATORS)[0])
    return {"session": session_key_for(user)}


def stored_keys(refs: list[str]) -> tuple[set, int, int]:
    """The (ref, metric, ts) stored for ``refs``, the row count and the rows stored twice."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.ref, r.metric, r.ts FROM sensors_reading r "
            "JOIN sensors_sensor s ON s.id = r.sensor_id WHERE s.ref = ANY(%s)",
            [refs],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) - count(DISTINCT (r.sensor_id, r.metric, r.ts)) "
            "FROM sensors_reading r JOIN sensors_sensor s ON s.id = r.sensor_id "
            "WHERE s.ref = ANY(%s)",
            [refs],
        )
        twice = cursor.fetchone()[0]
    return {(ref, metric, ts) for ref, metric, ts in rows}, len(rows), twice


def alerts_of(refs: list[str]) -> dict[str, list[str]]:
    """ref → the states of the rule's alerts on that sensor (any state)."""
    from alerts.models import Alert

    found: dict[str, list[str]] = {}
    for ref, state in Alert.objects.filter(rule__name=RULE_NAME, sensor__ref__in=refs).values_list(
        "sensor__ref", "state"
    ):
        found.setdefault(ref, []).append(state)
    return found


def alerts_right(found: dict, expected: set[str]) -> bool:
    """Exactly one alert, open, per expected probe; none anywhere else."""
    if set(found) != expected:
        return False
    return all(len(states) == 1 and states[0] != "resolved" for states in found.values())


# --- The operator's websocket -------------------------------------------------------------


class LiveWatcher:
    """An operator's /ws/live/ socket, reopened every half second when it closes.

    live.js backs off from 1 s to 30 s; retrying every half second here measures when
    the server works again rather than a browser's backoff.
    """

    def __init__(self, port: int, session_key: str):
        self.url = f"ws://127.0.0.1:{port}/ws/live/"
        self.headers = {"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{port}"}
        self.events: list[tuple[float, str, object]] = []  # (monotonic, kind, detail)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> "LiveWatcher":
        self._thread.start()
        wait_until(lambda: any(kind == "open" for _, kind, _ in self.events), timeout=30)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def note(self, kind: str, detail=None) -> None:
        self.events.append((time.monotonic(), kind, detail))

    async def _main(self) -> None:
        import websockets

        while not self._stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers=self.headers, open_timeout=5, proxy=None
                ) as socket:
                    self.note("open")
                    while not self._stop.is_set():
                        try:
                            raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
                        except TimeoutError:
                            continue
                        message = json.loads(raw)
                        self.note(message.get("type", "?"), message)
                    return
            except websockets.ConnectionClosed as exc:
                self.note("closed", exc.rcvd.code if exc.rcvd else None)
            except Exception as exc:  # noqa: BLE001 (refused, handshake failed: retry)
                self.note("failed", type(exc).__name__)
            await asyncio.sleep(0.5)

    def report(self, stopped_at: float, restarted_at: float, probes: dict) -> dict:
        def first(kind_test, after):
            for at, kind, detail in self.events:
                if at >= after and kind_test(kind, detail):
                    return round(at - after, 2)
            return None

        ended = first(lambda k, _: k in ("closed", "failed"), stopped_at)
        refs = set(probes.values())
        pushed = sorted(
            detail["alert"]["sensor"].rsplit("-", 1)[1]
            for _, kind, detail in self.events
            if kind == "alert"
            and detail.get("event") == "opened"
            and detail["alert"]["sensor"] in refs
        )
        return {
            # The server closes the socket when its channel layer fails (the page then
            # reconnects and refetches); None would be a socket left open and deaf.
            "socket_closed_after_s": ended,
            "reopened_after_redis_back_s": first(lambda k, _: k == "open", restarted_at),
            "first_readings_push_after_redis_back_s": first(
                lambda k, _: k == "readings", restarted_at
            ),
            "alert_pushes": pushed,
        }


# --- The faults -----------------------------------------------------------------------------


def inject_kill_ingest(stack: Stack, stream: Stream, args) -> dict:
    before = stack.ingest_counters()
    stack.kill_ingest()
    log("ingest worker killed (SIGKILL)")
    stream.spike("during")
    stream.hold("steady")
    time.sleep(args.restart_after)
    stack.start_ingest()
    log("ingest worker restarted with the same client id")
    return {"counters_killed": before}


def inject_restart_mosquitto(stack: Stack, stream: Stream, args) -> dict:
    stack.broker.stop()
    log("Mosquitto stopped (SIGTERM)")
    stream.spike("during")
    stream.hold("steady")
    time.sleep(args.broker_down)
    stack.broker.start()
    log("Mosquitto started again")
    return {}


def inject_stop_postgres(stack: Stack, stream: Stream, args) -> dict:
    from django.db import connection

    connection.close()
    stack.pg.stop("fast")
    log(f"PostgreSQL stopped for {args.outage:g} s")
    time.sleep(min(2.0, args.outage / 3))
    stream.spike("during")
    stream.hold("steady")
    time.sleep(max(0.0, args.outage - min(2.0, args.outage / 3)))
    stack.pg.start()
    log("PostgreSQL started again")
    return {}


def inject_stop_redis(stack: Stack, stream: Stream, args) -> dict:
    stored_before = retry_database(lambda: stored_keys(stream.background)[1])
    stack.redis.stop()
    log(f"Redis stopped for {args.outage:g} s")
    stopped_at, stopped_wall = time.monotonic(), datetime.now(UTC)
    time.sleep(min(2.0, args.outage / 3))
    stream.spike("during")
    stream.hold("steady")
    time.sleep(max(0.0, args.outage - min(2.0, args.outage / 3) - 1))
    # Ingest must keep storing without Redis, and keep up with the stream.
    stored = stored_keys(stream.background)[1] - stored_before
    measured_wall = datetime.now(UTC)
    published = sum(
        len(values)
        for _, ref, ts, values in list(stream.sent)
        if stopped_wall <= ts <= measured_wall and ref in stream.background
    )
    time.sleep(1)
    stack.redis.start()
    log(
        f"Redis started again; while it was away {published:,} readings were published and "
        f"{stored:,} stored"
    )
    return {
        "published_while_redis_down": published,
        "stored_while_redis_down": stored,
        "_stopped_at": stopped_at,
        "_restarted_at": time.monotonic(),
    }


def inject_kill_celery(stack: Stack, stream: Stream, args) -> dict:
    """Kill the worker right after the `during` reading is committed: its evaluation is
    then queued, reserved or running, not done."""
    from django.db import connection

    probe = stream.probes["during"]
    stream.spike("during")

    def spike_stored() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM sensors_reading r JOIN sensors_sensor s ON s.id = r.sensor_id "
                "WHERE s.ref = %s AND r.value > %s",
                [probe, THRESHOLD],
            )
            return cursor.fetchone() is not None

    wait_until(spike_stored, timeout=30, step=0.005)
    in_flight = stack.in_flight_tasks()
    waiting = stack.evaluation_backlog()
    stack.kill_celery()
    evaluated_before_kill = bool(alerts_of([probe]))
    log(
        f"Celery worker killed (SIGKILL) with {in_flight} task message(s) in its hands and "
        f"{waiting} evaluation(s) to do; the `during` spike "
        f"{'was' if evaluated_before_kill else 'was not yet'} evaluated"
    )
    stream.hold("steady")
    time.sleep(args.restart_after)
    stack.start_celery()
    log("Celery worker restarted")
    return {
        "tasks_in_flight_at_kill": in_flight,
        "evaluations_waiting_at_kill": waiting,
        "spike_evaluated_before_kill": evaluated_before_kill,
    }


INJECT = {
    "kill_ingest": inject_kill_ingest,
    "restart_mosquitto": inject_restart_mosquitto,
    "stop_postgres": inject_stop_postgres,
    "stop_redis": inject_stop_redis,
    "kill_celery": inject_kill_celery,
}


def run_fault(stack: Stack, fault: str, args, scene: dict) -> dict:
    background, probes = sensor_refs(fault, args.stations)
    refs = [*background, *probes.values()]
    log(f"{fault}: streaming {args.rate:,g} readings/s over {len(background)} stations")
    stack.fault = fault
    watcher = None
    if fault == "stop_redis" and stack.web is not None:
        watcher = LiveWatcher(stack.web_port, scene["session"]).start()
    counters_start = stack.ingest_counters()
    stream = Stream(stack.broker.port, fault, background, probes, args.rate).start()
    time.sleep(max(0.0, args.lead - 4))
    stream.spike("before")
    time.sleep(min(4.0, args.lead))
    extra = INJECT[fault](stack, stream, args)
    time.sleep(3)
    stream.spike("after")
    time.sleep(max(0.0, args.tail - 3))
    stream.stop()
    stopped = time.monotonic()

    acked = stream.acked()
    published = {(ref, metric, ts) for _, ref, ts, values in acked for metric in values}
    expected_alerts = {
        ref for _, ref, _, values in acked if ref in probes.values() and values.get("pm10") == HIGH
    }

    def all_stored() -> bool:
        keys = retry_database(lambda: stored_keys(refs)[0])
        return published <= {(r, m, ts) for r, m, ts in keys}

    drained = wait_until(all_stored, timeout=args.settle, step=0.5)
    drained_s = round(time.monotonic() - stopped, 1)
    time.sleep(1)  # what arrives now would be a duplicate
    keys, stored, twice = retry_database(lambda: stored_keys(refs))
    lost = len(published - keys)
    stored_unacked = len(keys - published)

    settle_started = time.monotonic()
    alerts_ok = wait_until(
        lambda: stack.evaluation_backlog() == 0 and alerts_right(alerts_of(refs), expected_alerts),
        timeout=args.settle,
        step=0.25,
    )
    found = alerts_of(refs)
    counters_end = stack.ingest_counters()
    killed = extra.pop("counters_killed", None)
    # Counters are per process: a killed worker's last ones plus its successor's.
    redelivered = counters_end.get("duplicates", 0) - counters_start.get("duplicates", 0)
    if killed is not None:
        redelivered += killed.get("duplicates", 0)
    result = {
        "published": len(published),
        "stored": stored,
        "lost": lost,
        "duplicates": twice,
        "redelivered": max(0, redelivered),
        "stored_unacked": stored_unacked,
        "messages_acked": len(acked),
        "messages_unacked": len(stream.sent) - len(acked),
        "drained": drained,
        "drain_s": drained_s,
        "alerts_expected": len(expected_alerts),
        "alerts_found": sum(len(states) for states in found.values()),
        "alerts_ok": alerts_ok,
        "alerts_settled_s": round(time.monotonic() - settle_started, 1) if alerts_ok else None,
    }
    result["crashes"] = [
        f"{crash['process']} exited with {crash['exit_code']}"
        for crash in stack.crashes
        if crash["fault"] == fault
    ]
    if watcher is not None:
        watcher.stop()
        result["live"] = watcher.report(extra["_stopped_at"], extra["_restarted_at"], probes)
    result |= {key: value for key, value in extra.items() if not key.startswith("_")}
    missing = sorted(
        name for name, ref in probes.items() if ref in expected_alerts and ref not in found
    )
    extra_alerts = sorted(ref for ref in found if ref not in expected_alerts)
    log(
        f"{fault}: published {result['published']:,} readings "
        f"({result['messages_acked']:,} messages acknowledged), stored {stored:,}, "
        f"lost {lost}, duplicates {twice}; ingest received {result['redelivered']:,} again; "
        f"alerts {result['alerts_found']} for {result['alerts_expected']} expected: "
        + ("right" if alerts_ok else f"WRONG (missing {missing}, unexpected {extra_alerts})")
    )
    if result["crashes"]:
        log(f"{fault}: CRASHES {result['crashes']}")
    if "live" in result:
        live = result["live"]
        log(
            f"{fault}: operator's websocket closed {live['socket_closed_after_s']} s after Redis "
            f"stopped, reopened {live['reopened_after_redis_back_s']} s and got readings "
            f"{live['first_readings_push_after_redis_back_s']} s after it returned; alert "
            f"pushes: {live['alert_pushes']}"
        )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1500, help="readings/s of the stream")
    parser.add_argument("--stations", type=int, default=10, help="background sensors per fault")
    parser.add_argument(
        "--outage", type=float, default=15, help="seconds PostgreSQL/Redis stay away"
    )
    parser.add_argument(
        "--restart-after", type=float, default=3, help="seconds before a killed process restarts"
    )
    parser.add_argument(
        "--broker-down", type=float, default=1, help="seconds Mosquitto stays stopped"
    )
    parser.add_argument("--lead", type=float, default=8, help="seconds of stream before the fault")
    parser.add_argument("--tail", type=float, default=8, help="seconds of stream after recovery")
    parser.add_argument("--settle", type=float, default=90, help="seconds allowed to drain")
    parser.add_argument(
        "--only", default="", help=f"comma-separated faults among {', '.join(FAULTS)}"
    )
    parser.add_argument("--logs", type=Path, help="keep the services' and ingest's logs here")
    args = parser.parse_args()
    faults = [f for f in FAULTS if not args.only or f in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(FAULTS)
    if unknown or not faults:
        parser.error(f"unknown fault(s) {sorted(unknown)}; choose among {', '.join(FAULTS)}")
    for missing in (postgres_available(), redis_available()):
        if missing:
            sys.exit(missing)

    # Stopped by a SIGTERM (a timeout, kill), the script still removes its services.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = Stack(args)
    results = {}
    try:
        started = time.monotonic()
        stack.start(with_web="stop_redis" in faults)
        scene = seed(faults, args.stations)
        log(
            f"private stack up in {time.monotonic() - started:.1f} s: PostgreSQL :{stack.pg.port}, "
            f"Redis :{stack.redis.port}, Mosquitto :{stack.broker.port}"
        )
        for fault in faults:
            results[fault] = run_fault(stack, fault, args, scene)
    finally:
        stack.stop()
        if args.logs:
            stack.keep_logs(args.logs)
            log(f"logs kept in {args.logs}")
        stack.remove()
    figures = {
        fault: {key: value for key, value in result.items()} for fault, result in results.items()
    }
    figures["lost"] = sum(result["lost"] for result in results.values())
    figures["duplicates"] = sum(result["duplicates"] for result in results.values())
    figures["alerts_ok"] = all(result["alerts_ok"] for result in results.values())
    figures["crashes"] = sum(len(result["crashes"]) for result in results.values())
    log(
        f"all faults: lost {figures['lost']}, duplicates {figures['duplicates']}, alerts "
        + ("right" if figures["alerts_ok"] else "WRONG")
        + f", {figures['crashes']} process crash(es)"
    )
    print_result(figures)


if __name__ == "__main__":
    main()
