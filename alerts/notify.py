"""Notifications: every unsent alert event is claimed once, then pushed and sent.

The claim marks the events sent in one transaction (rows locked ``SKIP LOCKED`` so two
workers never take the same one) and writes the webhook deliveries there too; the live
push, e-mails and deliveries follow. Events of a silenced sensor or rule are recorded,
pushed to dashboards marked ``muted`` (no sound), and neither mailed nor sent out.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import live, outbox

from .models import AlertEvent, EventKind, Silence, WebhookDelivery
from .payloads import alert_summary, event_summary, live_event_name

log = logging.getLogger(__name__)

BATCH = 200
# Events that leave the CSU (e-mail, webhooks); the others only reach dashboards.
MAILED = {EventKind.OPENED, EventKind.ESCALATED, EventKind.RENOTIFIED}
HOOKED = MAILED | {EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.FLAPPING}


def dispatch_after_commit() -> None:
    """Enqueue the dispatch of this transaction's events once it commits."""
    outbox.dispatch_after_commit("alerts.tasks.dispatch_events")


def is_silenced(event: AlertEvent) -> bool:
    alert = event.alert
    return (
        Silence.objects.active_at(event.at)
        .filter(Q(sensor_id=alert.sensor_id) | Q(rule_id=alert.rule_id))
        .exists()
    )


def claim_events(now=None) -> list[AlertEvent]:
    """Take the unsent events (at most BATCH); each is returned to one caller only."""
    now = now or timezone.now()
    with transaction.atomic():
        events = list(
            AlertEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(notified_at__isnull=True)
            .select_related(
                "alert__rule",
                "alert__sensor",
                "alert__acknowledged_by",
                "alert__resolved_by",
                "user",
            )
            .order_by("pk")[:BATCH]
        )
        deliveries = []
        for event in events:
            event.notified_at = now
            event.muted = is_silenced(event)
            if event.kind in HOOKED and not event.muted:
                payload = webhook_payload(event)
                deliveries += [
                    WebhookDelivery(webhook=hook, event=event, payload=payload)
                    for hook in event.alert.rule.webhooks.filter(active=True)
                ]
        AlertEvent.objects.bulk_update(events, ["notified_at", "muted"])
        WebhookDelivery.objects.bulk_create(deliveries)
    event_deliveries = {}
    for delivery in deliveries:
        event_deliveries.setdefault(delivery.event_id, []).append(delivery.pk)
    for event in events:
        event.delivery_ids = event_deliveries.get(event.pk, [])
    return events


def webhook_payload(event: AlertEvent) -> dict:
    return {
        "type": "alert",
        "event": event.kind,
        "alert": alert_summary(event.alert),
        "timeline_event": event_summary(event),
        "sent_at": timezone.now().isoformat(),
    }


def dispatch_pending_events() -> int:
    """Claim and send every unsent event; return how many were handled."""
    from .tasks import deliver_webhook, send_alert_email

    handled = 0
    while events := claim_events():
        for event in events:
            push_live(event)
            if event.muted:
                continue
            if event.kind in MAILED and event.alert.rule.email_list:
                send_alert_email.delay(event.pk)
            for delivery_id in event.delivery_ids:
                deliver_webhook.delay(delivery_id)
        handled += len(events)
    return handled


def push_live(event: AlertEvent) -> None:
    alert = event.alert
    payload = {
        "type": "alert",
        "event": live_event_name(event.kind),
        "alert": alert_summary(alert) | {"muted": event.muted},
        "timeline_event": event_summary(event),
    }
    try:
        live.send(live.commune_group(alert.sensor.commune_id), payload)
    except Exception:  # the page fetches what it missed on reconnect
        log.exception("live push of alert event %s failed", event.pk)


def email_text(event: AlertEvent) -> tuple[str, str]:
    alert = event.alert
    subject = f"[CSU] {alert.get_severity_display()} — {alert.title}"
    lines = [
        alert.title,
        "",
        f"{event.get_kind_display()} : {event.at:%d/%m/%Y %H:%M}",
        f"Capteur : {alert.sensor.ref} ({alert.sensor.name})",
        f"Valeur : {alert.last_value}  (extrême : {alert.peak_value})",
        "",
        f"{settings.CSU_PUBLIC_URL.rstrip('/')}/alerts/{alert.pk}/",
    ]
    return subject, "\n".join(lines)
