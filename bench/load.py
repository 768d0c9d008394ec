#!/usr/bin/env python
"""Load: the dashboard's pages and API under concurrent users, then 500 websockets held,
while ingest takes 5,000 readings/s.

    python bench/load.py       (DATABASE_URL's server, database <name>_bench_load; REDIS_URL)
    python bench/load.py --duration 20 --soak-minutes 1      (a short run)

The stack runs as docker-compose runs it, in separate processes: Mosquitto with our
config (on a free port, like the other benches: the machine's default broker would
measure its own limits), `manage.py ingest`, a Celery worker on Redis, uvicorn with 2
workers behind one port. The bench database holds the demo town (`manage.py
seed_demo`), 24 h of history for every sensor, past alerts and an active PPMS drill for
every school. A publisher sends the town's readings (each sensor's own metrics, values
from the simulator) at 5,000 readings/s QoS 1 from start to end.

1. Load: locust (bench/locustfile.py, in a process of its own: it patches the standard
   library with gevent) runs 50 users, logged in through the login form: operators
   opening the dashboard, the wall screen, sensor pages, the PPMS board and what these
   pages fetch (KPIs, latest values, alerts, 24 h series, sensors, activations), and
   directors opening their school's page and its state. p50/p95/p99 per page and
   endpoint, and the errors: there must be none.
2. Soak: 500 websocket clients (operators and directors, by session cookie, reading
   everything like a browser does and never pinging: the server's keepalive pings must
   be answered as a browser would) are held for ``--soak-minutes`` after a one-minute
   warm-up, while directors report their school's status every 30 s. The resident
   memory of the web workers is sampled every 30 s. Then the publisher stops and the
   websockets are held ``--quiet-seconds`` without traffic (each worker's channel layer
   waits in 5 s blocking pops: redis-py 8's 5 s read timeout used to kill consumers
   there), the drill is ended, and every client must still be connected and receive
   the end of alert.

The last line is one JSON object with the figures.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    ROOT,
    Broker,
    bench_database_url,
    children_of,
    cmdline,
    connect_websockets,
    percentile,
    prepare_database,
    print_result,
    publisher,
    rss_mb,
    run_manage,
    session_key_for,
    setup_django,
    start_celery,
    start_ingest,
    start_web,
    stop_processes,
    wait_until,
)

DRILL_TITLE = "bench load: exercice PPMS"
# Emptied at each run (those that exist: the schema moves on).
EMPTIED = (
    "sensors_reading",
    "sensors_latestreading",
    "sensors_rejectedmessage",
    "alerts_alert",
    "alerts_alertevent",
    "alerts_rulestate",
    "alerts_pendingevaluation",
)
# Names of bench/locustfile.py's requests → the keys of the JSON figures.
PAGES = {
    "page /dashboard/": "dashboard",
    "page /dashboard/wall/": "wall",
    "page /sensors/<ref>/": "sensor",
    "page /ppms/": "ppms_board",
    "page /ppms/ecole/": "ppms_ecole",
}
APIS = {
    "api latest": "latest",
    "api series 24h": "series_24h",
    "api alerts": "alerts",
    "api sensors": "sensors",
    "api ppms activations": "ppms_activations",
    "api /dashboard/kpis.json": "kpis",
    "api director state": "director_state",
}
LOGIN = ("login form", "login")
# The last line of a traceback: "redis.exceptions.TimeoutError: ...".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b")


# --- The bench database: the demo town, its history, alerts and a drill ------------------


def prepare(database_url: str, password: str) -> dict:
    """Seed the demo town and everything the pages show; return what the users need."""
    prepare_database(database_url)
    run_manage(["seed_demo"], database_url, stdout=subprocess.DEVNULL)
    setup_django(database_url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.models import Session

    from dashboard.management.commands.seed_demo import (
        METROPOLE_OPERATOR_USERNAME,
        OPERATOR_USERNAME,
        director_username,
    )
    from ppms.models import School
    from sensors.partitions import maintain_reading_partitions
    from sensors.simulator import sensors_from_db

    # One hash for every demo account: hashing is the login's cost, not the seed's.
    User = get_user_model()
    schools = list(School.objects.order_by("uai"))
    operators = [OPERATOR_USERNAME, METROPOLE_OPERATOR_USERNAME]
    directors = {director_username(school.uai): school.uai for school in schools}
    User.objects.filter(username__in=[*operators, *directors]).update(
        password=make_password(password)
    )
    Session.objects.all().delete()  # the earlier runs' logins: this database is the bench's
    maintain_reading_partitions()
    town = sensors_from_db()
    reset_history(town)
    seed_past_alerts()
    start_drill(schools)
    return {
        "town": town,
        "operators": [operator_account(name, password, town) for name in operators],
        "directors": [
            {"username": name, "password": password, "uai": uai} for name, uai in directors.items()
        ],
    }


def operator_account(username: str, password: str, town) -> dict:
    """An operator's login, and the sensors and series of the communes they watch."""
    from django.contrib.auth import get_user_model

    from sensors.models import Commune
    from sensors.simulator import metrics_published

    user = get_user_model().objects.get(username=username)
    communes = set(Commune.objects.visible_to(user).values_list("insee_code", flat=True))
    sensors = [sensor for sensor in town if sensor.commune in communes]
    return {
        "username": username,
        "password": password,
        "sensors": [sensor.ref for sensor in sensors],
        "series": [
            {"ref": sensor.ref, "metric": metric}
            for sensor in sensors
            for metric in metrics_published(sensor)
        ],
    }


