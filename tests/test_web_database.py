"""The web process under concurrent requests leaves no database connection behind.

Under ASGI, Django runs each request's ORM work in a thread of its own: a connection
kept open for reuse (CONN_MAX_AGE) outlives its thread, is never reused nor closed, and
a few dozen concurrent requests exhaust PostgreSQL ("too many clients already").
"""

import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django_otp import DEVICE_ID_SESSION_KEY

from tests.brokers import free_port
from tests.conftest import verified_device
from tests.stack import start_web, stop, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("stack"),  # one stack's processes at a time (conftest.py)
]

CONCURRENT = 20  # gentle: the PostgreSQL of a developer's machine allows 100 in all


def session_of(user) -> str:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session[DEVICE_ID_SESSION_KEY] = verified_device(user)
    session.create()
    return session.session_key


def web_connections(name: str) -> int:
    """The web server's connections: libpq tags them with its PGAPPNAME."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name])
        return cursor.fetchone()[0]


def start_tagged_web(pool_size: str):
    """uvicorn whose database connections carry a name of their own (other tests' may linger)."""
    name = f"csu-web-{uuid.uuid4().hex[:8]}"
    port = free_port()
    return start_web(port, WEB_DB_POOL_SIZE=pool_size, PGAPPNAME=name), port, name


def hammer(port, key, requests):
    def get(_):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/latest/", headers={"Cookie": f"sessionid={key}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(get, range(requests)))


def test_without_a_pool_concurrent_requests_leave_no_connection_open_behind_them(operator):
    key = session_of(operator)
    web, port, name = start_tagged_web("0")

    try:
        assert hammer(port, key, CONCURRENT * 3) == [200] * (CONCURRENT * 3)
        wait_until(lambda: web_connections(name) == 0, timeout=10)
        assert web_connections(name) == 0
    finally:
        stop(web)


def test_with_a_pool_concurrent_requests_share_at_most_its_connections(operator):
    key = session_of(operator)
    web, port, name = start_tagged_web("4")
    peak = 0
    done = threading.Event()

    def watch():  # in a thread of its own, with a connection of its own
        nonlocal peak
        while not done.is_set():
            peak = max(peak, web_connections(name))
            time.sleep(0.01)
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        statuses = hammer(port, key, CONCURRENT * 3)
    finally:
        done.set()
        watcher.join()
        stop(web)

    assert statuses == [200] * (CONCURRENT * 3)  # requests waited their turn, none failed
    assert 1 <= peak <= 4
