from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core import twofactor
from core.access import signed_in_user
from core.live import (
    MESSAGE_TYPE,
    commune_group,
    directors_group,
    school_group,
    session_hash,
    user_group,
)
from ppms.models import School
from sensors.models import Commune

# Close code for an anonymous connection, and for a socket whose session ended (signed
# out, a new password, the account deactivated): the pages send it to the login page.
CLOSE_UNAUTHENTICATED = 4401
# What the user may see changed (a commune, a school, a role): the page reconnects, joins
# what the user may see now, and fetches again.
CLOSE_ACCESS_CHANGED = 4403
# Signed in with a password alone by a user who must type their code or set up an app.
CLOSE_SECOND_FACTOR_MISSING = 4428


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
    """Push live readings, alerts and PPMS events to the browsers that may see them.

    Each socket also joins its user's group, where core/access.py tells it that what the
    user may see changed: it then checks again, and closes if it must.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if await lacks_second_factor(user, self.scope["session"]):
            await self.close(code=CLOSE_SECOND_FACTOR_MISSING)
            return
        self.user_id = user.pk
        self.session_key = self.scope["session"].session_key
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        self.groups_joined, self.school_ids = await groups_for(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
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
        user = await database_sync_to_async(signed_in_user)(self.user_id, self.scope["session"])
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if await lacks_second_factor(user, self.scope["session"]):  # an admin reset it
            await self.close(code=CLOSE_SECOND_FACTOR_MISSING)
            return
        groups, school_ids = await groups_for(user)
        if set(groups) != set(self.groups_joined) or school_ids != self.school_ids:
            await self.close(code=CLOSE_ACCESS_CHANGED)
