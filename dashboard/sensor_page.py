"""The page of one sensor: live charts of its metrics, rule thresholds, alerts, rejections.

The charts are drawn in the browser (static/js/sensor.js) from the readings API and the
live websocket; the page gives it, as JSON, what only the server knows: the metrics,
the thresholds of the rules that apply, the last values and the API's addresses.
"""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _

from alerts.models import Alert, AlertState, Rule, RuleKind, Severity
from core.fields import rfc3339
from core.roles import is_admin
from sensors.models import LatestReading, RejectedMessage, Sensor, Zone

ALERT_HISTORY = 50
REJECTIONS = 20
# The rule fields drawn as horizontal lines, and how the chart names them.
THRESHOLD_FIELDS = ("threshold", "threshold_high", "clear_threshold", "clear_threshold_high")


def threshold_lines(sensor: Sensor) -> list[dict]:
    """The thresholds of the active threshold rules applying to ``sensor``, one per line."""
    metrics = {metric.name for metric in sensor.metrics}
    kinds = {
        "threshold": _("seuil"),
        "threshold_high": _("borne haute"),
        "clear_threshold": _("seuil de retour"),
        "clear_threshold_high": _("seuil de retour haut"),
    }
    lines = []
    rules = Rule.objects.applying_to(sensor).filter(kind=RuleKind.THRESHOLD).order_by("name", "pk")
    for rule in rules:
        if rule.metric not in metrics:
            continue
        for name in THRESHOLD_FIELDS:
            value = getattr(rule, name)
            if value is None:
                continue
            lines.append(
                {
                    "rule": rule.pk,
                    "rule_name": rule.name,
                    "metric": rule.metric,
                    "severity": rule.severity,
                    "colour": Severity(rule.severity).colour,
                    "line": name,
                    "label": f"{rule.name} — {kinds[name]}",
                    "value": value,
                }
            )
    return lines


def sensor_detail(request, ref):
    """Show one sensor to the operators of its commune and to admins; 404 to others."""
    sensor = get_object_or_404(
        Sensor.objects.visible_to(request.user)
        .select_related("commune")
        .prefetch_related(Prefetch("zones", queryset=Zone.objects.order_by("name"))),
        ref=ref,
    )
    latest = {row.metric: row for row in LatestReading.objects.filter(sensor=sensor)}
    metrics = [
        {
            "name": metric.name,
            "label": metric.label,
            "unit": metric.unit,
            "minimum": metric.minimum,
            "is_state": metric.is_state,
            "digits": metric.digits,
            "latest": (
                {"t": rfc3339(latest[metric.name].ts), "v": latest[metric.name].value}
                if metric.name in latest
                else None
            ),
        }
        for metric in sensor.metrics
    ]
    alerts = list(
        Alert.objects.filter(sensor=sensor)
        .select_related("rule", "acknowledged_by", "resolved_by")
        .order_by("-opened_at", "-pk")[:ALERT_HISTORY]
    )
    for alert in alerts:
        alert.api_url = reverse("alert-detail", args=[alert.pk])
    rejections = None
    if is_admin(request.user):
        rejections = RejectedMessage.objects.filter(sensor_ref=sensor.ref).order_by(
            "-received_at", "-id"
        )[:REJECTIONS]
    page_data = {
        "sensor": sensor.ref,
        "expected_interval": sensor.expected_interval,
        "metrics": metrics,
        "thresholds": threshold_lines(sensor),
        "readings_url": reverse("sensor-readings", args=[sensor.ref]),
        "export_url": reverse("sensor-readings-export", args=[sensor.ref]),
        "alert_url": reverse("alert-detail", args=[0]).replace("/0/", "/{id}/"),
        "live_path": "/ws/live/",
        # The words of the choices, as the API names them; the script's own words come
        # from the JavaScript catalogue (static/js/i18n.js).
        "labels": {
            "states": {"online": _("En ligne"), "offline": _("Hors ligne")},
            "alert_states": {state.value: str(state.label) for state in AlertState},
            "severities": {severity.value: str(severity.label) for severity in Severity},
        },
    }
    context = {
        "sensor": sensor,
        "metrics": metrics,
        "latest_rows": [(metric, latest.get(metric["name"])) for metric in metrics],
        "alerts": alerts,
        "rejections": rejections,
        "page_data": page_data,
        "ranges": [("1h", "1 h"), ("24h", "24 h"), ("7d", _("7 j")), ("30d", _("30 j"))],
    }
    return render(request, "sensors/detail.html", context)