def reset_history(town) -> None:
    """Empty the readings, then load the last 24 h of every sensor at its own interval."""
    from django.db import connection

    from sensors.models import Sensor
    from sensors.simulator import Simulator

    with connection.cursor() as cursor:
        existing = []
        for table in EMPTIED:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is not None:
                existing.append(table)
        cursor.execute(f"TRUNCATE {', '.join(existing)} CASCADE")
    ids = dict(Sensor.objects.values_list("ref", "pk"))
    simulator = Simulator(town)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY sensors_reading (sensor_id, metric, ts, value) FROM STDIN"
        ) as copy,
    ):
        for sensor in town:
            at = end - timedelta(hours=24)
            while at < end:
                for metric, value in simulator.values(sensor, at).items():
                    copy.write_row((ids[sensor.ref], metric, at, value))
                    rows += 1
                at += timedelta(seconds=sensor.interval)
    print(f"history: {rows:,} readings over the last 24 h for {len(town)} sensors", flush=True)


def seed_past_alerts(count: int = 150, open_count: int = 6) -> None:
    """A week of alerts on the town's sensors, most resolved, a few still open."""
    from django.utils import timezone

    from alerts.models import Alert, AlertEvent, AlertState, Rule
    from sensors.models import Sensor

    rng = random.Random(7)
    now = timezone.now()
    pairs = [
        (rule, sensor)
        for rule in Rule.objects.filter(kind="threshold").exclude(sensor_kind="")
        for sensor in Sensor.objects.filter(kind=rule.sensor_kind)
    ]
    rng.shuffle(pairs)
    for n in range(count):
        rule, sensor = pairs[n % len(pairs)]
        opened = now - timedelta(minutes=rng.randrange(30, 7 * 24 * 60))
        still_open = n < open_count
        acknowledged = not still_open and rng.random() < 0.7
        alert = Alert.objects.create(
            rule=rule,
            sensor=sensor,
            metric=rule.metric,
            state=AlertState.FIRING if still_open else AlertState.RESOLVED,
            severity=rule.severity,
            title=f"{rule.name} : {sensor.name}",
            opened_at=opened,
            first_value=rule.threshold,
            last_value=rule.threshold,
            last_value_at=opened,
            peak_value=rule.threshold,
            acknowledged_at=opened + timedelta(minutes=5) if acknowledged else None,
            resolved_at=None if still_open else opened + timedelta(minutes=25),
        )
        events = [AlertEvent(alert=alert, at=opened, kind="opened")]
        if not still_open:
            events.append(AlertEvent(alert=alert, at=alert.resolved_at, kind="resolved"))
        AlertEvent.objects.bulk_create(events)


