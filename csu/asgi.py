import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")
# Before Django reads its settings: this is a web process (its database connections are
# per request, or pooled: csu/settings.py).
os.environ.setdefault("CSU_WEB_PROCESS", "true")

from django.core.asgi import get_asgi_application

# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from core.heap import freeze_loaded_heap  # noqa: E402
from core.websocket import LiveSocketGate  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

freeze_loaded_heap()  # core/heap.py

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": LiveSocketGate(URLRouter(websocket_urlpatterns)),
    }
)
