"""The real stack for tests: publishers, ingest and Celery worker processes, the web server.

Processes run against the test database (committed data: use ``transactional_db``), the
test's own Mosquitto (the ``broker`` fixture of conftest.py) and, for Celery and the
channel layer, the Redis of REDIS_URL.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from django.db import connection
from paho.mqtt.enums import CallbackAPIVersion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def publish(port, topic_payloads, *, username="publisher", window=500, password=None):
    """Publish QoS 1 messages and wait until the broker acknowledged every one."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    client.username_pw_set(username, password)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    pending = []
    try:
        for topic, payload in topic_payloads:
            pending.append(client.publish(topic, payload, qos=1))
            if len(pending) >= window:
                for info in pending:
                    info.wait_for_publish(30)
                pending.clear()
        for info in pending:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def station_messages(ref, count, *, start=None, metrics=("pm25", "pm10", "no2", "o3", "so2")):
    """``count`` messages of a station reporting several metrics, 1 ms apart."""
    start = start or datetime.now(UTC) - timedelta(minutes=10)
    for i in range(count):
        ts = (start + timedelta(milliseconds=i)).isoformat()
        values = {metric: (i % 500) / 10 for metric in metrics}
        yield f"csu/{ref}/readings", json.dumps({"ts": ts, "values": values})


def wait_until(predicate, timeout=60.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def database_url(port=None) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{port or s['PORT'] or 5432}/{s['NAME']}"


def start_worker(broker, client_id, *, db_port=None, group=None, timeout=30):
    env = dict(
        os.environ,
        DATABASE_URL=database_url(db_port),
        MQTT_URL=broker.url_for("csu-ingest"),
        PYTHONUNBUFFERED="1",
    )
    args = [sys.executable, "manage.py", "ingest", "--client-id", client_id]
    if group:
        args += ["--group", group]
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    process.output = lines
    return started(process, lambda: any("subscribed" in line for line in lines), timeout, lines)


def stop_worker(process):
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    time.sleep(0.2)
    return "".join(process.output)


def start_celery_worker(queue: str) -> subprocess.Popen:
    """A real Celery worker process consuming ``queue`` on REDIS_URL; its log in ``output``."""
    env = dict(os.environ, DATABASE_URL=database_url(), CELERY_QUEUE=queue)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "csu",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "-Q",
            queue,
            "--loglevel",
            "INFO",  # its "ready" line
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    process.output = lines
    return process


def celery_ready(worker: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait for the "ready" line of a worker from ``start_celery_worker``."""
    return wait_until(lambda: any(" ready." in line for line in worker.output), timeout=timeout)


def start_web(port: int, **extra_env) -> subprocess.Popen:
    """uvicorn serving the ASGI app on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CSU_HTTPS": "false",
        "CSU_MANIFEST_STATIC": "false",
        "CSU_STATIC_FROM_FINDERS": "true",
        "DJANGO_DEBUG": "false",
        "WEB_DB_POOL_SIZE": "20",  # as docker-compose
        **extra_env,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "csu.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
            "--ws-per-message-deflate",  # as in production (Dockerfile)
            "false",
            # On SIGTERM uvicorn waits for every websocket to close: a browser page still
            # open at teardown held it the whole 20 s of stop().
            "--timeout-graceful-shutdown",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    import socket

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    return started(process, listening, 30, "the web server did not start")


def started(process: subprocess.Popen, ready, timeout: float, why) -> subprocess.Popen:
    """``process`` once ``ready()``; one that does not get there in time is stopped before
    the test fails, not left running (connected to the test database, it made the next
    run's database creation fail)."""
    if not wait_until(ready, timeout=timeout):
        stop(process)
        raise AssertionError(why)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
