"""CAP 1.2 (OASIS Common Alerting Protocol) documents of alerts.

Each change an integrator must hear of (opening, update, escalation, acknowledgement,
resolution: a row of the alert's timeline) makes a new CAP message with its own
identifier: the first is an ``Alert``, the later ones ``Update`` messages that reference
the first; a resolved alert's last message says ``AllClear``. ``Cancel`` is never used:
CAP keeps it for messages sent in error, and an alert that ended is not one.

The text is French (``fr-FR``) whatever the language of the request, as literals rather
than translated strings: it is written for the French authorities and services that
relay it. Validated in the tests against OASIS's schema (``core/schema/``).
"""

import xml.etree.ElementTree as ET
from datetime import datetime

from django.conf import settings
from django.db.models import Prefetch
from django.utils import translation

from core.cap import (
    CAP_NS,
    CIRCLE_RADIUS_KM,
    add_geocode,
    cap_datetime,
    cap_sender,
    deg,
    expires,
    headline,
    host,
    local,
    number,
    outer_rings,
    sub,
    tag,
)
from sensors.metrics import Kind, display, metric_for

from . import triggers
from .models import AlertEvent, AlertState, EventKind, RuleKind, Severity

# Timeline events that make a new message; comments, reminders, flapping and silences
# change nothing an integrator acts on.
UPDATE_KINDS = (
    EventKind.ACKNOWLEDGED,
    EventKind.ESCALATED,
    EventKind.RESOLVED,
)

# CAP categories: air pollution is "Env"; the river level is "Met" (CAP puts floods
# there); drinking-water quality (pH, chlorine, turbidity…) is public "Health".
CATEGORY_BY_KIND = {
    Kind.AIR: "Env",
    Kind.WATER: "Health",
    Kind.WATERING: "Infra",
    Kind.TRAFFIC: "Transport",
    Kind.OPENING: "Security",
}
CATEGORY_BY_METRIC = {"level": "Met"}


def for_cap(queryset):
    """Load with ``queryset`` what the CAP documents of its alerts read (three queries in all)."""
    return queryset.select_related("rule", "sensor__commune").prefetch_related(
        "sensor__zones",
        Prefetch(
            "events",
            queryset=AlertEvent.objects.filter(kind__in=UPDATE_KINDS),
            to_attr="cap_updates",
        ),
    )


def cap_identifier(alert) -> str:
    """Name the alert's current CAP message: stable, one per alert and version."""
    return _identifier(alert, len(_message_times(alert)))


def cap_sent(alert) -> datetime:
    """The time of the alert's current CAP message: its latest change."""
    return _message_times(alert)[-1]


def alert_cap(alert, *, sender: str | None = None) -> bytes:
    """Build the alert's current CAP 1.2 message, as UTF-8 XML."""
    root = _alert_element(alert, sender or cap_sender())
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True, default_namespace=CAP_NS)


# --- The message ------------------------------------------------------------------------


def _alert_element(alert, sender: str) -> ET.Element:
    times = _message_times(alert)
    root = ET.Element(tag("alert"))
    sub(root, "identifier", _identifier(alert, len(times)))
    sub(root, "sender", sender)
    sub(root, "sent", cap_datetime(times[-1]))
    # Alerts are real; "Exercise" is for PPMS drills.
    sub(root, "status", "Actual")
    sub(root, "msgType", "Alert" if len(times) == 1 else "Update")
    # Public, not Restricted: readers are already authenticated by the API, the content
    # holds no personal data, and authorities must be free to relay it (Restricted
    # would also need a <restriction> rule that no recipient could check).
    sub(root, "scope", "Public")
    if len(times) > 1:
        first = f"{sender},{_identifier(alert, 1)},{cap_datetime(times[0])}"
        sub(root, "references", first)
    root.append(_info_element(alert))
    return root


def _info_element(alert) -> ET.Element:
    rule, sensor = alert.rule, alert.sensor
    resolved = alert.state == AlertState.RESOLVED
    info = ET.Element(tag("info"))
    sub(info, "language", "fr-FR")
    for category in _categories(alert):
        sub(info, "category", category)
    sub(info, "event", rule.name)
    sub(info, "responseType", _response_type(alert))
    sub(info, "urgency", "Past" if resolved else "Immediate")
    sub(info, "severity", _severity(alert))
    sub(info, "certainty", "Observed")
    sub(info, "onset", cap_datetime(alert.opened_at))
    ended = alert.resolved_at if resolved else None
    sub(info, "expires", expires(_message_times(alert)[-1], ended))
    sub(info, "senderName", f"Centre de supervision urbaine ({sensor.commune.name})")
    sub(info, "headline", headline(alert.title))
    sub(info, "description", _description(alert))
    instruction = _instruction(alert)
    if instruction:
        sub(info, "instruction", instruction)
    sub(info, "web", f"{settings.CSU_PUBLIC_URL.rstrip('/')}/alerts/{alert.pk}/")
    for name, value in _parameters(alert):
        parameter = sub(info, "parameter")
        sub(parameter, "valueName", name)
        sub(parameter, "value", value)
    info.append(_area_element(sensor))
    return info


