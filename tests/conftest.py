"""The shared cast of the tests, and the rules for tests that need real services.

Tests marked ``postgres``, ``redis``, ``mqtt`` or ``browser`` skip when the service is
missing on a developer's machine, and fail under ``CI=true``, where everything must run.

``dev.py test`` runs the suite on pytest-xdist workers, each with a test database of its
own. Tests that start the stack's processes (uvicorn, ingest or Celery workers, private
servers) are marked ``xdist_group("stack")``: ``--dist loadgroup`` runs them one after
the other on one worker, so that two stacks never compete for the machine's cores and
PostgreSQL connections at once.
"""

import gc
import io
import os
import shutil
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import roles, twofactor
from core.cache import forget_all
from core.models import ApiToken
from ppms.models import School, Shelter
from sensors.metrics import Kind
from sensors.models import Commune, Operator, Sensor, Zone

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _missing_service(marker: str) -> str | None:
    if marker == "postgres" and connection_vendor() != "postgresql":
        return "PostgreSQL is needed: set DATABASE_URL"
    if marker == "redis" and not (settings.REDIS_URL and _reachable(settings.REDIS_URL, 6379)):
        return "Redis is needed: set REDIS_URL to a running server"
    if marker == "mqtt" and not MOSQUITTO:
        return "Mosquitto is needed: install the mosquitto package"
    if marker == "browser" and not os.path.exists(CHROMIUM):
        return f"Chromium is needed at {CHROMIUM}: apt-get install chromium"
    return None


def connection_vendor() -> str:
    from django.db import connection

    return connection.vendor


def pytest_configure(config):
    # Tasks run where they are sent, also when REDIS_URL is set; the full-path test runs a
    # real worker in its own process.
    from csu.celery import app

    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The test client speaks plain HTTP, also when CI's settings are production-like.
    settings.SECURE_SSL_REDIRECT = False
    # Users are created in many tests: a fast hasher keeps them quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests render templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    _keep_apart_on_redis(os.environ.get("PYTEST_XDIST_WORKER", ""))


def _keep_apart_on_redis(worker: str) -> None:
    """Give this process names of its own on the Redis that other runs and workers share.

    pytest-django gives each xdist worker its own test database, where primary keys
    start again from 1; the channel layer's groups ("commune-1"…) and the cache's keys
    (ATMO classes by sensor id, ingest workers' counters) would otherwise be shared by
    the workers, and one worker's test would hear or read another's. The processes a test
    starts (uvicorn, ingest, Celery) read the channel-layer prefix from the environment.
    Run before anything builds the channel layer or the cache (both are made on first use).
    """
    if not settings.REDIS_URL:
        return  # in-memory channel layer and local-memory cache: already per process
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX") or "asgi"
    if worker:
        prefix = f"{prefix}-{worker}"
        os.environ["CHANNEL_LAYER_PREFIX"] = prefix
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = prefix
    settings.CACHES["default"]["KEY_PREFIX"] = f"tests-{prefix}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Put the ``xdist_group`` suffix on the node ids when pytest-xdist could not.

    loadgroup learns a test's group from an ``@group`` suffix the worker appends to its
    node id; pytest 9.2 keeps node ids in ``_id``, and xdist 3.8 still writes ``_nodeid``,
    so the groups were silently ignored (pytest-dev/pytest-xdist#1386). Remove this once
    xdist writes the suffix itself: the check below then leaves its ids alone.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest before 9.2, where xdist's own suffix works
        return

    for item in items:
        groups = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(groups))
        if groups and not item.nodeid.endswith(suffix) and isinstance(item._id, NodeId):
            item._id = NodeId.parse(item.nodeid + suffix)


def pytest_collection_finish(session):
    """Move what the collection left alive out of the garbage collector's sight.

    Django's apps, the test modules, the API schema and its hypothesis strategies live
    for the whole run; without this every full collection walks them again, and
    schemathesis and hypothesis allocate enough to set off many. Measured on the whole
    embedded suite (2 workers): 92 s of CPU time instead of 169 s, 80 s instead of 109 s.
    """
    gc.collect()
    gc.freeze()


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis", "mqtt", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        missing = _missing_service(marker)
        if missing:
            if IN_CI:
                pytest.fail(f"{missing} (CI=true: a missing service fails the run)")
            pytest.skip(missing)


# --- The cast ---------------------------------------------------------------------------


@pytest.fixture
def school_calendar(db):
    """The Ministry's holidays, as migration 0007 imports them. A transactional test run
    earlier on the same worker empties every table, a data migration's rows with them:
    a test that hangs on the holidays asks for them."""
    from django.core.management import call_command

    from ppms.models import SchoolHoliday

    if not SchoolHoliday.objects.exists():
        call_command("import_school_holidays", stdout=io.StringIO())


@pytest.fixture
def commune(db):
    return Commune.objects.create(insee_code="37122", name="Joué-lès-Tours")


