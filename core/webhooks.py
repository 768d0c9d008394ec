"""Signed JSON webhooks: police, pompiers and prefecture systems get alert and PPMS events.

Each delivery POSTs the JSON payload with ``X-CSU-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body with the webhook's secret, so the receiver can check it
came from the CSU unchanged. A failed attempt is retried by Celery with exponential
backoff; every attempt is logged on the delivery (visible in the admin).
"""

import hashlib
import hmac
import json
import urllib.error
import urllib.request

from django.utils import timezone

from .models import WebhookDelivery

TIMEOUT_S = 5
SIGNATURE_HEADER = "X-CSU-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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
        headers={
            "Content-Type": "application/json",
            "User-Agent": "CSU-webhook/1",
            SIGNATURE_HEADER: sign(delivery.webhook.secret, body),
            "X-CSU-Delivery": str(delivery.pk),
            "X-CSU-Event": str(delivery.payload.get("event", "")),
        },
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
