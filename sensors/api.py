"""The sensors API (OpenAPI: /api/docs/): sensors, their history, latest values, rejections.

Each user sees the sensors of the communes they supervise (``Sensor.objects.visible_to``);
a sensor outside them is a 404. Every time is RFC 3339 in UTC.
"""

from operator import itemgetter

from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import exports
from core.fast import ORJSONRenderer, fetch_rows
from core.fields import query_params, rfc3339
from core.openapi import BAD_INPUT_RESPONSE as BAD_INPUT
from core.roles import sees_every_commune
from core.throttling import ExportRateThrottle

from .filters import RejectionFilter, SensorFilter
from .history import BUCKETS, readings_bucketed, readings_raw
from .metrics import metric_for
from .models import Commune, LatestReading, RejectedMessage, Sensor, Zone
from .serializers import (
    MAX_POINTS,
    BucketedSeriesSerializer,
    KindFilterSerializer,
    LatestSerializer,
    RawSeriesSerializer,
    ReadingsQuerySerializer,
    RejectedMessageSerializer,
    SensorSerializer,
    commune_ref,
    default_bucket,
)

EXPORTED_FILE = {
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.STR, description=_("Fichier CSV (csv-fr ou csv), en pièce jointe.")
    ),
    (200, "application/json"): OpenApiResponse(
        {"type": "array", "items": {"type": "object"}},
        description=_("Tableau JSON, en pièce jointe."),
    ),
}


class ReadingsExportQuerySerializer(ReadingsQuerySerializer):
    """A readings query and the file format; bounded by the export cap, not MAX_POINTS."""

    format = exports.FormatParam()

    def validate(self, attrs):
        # The readings checks (defaults, from < to, unit) without their bucket count,
        # which an export bounds by its own cap.
        query = super().validate({**attrs, "bucket": "raw"})
        span = query["to"] - query["from"]
        query["bucket"] = attrs.get("bucket") or default_bucket(span)
        if query["bucket"] != "raw":
            exports.ensure_within_cap(
                int(span / BUCKETS[query["bucket"]]), hint=_("Ou un créneau plus long.")
            )
        query["format"] = attrs["format"]
        return query


