"""What the benches share: a bench database, a broker with our config, publishers."""

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")
# With DATABASE_URL and REDIS_URL the settings are production's, which want a secret key.
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + secrets.token_urlsafe(40))


def bench_database_url(suffix: str = "bench") -> str:
    """DATABASE_URL with a database of its own (``<name>_<suffix>``), so runs never touch data.

    bench/query.py keeps its 100 M readings in ``_bench``; the benches that empty their
    tables (ingest, alert latency, PPMS fan-out) use ``_bench_flow``.
    """
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        url = "postgres://postgres@127.0.0.1:5432/csu"
    parts = urlsplit(url)
    if "BENCH_DATABASE_URL" in os.environ:
        return url
    name = parts.path.lstrip("/") or "csu"
    return urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def prepare_database(url: str) -> None:
    """Create the bench database if needed and migrate it."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    name = parts.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    run_manage(["migrate", "--noinput", "-v", "0"], url)


def run_manage(args, database_url, **kwargs):
    env = dict(os.environ, DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs
    )


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


class Broker:
    """Mosquitto with deploy/mosquitto/mosquitto.conf (anonymous allowed) on a free port."""

    def __init__(self):
        from tests.brokers import Mosquitto, free_port, require_mosquitto  # noqa: F401

        self.tmp = Path(tempfile.mkdtemp(prefix="csu-bench-mqtt-"))
        self.mosquitto = Mosquitto(self.tmp, free_port(), auth=False)

    def __enter__(self):
        self.mosquitto.start()
        return self.mosquitto

    def __exit__(self, *exc):
        self.mosquitto.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name (the state first)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _processes(pgid: int | None = None, command: str | None = None) -> dict[int, str]:
    """The processes of group ``pgid``, or whose command line starts with ``command``:
    their state letter (R, S, Z…) by pid, read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except OSError:
            continue  # gone meanwhile
        if pgid is not None and int(fields[2]) != pgid:
            continue
        if command is not None and not cmdline(int(entry)).startswith(command):
            continue
        found[int(entry)] = fields[0]
    return found


def cpu_seconds(pgid: int | None = None, command: str | None = None) -> float:
    """CPU time (user + system) of every process of group ``pgid`` (one started by
    ``start_process``), or whose command line starts with ``command`` (``postgres:``)."""
    return sum(process_cpu(pid) or 0.0 for pid in _processes(pgid, command))


def group_pids(pgid: int) -> list[int]:
    """The processes of group ``pgid`` (one started by ``start_process``)."""
    return list(_processes(pgid))


