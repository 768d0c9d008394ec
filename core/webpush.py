"""Web Push to the devices of users: the W3C Push API with VAPID (RFC 8030, 8291, 8292),
through pywebpush, which encrypts each message for its device.

A device subscribes from a page (the director's, installed on a phone): its push
service's address and keys are a ``PushSubscription``. The outbox (``core/outbox.py``)
writes a ``DevicePush`` per device for each notification that asks for it, and a Celery
task sends each, retried when the push service does not answer; a device its service
says is gone (404, 410) is unsubscribed. No key set (``WEBPUSH_VAPID_*``): no push.
"""

import json

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid, b64urlencode
from pywebpush import WebPushException, webpush

from .models import DevicePush
from .signals import delivery_changed

TIMEOUT_S = 10
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


def attempt(push_id: int, *, final: bool) -> str:
    """Push once; return "delivered", "retry", "failed" (after the last try) or "gone"."""
    push = DevicePush.objects.select_related("subscription").filter(pk=push_id).first()
    if push is None or push.status != DevicePush.Status.PENDING:
        return "gone"
    subscription = push.subscription
    if subscription is None or not enabled():
        push.status = DevicePush.Status.GONE if subscription is None else DevicePush.Status.FAILED
        push.last_error = "" if subscription is None else "Web Push is not configured"
        push.save(update_fields=["status", "last_error"])
        delivery_changed.send(sender=DevicePush, about=push.about)
        return "gone"
    push.attempts += 1
    outcome = "delivered"
    try:
        webpush(
            subscription.subscription_info(),
            data=body(push),
            vapid_private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY,
            vapid_claims={"sub": settings.WEBPUSH_CONTACT},
            ttl=TTL_S,
            timeout=TIMEOUT_S,
            headers={"Urgency": "high"},
        )
    except WebPushException as exc:
        push.last_error = str(exc)[:500]
        if exc.status_code in GONE:
            subscription.delete()
            push.subscription = None
            push.status, outcome = DevicePush.Status.GONE, "gone"
        else:
            outcome = "failed" if final else "retry"
    except requests.RequestException as exc:
        push.last_error = str(exc)[:500]
        outcome = "failed" if final else "retry"
    if outcome == "delivered":
        now = timezone.now()
        push.status, push.delivered_at, push.last_error = DevicePush.Status.DELIVERED, now, ""
        type(subscription).objects.filter(pk=subscription.pk).update(last_pushed_at=now)
    elif outcome == "failed":
        push.status = DevicePush.Status.FAILED
    push.save()
    if outcome != "retry":
        delivery_changed.send(sender=DevicePush, about=push.about)
    return outcome
