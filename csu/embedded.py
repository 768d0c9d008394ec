"""Run the whole CSU in one process, with no service installed.

The embedded default: uvicorn serves the ASGI app, an amqtt broker listens on
``MQTT_URL``'s port, the ingest worker and Celery beat run in threads and the simulator
in a child process publishes the demo town's readings over MQTT. Websockets and ingest share
this process, so the in-memory channel layer reaches every browser; Celery tasks go
through the in-memory broker to a worker running in threads of this process.
"""

import asyncio
import logging
import signal
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import uvicorn
from django.conf import settings

from core import live
from sensors.ingest.worker import IngestWorker

from .celery import app

log = logging.getLogger(__name__)


def broker_config(port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            # amqtt drops an anonymous session's persistent state at once (measured): every
            # client must give a username, even on the embedded broker.
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }


async def start_broker():
    from amqtt.broker import Broker

    port = urlsplit(settings.MQTT_URL).port or 1883
    broker = Broker(broker_config(port))
    await broker.start()
    log.info("embedded MQTT broker listening on 127.0.0.1:%d", port)
    return broker


def start_celery_worker():
    """A Celery worker in threads of this process, on the in-memory broker.

    Tasks sent from this process (ingest, beat, web) run there, off the ingest thread,
    with their retries and countdowns, as they would on Redis.
    """
    from celery.worker import WorkController

    worker = WorkController(
        app=app,
        pool="threads",
        concurrency=2,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()
    return worker


def start_beat():
    """Celery beat in a thread; with always-eager tasks it runs them right here."""
    from celery.beat import EmbeddedService

    beat = EmbeddedService(
        app, schedule_filename=str(settings.DATA_DIR / "celerybeat-schedule"), thread=True
    )
    beat.start()
    return beat


# The demo's simulator, a child of this process: the admin's "replay the flood" button
# (csu/demo.py) restarts it with one scenario.
_simulator: subprocess.Popen | None = None
_simulator_lock = threading.Lock()
# A replayed scenario begins at once, at the demo's pace.
REPLAY_ARGS = ("--scenario-delay", "0", "--speed", "60")


def start_simulator(args: list[str]) -> subprocess.Popen:
    global _simulator
    with _simulator_lock:
        _simulator = subprocess.Popen([sys.executable, "manage.py", "simulate", *args])
        return _simulator


def stop_simulator() -> None:
    global _simulator
    with _simulator_lock:
        if _simulator is not None:
            _stop(_simulator)
        _simulator = None


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def simulator_running() -> bool:
    return _simulator is not None


def replay_scenario(scenario: str) -> subprocess.Popen | None:
    """Restart the demo's simulator playing ``scenario`` at once; None if none runs here."""
    global _simulator
    with _simulator_lock:
        if _simulator is None:
            return None
        _stop(_simulator)
        _simulator = subprocess.Popen(
            [sys.executable, "manage.py", "simulate", "--scenario", scenario, *REPLAY_ARGS]
        )
        return _simulator


def server_config(*, host: str, port: int, access_log: bool) -> uvicorn.Config:
    """uvicorn's configuration; one line per request only when asked (``--access-log``):
    each open page's scripts, polls and static files would otherwise bury the log a
    newcomer reads (the incidents, the alerts)."""
    return uvicorn.Config(
        "csu.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="info",
        access_log=access_log,
        ws_per_message_deflate=False,  # as in production (Dockerfile)
    )


async def serve(
    *, host: str, port: int, simulate: list[str] | None, access_log: bool = False
) -> None:
    live.bind_server_loop(asyncio.get_running_loop())
    broker = await start_broker() if settings.MQTT_EMBEDDED else None
    worker = IngestWorker(client_id="csu-ingest-embedded")
    ingest = threading.Thread(target=worker.run, name="ingest", daemon=True)
    ingest.start()
    # On the in-memory broker, tasks need a worker in this process (CSU_EMBEDDED_WORKER);
    # eager, they run in the thread that sends them.
    embedded_worker = settings.CELERY_BROKER_URL == "memory://"
    if embedded_worker and settings.CELERY_TASK_ALWAYS_EAGER:
        log.warning("CSU_EMBEDDED_WORKER is not set: tasks run in the thread that sends them")
    in_threads = embedded_worker and not settings.CELERY_TASK_ALWAYS_EAGER
    celery_worker = start_celery_worker() if in_threads else None
    beat = start_beat()
    if simulate is not None:
        start_simulator(simulate)
    server = uvicorn.Server(
        server_config(host=host, port=port, access_log=access_log)
    )  # it handles SIGINT and SIGTERM itself...
    # ...then raises the signal again once serve() returns: with these handlers restored
    # at that moment, the process survives it and stops the simulator, ingest and broker.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    print(f"\nCSU is running: open http://{host}:{port}/ (Ctrl+C to stop)\n", flush=True)
    try:
        await server.serve()
    finally:
        stop_simulator()
        beat.stop()
        worker.stop()
        if celery_worker is not None:
            celery_worker.stop(in_sighandler=False)
        await asyncio.to_thread(ingest.join, 15)
        if broker is not None:
            await broker.shutdown()
        live.bind_server_loop(None)
