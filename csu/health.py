"""``/healthz``: the state of the database, Redis and the MQTT broker.

Open without login so that load balancers and Docker can probe it; it tells only
"ok" or the kind of failure, never data.
"""

import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "embedded"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.HEALTHZ_TIMEOUT_S)
        client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def check_broker() -> str:
    url = urlsplit(settings.MQTT_URL)
    port = url.port or (8883 if url.scheme in ("mqtts", "ssl") else 1883)
    try:
        with socket.create_connection(
            (url.hostname or "127.0.0.1", port), timeout=settings.HEALTHZ_TIMEOUT_S
        ):
            return "ok"
    except OSError as exc:
        return f"error: {type(exc).__name__}"


@never_cache
def healthz(request):
    checks = {
        "database": check_database(),
        "redis": check_redis(),
        "broker": check_broker(),
    }
    healthy = all(value in ("ok", "embedded") for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks},
        status=200 if healthy else 503,
    )
