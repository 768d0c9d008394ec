"""The JSON shape of an alert, shared by the API, the live push and the webhooks."""

from sensors.serializers import commune_ref

from . import triggers
from .models import Alert, AlertEvent, EventKind


def iso(moment):
    return moment.isoformat() if moment else None


def rule_ref(rule) -> dict:
    """A rule as every answer names it (REST, websocket, webhooks)."""
    return {"id": rule.pk, "name": rule.name, "kind": rule.kind}


def alert_summary(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "title": alert.title,
        "state": alert.state,
        "severity": alert.severity,
        "rule": rule_ref(alert.rule),
        "sensor": alert.sensor.ref,
        "commune": commune_ref(alert.sensor.commune),
        "metric": alert.metric,
        "opened_at": iso(alert.opened_at),
        "first_value": alert.first_value,
        "last_value": alert.last_value,
        "last_value_at": iso(alert.last_value_at),
        "peak_value": alert.peak_value,
        "cleared_at": iso(alert.cleared_at),
        "flapping": alert.flapping,
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "snoozed_until": iso(alert.snoozed_until),
        "resolved_at": iso(alert.resolved_at),
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by else None,
        "needs_acknowledgement": alert.needs_acknowledgement,
        "ppms_scenario": triggers.code_of(alert.rule),
    }


def event_summary(event: AlertEvent) -> dict:
    return {
        "id": event.pk,
        "at": iso(event.at),
        "kind": event.kind,
        "user": event.user.get_username() if event.user else None,
        "text": event.text,
        "value": event.value,
    }


# The live event names (core/live.py).
LIVE_EVENT = {
    EventKind.OPENED: "opened",
    EventKind.ACKNOWLEDGED: "acknowledged",
    EventKind.RESOLVED: "resolved",
}


def live_event_name(kind: str) -> str:
    return LIVE_EVENT.get(kind, "updated")