def _categories(alert) -> list[str]:
    rule, sensor = alert.rule, alert.sensor
    if rule.kind == RuleKind.OFFLINE or alert.metric == "battery":
        # About the CSU's own equipment, not what it measures.
        categories = ["Infra"]
    else:
        categories = [
            CATEGORY_BY_METRIC.get(alert.metric) or CATEGORY_BY_KIND.get(sensor.kind, "Other")
        ]
    if triggers.of_rule(rule):
        categories.append("Safety")
    return categories


def _response_type(alert) -> str:
    if alert.state == AlertState.RESOLVED:
        return "AllClear"
    trigger = triggers.of_rule(alert.rule)
    return trigger.cap_response if trigger else "Monitor"


def _severity(alert) -> str:
    if alert.severity == Severity.CRITICAL and triggers.of_rule(alert.rule):
        return "Extreme"  # a critical alert that sets off the schools' safety plan
    return Severity(alert.severity).cap


def _instruction(alert) -> str:
    trigger = triggers.of_rule(alert.rule)
    if alert.state == AlertState.RESOLVED:
        text = "Fin de l'alerte."
        if trigger:
            text += f" {trigger.cap_all_clear}"
        return text
    return trigger.cap_instruction if trigger else ""


def _description(alert) -> str:
    sensor = alert.sensor
    metric = metric_for(sensor.kind, alert.metric) if alert.metric else None
    label = metric.label if metric else alert.metric

    def shown(value):
        return display(sensor.kind, alert.metric, value)

    named = f" « {sensor.name} »" if sensor.name != sensor.ref else ""
    lines = [f"Capteur {sensor.ref}{named} ({sensor.commune.name})."]
    if alert.rule.aggregate:
        with translation.override("fr"):  # CAP texts are French, whoever asks
            label += f" en {alert.rule.get_aggregate_display()}"
    if alert.last_value is not None:
        line = f"{label} : {shown(alert.last_value)}"
        if alert.last_value_at:
            # A mean's time is the end of its hours.
            when = "jusqu'au" if alert.rule.aggregate else "le"
            line += f" {when} {local(alert.last_value_at)}"
        if alert.peak_value is not None:
            line += f" ; valeur extrême {shown(alert.peak_value)}"
        lines.append(line + ".")
    moments = [f"Ouverte le {local(alert.opened_at)}."]
    if alert.acknowledged_at:
        moments.append(f"Acquittée le {local(alert.acknowledged_at)}.")
    if alert.resolved_at:
        moments.append(f"Résolue le {local(alert.resolved_at)}.")
    lines.append(" ".join(moments))
    return "\n".join(lines)


def _parameters(alert) -> list[tuple[str, str]]:
    sensor = alert.sensor
    metric = metric_for(sensor.kind, alert.metric) if alert.metric else None
    parameters = [("sensor", sensor.ref), ("state", alert.state)]
    if alert.metric:
        parameters.append(("metric", alert.metric))
    if metric:
        parameters.append(("unit", metric.unit))
    if alert.last_value is not None:
        parameters.append(("lastValue", number(alert.last_value)))
    if alert.peak_value is not None:
        parameters.append(("peakValue", number(alert.peak_value)))
    return parameters


def _area_element(sensor) -> ET.Element:
    area = ET.Element(tag("area"))
    zones = list(sensor.zones.all())
    sub(area, "areaDesc", ", ".join(zone.name for zone in zones) or sensor.commune.name)
    polygons = [ring for zone in zones for ring in outer_rings(zone.geometry)]
    for ring in polygons:
        sub(area, "polygon", " ".join(f"{deg(lat)},{deg(lon)}" for lon, lat in ring))
    if not polygons:
        centre = f"{deg(sensor.latitude)},{deg(sensor.longitude)}"
        sub(area, "circle", f"{centre} {CIRCLE_RADIUS_KM}")
    if sensor.commune.insee_code:
        add_geocode(area, "INSEE", sensor.commune.insee_code)
    return area


# --- Versions and formats ---------------------------------------------------------------


def _message_times(alert) -> list[datetime]:
    """When each CAP message of the alert was due: its opening, then each change."""
    updates = getattr(alert, "cap_updates", None)
    if updates is None:
        updates = alert.events.filter(kind__in=UPDATE_KINDS)
    times = sorted(event.at for event in updates)
    if not times and alert.state != AlertState.FIRING:
        # A row written without its timeline (an import, a fixture): read its fields.
        times = [t for t in (alert.acknowledged_at, alert.resolved_at) if t]
    return [alert.opened_at, *times]


def _identifier(alert, version: int) -> str:
    return f"urn:csu:{host()}:alert:{alert.pk}:{version}"
