"""The one way to push events to browsers: a typed message sent to a channel-layer group.

Groups: ``commune-<id>`` reaches the operators of a commune (and métropole operators,
who join every commune's group). Messages follow CONTRACT.md section 3.
"""

import asyncio
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

MESSAGE_TYPE = "live.message"  # handled by LiveConsumer.live_message


class ReadingItem(TypedDict):
    sensor: str
    metric: str
    ts: str
    value: float


class ReadingsEvent(TypedDict):
    type: Literal["readings"]
    items: list[ReadingItem]


class SensorEvent(TypedDict):
    type: Literal["sensor"]
    event: Literal["online", "offline"]
    sensor: str


def commune_group(commune_id: int) -> str:
    return f"commune-{commune_id}"


def school_group(school_id: int) -> str:
    """The directors of one school."""
    return f"school-{school_id}"


def directors_group(commune_id: int) -> str:
    """Every director of a school of the commune; each page keeps only its schools' events.

    An activation concerning hundreds of schools is then a few sends, not hundreds.
    """
    return f"directors-{commune_id}"


# The embedded runner serves websockets and ingests in one process: the in-memory
# layer lives on the server's loop, so sends from other threads are scheduled there.
_server_loop: asyncio.AbstractEventLoop | None = None


def bind_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    global _server_loop
    _server_loop = loop


def send(
    group: str,
    payload: dict,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    only_schools: list[int] | None = None,
) -> None:
    """Send ``payload`` to every browser in ``group``; safe from any sync thread.

    ``loop``: an event loop owned by the calling thread, kept across sends so the
    channel layer's connections are reused.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": MESSAGE_TYPE, "payload": payload}
    if only_schools is not None:
        message["only_schools"] = only_schools
    if _server_loop is not None and _server_loop.is_running():
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _server_loop)
    elif loop is not None:
        loop.run_until_complete(layer.group_send(group, message))
    else:
        async_to_sync(layer.group_send)(group, message)
