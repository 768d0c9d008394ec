"""The page of one alert: its timeline, the sensor's readings around it, and the actions
of the dashboard's console (acknowledge, comment, resolve) through the same API.

The CAP messages' ``<web>`` and the alert e-mails link here. Operators of the sensor's
commune and admins see it; anyone else gets a 404, as from the API.
"""

from datetime import timedelta

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from alerts.models import Alert, AlertState
from sensors.history import readings_bucketed
from sensors.metrics import metric_for

# The readings shown: from an hour before the alert opened to an hour after it ended.
MARGIN = timedelta(hours=1)
# Past this span the table reads hourly buckets instead of five-minute ones.
FINE_SPAN = timedelta(hours=12)
LONGEST_SPAN = timedelta(days=7)


def readings_around(alert: Alert) -> dict | None:
    """The sensor's readings of the alert's metric around it, in buckets, oldest first."""
    if not alert.metric:
        return None
    start = alert.opened_at - MARGIN
    end = min((alert.resolved_at or timezone.now()) + MARGIN, timezone.now())
    start = max(start, end - LONGEST_SPAN)
    bucket = "5m" if end - start <= FINE_SPAN else "1h"
    metric = metric_for(alert.sensor.kind, alert.metric)
    return {
        "bucket": bucket,
        "unit": metric.unit if metric and metric.unit != "state" else "",
        "label": metric.label if metric else alert.metric,
        "rows": readings_bucketed(alert.sensor, alert.metric, start, end, bucket),
    }


@never_cache
def alert_detail(request, pk):
    """Show one alert to who may act on it; 404 to others."""
    alert = get_object_or_404(
        Alert.objects.visible_to(request.user).select_related(
            "rule", "sensor__commune", "acknowledged_by", "resolved_by"
        ),
        pk=pk,
    )
    events = alert.events.select_related("user").order_by("at", "pk")
    context = {
        "alert": alert,
        "events": events,
        "readings": readings_around(alert),
        "may_acknowledge": alert.acknowledged_at is None or alert.state == AlertState.FIRING,
        "may_resolve": alert.state != AlertState.RESOLVED,
        "api_url": reverse("alert-detail", args=[alert.pk]),
        "cap_url": reverse("alert-cap", args=[alert.pk]),
    }
    return render(request, "dashboard/alert.html", context)
