"""What the CSU tells of an alert's timeline: a live push, e-mails, webhooks.

Every line of an alert's timeline (``AlertEvent``) is told with ``tell(event)`` in the
transaction that wrote it: the outbox (``core/outbox.py``) sends it once committed. Events
of a silenced sensor or rule are recorded and pushed to dashboards marked ``muted`` (no
sound), but neither mailed nor sent out.
"""

from django.conf import settings
from django.db.models import Q

from core import live, outbox
from core.cap import local
from sensors.metrics import display

from . import incidents
from .models import AlertEvent, AlertState, EventKind, Silence
from .payloads import alert_summary, event_summary, live_event_name

# Events that leave the CSU (e-mail, webhooks); the others only reach dashboards.
MAILED = {EventKind.OPENED, EventKind.ESCALATED, EventKind.RENOTIFIED}
HOOKED = MAILED | {EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.FLAPPING}


def tell(event: AlertEvent, *, incident: bool = True) -> None:
    """Record, with ``event``, what the CSU tells of it; it goes out once committed.

    The alert's incident follows (``incidents.refresh``) and is told with it, unless
    ``incident`` is false: an action on the whole incident tells it once, at its end
    (``tell_incident``)."""
    alert = event.alert
    rule = alert.rule
    event.muted = is_silenced(event)
    if event.muted:
        event.save(update_fields=["muted"])
    summary = alert_summary(alert)
    timeline_event = event_summary(event)
    message = live.AlertEvent(
        type="alert",
        event=live_event_name(event.kind),
        alert=summary | {"muted": event.muted},
        timeline_event=timeline_event,
    )
    pushes = [outbox.push(live.commune_group(alert.sensor.commune_id), message)]
    if alert.incident_id and incident:
        changed = incidents.refresh(alert.incident_id)
        pushes.append(incident_push(changed, incident_event_name(event, changed), event.muted))
    told = not event.muted
    emails = []
    if told and event.kind in MAILED and rule.email_list:
        subject, body = email_text(event)
        emails.append(outbox.Email(subject=subject, body=body, to=rule.email_list))
    hooked = told and event.kind in HOOKED
    outbox.tell(
        topic="alert",
        event=event.kind,
        pushes=pushes,
        emails=emails,
        webhook_payload={
            "type": "alert",
            "event": event.kind,
            "alert": summary,
            "timeline_event": timeline_event,
        }
        if hooked
        else None,
        webhooks=rule.webhooks.all() if hooked else (),
    )


def incident_event_name(event: AlertEvent, incident) -> str:
    if event.kind == EventKind.OPENED and incident.version <= 2:
        return "opened"  # its first alert: created, then refreshed once
    if event.kind == EventKind.RESOLVED and incident.state == AlertState.RESOLVED:
        return "resolved"
    return "updated"


def incident_push(incident, name: str, muted: bool = False):
    """The live push of an incident's change, to its commune's operators."""
    message = live.IncidentEvent(
        type="incident",
        event=name,
        incident=incidents.incident_summary(incident) | {"muted": muted},
    )
    return outbox.push(live.commune_group(incident.commune_id), message)


def tell_incident(incident_id: int, kind: str):
    """After an action on every alert of an incident (their lines told with
    ``incident=False``): follow the incident once, and tell it. Return it."""
    incident = incidents.refresh(incident_id)
    name = (
        "resolved"
        if kind == EventKind.RESOLVED and incident.state == AlertState.RESOLVED
        else "updated"
    )
    outbox.tell(topic="incident", event=name, pushes=[incident_push(incident, name)])
    return incident


def group_incidents(alerts) -> None:
    """Make ``alerts`` (those of one PPMS proposal) one incident per commune, and tell."""
    kept, merged = incidents.group_together(alerts)
    by_pk = {incident.pk: incident for incident in kept}
    pushes = [incident_push(incident, "updated") for incident in kept]
    for gone, into in merged.items():
        summary = incidents.incident_summary(by_pk[into])
        message = live.IncidentEvent(
            type="incident",
            event="merged",
            incident=summary | {"id": gone, "alerts": [], "alert_count": 0, "muted": True},
            merged_into=into,
        )
        pushes.append(outbox.push(live.commune_group(by_pk[into].commune_id), message))
    if pushes:
        outbox.tell(topic="incident", event="merged", pushes=pushes)


def is_silenced(event: AlertEvent) -> bool:
    alert = event.alert
    return (
        Silence.objects.active_at(event.at)
        .filter(Q(sensor_id=alert.sensor_id) | Q(rule_id=alert.rule_id))
        .exists()
    )


def email_text(event: AlertEvent) -> tuple[str, str]:
    """The e-mail of a timeline line, in French: Paris time, decimal commas, units."""
    alert = event.alert

    def shown(value):
        if value is None:
            return "—"
        return display(alert.sensor.kind, alert.metric, value)

    subject = f"[CSU] {alert.get_severity_display()} — {alert.title}"
    lines = [
        alert.title,
        "",
        f"{event.get_kind_display()} : {local(event.at)}",
        f"Capteur : {alert.sensor.ref} ({alert.sensor.name})",
        f"Valeur : {shown(alert.last_value)} (extrême : {shown(alert.peak_value)})",
        "",
        f"{settings.CSU_PUBLIC_URL.rstrip('/')}/alerts/{alert.pk}/",
    ]
    return subject, "\n".join(lines)
