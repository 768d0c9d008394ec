import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from core import twofactor
from core.access import signed_in_user
from core.api_tokens import token_user
from core.live import (
    MESSAGE_TYPE,
    commune_group,
    directors_group,
    school_group,
    session_hash,
    user_group,
)
from core.websocket import (
    CLOSE_FORBIDDEN,
    CLOSE_SECOND_FACTOR_MISSING,
    CLOSE_UNAUTHENTICATED,
    TOKEN_PROTOCOL,
)
from ppms.models import School
from sensors.models import Commune

# The close codes are core/websocket.py's (docs/websocket.md); on an open socket, 4403
# says that what the user may see changed.
CLOSE_ACCESS_CHANGED = CLOSE_FORBIDDEN
__all__ = [
    "CLOSE_ACCESS_CHANGED",
    "CLOSE_FORBIDDEN",
    "CLOSE_SECOND_FACTOR_MISSING",
    "CLOSE_UNAUTHENTICATED",
    "LiveConsumer",
]


@database_sync_to_async
def lacks_second_factor(user, session) -> bool:
    verified = twofactor.session_device(user, session) is not None
    return twofactor.missing_step(user, verified=verified) is not None


@database_sync_to_async
def groups_for(user) -> tuple[list[str], set[int]]:
    """Operators hear their communes; directors the schools they direct."""
    communes = Commune.objects.visible_to(user).values_list("pk", flat=True)
    schools = list(School.objects.filter(directors=user).values_list("pk", "commune_id"))
    return (
        [commune_group(pk) for pk in communes]
        + [school_group(pk) for pk, _ in schools]
        + sorted({directors_group(commune) for _, commune in schools})
    ), {pk for pk, _ in schools}


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Push live readings, alerts and PPMS events to the browsers and programs that may
    see them (who may connect: core/websocket.py).

    Each socket also joins its user's group, where core/access.py tells it that what the
    user may see changed, or that a token was revoked: it then checks again (its token,
    or its session), and closes if it must.
    """

    async def connect(self):
        user = self.scope.get("user")
        # Set by core.websocket.LiveSocketGate for a program; a browser has a session.
        self.by_token = "api_token_id" in self.scope
        self.token_id = self.scope.get("api_token_id")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        # A token is the second factor's equal: only an admin-issued secret opens it.
        if not self.by_token and await lacks_second_factor(user, self.scope["session"]):
            await self.refuse(CLOSE_SECOND_FACTOR_MISSING)
            return
        self.user_id = user.pk
        self.session_key = None if self.by_token else self.scope["session"].session_key
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        self.groups_joined, self.school_ids = await groups_for(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        if self.by_token:  # an expired token is refused: so is its open socket
            left = (self.scope["api_token_expires"] - timezone.now()).total_seconds()
            self.expiry = asyncio.get_running_loop().call_later(
                max(left, 0), lambda: asyncio.ensure_future(self.close(code=CLOSE_UNAUTHENTICATED))
            )
        offered = self.scope.get("subprotocols") or ()
        await self.accept(TOKEN_PROTOCOL if self.by_token and TOKEN_PROTOCOL in offered else None)

    async def close(self, code=None, reason=None):
        if hasattr(self, "expiry"):  # closed once: the expiry must not close it again
            self.expiry.cancel()
        await super().close(code=code, reason=reason)

    async def refuse(self, code: int):
        """Close with ``code`` after the handshake: a refused one is a bare HTTP 403."""
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code):
        if hasattr(self, "expiry"):
            self.expiry.cancel()
        if hasattr(self, "user_id"):
            await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message):
        # Channels closes the thread's stale database connections before every handler: a
        # hop to the one thread of the process's sync work, taken in turn. A live event
        # touches no database, and an activation sends one to thousands of pages at once
        # (bench/ppms_fanout.py: that queue was the largest part of its fan-out).
        if message["type"] == MESSAGE_TYPE:
            await self.live_message(message)
        else:
            await super().dispatch(message)

    async def live_message(self, message):
        only = message.get("only_schools")
        if only is not None and not self.school_ids.intersection(only):
            return  # an event for other schools of the commune
        await self.send_json(message["payload"])

    async def access_changed(self, message):
        ended = message.get("ended_session")
        if ended is not None:  # a session of the user signed out: this one?
            if self.session_key and ended == session_hash(self.session_key):
                await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if self.by_token:  # revoked, expired, or its user deactivated?
            user = await database_sync_to_async(token_user)(self.token_id)
        else:
            user = await database_sync_to_async(signed_in_user)(self.user_id, self.scope["session"])
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not self.by_token and await lacks_second_factor(user, self.scope["session"]):
            # an admin reset it
            await self.close(code=CLOSE_SECOND_FACTOR_MISSING)
            return
        groups, school_ids = await groups_for(user)
        if set(groups) != set(self.groups_joined) or school_ids != self.school_ids:
            await self.close(code=CLOSE_ACCESS_CHANGED)
