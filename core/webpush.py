"""Web Push to the devices of users: the W3C Push API with VAPID (RFC 8030, 8291, 8292),
through pywebpush, which encrypts each message for its device.

A device subscribes from a page (the director's, installed on a phone): its push
service's address and keys are a ``PushSubscription``. The outbox (``core/outbox.py``)
writes a ``DevicePush`` per device for each notification that asks for it, and Celery
tasks send them in batches (``BATCH``, concurrent requests over one HTTP session), the
ones a push service did not take retried; a device its service says is gone (404, 410)
is unsubscribed. No key set (``WEBPUSH_VAPID_*``): no push.
"""

import asyncio
import json
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from py_vapid import Vapid, b64urlencode

from .bulk import save_fields
from .models import DevicePush, PushSubscription
from .signals import delivery_changed

TIMEOUT_S = 10
# Pushes one task sends (an activation's are split in such batches), and how many of
# them are in flight at once: as many connections to a push service, each kept for the
# next push (bench/ppms_fanout.py: 50 at once, one connection per push, was slower).
BATCH = 50
CONCURRENCY = 10
# What a push service keeps a message for a device that is off: a PPMS is urgent or moot.
TTL_S = 3600
GONE = (404, 410)


def enabled() -> bool:
    return bool(settings.WEBPUSH_VAPID_PRIVATE_KEY and settings.WEBPUSH_VAPID_PUBLIC_KEY)


def new_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key, public key), base64url, as the settings take."""
    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64urlencode(private), b64urlencode(public)


def body(push: DevicePush) -> str:
    """What the device receives: the payload, and what its service worker acknowledges
    receipt with (the push's id and token)."""
    receipt = {"id": push.pk, "token": push.token}
    return json.dumps(push.payload | {"receipt": receipt}, ensure_ascii=False)


def attempt(push_ids: list[int], *, final: bool) -> dict[int, str]:
    """Push each of ``push_ids`` once, all at once (one HTTP session, concurrent requests:
    an activation pushes to every director's phone); return each one's outcome:
    "delivered", "retry", "failed" (after the last try) or "gone"."""
    pushes = list(
        DevicePush.objects.select_related("subscription").filter(
            pk__in=push_ids, status=DevicePush.Status.PENDING
        )
    )
    outcomes = dict.fromkeys(push_ids, "gone")  # not pending any more: nothing to do
    sendable = []
    for push in pushes:
        if push.subscription is None or not enabled():
            push.status = (
                DevicePush.Status.GONE if push.subscription is None else DevicePush.Status.FAILED
            )
            push.last_error = "" if push.subscription is None else "Web Push is not configured"
        else:
            sendable.append(push)
    errors = asyncio.run(_send_all(sendable)) if sendable else {}
    now = timezone.now()
    gone_subscriptions = []
    for push in sendable:
        push.attempts += 1
        status_code, error = errors.get(push.pk, (None, ""))
        if not error:
            push.status, push.delivered_at, push.last_error = DevicePush.Status.DELIVERED, now, ""
            outcomes[push.pk] = "delivered"
            continue
        push.last_error = error[:500]
        if status_code in GONE:
            gone_subscriptions.append(push.subscription_id)
            push.status, outcomes[push.pk] = DevicePush.Status.GONE, "gone"
        elif final:
            push.status, outcomes[push.pk] = DevicePush.Status.FAILED, "failed"
        else:
            outcomes[push.pk] = "retry"
    with transaction.atomic():
        save_fields(pushes, ["status", "attempts", "last_error", "delivered_at"])
        delivered = [push.subscription_id for push in sendable if outcomes[push.pk] == "delivered"]
        PushSubscription.objects.filter(pk__in=delivered).update(last_pushed_at=now)
        # Their pushes lose the subscription (SET_NULL): the device is gone.
        PushSubscription.objects.filter(pk__in=gone_subscriptions).delete()
    changed = sorted({push.about for push in pushes if outcomes[push.pk] != "retry"})
    if changed:
        delivery_changed.send(sender=DevicePush, abouts=changed)
    return outcomes


async def _send_all(pushes: list[DevicePush]) -> dict[int, tuple[int | None, str]]:
    """Send the pushes concurrently; return (HTTP status, error) of each that failed."""
    # Imported here, by the processes that push: every process loads this module (the
    # outbox), and aiohttp with pywebpush added 5.4 MB to each, ingest's (≤ 150 MB) too.
    import aiohttp
    from pywebpush import WebPushException, webpush_async

    vapid = Vapid.from_string(private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY)
    signed: dict[str, dict] = {}  # a VAPID token per push service, valid 12 h (RFC 8292)
    gate = asyncio.Semaphore(CONCURRENCY)
    errors: dict[int, tuple[int | None, str]] = {}

    def vapid_headers(endpoint: str) -> dict:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        if audience not in signed:
            claims = {"sub": settings.WEBPUSH_CONTACT, "aud": audience}
            claims["exp"] = int(time.time()) + 12 * 3600
            signed[audience] = vapid.sign(claims)
        return signed[audience]

    async def send(session, push):
        info = push.subscription.subscription_info()
        async with gate:
            try:
                await webpush_async(
                    info,
                    data=body(push),
                    ttl=TTL_S,
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                    headers={"Urgency": "high", **vapid_headers(info["endpoint"])},
                    aiohttp_session=session,
                )
            except WebPushException as exc:
                errors[push.pk] = (exc.status_code, str(exc))
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # ValueError: bad keys
                errors[push.pk] = (None, f"{type(exc).__name__}: {exc}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(send(session, push) for push in pushes))
    return errors
