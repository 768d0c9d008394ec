"""``/healthz``: the state of the database, Redis, the MQTT broker and ingest.

Open without login so that load balancers and Docker can probe it: to them it says only
up or down (200 ``{"status": "ok"}`` or 503 ``{"status": "error"}``). Which service
failed, and ingest's workers, lag and queue, are for monitoring: an admin's session or
the bearer token ``METRICS_TOKEN``, as ``/metrics``. ``/healthz?service=web`` checks
only what the web process itself needs (the database), so a stopped ingest never
restarts the web.

While ingest workers that started less than STARTUP_GRACE_S ago have not yet connected
to the broker, the answer is 503 ``{"status": "starting"}``, logged as information: a
process starting up is not an error.
"""

import socket
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.log import log_response
from django.views.decorators.cache import never_cache

from .ingest.stats import lag_seconds, live_snapshots
from .prometheus import may_monitor

# Messages older than this waiting in an ingest worker make the system unhealthy.
INGEST_LAG_LIMIT_S = 30.0
# A worker that has not connected this long after it started is in trouble, not starting.
STARTUP_GRACE_S = 60.0


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 (any failure is reported, not raised)
        return f"error: {type(exc).__name__}"


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "embedded"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.HEALTHZ_TIMEOUT_S)
        client.ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001 (any failure is reported, not raised)
        return f"error: {type(exc).__name__}"


def check_broker(snapshots: dict) -> str:
    """The ingest workers say whether they are connected; else try a TCP connection."""
    if snapshots:
        if any(s.get("connected") for s in snapshots.values()):
            return "ok"
        if all(starting(s) for s in snapshots.values()):
            return "starting"
        return "error: no ingest worker connected"
    url = urlsplit(settings.MQTT_URL)
    port = url.port or (8883 if url.scheme in ("mqtts", "ssl") else 1883)
    try:
        with socket.create_connection(
            (url.hostname or "127.0.0.1", port), timeout=settings.HEALTHZ_TIMEOUT_S
        ):
            return "ok"
    except OSError as exc:
        return f"error: {type(exc).__name__}"


def starting(snapshot: dict) -> bool:
    """Whether the worker has never connected yet and started moments ago."""
    started = snapshot.get("started") or 0
    return not snapshot.get("ever_connected") and time.time() - started < STARTUP_GRACE_S


def ingest_summary(snapshots: dict) -> dict:
    now = time.time()
    lag = max((lag_seconds(s, now) for s in snapshots.values()), default=0.0)
    last = max((s.get("last_commit") or 0 for s in snapshots.values()), default=0) or None
    return {
        "workers": len(snapshots),
        "lag_s": round(lag, 3),
        "queue_depth": sum(s.get("queue_depth", 0) for s in snapshots.values()),
        "last_commit_s_ago": round(now - last, 1) if last else None,
        "status": "ok" if lag <= INGEST_LAG_LIMIT_S else "error: lagging",
    }


@never_cache
def healthz(request):
    checks = {"database": check_database()}
    body = {}
    if request.GET.get("service") != "web":
        try:
            snapshots = live_snapshots()
        except Exception:  # noqa: BLE001 (Redis down: its own check reports it)
            snapshots = {}
        checks["redis"] = check_redis()
        checks["broker"] = check_broker(snapshots)
        body["ingest"] = ingest_summary(snapshots)
        checks["ingest"] = body["ingest"]["status"]
    healthy = all(value in ("ok", "embedded") for value in checks.values())
    starting_up = not healthy and all(
        value in ("ok", "embedded", "starting") for value in checks.values()
    )
    answer = {"status": "ok" if healthy else "starting" if starting_up else "error"}
    if may_monitor(request):
        answer |= {"checks": checks, **body}
    response = JsonResponse(answer, status=200 if healthy else 503)
    if starting_up:
        # Django would log the 503 as an ERROR; starting up is not one.
        log_response("Starting: %s", request.path, response=response, request=request, level="info")
    return response