def start_drill(schools):
    """An active PPMS drill for every school: the board and the directors' pages show it."""
    from ppms.models import Activation
    from ppms.services import ppms_activate

    Activation.objects.filter(title=DRILL_TITLE).delete()
    return ppms_activate(
        scenario="shelter", title=DRILL_TITLE, source="operator", schools=schools, drill=True
    )


def websocket_sessions(plan: dict, clients: int, operators: int) -> list[tuple[str, str]]:
    """(role, session key) of each websocket client: operators, then directors."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    users = {user.username: user for user in User.objects.all()}
    sessions = []
    for n in range(clients):
        if n < operators:
            account = plan["operators"][n % len(plan["operators"])]
            role = "operator"
        else:
            account = plan["directors"][n % len(plan["directors"])]
            role = "director"
        sessions.append((role, session_key_for(users[account["username"]])))
    return sessions


# --- The publisher: the town's readings at a steady rate ---------------------------------


class TownPayloads:
    """Each sensor's message: its own metrics, values from the simulator (kept for 1 s),
    a timestamp never repeated for the sensor."""

    def __init__(self, town):
        from sensors.simulator import Simulator

        self.simulator = Simulator(town)
        self.by_ref = {sensor.ref: sensor for sensor in town}
        self.values: dict[str, tuple[int, dict]] = {}
        self.last: dict[str, datetime] = {}

    def __call__(self, i: int, ref: str, ts: datetime) -> bytes:
        from sensors.simulator import encode, next_ts

        second = int(ts.timestamp())
        cached = self.values.get(ref)
        if cached is None or cached[0] != second:
            cached = (second, self.simulator.values(self.by_ref[ref], ts))
            self.values[ref] = cached
        ts = self.last[ref] = next_ts(ts, self.last.get(ref))
        return encode(ts, cached[1])


def readings_per_message(town) -> float:
    from sensors.simulator import metrics_published

    return sum(len(metrics_published(sensor)) for sensor in town) / len(town)


def stored_since(database_url: str, since: datetime, until: datetime | None = None) -> int:
    import psycopg

    url = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        if until is None:
            row = conn.execute("SELECT count(*) FROM sensors_reading WHERE ts >= %s", [since])
        else:
            row = conn.execute(
                "SELECT count(*) FROM sensors_reading WHERE ts >= %s AND ts < %s", [since, until]
            )
        return row.fetchone()[0]


# --- Phase 1: locust ------------------------------------------------------------------------


def run_locust(args, port: int, plan: dict, workdir: Path) -> dict:
    results = workdir / "locust-results.json"
    plan_file = workdir / "locust-plan.json"
    plan_file.write_text(
        json.dumps(
            {
                "operators": plan["operators"],
                "directors": plan["directors"],
                "operator_weight": 4,
                "director_weight": 1,
                "users": args.users,
                "duration": args.duration,
                "wait_min": args.wait_min,
                "wait_max": args.wait_max,
                "results": str(results),
            }
        )
    )
    log = workdir / "locust.log"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        # A bound only: the locustfile stops the run `duration` s after the last login.
        "--run-time",
        f"{args.duration + 300}s",
        "--host",
        f"http://127.0.0.1:{port}",
        "--only-summary",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    print(
        f"load: {args.users} users log in, then {args.duration} s of pages (locust log: {log})",
        flush=True,
    )
    with open(log, "w") as out:
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=dict(os.environ, LOAD_PLAN=str(plan_file)),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=args.duration + 420,
        )
    if completed.returncode != 0 or not results.exists():
        sys.exit(f"locust failed ({completed.returncode}):\n{log.read_text()[-3000:]}")
    return json.loads(results.read_text())


def summarise_load(results: dict) -> dict:
    print(f"\ntimes over {results['steady_s']:.0f} s once every user had logged in")
    print(f"{'request':<28} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  errors")
    rows = {}
    for name in [*PAGES, *APIS, *LOGIN]:
        times = results["times"].get(name, [])
        statuses = results["statuses"].get(name, {})
        errors = sum(count for status, count in statuses.items() if status != "200")
        if name == "login":  # a login answers 302
            errors = sum(count for status, count in statuses.items() if status != "302")
        rows[name] = {
            "requests": sum(statuses.values()),
            "count": len(times),
            "p50": round(percentile(times, 50), 1),
            "p95": round(percentile(times, 95), 1),
            "p99": round(percentile(times, 99), 1),
            "errors": errors,
            "statuses": statuses,
        }
        row = rows[name]
        detail = "" if not errors else " " + json.dumps(statuses)
        print(
            f"{name:<28} {row['count']:>6} {row['p50']:>8} {row['p95']:>8} {row['p99']:>8}"
            f"  {errors}{detail}"
        )
    return rows


# --- Phase 2: the websocket soak -----------------------------------------------------------


class Client:
    """One browser's websocket: what it received, and how it ended."""

    def __init__(self, role: str, key: str):
        self.role, self.key = role, key
        self.socket = None
        self.messages = Counter()
        self.last_at = 0.0
        self.ended_at: float | None = None  # when it received the end of the drill
        self.closed: str | None = None  # how the connection ended, when not by us
        self.closing = False

    async def hold(self):
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.socket:
                message = json.loads(raw)
                kind = message.get("type", "?")
                self.messages[kind] += 1
                self.last_at = time.monotonic()
                if kind == "ppms" and message.get("event") == "ended":
                    self.ended_at = self.last_at
        except ConnectionClosed as closed:
            self.closed = describe_close(closed)
            return
        if not self.closing:
            self.closed = f"closed cleanly, code {self.socket.close_code}"


