"""CAP 1.2 (OASIS Common Alerting Protocol) documents of alerts.

Each change an integrator must hear of (opening, update, escalation, acknowledgement,
resolution: a row of the alert's timeline) makes a new CAP message with its own
identifier: the first is an ``Alert``, the later ones ``Update`` messages that reference
the first; a resolved alert's last message says ``AllClear``. ``Cancel`` is never used:
CAP keeps it for messages sent in error, and an alert that ended is not one.

The text is French (``fr-FR``) whatever the language of the request, as literals rather
than translated strings: it is written for the French authorities and services that
relay it. Validated in the tests against
the vendored ``schema/CAP-v1.2.xsd``.
"""

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone

from sensors.metrics import Kind, metric_for

from .models import AlertEvent, AlertState, EventKind, PpmsScenario, RuleKind, Severity

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_SCHEMA = Path(__file__).parent / "schema" / "CAP-v1.2.xsd"
CAP_MEDIA_TYPE = "application/cap+xml"

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

RESPONSE_BY_SCENARIO = {
    PpmsScenario.SHELTER: "Shelter",
    PpmsScenario.CONFINEMENT: "Shelter",
    PpmsScenario.EVACUATION: "Evacuate",
    PpmsScenario.INTRUSION: "Avoid",
}
INSTRUCTION_BY_SCENARIO = {
    PpmsScenario.SHELTER: (
        "Mise à l'abri : rejoignez sans attendre un lieu clos et sûr, "
        "restez-y jusqu'à la fin de l'alerte."
    ),
    PpmsScenario.CONFINEMENT: (
        "Confinement : restez à l'intérieur, fermez portes et fenêtres, arrêtez la ventilation."
    ),
    PpmsScenario.EVACUATION: (
        "Évacuation : quittez les lieux par les itinéraires prévus "
        "et rejoignez le point de rassemblement."
    ),
    PpmsScenario.INTRUSION: (
        "Intrusion : évitez le secteur ; échappez-vous si possible, "
        "sinon enfermez-vous et cachez-vous. Appelez le 17."
    ),
}
HEADLINE_MAX = 160  # CAP: "SHOULD be less than 160 characters"
CIRCLE_RADIUS_KM = 0.1


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


def cap_sender() -> str:
    return getattr(settings, "CSU_CAP_SENDER", None) or f"csu@{_host()}"


def alert_cap(alert, *, sender: str | None = None) -> bytes:
    """Build the alert's current CAP 1.2 message, as UTF-8 XML."""
    root = _alert_element(alert, sender or cap_sender())
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True, default_namespace=CAP_NS)


# --- The message ------------------------------------------------------------------------


def _alert_element(alert, sender: str) -> ET.Element:
    times = _message_times(alert)
    root = ET.Element(_tag("alert"))
    _sub(root, "identifier", _identifier(alert, len(times)))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_datetime(times[-1]))
    # Alerts are real; "Exercise" is for PPMS drills.
    _sub(root, "status", "Actual")
    _sub(root, "msgType", "Alert" if len(times) == 1 else "Update")
    # Public, not Restricted: readers are already authenticated by the API, the content
    # holds no personal data, and authorities must be free to relay it (Restricted
    # would also need a <restriction> rule that no recipient could check).
    _sub(root, "scope", "Public")
    if len(times) > 1:
        first = f"{sender},{_identifier(alert, 1)},{cap_datetime(times[0])}"
        _sub(root, "references", first)
    root.append(_info_element(alert))
    return root


def _info_element(alert) -> ET.Element:
    rule, sensor = alert.rule, alert.sensor
    resolved = alert.state == AlertState.RESOLVED
    info = ET.Element(_tag("info"))
    _sub(info, "language", "fr-FR")
    for category in _categories(alert):
        _sub(info, "category", category)
    _sub(info, "event", rule.name)
    _sub(info, "responseType", _response_type(alert))
    _sub(info, "urgency", "Past" if resolved else "Immediate")
    _sub(info, "severity", _severity(alert))
    _sub(info, "certainty", "Observed")
    _sub(info, "onset", cap_datetime(alert.opened_at))
    _sub(info, "senderName", f"Centre de supervision urbaine ({sensor.commune.name})")
    _sub(info, "headline", _headline(alert.title))
    _sub(info, "description", _description(alert))
    instruction = _instruction(alert)
    if instruction:
        _sub(info, "instruction", instruction)
    _sub(info, "web", f"{settings.CSU_PUBLIC_URL.rstrip('/')}/alerts/{alert.pk}/")
    for name, value in _parameters(alert):
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", name)
        _sub(parameter, "value", value)
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
    if rule.ppms_scenario:
        categories.append("Safety")
    return categories


