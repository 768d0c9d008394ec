"""Settings for CSU, driven by the environment.

With no service variables set, CSU runs on its embedded default: SQLite (WAL) under
``CSU_DATA_DIR``, the in-memory channel layer, Celery tasks run in-process and an
embedded MQTT broker. Set ``DATABASE_URL``, ``REDIS_URL`` and ``MQTT_URL`` and the same
code runs on PostgreSQL, Redis and Mosquitto.
"""

import importlib.util
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


RATE_RE = re.compile(r"\A[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)\Z")


def env_rate(name: str, default: str | None) -> str | None:
    """A DRF throttle rate, ``120/min`` (per s, min, h or day), or ``off``: no limit."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    value = value.strip()
    if value.lower() == "off":
        return None
    if not RATE_RE.match(value):
        raise ImproperlyConfigured(
            f"{name} must be a number of requests per s, min, h or day (120/min), or off, "
            f"not {value!r}"
        )
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")
# The embedded default runs without PostgreSQL and Redis; with both, this is production
# (unless DJANGO_DEBUG says otherwise).
EMBEDDED = not (DATABASE_URL and REDIS_URL)
PRODUCTION = not EMBEDDED and not DEBUG

# The embedded default's key: obviously not a production one, and refused in production.
INSECURE_SECRET_KEY = "insecure-embedded-default-set-DJANGO_SECRET_KEY-in-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", INSECURE_SECRET_KEY)
if PRODUCTION and SECRET_KEY == INSECURE_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set in production (DATABASE_URL and REDIS_URL are set "
        "and DJANGO_DEBUG is off): a long random string, kept secret."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATA_DIR = Path(env("CSU_DATA_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "channels",
    # The layers, bottom up: each app imports only the ones listed before it
    # (the import-linter contracts in pyproject.toml check it).
    "core",
    "sensors",
    "alerts",
    "ppms",
    "dashboard",
    # Last: the wiring. Its post_migrate hook sets the role groups' permissions of the
    # apps above, and its ready() connects every signal.
    "csu",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Whether the session was verified by a second factor (request.user.is_verified()).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "core.middleware.SecondFactorMiddleware",
    "core.audit.AuditMiddleware",
    "core.middleware.NulByteMiddleware",
    "core.middleware.ContentLengthMiddleware",
    # Turns a sign-in that must wait into its 429 (after the audit has recorded it).
    "core.signin_throttle.SigninThrottleMiddleware",
]

ROOT_URLCONF = "csu.urls"
ASGI_APPLICATION = "csu.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Set by csu/asgi.py before Django starts: the web server's processes. Under ASGI, Django
# runs each request's ORM work in a thread of its own: a connection kept for reuse
# (CONN_MAX_AGE) would outlive that thread, never reused nor closed, and a few dozen
# concurrent requests would exhaust PostgreSQL. The web closes each request's connection,
# or returns it to a pool of WEB_DB_POOL_SIZE (docker-compose sets it): bounded per
# process and reused, so a reconnect storm of 500 pages waits its turn instead of
# exhausting the server. Ingest and Celery keep theirs.
WEB_PROCESS = env_bool("CSU_WEB_PROCESS", False)
WEB_DB_POOL_SIZE = env_int("WEB_DB_POOL_SIZE", 0, minimum=0)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if WEB_PROCESS else 60)
    }
    if WEB_PROCESS and WEB_DB_POOL_SIZE:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": WEB_DB_POOL_SIZE,
            "timeout": 30,  # a request waits its turn rather than failing at once
        }
else:
    # CSU_DATA_DIR must exist (dev.py creates it): settings create nothing on disk.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "csu.sqlite3",
            # Measured: concurrent writers need WAL *and* IMMEDIATE
            # transactions *and* a busy timeout.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery, cache ---------------------------------------------
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py 8 reads give up after 5 s by default, the length of the
                        # layer's blocking pops: a late answer killed the consumer and dropped
                        # its browser's websocket. Still finite, so a dead Redis is noticed.
                        "socket_timeout": 30,
                        # redis-py 8 pools fail past 100 connections in use: a worker's
                        # browsers reconnecting at once each join their groups.
                        "max_connections": 2000,
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
                # Deployments (and bench runs) sharing a Redis keep apart by prefix.
                "prefix": env("CHANNEL_LAYER_PREFIX", "asgi"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CHANNEL_LAYER_PREFIX", "asgi"),
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
    # A task held by a killed worker (acks late) is delivered again after this; kombu's
    # default is an hour. Longer than any countdown we set (the longest retry waits 600 s),
    # or a task waiting for its retry would be delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Embedded default: tasks run in the process that sends them, in the thread that sends
    # them, or, under `manage.py run_embedded` (CSU_EMBEDDED_WORKER, set by dev.py start),
    # in worker threads of that process.
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = not env_bool("CSU_EMBEDDED_WORKER", False)
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Europe/Paris"
# One queue per deployment sharing a Redis (and per test run of the full path).
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Celery's Django fixup closes every database connection before and after each task
# unless told to keep them: a new PostgreSQL backend for each evaluation of an ingest
# batch (five a second in a flood). Kept instead, and closed as a web request's are —
# when broken or older than CONN_MAX_AGE — by csu/celery.py.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BEAT_SCHEDULE = {
    "reading-partitions": {
        "task": "sensors.tasks.maintain_reading_partitions",
        "schedule": crontab(minute=7),
    },
    "silent-sensors-offline": {
        "task": "sensors.tasks.mark_silent_sensors_offline",
        "schedule": 60.0,
    },
    "alerts-check": {"task": "alerts.tasks.check_alerts", "schedule": 60.0},
    # What a commit could not hand to a worker (Redis away, a worker killed) is sent here.
    "notifications-catch-up": {"task": "core.outbox.dispatch", "schedule": 30.0},
    "ppms-escalate": {"task": "ppms.tasks.escalate_pending_schools", "schedule": 15.0},
    "ppms-unanswered-proposals": {
        "task": "ppms.tasks.activate_unanswered_proposals",
        "schedule": 15.0,
    },
    "alerts-catch-up": {"task": "alerts.tasks.evaluate_latest", "schedule": 120.0},
    "alerts-atmo": {"task": "alerts.tasks.evaluate_atmo", "schedule": 600.0},
    # Rules on means: the hours the roll-ups (every 5 minutes) closed since the last run.
    "alerts-aggregates": {"task": "alerts.tasks.evaluate_aggregates", "schedule": 60.0},
    "rejected-messages-retention": {
        "task": "sensors.tasks.purge_rejected_messages",
        "schedule": crontab(minute=17, hour=3),
    },
    "audit-retention": {
        "task": "core.tasks.purge_audit_entries",
        "schedule": crontab(minute=27, hour=3),
    },
    "notifications-retention": {
        "task": "core.tasks.purge_notifications",
        "schedule": crontab(minute=37, hour=3),
    },
    "ppms-retention": {
        "task": "ppms.tasks.purge_ppms_incidents",
        "schedule": crontab(minute=47, hour=3),
    },
    # Hourly roll-ups: the hours closed since the last run, and the dirty (late) hours.
    "readings-rollups": {"task": "sensors.tasks.rollup_recent_hours", "schedule": 300.0},
}

# --- MQTT -----------------------------------------------------------------------------
# Unset: the embedded broker started by `manage.py run_embedded` on this port.
MQTT_URL = env("MQTT_URL", f"mqtt://127.0.0.1:{env_int('CSU_EMBEDDED_MQTT_PORT', 1884)}")
MQTT_EMBEDDED = not env("MQTT_URL")
# MQTT 5 on real brokers, 3.1.1 on the embedded amqtt (which speaks only that); "5" or
# "3.1.1" to choose.
MQTT_PROTOCOL = env("MQTT_PROTOCOL")
# Ingest workers sharing the load: they subscribe to $share/<group>/csu/+/readings.
MQTT_SHARED_GROUP = env("MQTT_SHARED_GROUP")
# An ingest worker's client id (default: a stable slot id, sensors/ingest/slots.py).
MQTT_CLIENT_ID = env("MQTT_CLIENT_ID")
# The passwords of the CSU's own broker users, hashed into Mosquitto's password file by
# `manage.py mosquitto_auth` (csu-ingest, csu-simulator).
MQTT_INGEST_PASSWORD = env("MQTT_INGEST_PASSWORD")
MQTT_SIMULATOR_PASSWORD = env("MQTT_SIMULATOR_PASSWORD")

# Readings per second each device may send on average (0: no limit), and how many it may
# send at once; beyond, its messages are rejected as rate_limited (sensors/ingest/rates.py).
# Far above a town's sensors (a message a minute, a few a second at most) and the benches
# (bench/ingest.py: ~400 readings/s per station at 20,000 readings/s over 50 stations); the
# burst lets a device resend a backlog at once: 10 s of its rate, 20 payloads of 1,000.
INGEST_DEVICE_RATE = env_int("INGEST_DEVICE_RATE", 2000)
INGEST_DEVICE_BURST = env_int("INGEST_DEVICE_BURST", 20_000, minimum=1)

# --- Readings -------------------------------------------------------------------------
READINGS_RETENTION_DAYS = env_int("READINGS_RETENTION_DAYS", 30, minimum=1)
# Hourly roll-ups outlive the readings they summarise (never shorter: they serve history).
ROLLUP_RETENTION_DAYS = env_int("ROLLUP_RETENTION_DAYS", 400, minimum=READINGS_RETENTION_DAYS)
READINGS_PARTITIONS_AHEAD_DAYS = env_int("READINGS_PARTITIONS_AHEAD_DAYS", 7, minimum=1)
# The audit trail of users' actions (the CNIL asks for an audit log with a set retention).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=1)
# Notifications sent, with their webhook deliveries (the alerts' and activations' own
# timelines are kept: this is the log of what went out).
NOTIFICATION_RETENTION_DAYS = env_int("NOTIFICATION_RETENTION_DAYS", 90, minimum=1)
REJECTED_MESSAGES_RETENTION_DAYS = env_int("REJECTED_MESSAGES_RETENTION_DAYS", 30, minimum=1)
# The CSU's own phone number, shown to the directors during an activation.
CSU_PHONE = env("CSU_PHONE", "")
if CSU_PHONE and not re.fullmatch(r"\+?[0-9][0-9 .]{2,19}", CSU_PHONE):
    raise ImproperlyConfigured(f"CSU_PHONE={CSU_PHONE!r}: a phone number, e.g. 02 47 00 00 00.")
# PPMS incidents (activations ended, their schools' statuses and reports, their timeline,
# the proposals decided) kept this long for the reports' figures; their free text (where
# a school sheltered, its needs, messages, reasons) is blanked sooner.
PPMS_RETENTION_DAYS = env_int("PPMS_RETENTION_DAYS", 5 * 365, minimum=1)
PPMS_TEXT_RETENTION_DAYS = env_int("PPMS_TEXT_RETENTION_DAYS", 365, minimum=1)
# Alerts of one rule family in one zone, each opened within this many minutes of the
# previous one, make one incident (alerts/incidents.py, docs/rules.md).
CSU_INCIDENT_WINDOW_MINUTES = env_int("CSU_INCIDENT_WINDOW_MINUTES", 120, minimum=1)
# Safety services e-mailed when schools stay silent (comma-separated addresses).
PPMS_SAFETY_EMAILS = env_list("PPMS_SAFETY_EMAILS", [])
# A sensor silent for this many expected intervals is marked offline.
SENSOR_OFFLINE_INTERVALS = env_int("SENSOR_OFFLINE_INTERVALS", 3, minimum=1)

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses, unchecked, an attempt that must wait (core/signin_throttle.py).
    "core.signin_throttle.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed sign-ins: a delay that grows, per address, per username and per known browser.
SIGNIN_FREE_FAILURES = env_int("SIGNIN_FREE_FAILURES", 5, minimum=1)
SIGNIN_FREE_FAILURES_PER_ADDRESS = env_int("SIGNIN_FREE_FAILURES_PER_ADDRESS", 20, minimum=1)
SIGNIN_FIRST_DELAY_S = env_int("SIGNIN_FIRST_DELAY_S", 30, minimum=1)
SIGNIN_MAX_DELAY_S = env_int("SIGNIN_MAX_DELAY_S", 15 * 60, minimum=1)
SIGNIN_MEMORY_S = env_int("SIGNIN_MEMORY_S", 24 * 3600, minimum=60)
# Two-factor sign-in (core/twofactor.py): admins, operators and authorities must have an
# authenticator app; directors may. Off only for a demo without phones: never in
# production (a user who has an app is still asked for its code).
CSU_SECOND_FACTOR_REQUIRED = env_bool("CSU_SECOND_FACTOR_REQUIRED", True)
# The name an authenticator app shows beside the code.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "CSU")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
# Days an API token lasts (core.models.ApiToken); a new one is issued to replace it.
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90, minimum=1)

# Rate limits of the API per signed-in user (core/throttling.py): writes, and exports.
# Far above what a person does (an operator's busiest minute in a crisis: a click a
# second), far below a runaway script.
API_WRITE_RATE = env_rate("API_WRITE_RATE", "120/min")
API_EXPORT_RATE = env_rate("API_EXPORT_RATE", "30/min")
# An export of more rows is refused (413, naming the limit): a spreadsheet holds about
# a million.
EXPORT_MAX_ROWS = env_int("EXPORT_MAX_ROWS", 500_000, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes anonymous calls 401, not 403.
        "core.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: DRF's browsable API answered text/html with a 500 on every filtered list
    # (its filter form's template is django-filter's, not installed); /api/docs/ documents.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.JSONParser",  # a 400 for JSON nested too deep
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # drf-spectacular's, DRF's limit/offset and exception handler, each answering bad
    # input with a JSON 400 and documenting the 400/401/403/404 every view may answer.
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.api.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["core.filters.ListFilterBackend"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "PAGE_SIZE": 100,
    # Exports name their own (core.throttling.ExportRateThrottle).
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"write": API_WRITE_RATE, "export": API_EXPORT_RATE},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CSU API",
    "DESCRIPTION": "Centre de supervision urbaine: sensors, readings, alerts and PPMS.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # A request's body and an answer's are separate components (``XRequest``, ``X``): a
    # reference is an id in one and its reference object in the other.
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["core.api.NotForDirectors"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice fields of the same name in several apps need their enums named.
    "ENUM_NAME_OVERRIDES": {
        "SensorKindEnum": "sensors.metrics.Kind",
        "SensorStateEnum": "sensors.models.Sensor.State",
        "AlertStateEnum": "alerts.models.AlertState",
        "RuleKindEnum": "alerts.models.RuleKind",
        "AlertEventKindEnum": "alerts.models.EventKind",
        "PpmsScenarioEnum": "ppms.models.Scenario",
        "ZoneTypeEnum": "sensors.models.Zone.Type",
        "SchoolStateEnum": "ppms.models.SchoolState",
        "ReportedStateEnum": "ppms.serializers.REPORTED_STATES",
        "ActivationSourceEnum": "ppms.models.Source",
        "DrillKindEnum": "ppms.models.DrillKind",
    },
}

# --- i18n: French first ---------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Leaflet's JS, CSS and images as shipped by django-leaflet, served as /static/leaflet/…
# (its directory only: as an app, its admin module would want GeoDjango's GDAL).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    Path(importlib.util.find_spec("leaflet").origin).parent / "static",
]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("CSU_MANIFEST_STATIC", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve static files straight from the apps (no collectstatic): DEBUG, and the browser tests.
WHITENOISE_USE_FINDERS = DEBUG or env_bool("CSU_STATIC_FROM_FINDERS", False)

# The dashboard's map (Leaflet, dashboard/tiles.py): its base map, a slippy-map tile URL
# with {z}, {x} and {y}, and the attribution shown on it. Default: the IGN's public
# "Plan IGN" layer; a town's own tile server instead; empty: the map drawn from the
# coordinates only, the fallback also shown while the tile server does not answer.
PLAN_IGN_TILES = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM"
    "&FORMAT=image/png&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)
CSU_MAP_TILES = env("CSU_MAP_TILES", PLAN_IGN_TILES).strip()
# The attribution: the IGN's for its Plan IGN; none by default for another tile server.
CSU_MAP_ATTRIBUTION = env(
    "CSU_MAP_ATTRIBUTION", "© IGN – Plan IGN" if CSU_MAP_TILES == PLAN_IGN_TILES else ""
).strip()
MAP_TILES_ORIGIN = None
if CSU_MAP_TILES:
    _tiles = urlsplit(CSU_MAP_TILES)
    _missing = [part for part in ("{z}", "{x}", "{y}") if part not in CSU_MAP_TILES]
    if _tiles.scheme not in ("http", "https") or not _tiles.hostname or _missing:
        raise ImproperlyConfigured(
            f"CSU_MAP_TILES={CSU_MAP_TILES!r}: an http(s) tile URL with {{z}}, {{x}} and {{y}}"
            + (f" (missing: {', '.join(_missing)})" if _missing else "")
            + ", e.g. https://tuiles.ville.fr/{z}/{x}/{y}.png; empty for no base map."
        )
    MAP_TILES_ORIGIN = f"{_tiles.scheme}://{_tiles.netloc}"

# --- Security (production values unless DEBUG) ----------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
HTTPS = env_bool("CSU_HTTPS", PRODUCTION)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Our pages run only our own files: no inline script, no other origin (Plotly is vendored).
# Inline styles stay allowed: Plotly and the map set element styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        # The map's tile server, when there is one (CSU_MAP_TILES), and nothing else.
        "img-src": [SELF, "data:", "blob:", *([MAP_TILES_ORIGIN] if MAP_TILES_ORIGIN else [])],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF],
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", [])

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "csu@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "amqtt": {"level": "WARNING"},
        "transitions": {"level": "WARNING"},
        # One line per task is noise at 5 batches a second; failures still show.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# The address operators open the CSU at (links in e-mails, CAP documents).
CSU_PUBLIC_URL = env("CSU_PUBLIC_URL", "http://localhost:8000")
# Web Push (core/webpush.py): the VAPID key pair (`manage.py webpush_keys` makes one;
# `dev.py start` keeps one in CSU_DATA_DIR) and the contact push services may write to.
WEBPUSH_VAPID_PRIVATE_KEY = env("WEBPUSH_VAPID_PRIVATE_KEY")
WEBPUSH_VAPID_PUBLIC_KEY = env("WEBPUSH_VAPID_PUBLIC_KEY")
WEBPUSH_CONTACT = env("WEBPUSH_CONTACT", "mailto:csu@localhost")
# The push services a device may subscribe with (the browsers' own): the CSU posts to the
# address a subscription names, so it must be one of these (and HTTPS but on loopback).
WEBPUSH_HOSTS = env_list(
    "WEBPUSH_HOSTS",
    [
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    ],
)
# Text messages (core/texting.py, django-sms): the backend that sends them (django-sms's
# console backend prints them), the sender's name, the HTTP gateway's address and its
# bearer token, both ways (the gateway's delivery receipts carry it).
SMS_BACKEND = env("SMS_BACKEND", "sms.backends.console.SmsBackend")
DEFAULT_FROM_SMS = env("SMS_SENDER", "CSU")
SMS_GATEWAY_URL = env("SMS_GATEWAY_URL")
SMS_GATEWAY_TOKEN = env("SMS_GATEWAY_TOKEN")
# The sender of the CAP messages (default csu@<first ALLOWED_HOSTS entry>).
CSU_CAP_SENDER = env("CSU_CAP_SENDER")
# How long an ended alert or activation stays in the CAP feed, with its last message
# (AllClear or Cancel), so aggregators that poll hear of the end before the item leaves.
CAP_FEED_KEEP_HOURS = env_int("CAP_FEED_KEEP_HOURS", 24, minimum=1)
HEALTHZ_TIMEOUT_S = 2.0
# How long a process keeps the sensors and rules it read (core/cache.py): a change made
# elsewhere (the admin in the web process) reaches ingest and the workers within it.
CONFIG_CACHE_S = env_int("CONFIG_CACHE_S", 10, minimum=0)
# Bearer token of the Prometheus server scraping /metrics (staff sessions may read it too).
METRICS_TOKEN = env("METRICS_TOKEN")