@extend_schema_view(
    list=extend_schema(
        summary=_("Capteurs visibles"),
        responses={200: SensorSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(summary=_("Un capteur")),
)
class SensorViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = SensorFilter
    serializer_class = SensorSerializer
    lookup_field = "ref"

    def get_queryset(self):
        return (
            Sensor.objects.visible_to(self.request.user)
            .select_related("commune")
            .prefetch_related(Prefetch("zones", queryset=Zone.objects.order_by("name")))
        )

    @extend_schema(
        summary=_("Historique d'une grandeur d'un capteur"),
        parameters=[ReadingsQuerySerializer],
        responses={
            200: PolymorphicProxySerializer(
                component_name="ReadingSeries",
                serializers=[RawSeriesSerializer, BucketedSeriesSerializer],
                resource_type_field_name=None,
            ),
            400: BAD_INPUT,
        },
    )
    @action(detail=True, methods=["get"])
    def readings(self, request, ref=None):
        sensor = self.get_object()
        query = query_params(ReadingsQuerySerializer, request, sensor=sensor)
        metric, start, end, bucket = query["metric"], query["from"], query["to"], query["bucket"]
        if bucket == "raw":
            rows = list(readings_raw(sensor, metric, start, end)[: MAX_POINTS + 1])
            if len(rows) > MAX_POINTS:
                message = _(
                    "Plus de %(max)s mesures sur cette période : choisissez un créneau "
                    "(bucket=1m, 5m, 1h ou 1d) ou une période plus courte."
                ) % {"max": MAX_POINTS}
                raise ValidationError({"bucket": [message]})
            points = [{"t": rfc3339(t), "v": v} for t, v in rows]
        else:
            points = [
                {"t": rfc3339(b.t), "avg": b.avg, "min": b.min, "max": b.max, "count": b.count}
                for b in readings_bucketed(sensor, metric, start, end, bucket)
            ]
        return Response(
            {
                "sensor": sensor.ref,
                "metric": metric,
                "unit": query["unit"],
                "bucket": bucket,
                "from": rfc3339(start),
                "to": rfc3339(end),
                "points": points,
            }
        )

    @extend_schema(
        summary=_("Exporter l'historique d'une grandeur d'un capteur (CSV ou JSON)"),
        parameters=[ReadingsExportQuerySerializer],
        responses={**EXPORTED_FILE, 400: BAD_INPUT, 413: exports.TOO_LARGE},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="readings/export",
        url_name="readings-export",
        # ?format= names the file format here; errors are answered in JSON.
        renderer_classes=[JSONRenderer],
        content_negotiation_class=exports.ExportNegotiation,
        throttle_classes=[ExportRateThrottle],
    )
    def readings_export(self, request, ref=None):
        sensor = self.get_object()
        query = query_params(ReadingsExportQuerySerializer, request, sensor=sensor)
        metric, start, end, bucket = query["metric"], query["from"], query["to"], query["bucket"]
        unit = query["unit"]
        if bucket == "raw":
            pairs = readings_raw(sensor, metric, start, end)
            exports.ensure_within_cap(
                pairs[: exports.max_rows() + 1].count(),
                hint=_("Ou un créneau : bucket=1m, 5m, 1h ou 1d."),
            )
            columns = [
                exports.Column("t", _("Horodatage (heure de Paris)"), time=True),
                exports.Column("v", _("Valeur (%(unit)s)") % {"unit": unit}),
            ]
            rows = pairs.iterator(chunk_size=exports.CHUNK_ROWS)
        else:
            columns = [
                exports.Column("t", _("Début du créneau (heure de Paris)"), time=True),
                exports.Column("avg", _("Moyenne (%(unit)s)") % {"unit": unit}),
                exports.Column("min", _("Minimum (%(unit)s)") % {"unit": unit}),
                exports.Column("max", _("Maximum (%(unit)s)") % {"unit": unit}),
                exports.Column("count", _("Nombre de mesures")),
            ]
            rows = (
                (b.t, b.avg, b.min, b.max, b.count)
                for b in readings_bucketed(sensor, metric, start, end, bucket)
            )
        return exports.export_response(
            request,
            columns=columns,
            rows=rows,
            fmt=query["format"],
            filename=f"{sensor.ref}_{metric}_{bucket}_{exports.stamp(start)}_{exports.stamp(end)}",
        )


class LatestView(APIView):
    # The town's every latest value: thousands of rows, the hottest read of the dashboard.
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        summary=_("Dernière valeur de chaque grandeur des capteurs visibles"),
        parameters=[KindFilterSerializer],
        responses={200: LatestSerializer, 400: BAD_INPUT},
    )
    def get(self, request):
        params = query_params(KindFilterSerializer, request)
        latest = LatestReading.objects.order_by()  # sorted below
        if not sees_every_commune(request.user):
            latest = latest.filter(sensor__in=Sensor.objects.visible_to(request.user))
        if "kind" in params:
            latest = latest.filter(sensor__kind=params["kind"])
        rows = fetch_rows(
            latest.values_list(
                "sensor__ref",
                "sensor__kind",
                "sensor__commune_id",
                "metric",
                "ts",
                "value",
                "sensor__state",
            )
        )
        # By sensor and metric, in code point order (the database's collation sorted
        # 4,000 rows slower than Python does, and may differ from one server to another).
        rows.sort(key=itemgetter(0, 3))
        # A few communes for thousands of rows, read apart (joined, their columns cost
        # more than this query, decoded again on every row): one reference object each.
        communes = {
            commune.pk: commune_ref(commune)
            for commune in Commune.objects.filter(pk__in={row[2] for row in rows})
        }
        units: dict[tuple[str, str], str] = {}
        items = []
        append = items.append
        for ref, kind, commune_id, metric, ts, value, state in rows:
            unit = units.get((kind, metric))
            if unit is None:
                registered = metric_for(kind, metric)
                unit = units[(kind, metric)] = registered.unit if registered else ""
            # ts: aware UTC from the database; ORJSONRenderer writes RFC 3339 with Z.
            append(
                {
                    "sensor": ref,
                    "kind": kind,
                    "commune": communes[commune_id],
                    "metric": metric,
                    "unit": unit,
                    "ts": ts,
                    "value": value,
                    "state": state,
                }
            )
        return Response({"items": items})


@extend_schema_view(
    get=extend_schema(
        summary=_("Messages MQTT rejetés (administrateurs)"),
        responses={200: RejectedMessageSerializer(many=True), 400: BAD_INPUT},
    )
)
class RejectionListView(generics.ListAPIView):
    filterset_class = RejectionFilter
    permission_classes = [IsAdminUser]
    serializer_class = RejectedMessageSerializer
    queryset = RejectedMessage.objects.order_by("-received_at", "-id")