def describe_close(closed) -> str:
    """Who closed, with which code and reason: the server's frame, ours, or none."""
    if closed.rcvd is not None:
        return f"server sent {closed.rcvd.code} {closed.rcvd.reason!r}"
    if closed.sent is not None:
        return f"client sent {closed.sent.code} {closed.sent.reason!r}"
    return "connection lost without a close frame (1006)"


class WorkerMemory:
    """The resident memory of uvicorn's worker processes, sampled from /proc."""

    def __init__(self, supervisor_pid: int):
        self.supervisor = supervisor_pid
        self.workers = [
            pid for pid in children_of(supervisor_pid) if "spawn_main" in cmdline(pid)
        ] or [supervisor_pid]
        self.samples: list[tuple[float, list[float]]] = []

    def sample(self) -> float:
        values = []
        for pid in self.workers:
            try:
                values.append(rss_mb(pid))
            except OSError:
                values.append(float("nan"))  # a worker died: uvicorn restarts it
        self.samples.append((time.monotonic(), values))
        return sum(values)


async def report_statuses(plan: dict, stop: asyncio.Event, interval: float) -> int:
    """Directors report their school's status in turn (live events to the board)."""
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections

    from ppms.models import Activation, SchoolStatus
    from ppms.services import ppms_report

    def report_one(n: int) -> None:
        close_old_connections()
        director = plan["directors"][n % len(plan["directors"])]
        status = SchoolStatus.objects.select_related("school").get(
            activation=Activation.objects.get(title=DRILL_TITLE), school__uai=director["uai"]
        )
        user = get_user_model().objects.get(username=director["username"])
        present = max(0, status.school.pupils - n % 7)
        report = {"state": "safe", "pupils_present": present, "pupils_absent": n % 7}
        ppms_report(status=status, report=report, by=user)

    reports = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            await asyncio.to_thread(report_one, reports)
            reports += 1
    return reports


