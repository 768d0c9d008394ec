"""Signed JSON webhooks: police, pompiers and prefecture systems get alert and PPMS events.

Each delivery POSTs the JSON payload signed per Standard Webhooks (standardwebhooks.com):
``webhook-id`` (the same on every attempt of a delivery: the receiver's idempotency key),
``webhook-timestamp`` (seconds since the epoch, of this attempt) and ``webhook-signature``
(``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` with the webhook's signing
key). The former ``X-CSU-Signature: sha256=<hex>`` (HMAC-SHA256 of the body alone) is
still sent during a deprecation period. A failed attempt is retried by Celery with
exponential backoff; every attempt is logged on the delivery (visible in the admin).
docs/webhooks.md is the integrators' guide.
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from django.utils import timezone

from .models import WebhookDelivery

TIMEOUT_S = 5
# Deprecated: receivers should verify ``webhook-signature``; this goes in a later release.
SIGNATURE_HEADER = "X-CSU-Signature"


def sign(secret: str, body: bytes) -> str:
    """The deprecated ``X-CSU-Signature`` value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_standard(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of Standard Webhooks (version 1)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers_for(delivery: WebhookDelivery, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers of one attempt of ``delivery``."""
    webhook, message_id = delivery.webhook, delivery.message_id
    return {
        "Content-Type": "application/json",
        "User-Agent": "CSU-webhook/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(webhook.signing_key, message_id, timestamp, body),
        SIGNATURE_HEADER: sign(webhook.secret, body),
        "X-CSU-Delivery": str(delivery.pk),
        "X-CSU-Event": str(delivery.payload.get("event", "")),
    }


def attempt_delivery(delivery_id: int, *, final: bool) -> str:
    """Try once; return "delivered", "retry" or "failed" (after the last attempt)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return "gone"
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers=headers_for(delivery, body, timestamp=int(time.time())),
    )
    delivery.attempts += 1
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            delivery.last_status_code = response.status
            delivery.last_error = ""
            ok = 200 <= response.status < 300
    except urllib.error.HTTPError as exc:
        delivery.last_status_code, delivery.last_error, ok = exc.code, str(exc)[:500], False
    except (urllib.error.URLError, OSError) as exc:
        delivery.last_status_code, delivery.last_error, ok = None, str(exc)[:500], False
    if ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
        outcome = "delivered"
    elif final:
        delivery.status, outcome = WebhookDelivery.Status.FAILED, "failed"
    else:
        outcome = "retry"
    delivery.save()
    return outcome