def process_cpu(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` so far, in seconds; None if gone."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class CpuMeter:
    """The CPU time a changing set of processes spends from ``start()`` on.

    ``pids() -> iterable of pid``. Each process is sampled while it lives: one that
    appears after the start (a new connection's PostgreSQL backend) counts from zero.
    Without ``reaped``, one that ends counts up to its last sample (sample often), and
    one that lives between two samples not at all. ``reaped() ->`` the CPU seconds so
    far of the processes' parent's children that ended (``children_cpu``): with it, a
    process that ends counts whole, however short its life."""

    def __init__(self, pids, reaped=None):
        self.pids = pids
        self.reaped = reaped
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.reaped_at_start = 0.0

    def start(self) -> None:
        self.first, self.last = {}, {}
        if self.reaped is not None:
            self.reaped_at_start = self.reaped()
        for pid in self.pids():
            cpu = process_cpu(pid)
            if cpu is not None:
                self.first[pid] = self.last[pid] = cpu

    def sample(self) -> None:
        for pid in self.pids():
            cpu = process_cpu(pid)
            if cpu is not None:
                self.first.setdefault(pid, 0.0)
                self.last[pid] = cpu

    def seconds(self) -> float:
        self.sample()
        if self.reaped is None:
            return sum(self.last[pid] - self.first[pid] for pid in self.last)
        alive = {pid for pid in self.last if process_cpu(pid) is not None}
        # The ended ones are all in the reaped time, with their CPU before the start.
        before = sum(self.first[pid] for pid in self.last if pid not in alive)
        lived = sum(self.last[pid] - self.first[pid] for pid in alive)
        return lived + self.reaped() - self.reaped_at_start - before


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core, from /proc/stat:
    busy is all but idle and iowait. Two readings give how busy the machine was between."""
    with open("/proc/stat") as stat:
        fields = [int(n) for n in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle, iowait
    # guest and guest_nice (9, 10) are already counted in user and nice.
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def children_cpu(pid: int) -> float:
    """CPU time (user + system) so far of the children of ``pid`` that ended and were
    waited for (PostgreSQL's postmaster waits for each backend that ends)."""
    fields = _stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def parent_pid(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def percentile(values, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_result(figures: dict) -> None:
    """The last line of every bench: one JSON object, so runs can be compared."""
    print(json.dumps(figures), flush=True)


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


METRICS = ("pm25", "pm10", "no2", "o3", "so2", "temperature", "humidity")


def station_payload(i: int, ts: datetime, readings: int = len(METRICS)) -> bytes:
    """An air station's message: its first ``readings`` metrics (all 7 by default)."""
    values = {m: round(5 + (i * 7 + k) % 60 / 3, 2) for k, m in enumerate(METRICS[:readings])}
    if "temperature" in values:
        values["temperature"] = 12.5
    if "humidity" in values:
        values["humidity"] = 70
    return json.dumps({"ts": ts.isoformat(), "values": values}).encode()


def publisher(
    port: int, refs: list[str], messages: int, rate: float | None, base: float, payload=None
):
    """Publish ``messages`` QoS 1 messages round-robin over ``refs`` (paced if ``rate``).

    ``payload(i, ref, ts) -> bytes``: the message body (default: an air station's 7 readings).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.username_pw_set("bench-publisher")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    window = []
    started = time.monotonic()
    for i in range(messages):
        if rate:
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ts = datetime.now(UTC)
        else:
            ts = datetime.fromtimestamp(base + i / 1000, UTC)
        ref = refs[i % len(refs)]
        body = payload(i, ref, ts) if payload else station_payload(i, ts)
        window.append(client.publish(f"csu/{ref}/readings", body, qos=1))
        if len(window) >= 2000:
            for info in window[:1000]:
                info.wait_for_publish(60)
            del window[:1000]
    for info in window:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def start_ingest(database_url: str, broker, **extra_env) -> subprocess.Popen:
    """Start `manage.py ingest` on the bench database and broker; wait until subscribed."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MQTT_URL": broker.url_for("csu-ingest"),
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    process = start_process(
        [sys.executable, "manage.py", "ingest", "--client-id", "bench-ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    process.lines = lines
    if not wait_until(lambda: any("subscribed" in line for line in lines), timeout=60):
        process.kill()
        sys.exit("the ingest worker did not start:\n" + "".join(lines))
    return process


def start_celery(
    database_url: str,
    redis_url: str,
    queue: str,
    log=subprocess.DEVNULL,
    *,
    pool: str = "threads",
    concurrency: int = 4,
) -> subprocess.Popen:
    """A Celery worker consuming ``queue`` on Redis: one process with a pool of threads, or
    ``pool="prefork", concurrency=2`` as docker-compose runs it (processes, both cores).

    ``log``: where its output goes (a file to look for errors in, or nothing)."""
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_QUEUE=queue)
    return start_process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "csu",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_celery(queue: str, timeout: float = 60.0) -> None:
    """Wait until the worker started by ``start_celery(…, queue)`` answers a ping."""
    from csu.celery import app

    name = f"{queue}@{socket.gethostname()}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(destination=[name], timeout=0.5):
            return
    raise RuntimeError(f"the Celery worker {name} did not start within {timeout:g} s")


# --- The web side: sessions, uvicorn, websocket clients ------------------------------------


def session_key_for(user) -> str:
    """A logged-in session of ``user`` (what the sign-in pages would create: with the code
    of an authenticator app for a role that needs one), its key."""
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from core import twofactor

    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    if twofactor.requires_second_factor(user):
        device, _ = TOTPDevice.objects.get_or_create(user=user, defaults={"name": "bench"})
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.create()
    return session.session_key


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_web(
    database_url: str, port: int, *, workers: int = 1, log=subprocess.DEVNULL, **extra_env
) -> subprocess.Popen:
    """uvicorn serving the ASGI app on the bench database, on loopback.

    ``workers``: docker-compose runs 2 behind one port. Static files come from the apps
    (no collectstatic for a bench). ``log``: where uvicorn's output goes (a file to look
    for errors in, or nothing).
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",
        "CSU_HTTPS": "false",
        "CSU_MANIFEST_STATIC": "false",
        "CSU_STATIC_FROM_FINDERS": "true",
        "WEB_DB_POOL_SIZE": "20",  # as docker-compose
        **extra_env,
    }
    process = start_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "csu.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
            "--workers",
            str(workers),
            "--ws-per-message-deflate",  # as in production (Dockerfile)
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not wait_until(lambda: listening(port) or process.poll() is not None, timeout=60):
        process.kill()
        sys.exit("the web server did not start")
    if process.poll() is not None:
        sys.exit(f"the web server exited with {process.returncode}")
    return process


def start_process(args, **kwargs) -> subprocess.Popen:
    """Start ``args`` as the leader of a process group of its own: ``stop_processes``
    then stops it with every process it started (uvicorn's workers, say)."""
    return subprocess.Popen(args, start_new_session=True, **kwargs)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (a zombie waiting for its reaper
    does not)."""
    return any(state != "Z" for state in _processes(pgid=pgid).values())


def stop_processes(processes, grace: float = 20.0) -> None:
    """SIGTERM each process and every process of its group (started by ``start_process``
    or the ``start_*`` helpers), then SIGKILL whatever is left after ``grace`` seconds:
    uvicorn's workers, for one, wait for their websockets to close on a SIGTERM."""
    groups = []
    for process in processes:
        pgid = process.pid  # each is the leader of its group (start_new_session)
        groups.append((process, pgid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process, pgid in groups:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
        if not wait_until(
            lambda g=pgid: not _group_alive(g), max(0.0, deadline - time.monotonic())
        ):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        process.wait()
        if not wait_until(lambda g=pgid: not _group_alive(g), 5):
            print(f"processes of group {pgid} survived SIGKILL", file=sys.stderr)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (uvicorn's workers under its supervisor)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            children.append(int(entry))
    return sorted(children)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def connect_websockets(
    port: int, keys: list[str], wave: int = 50, on_open=None, **options
) -> list:
    """Open one ``/ws/live/`` websocket per session key, as a browser of that session.

    Connects in waves of ``wave``: no thundering herd on the server. ``on_open(socket,
    key)`` is called as each one opens, to start reading it at once: a client that lets
    16 messages pile up stops reading its socket, and then cannot answer the server's
    keepalive pings either.
    """
    import websockets

    async def one(key):
        socket = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/live/",
            additional_headers={"Cookie": f"sessionid={key}", "Origin": f"http://127.0.0.1:{port}"},
            open_timeout=60,
            proxy=None,
            **options,
        )
        if on_open is not None:
            on_open(socket, key)
        return socket

    sockets = []
    for start in range(0, len(keys), wave):
        sockets += await asyncio.gather(*(one(key) for key in keys[start : start + wave]))
    return sockets


def air_stations(refs, *, insee_code: str = "99999", commune: str = "Bench") -> dict[str, int]:
    """Create the bench's air sensors ``refs`` (kept if there), in a commune of their own;
    return their ids by ref."""
    from sensors.models import Commune, Sensor

    place, _ = Commune.objects.get_or_create(insee_code=insee_code, defaults={"name": commune})
    for ref in refs:
        Sensor.objects.get_or_create(
            ref=ref,
            defaults={
                "name": ref,
                "kind": "air",
                "commune": place,
                "latitude": 47.3,
                "longitude": 0.7,
            },
        )
    return dict(Sensor.objects.filter(ref__in=refs).values_list("ref", "pk"))
