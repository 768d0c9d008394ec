"""Incidents: the alerts that share a cause, handled as one.

A flood makes five gauges cross three rules: fifteen alerts, one cause. An alert joins
an incident when it opens (``join``, called where alerts are raised: the evaluation and
the offline rules of ``lifecycle.py``):

- same commune (an incident is seen by the operators of its commune, like its alerts);
- same **rule family** (``family``): the measured quantity of the alert's sensor,
  ``<sensor kind>.<metric>`` ("water.level": the vigilance and crisis thresholds and the
  rate of rise of the river are one family; "air.atmo" for the ATMO index rules), with
  the technical rules apart: "stuck:<kind>.<metric>" for a stuck value, "offline" for a
  silent sensor;
- same **zone**: a zone of the sensor that the rule watches (else any zone of the
  sensor; a sensor in no zone groups by commune alone);
- opened within ``CSU_INCIDENT_WINDOW_MINUTES`` (2 h by default) of the incident's
  latest alert; later, a new incident starts.

The alerts of one PPMS proposal are grouped too (``group_together``, called by the
ppms app). An alert belongs to at most one incident. The incident's severity, state and
times follow its members (``refresh``, from ``notify.tell``: every change of an alert
is told there), and its ``version`` grows at each change, so that an action on an
incident names the version the operator saw and is refused (409) if it changed.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max, Min
from django.utils import translation

from sensors.metrics import metric_for
from sensors.serializers import commune_ref

from .models import SEVERITY_RANK, Alert, AlertState, Incident, RuleKind
from .payloads import alert_summary, iso

INCIDENT_LOCK = 7_300_003  # advisory lock class: one grouping at a time per (commune, family)


def window() -> timedelta:
    return timedelta(minutes=settings.CSU_INCIDENT_WINDOW_MINUTES)


def family(alert: Alert) -> str:
    """The alert's rule family (see the module's docstring)."""
    rule = alert.rule
    if rule.kind == RuleKind.OFFLINE:
        return "offline"
    metric = alert.metric or rule.metric or ("atmo" if rule.kind == RuleKind.ATMO else "")
    measured = f"{alert.sensor.kind}.{metric}"
    return f"stuck:{measured}" if rule.kind == RuleKind.STUCK else measured


def zones_of(alert: Alert) -> list:
    """The zones where the alert's cause lies: the sensor's zones the rule watches, else
    all the sensor's zones (in id order)."""
    sensor_zones = list(alert.sensor.zones.order_by("pk"))
    watched = set(alert.rule.zones.values_list("pk", flat=True))
    return [zone for zone in sensor_zones if zone.pk in watched] or sensor_zones


def title_for(alert: Alert, zone) -> str:
    rule = alert.rule
    # The title is stored: in the town's language, whatever a request activated.
    with translation.override(settings.LANGUAGE_CODE):
        if rule.kind == RuleKind.OFFLINE:
            what = str(rule.get_kind_display())
        else:
            metric = metric_for(alert.sensor.kind, alert.metric or rule.metric)
            what = str(metric.label) if metric else rule.name
            if rule.kind == RuleKind.STUCK:
                what = f"{rule.get_kind_display()}\u202f: {what}"
    where = zone.name if zone else alert.sensor.commune.name
    return f"{what} — {where}"[:255]


def _lock(commune_id: int, key: str) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite runs one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            [INCIDENT_LOCK, f"{commune_id}:{key}"],
        )


def join(alert: Alert) -> Incident:
    """Put a newly opened ``alert`` in its incident, opening one if none fits.

    In the transaction that opened the alert, before its opening is told."""
    key = family(alert)
    commune_id = alert.sensor.commune_id
    _lock(commune_id, key)
    zones = zones_of(alert)
    candidates = Incident.objects.select_for_update().filter(
        commune_id=commune_id, family=key, last_at__gte=alert.opened_at - window()
    )
    if zones:
        candidates = candidates.filter(zone__in=zones)
    else:
        candidates = candidates.filter(zone__isnull=True)
    incident = candidates.order_by("-last_at", "-pk").first()
    if incident is None:
        zone = zones[0] if zones else None
        incident = Incident.objects.create(
            commune_id=commune_id,
            zone=zone,
            family=key,
            title=title_for(alert, zone),
            severity=alert.severity,
            state=alert.state,
            first_at=alert.opened_at,
            last_at=alert.opened_at,
        )
    alert.incident = incident
    alert.save(update_fields=["incident"])
    return incident


