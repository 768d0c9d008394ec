"""The alerts in CAP: one alert's CAP document, and the alerts' entries of the CAP Atom
feed (``core/feeds.py``; the provider is registered by ``csu/apps.py``)."""

from django.db.models import Max, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from core.cap import CAP_MEDIA_TYPE, feed_keep
from core.feeds import (
    FEED_LIMIT,
    CapRenderer,
    FeedItem,
    FeedPart,
    XMLDocumentView,
    api_url,
    left_at,
)

from .cap import alert_cap, cap_identifier, cap_sent, for_cap
from .models import Alert, AlertState


def open_alert_items(user) -> FeedPart:
    """The open alerts ``user`` may see, those resolved within the feed's keep, and when
    the last of the others left the feed."""
    visible = Alert.objects.visible_to(user)
    recent = Q(resolved_at__gte=timezone.now() - feed_keep())
    alerts = for_cap(visible.filter(~Q(state=AlertState.RESOLVED) | recent).order_by("-opened_at"))
    gone = visible.filter(state=AlertState.RESOLVED).exclude(recent)
    return FeedPart(
        alert_feed_items(alerts[:FEED_LIMIT]),
        left_at(gone.aggregate(Max("resolved_at"))["resolved_at__max"]),
    )


def alert_feed_items(alerts) -> list[FeedItem]:
    """The feed entries of ``alerts``: each its current CAP message."""
    return [
        FeedItem(
            id=cap_identifier(alert),
            title=alert.title,
            link=api_url(f"alerts/{alert.pk}/cap/"),
            updated=cap_sent(alert),
            summary=(
                f"{alert.get_severity_display()} · {alert.get_state_display()} · "
                f"capteur {alert.sensor.ref} · {alert.rule.name}"
            ),
            content=alert_cap(alert),
        )
        for alert in alerts
    ]


class AlertCapView(XMLDocumentView):
    renderer_classes = [CapRenderer]

    @extend_schema(
        summary="CAP 1.2 document of an alert",
        description=(
            "The alert's current CAP message: msgType Alert when it opens, then Update "
            "(responseType AllClear once resolved), referencing the first message."
        ),
        responses={(200, CAP_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR)},
        tags=["alerts"],
    )
    def get(self, request, pk: int):
        alert = get_object_or_404(for_cap(Alert.objects.visible_to(request.user)), pk=pk)
        return Response(alert_cap(alert))


alert_cap_view = AlertCapView.as_view()
