"""The Redis channel layer as configured holds its websockets under load.

redis-py 8 gives every connection a 5 s socket timeout and every pool 100 connections
at most. The layer waits for messages with 5 s blocking pops, and a web worker's
consumers all join and leave their groups at once when browsers reconnect together.
"""

import asyncio
import uuid

import pytest
from django.conf import settings

pytestmark = pytest.mark.redis

BROWSERS = 500  # one web worker's share of a town's pages, reconnecting together


def redis_layer():
    from channels_redis.core import RedisChannelLayer

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    return RedisChannelLayer(**{**config, "prefix": f"test-layer-{uuid.uuid4().hex[:8]}"})


def test_a_quiet_channel_waits_out_a_blocking_pop_longer_than_five_seconds():
    async def pop_nothing():
        layer = redis_layer()
        try:
            # A pop the server answers late, as a busy Redis or web worker makes the
            # layer's own 5 s pops: the read must not give up first and kill the
            # consumer, and with it its browser's websocket.
            return await layer.connection(0).bzpopmin(
                f"{layer.prefix}quiet", timeout=layer.brpop_timeout + 1
            )
        finally:
            await layer.close_pools()

    assert asyncio.run(pop_nothing()) is None


def test_a_burst_of_browsers_joining_and_leaving_at_once_gets_its_redis_connections():
    async def join_and_leave():
        layer = redis_layer()
        channels = [f"{layer.prefix}specific.{n}" for n in range(BROWSERS)]
        try:
            await asyncio.gather(*(layer.group_add("commune-1", name) for name in channels))
            await asyncio.gather(*(layer.group_discard("commune-1", name) for name in channels))
        finally:
            await layer.flush()
            await layer.close_pools()

    asyncio.run(join_and_leave())