async def soak(args, port: int, sessions, plan: dict, memory: WorkerMemory, silence) -> dict:
    """Hold the websockets under the flow, then in silence; end the drill; close them.

    ``silence()``: stops the publisher. With no traffic, each web worker's channel layer
    waits in 5 s blocking pops: ``--quiet-seconds`` of that, and every page must still
    be there to receive the end of the drill.
    """
    from ppms.models import Activation
    from ppms.services import ppms_end

    clients = [Client(role, key) for role, key in sessions]
    by_key = {client.key: client for client in clients}
    tasks = []

    def opened(socket, key):
        # Read from the first moment: a client that lets messages pile up stops reading
        # its socket, then cannot answer the server's pings either.
        client = by_key[key]
        client.socket = socket
        tasks.append(asyncio.create_task(client.hold()))

    started = time.monotonic()
    # Browsers answer the server's pings but send none of their own.
    await connect_websockets(
        port, [client.key for client in clients], on_open=opened, ping_interval=None
    )
    connect_s = time.monotonic() - started
    print(f"soak: {len(clients)} websockets connected in {connect_s:.1f} s", flush=True)

    stop_reports = asyncio.Event()
    reporter = asyncio.create_task(report_statuses(plan, stop_reports, 30))
    await asyncio.sleep(args.warmup)
    rss_start = memory.sample()
    print(f"soak: after {args.warmup} s of warm-up, web workers' RSS {rss_start:.1f} MB")
    soak_s = args.soak_minutes * 60
    deadline = time.monotonic() + soak_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(args.sample_every, left))
        rss = memory.sample()
        connected = sum(client.closed is None for client in clients)
        received = sum(sum(client.messages.values()) for client in clients)
        elapsed = soak_s - max(0.0, deadline - time.monotonic())
        print(
            f"soak: {elapsed / 60:4.1f} min  RSS {rss:7.1f} MB  connected {connected}  "
            f"messages {received:,}",
            flush=True,
        )
    rss_end = memory.sample()
    connected_soak_end = sum(client.closed is None for client in clients)
    stop_reports.set()
    reports = await reporter

    await asyncio.to_thread(silence)
    print(f"soak: publisher stopped; {args.quiet_seconds} s without traffic", flush=True)
    await asyncio.sleep(args.quiet_seconds)

    # The end of the drill reaches every page still connected: proof they are alive.
    def end_drill():
        from django.db import close_old_connections

        close_old_connections()
        ppms_end(activation=Activation.objects.get(title=DRILL_TITLE), by=None)

    ending = time.monotonic()
    await asyncio.to_thread(end_drill)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(c.ended_at or c.closed for c in clients):
        await asyncio.sleep(0.2)
    connected_end = sum(client.closed is None for client in clients)
    delays = [(c.ended_at - ending) * 1000 for c in clients if c.ended_at]
    print(
        f"soak: end of the drill received by {len(delays)} of {len(clients)} pages: "
        f"p50 {percentile(delays, 50):.0f} ms, max {max(delays, default=float('nan')):.0f} ms",
        flush=True,
    )

    for client in clients:
        client.closing = True
    await asyncio.gather(*(client.socket.close() for client in clients if client.socket))
    await asyncio.gather(*tasks, return_exceptions=True)

    closures = Counter(client.closed for client in clients if client.closed)
    for how, count in closures.items():
        print(f"soak: {count} websocket(s) closed before the end: {how}")
    by_role = Counter()
    for client in clients:
        by_role[client.role] += sum(client.messages.values())
    received = sum(by_role.values())
    silent = sum(not client.messages for client in clients)
    return {
        "connect_s": connect_s,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "connected_soak_end": connected_soak_end,
        "connected_end": connected_end,
        "ended": len(delays),
        "end_p99_ms": percentile(delays, 99),
        "received": received,
        "by_role": dict(by_role),
        "silent": silent,
        "closures": dict(closures),
        "reports": reports,
    }


