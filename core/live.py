"""The one way to push events to browsers: a typed message sent to a channel-layer group.

Groups: ``commune-<id>`` reaches the operators of a commune (and métropole operators,
who join every commune's group); ``school-<id>`` the directors of a school;
``directors-<commune id>`` every director of the commune's schools; ``user-<id>`` every
socket of one user, told when what they may see changed (``send_access_changed``). Every
message is one of the typed dicts below. Events of the alerts and the PPMS reach this
module through the outbox (``core/outbox.py``, after their transaction commits);
readings through ``sensors/live.py``, which coalesces them.
"""

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

MESSAGE_TYPE = "live.message"  # handled by LiveConsumer.live_message
ACCESS_TYPE = "access.changed"  # handled by LiveConsumer.access_changed


class ReadingItem(TypedDict):
    sensor: str
    metric: str
    ts: str
    value: float


class ReadingsEvent(TypedDict):
    """The latest values of some sensors (at most one per sensor and metric a second)."""

    type: Literal["readings"]
    items: list[ReadingItem]


class SensorEvent(TypedDict):
    """A sensor went online or offline."""

    type: Literal["sensor"]
    event: Literal["online", "offline"]
    sensor: str


class AlertEvent(TypedDict):
    """A line of an alert's timeline, with the alert as it is after it.

    ``alert`` is the API's representation of an alert plus ``muted`` (a silenced sensor or
    rule: shown, but no sound); ``timeline_event`` the line (id, at, kind, user, text,
    value).
    """

    type: Literal["alert"]
    event: Literal["opened", "acknowledged", "resolved", "updated"]
    alert: dict
    timeline_event: dict


class IncidentEvent(TypedDict):
    """An incident (alerts sharing a cause, alerts/incidents.py) opened, changed or
    resolved with one of its alerts, or was merged into another.

    ``incident`` is the API's representation of an incident (with its ``alerts``) plus
    ``muted``; ``merged_into``: the incident that took its alerts (event "merged").
    """

    type: Literal["incident"]
    event: Literal["opened", "updated", "resolved", "merged"]
    incident: dict
    merged_into: NotRequired[int]


class PpmsEvent(TypedDict):
    """A PPMS activation started, grew, or ended, or a school's status changed.

    ``activation``: id, scenario, title, source, drill, silent, started_at, ended_at;
    ``status``: the school's status (uai, state, posture, counts…) when the event is
    about one school, else None; ``reach``: who was told how at that school (page seen,
    push, SMS, first sign of life), for the events about it ("seen", "reach", "call");
    "updated": the activation's Vigicrues colour, or its centre d'accueil's record, changed.
    """

    type: Literal["ppms"]
    event: Literal[
        "activated",
        "status",
        "escalated",
        "call",
        "seen",
        "reach",
        "ended",
        "cancelled",
        "updated",
    ]
    activation: dict
    status: dict | None
    reach: NotRequired[dict]


class ProposalEvent(TypedDict):
    """A rule proposes the PPMS (proposition de déclenchement), or its proposal was decided.

    ``proposal``: id, scenario, title, state, rule, created_at, auto_activate_at,
    decided_at, decided_by, reason, activation (its id once validated), silent, alerts
    (id, title, sensor, metric, last_value, last_value_at) and schools (school,
    school_name, commune).
    """

    type: Literal["proposal"]
    event: Literal["proposed", "validated", "dismissed", "cancelled"]
    proposal: dict


class ShelterEvent(TypedDict):
    """A shelter (centre d'accueil) opened, closed, or its occupancy changed."""

    type: Literal["ppms"]
    event: Literal["shelter"]
    shelter: dict


LiveMessage = (
    ReadingsEvent
    | SensorEvent
    | AlertEvent
    | IncidentEvent
    | PpmsEvent
    | ProposalEvent
    | ShelterEvent
)


class AccessChanged(TypedDict):
    """What a user may see changed (core/access.py): each socket checks again, and closes
    if it must. ``ended_session``: the hash of the session key just signed out
    (``session_hash``), whose sockets close at once."""

    type: Literal["access.changed"]
    ended_session: NotRequired[str]


def session_hash(session_key: str) -> str:
    """A signed-out session's name on the channel layer: not the key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()


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


def user_group(user_id: int) -> str:
    """Every socket of one user."""
    return f"user-{user_id}"


# The embedded runner serves websockets and ingests in one process: the in-memory
# layer lives on the server's loop, so sends from other threads are scheduled there.
_server_loop: asyncio.AbstractEventLoop | None = None


def bind_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    global _server_loop
    _server_loop = loop


def send(
    group: str,
    payload: LiveMessage,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    only_schools: list[int] | None = None,
) -> None:
    """Send ``payload`` to every browser in ``group``; safe from any sync thread.

    ``loop``: an event loop owned by the calling thread, kept across sends so the
    channel layer's connections are reused.
    """
    send_many([(group, payload, only_schools)], loop=loop)


def send_many(
    items: list[tuple[str, LiveMessage, list[int] | None]],
    *,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Send each ``(group, payload, only_schools)`` of ``items``, in order, in one hop to
    the channel layer: an activation is dozens of groups, and each hop from a thread
    without a loop of its own opens the layer's connections anew."""
    messages = []
    for group, payload, only_schools in items:
        message = {"type": MESSAGE_TYPE, "payload": payload}
        if only_schools is not None:
            message["only_schools"] = only_schools
        messages.append((group, message))
    _group_send(messages, loop=loop)


def send_access_changed(user_ids, *, ended_session: str | None = None) -> None:
    """Tell every socket of ``user_ids`` that what they may see changed."""
    message: AccessChanged = {"type": ACCESS_TYPE}
    if ended_session is not None:
        message["ended_session"] = ended_session
    _group_send([(user_group(user_id), message) for user_id in sorted(set(user_ids))])


def _group_send(messages: list[tuple[str, dict]], *, loop=None) -> None:
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        for group, message in messages:
            await layer.group_send(group, message)

    if _server_loop is not None and _server_loop.is_running():
        asyncio.run_coroutine_threadsafe(send_all(), _server_loop)
    elif loop is not None:
        loop.run_until_complete(send_all())
    elif _loop_running_here():
        # Sync code called in a thread whose own event loop runs (a sync API that drives
        # one, as Playwright's does): async_to_sync refuses that thread, so use another.
        with ThreadPoolExecutor(max_workers=1) as other:
            other.submit(async_to_sync(send_all)).result()
    else:
        async_to_sync(send_all)()


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