@pytest.fixture
def other_commune(db):
    return Commune.objects.create(insee_code="37018", name="Ballan-Miré")


@pytest.fixture
def flood_zone(commune):
    return Zone.objects.create(commune=commune, name="Zone inondable du Cher", type="flood")


def make_sensor(commune, ref="jlt-air-01", kind=Kind.AIR, **fields):
    fields.setdefault("name", ref)
    return Sensor.objects.create(
        ref=ref, kind=kind, commune=commune, latitude=47.35, longitude=0.66, **fields
    )


def make_shelter(commune, name="Gymnase Jean Bigot", **fields):
    fields.setdefault("capacity", 120)
    return Shelter.objects.create(
        commune=commune, name=name, latitude=47.34, longitude=0.67, **fields
    )


def make_school(commune, uai="0370001A", **fields):
    fields.setdefault("name", f"École {uai}")
    fields.setdefault("pupils", 200)
    return School.objects.create(uai=uai, commune=commune, latitude=47.35, longitude=0.66, **fields)


@pytest.fixture
def sensor(commune):
    return make_sensor(commune)


@pytest.fixture
def school(commune):
    return make_school(commune)


def make_user(django_user_model, username, *, role=None, **fields):
    user = django_user_model.objects.create_user(username=username, password="pw", **fields)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def api_token(user) -> str:
    """The secret of a new API token of ``user`` (send it as ``Authorization: Token …``)."""
    return ApiToken.issue(user=user)[1]


def sign_in(client, user):
    """Log ``user`` in as the sign-in pages do: with a verified authenticator app when
    their role requires one or they have one (a director may), else with the password
    alone. ``client.force_login`` alone is a session still waiting for its second factor."""
    client.force_login(user)
    device = verified_device(user)
    if device:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device
        session.save()
    user.__dict__.pop("_csu_roles", None)  # roles read here must not outlive a change
    return client


def verified_device(user) -> str | None:
    """What a session signed in with ``user``'s authenticator app holds (its id), for a
    role that requires one or a user who has one; else None."""
    if twofactor.requires_second_factor(user) or TOTPDevice.objects.filter(user=user).exists():
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="tests")
        return device.persistent_id
    return None


def app_code(device: TOTPDevice) -> str:
    """The code ``device``'s authenticator app shows now."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def log_in_with_the_form(client, user, password="pw", **extra):
    """Sign in through the sign-in pages: the password, then, for a role that requires
    it, the code of an authenticator app (one is set up for ``user`` here)."""
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": password}, **extra
    )
    if twofactor.requires_second_factor(user):
        device, _ = TOTPDevice.objects.get_or_create(user=user, defaults={"name": "tests"})
        response = client.post("/accounts/code/", {"code": app_code(device)}, **extra)
    user.__dict__.pop("_csu_roles", None)
    return response


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's, signed in with the second factor a superuser must have."""
    return sign_in(client, admin_user)


@pytest.fixture
def operator(django_user_model, commune):
    user = make_user(django_user_model, "operateur", role=roles.OPERATORS)
    Operator.objects.create(user=user).communes.add(commune)
    return user


@pytest.fixture
def other_operator(django_user_model, other_commune):
    user = make_user(django_user_model, "operateur-ballan", role=roles.OPERATORS)
    Operator.objects.create(user=user).communes.add(other_commune)
    return user


@pytest.fixture
def metropole_operator(django_user_model):
    user = make_user(django_user_model, "operateur-metropole", role=roles.OPERATORS)
    Operator.objects.create(user=user, all_communes=True)
    return user


@pytest.fixture
def director(django_user_model, school):
    user = make_user(django_user_model, "directeur", role=roles.DIRECTORS)
    school.directors.add(user)
    return user


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """What a process keeps of sensors and rules (core/cache.py) never outlives a test:
    a rolled-back test sends no signal to forget it."""
    forget_all()


@pytest.fixture(autouse=True)
def fresh_throttle_counts(monkeypatch):
    """The API's rate counts (core/throttling.py) and the sign-in throttle's failures
    (core/signin_throttle.py) start at zero in every test.

    They are kept in the cache under a user's id, a username or an address, which the next
    test (a rolled-back database) or the next run (a new test database) gives again, while
    Redis keeps them.
    """
    from core import signin_throttle
    from core.throttling import WriteRateThrottle

    fresh = uuid.uuid4().hex
    monkeypatch.setattr(WriteRateThrottle, "cache_format", f"throttle-{fresh}_%(scope)s_%(ident)s")
    monkeypatch.setattr(signin_throttle, "KEY", f"signin-{fresh}")


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """Async tests reach the database from sync_to_async's thread: close it afterwards."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def broker(tmp_path):
    """A Mosquitto of this test's own, with our production configuration (anonymous on)."""
    from tests.brokers import Mosquitto, free_port, require_mosquitto

    require_mosquitto()
    started = Mosquitto(tmp_path, free_port(), auth=False).start()
    yield started
    started.stop()