def _response_type(alert) -> str:
    if alert.state == AlertState.RESOLVED:
        return "AllClear"
    return RESPONSE_BY_SCENARIO.get(alert.rule.ppms_scenario, "Monitor")


def _severity(alert) -> str:
    if alert.severity == Severity.CRITICAL and alert.rule.ppms_scenario:
        return "Extreme"  # a critical alert that puts schools into their PPMS
    return Severity(alert.severity).cap


def _instruction(alert) -> str:
    scenario = alert.rule.ppms_scenario
    if alert.state == AlertState.RESOLVED:
        text = "Fin de l'alerte."
        if scenario:
            # DOMAIN.md: only the authorities end a PPMS, not a sensor.
            text += " La fin du PPMS reste donnée par les autorités."
        return text
    return INSTRUCTION_BY_SCENARIO.get(scenario, "")


def _headline(title: str) -> str:
    if len(title) < HEADLINE_MAX:
        return title
    return title[: HEADLINE_MAX - 2] + "…"


def _description(alert) -> str:
    sensor = alert.sensor
    metric = metric_for(sensor.kind, alert.metric) if alert.metric else None
    label = metric.label if metric else alert.metric
    unit = f" {metric.unit}" if metric and metric.unit != "state" else ""
    named = f" « {sensor.name} »" if sensor.name != sensor.ref else ""
    lines = [f"Capteur {sensor.ref}{named} ({sensor.commune.name})."]
    if alert.last_value is not None:
        line = f"{label} : {_decimal(alert.last_value)}{unit}"
        if alert.last_value_at:
            line += f" le {_local(alert.last_value_at)}"
        if alert.peak_value is not None:
            line += f" ; valeur extrême {_decimal(alert.peak_value)}{unit}"
        lines.append(line + ".")
    moments = [f"Ouverte le {_local(alert.opened_at)}."]
    if alert.acknowledged_at:
        moments.append(f"Acquittée le {_local(alert.acknowledged_at)}.")
    if alert.resolved_at:
        moments.append(f"Résolue le {_local(alert.resolved_at)}.")
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
        parameters.append(("lastValue", _number(alert.last_value)))
    if alert.peak_value is not None:
        parameters.append(("peakValue", _number(alert.peak_value)))
    return parameters


def _area_element(sensor) -> ET.Element:
    area = ET.Element(_tag("area"))
    zones = list(sensor.zones.all())
    _sub(area, "areaDesc", ", ".join(zone.name for zone in zones) or sensor.commune.name)
    polygons = [ring for zone in zones for ring in _outer_rings(zone.geometry)]
    for ring in polygons:
        _sub(area, "polygon", " ".join(f"{_deg(lat)},{_deg(lon)}" for lon, lat in ring))
    if not polygons:
        centre = f"{_deg(sensor.latitude)},{_deg(sensor.longitude)}"
        _sub(area, "circle", f"{centre} {CIRCLE_RADIUS_KM}")
    return area


def _outer_rings(geometry) -> list[list[tuple[float, float]]]:
    """The closed outer rings, (lon, lat), of a GeoJSON Polygon or MultiPolygon.

    Holes are left out: a CAP polygon is one simple ring, and listing a hole as another
    polygon would add its area instead of removing it. Malformed rings are skipped.
    """
    if not isinstance(geometry, dict):
        return []
    coordinates = geometry.get("coordinates") or []
    polygons = {"Polygon": [coordinates], "MultiPolygon": coordinates}.get(geometry.get("type"), [])
    rings = []
    for polygon in polygons:
        try:
            ring = [(float(point[0]), float(point[1])) for point in polygon[0]]
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        if len(ring) >= 4:  # CAP: at least four pairs, the first and last the same
            rings.append(ring)
    return rings


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
    return f"urn:csu:{_host()}:alert:{alert.pk}:{version}"


def _host() -> str:
    """The CSU's own host name: the first usable entry of ALLOWED_HOSTS."""
    for host in settings.ALLOWED_HOSTS:
        host = host.lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def cap_datetime(moment: datetime) -> str:
    """Format as CAP wants: local time with its offset, whole seconds, never "Z"."""
    return timezone.localtime(moment).replace(microsecond=0).isoformat()


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%d/%m/%Y à %H:%M")


def _decimal(value: float) -> str:
    """A value for French readers: a decimal comma."""
    return f"{value:g}".replace(".", ",")


def _number(value: float) -> str:
    """A value for machines: exact, without a trailing ".0"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _deg(value: float) -> str:
    """WGS 84 decimal degrees, to the micro-degree (about 10 cm)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _tag(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, _tag(name))
    if text is not None:
        element.text = text
    return element