def web_log_errors(path: Path) -> tuple[int, Counter]:
    """The errors uvicorn and Django logged, and the exceptions behind them."""
    errors, exceptions = 0, Counter()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("ERROR") or " ERROR " in line:
            errors += 1
        elif EXCEPTION_LINE.match(line):
            exceptions[line[:160]] += 1
    return errors, exceptions


def slope_mb_per_min(samples) -> float:
    """Least-squares slope of the workers' total RSS over the soak, MB per minute."""
    points = [(t / 60, sum(values)) for t, values in samples]
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0


# --- Main -----------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="readings/s published")
    parser.add_argument("--users", type=int, default=50, help="locust users")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--duration", type=int, default=60, help="load phase, seconds")
    parser.add_argument("--wait-min", type=float, default=1.0, help="think time, seconds")
    parser.add_argument("--wait-max", type=float, default=3.0)
    parser.add_argument("--ws-clients", type=int, default=500)
    parser.add_argument("--ws-operators", type=int, default=250, help="the rest are directors")
    parser.add_argument("--warmup", type=int, default=60, help="seconds before the first RSS")
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument("--sample-every", type=float, default=30, help="RSS sampling, seconds")
    parser.add_argument(
        "--quiet-seconds", type=int, default=30, help="websockets held without traffic at the end"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="docker-compose runs 2")
    args = parser.parse_args()

    database_url = bench_database_url("bench_load")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    run_id = uuid.uuid4().hex[:8]
    # A queue and a channel-layer namespace of this run's own: no leftovers of others.
    os.environ.update(
        REDIS_URL=redis_url,
        CELERY_QUEUE=f"csu-bench-load-{run_id}",
        CHANNEL_LAYER_PREFIX=f"bench-load-{run_id}",
    )
    password = secrets.token_urlsafe(12)
    plan = prepare(database_url, password)
    sessions = websocket_sessions(plan, args.ws_clients, args.ws_operators)
    town = plan["town"]
    per_message = readings_per_message(town)

    from django.db import connections

    connections.close_all()  # before forking the publisher
    workdir = Path(tempfile.mkdtemp(prefix="csu-bench-load-"))
    web_log_path = workdir / "web.log"
    port = 20000 + os.getpid() % 1000
    processes = []
    with Broker() as broker, open(web_log_path, "w") as web_log:
        try:
            processes.append(start_ingest(database_url, broker))
            processes.append(start_celery(database_url, redis_url, os.environ["CELERY_QUEUE"]))
            web = start_web(database_url, port, workers=args.web_workers, log=web_log)
            processes.append(web)
            time.sleep(2)  # the workers import the app
            memory = WorkerMemory(web.pid)
            print(f"web: uvicorn {web.pid}, workers {memory.workers} on port {port}", flush=True)

            messages_per_s = args.rate / per_message
            planned_s = args.duration + args.warmup + args.soak_minutes * 60 + 600
            background = multiprocessing.Process(
                target=publisher,
                args=(
                    broker.port,
                    [sensor.ref for sensor in town],
                    int(messages_per_s * planned_s),
                    messages_per_s,
                    0.0,
                    TownPayloads(town),
                ),
                daemon=True,
            )
            background.start()
            time.sleep(5)  # let ingest settle at the rate
            flow_start = datetime.now(UTC)

            load_start = datetime.now(UTC)
            results = run_locust(args, port, plan, workdir)
            load_end = datetime.now(UTC)
            rows = summarise_load(results)

            print(flush=True)
            flow = {}

            def silence():
                flow["end"] = datetime.now(UTC)
                background.terminate()
                background.join(10)

            figures = asyncio.run(soak(args, port, sessions, plan, memory, silence))
            flow_end = flow["end"]
            # What was published during the run, once stored: wait for ingest to drain.
            stored = {"n": -1}

            def drained():
                before, stored["n"] = stored["n"], stored_since(database_url, flow_start)
                return before == stored["n"]

            wait_until(drained, timeout=60, step=2)
        finally:
            stop_processes(processes)
    flow_s = (flow_end - flow_start).total_seconds()
    in_flow = stored_since(database_url, flow_start, flow_end)
    load_rate = stored_since(database_url, load_start, load_end) / (
        (load_end - load_start).total_seconds()
    )
    web_errors, exceptions = web_log_errors(web_log_path)
    http_errors = sum(row["errors"] for row in rows.values())
    server_errors = sum(
        count
        for row in rows.values()
        for status, count in row["statuses"].items()
        if status.startswith("5")
    )

    rss_start, rss_end = figures["rss_start"], figures["rss_end"]
    growth = rss_end - rss_start
    slope = slope_mb_per_min(memory.samples)
    print(
        f"\nload: {sum(row['requests'] for row in rows.values()):,} requests, "
        f"{http_errors} errors ({server_errors} 5xx); ingest {load_rate:,.0f} readings/s "
        f"meanwhile\nsoak: {args.ws_clients} websockets held {args.soak_minutes:g} min after "
        f"{args.warmup} s of warm-up: {figures['connected_soak_end']} connected at its end; "
        f"after {args.quiet_seconds} s without traffic {figures['connected_end']} connected, "
        f"{figures['ended']} received the end of the drill; {figures['received']:,} messages "
        f"({figures['by_role']}); web workers' RSS {rss_start:.1f} → {rss_end:.1f} MB "
        f"({growth:+.1f} MB, {growth / rss_start * 100:+.1f} %, slope {slope:+.2f} MB/min)\n"
        f"ingest: {in_flow / flow_s:,.0f} readings/s stored over the run ({flow_s:.0f} s); "
        f"web log: {web_errors} errors logged ({web_log_path})"
    )
    for line, count in exceptions.most_common(10):
        print(f"  web: {count} x {line}")
    print_result(
        {
            "page_p99_ms": {key: rows[name]["p99"] for name, key in PAGES.items()},
            "api_p99_ms": {key: rows[name]["p99"] for name, key in APIS.items()},
            "page_p95_ms": {key: rows[name]["p95"] for name, key in PAGES.items()},
            "api_p95_ms": {key: rows[name]["p95"] for name, key in APIS.items()},
            "login_p99_ms": rows["login"]["p99"],
            "requests": sum(row["requests"] for row in rows.values()),
            "http_errors": http_errors,
            "http_5xx": server_errors,
            "web_log_errors": web_errors,
            "users": args.users,
            "load_s": args.duration,
            "ws_clients": args.ws_clients,
            "ws_connected_soak_end": figures["connected_soak_end"],
            "ws_connected_end": figures["connected_end"],
            "ws_received_end_of_drill": figures["ended"],
            "ws_end_of_drill_p99_ms": round(figures["end_p99_ms"], 1),
            "ws_closed_early": figures["closures"],
            "ws_messages": figures["received"],
            "ws_silent_clients": figures["silent"],
            "ws_connect_s": round(figures["connect_s"], 1),
            "soak_minutes": args.soak_minutes,
            "quiet_seconds": args.quiet_seconds,
            "ws_rss_start_mb": round(rss_start, 1),
            "ws_rss_end_mb": round(rss_end, 1),
            "ws_rss_growth_mb": round(growth, 1),
            "ws_rss_growth_pct": round(growth / rss_start * 100, 1),
            "ws_rss_slope_mb_per_min": round(slope, 2),
            "ingest_readings_per_s": round(in_flow / flow_s),
            "ingest_readings_per_s_during_load": round(load_rate),
            "publish_readings_per_s": args.rate,
        }
    )


if __name__ == "__main__":
    main()