def refresh(incident_id: int) -> Incident | None:
    """Summarise the members again (severity, state, times) and count a new version."""
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        return None
    members = list(Alert.objects.filter(incident=incident).values_list("severity", "state"))
    if not members:
        return incident
    times = Alert.objects.filter(incident=incident).aggregate(
        first=Min("opened_at"), last=Max("opened_at")
    )
    incident.severity = max(
        (severity for severity, _state in members), key=lambda s: SEVERITY_RANK[s]
    )
    states = {state for _severity, state in members}
    if AlertState.FIRING in states:
        incident.state = AlertState.FIRING
    elif AlertState.ACKNOWLEDGED in states:
        incident.state = AlertState.ACKNOWLEDGED
    else:
        incident.state = AlertState.RESOLVED
    incident.first_at, incident.last_at = times["first"], times["last"]
    incident.version += 1
    incident.save(update_fields=["severity", "state", "first_at", "last_at", "version"])
    return incident


def group_together(alerts) -> tuple[list[Incident], dict[int, int]]:
    """Make the given alerts one incident per commune (the alerts of one PPMS proposal):
    the largest incident among theirs takes the others' members, and the emptied ones
    are deleted. Return the kept incidents, refreshed, and {deleted id: kept id}.
    """
    by_commune: dict[int, list[Alert]] = {}
    for alert in alerts:
        by_commune.setdefault(alert.sensor.commune_id, []).append(alert)
    kept_ones, merged = [], {}
    for members in by_commune.values():
        incident_ids = {alert.incident_id for alert in members if alert.incident_id}
        if len(incident_ids) < 2 and all(alert.incident_id for alert in members):
            continue  # one incident already
        incidents = list(
            Incident.objects.select_for_update().filter(pk__in=incident_ids).order_by("pk")
        )
        if not incidents:
            continue
        sizes = {
            incident.pk: Alert.objects.filter(incident=incident).count() for incident in incidents
        }
        kept = max(incidents, key=lambda incident: (sizes[incident.pk], -incident.pk))
        Alert.objects.filter(pk__in=[alert.pk for alert in members]).update(incident=kept)
        for alert in members:
            alert.incident = kept
        for incident in incidents:
            if incident.pk != kept.pk and not Alert.objects.filter(incident=incident).exists():
                merged[incident.pk] = kept.pk
                incident.delete()
        kept_ones.append(refresh(kept.pk))
    return kept_ones, merged


# --- The JSON shape, shared by the API and the live push -----------------------------------


def zone_ref(zone) -> dict | None:
    return {"id": zone.pk, "name": zone.name, "type": zone.type} if zone else None


def members_of(incident: Incident) -> list[Alert]:
    return list(
        Alert.objects.filter(incident=incident)
        .select_related("rule", "sensor__commune", "acknowledged_by", "resolved_by")
        .order_by("opened_at", "pk")
    )


def incident_summary(incident: Incident, members: list[Alert] | None = None) -> dict:
    """An incident as the API and the websocket give it, with its alerts."""
    members = members_of(incident) if members is None else members
    return {
        "id": incident.pk,
        "title": incident.title,
        "state": incident.state,
        "severity": incident.severity,
        "family": incident.family,
        "commune": commune_ref(incident.commune),
        "zone": zone_ref(incident.zone),
        "first_at": iso(incident.first_at),
        "last_at": iso(incident.last_at),
        "version": incident.version,
        "alert_count": len(members),
        "needs_acknowledgement": any(alert.needs_acknowledgement for alert in members),
        "alerts": [alert_summary(alert) for alert in members],
    }


def acknowledgeable(alert: Alert) -> bool:
    """Mirror of ``Alert.acknowledge``'s rule (and of the console's button)."""
    return alert.acknowledged_at is None or alert.state == AlertState.FIRING


def resolvable(alert: Alert) -> bool:
    """Mirror of ``Alert.resolve``'s rule."""
    return alert.state != AlertState.RESOLVED
