import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

# Under ASGI, Django runs each request's ORM work in a thread of its own: a connection
# kept for reuse (CONN_MAX_AGE) outlives that thread, is never reused nor closed, and a
# few dozen concurrent requests exhaust PostgreSQL. The web process closes each request's
# connection, or, with WEB_DB_POOL_SIZE set (docker-compose does), returns it to a pool
# of that size: bounded per process and reused, so a reconnect storm of 500 pages waits
# its turn instead of exhausting the server. Ingest and Celery keep theirs.
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
