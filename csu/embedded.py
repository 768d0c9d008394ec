"""Run the whole CSU in one process, with no service installed.

The embedded default: uvicorn serves the ASGI app, an amqtt broker listens on
``MQTT_URL``'s port. Everything shares one asyncio loop, so the in-memory channel
layer reaches every websocket. Later parts (ingest worker, simulator, Celery beat)
attach here.
"""

import logging
from urllib.parse import urlsplit

import uvicorn
from django.conf import settings

log = logging.getLogger(__name__)


def broker_config(port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            # Anonymous sessions lose their persistent state at once (NOTES.md): every
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


async def serve(*, host: str, port: int) -> None:
    broker = await start_broker() if settings.MQTT_EMBEDDED else None
    config = uvicorn.Config(
        "csu.asgi:application", host=host, port=port, lifespan="off", log_level="info"
    )
    server = uvicorn.Server(config)  # it handles SIGINT and SIGTERM itself
    print(f"\nCSU is running: open http://{host}:{port}/ (Ctrl+C to stop)\n", flush=True)
    try:
        await server.serve()
    finally:
        if broker is not None:
            await broker.shutdown()
