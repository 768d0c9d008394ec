"""Serializers of the sensors API: representations, and the validation of query parameters."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.fields import ChoiceParam, Rfc3339Field, UtcDateTimeField

from .history import BUCKETS
from .metrics import Kind, metric_for
from .models import Commune, RejectedMessage, Sensor, Zone

# Raw points one answer may hold; beyond, the client must choose a bucket.
MAX_POINTS = 10_000
DEFAULT_RANGE = timedelta(hours=24)


# --- Representations ------------------------------------------------------------------


class MetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField()
    label = serializers.CharField()
    min = serializers.FloatField(source="minimum")
    max = serializers.FloatField(source="maximum")


# A commune, a rule or a zone that an answer names is its reference object, everywhere:
# REST, the websocket and webhooks (a request names it by its id; docs/contract.md).


def commune_ref(commune: Commune) -> dict:
    return {"id": commune.pk, "insee_code": commune.insee_code, "name": commune.name}


class CommuneRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    insee_code = serializers.CharField()
    name = serializers.CharField()

    def to_representation(self, commune):
        return commune_ref(commune)


class ZoneRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Zone.Type.choices)


class SensorSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display")
    state_label = serializers.CharField(source="get_state_display")
    commune = CommuneRefSerializer()
    zones = ZoneRefSerializer(many=True)
    last_seen = UtcDateTimeField(allow_null=True)
    metrics = MetricSerializer(many=True)

    class Meta:
        model = Sensor
        fields = [
            "ref",
            "name",
            "kind",
            "kind_label",
            "commune",
            "zones",
            "latitude",
            "longitude",
            "building",
            "station_type",
            "water_point",
            "expected_interval",
            "active",
            "state",
            "state_label",
            "last_seen",
            "metrics",
        ]
        read_only_fields = fields


class RawPointSerializer(serializers.Serializer):
    t = UtcDateTimeField()
    v = serializers.FloatField()


class BucketPointSerializer(serializers.Serializer):
    t = UtcDateTimeField(help_text=_("Début du créneau."))
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    count = serializers.IntegerField()


class _SeriesSerializer(serializers.Serializer):
    sensor = serializers.CharField()
    metric = serializers.CharField()
    unit = serializers.CharField()
    bucket = serializers.CharField()
    # "from" is a Python keyword: the fields are renamed in get_fields().
    start = UtcDateTimeField()
    end = UtcDateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields


class RawSeriesSerializer(_SeriesSerializer):
    points = RawPointSerializer(many=True)


class BucketedSeriesSerializer(_SeriesSerializer):
    points = BucketPointSerializer(many=True)


class LatestItemSerializer(serializers.Serializer):
    sensor = serializers.CharField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    commune = CommuneRefSerializer()
    metric = serializers.CharField()
    unit = serializers.CharField()
    ts = UtcDateTimeField()
    value = serializers.FloatField()
    state = serializers.ChoiceField(choices=Sensor.State.choices)


class LatestSerializer(serializers.Serializer):
    items = LatestItemSerializer(many=True)


class RejectedMessageSerializer(serializers.ModelSerializer):
    received_at = UtcDateTimeField()
    reason_label = serializers.CharField(source="get_reason_display")

    class Meta:
        model = RejectedMessage
        fields = [
            "received_at",
            "topic",
            "sensor_ref",
            "reason",
            "reason_label",
            "detail",
            "metric",
            "payload",
        ]
        read_only_fields = fields


# --- Query parameters -----------------------------------------------------------------


class KindFilterSerializer(serializers.Serializer):
    kind = ChoiceParam(choices=Kind.choices, required=False)


class ReadingsQuerySerializer(serializers.Serializer):
    """The ``metric``, ``from``, ``to`` and ``bucket`` of a readings request."""

    metric = serializers.CharField(
        help_text=_("Une grandeur du type du capteur, par exemple pm25.")
    )
    start = Rfc3339Field(
        required=False, help_text=_("Début inclus (RFC 3339) ; par défaut 24 h avant la fin.")
    )
    end = Rfc3339Field(
        required=False, help_text=_("Fin exclue (RFC 3339) ; par défaut maintenant.")
    )
    bucket = ChoiceParam(
        choices=["raw", *BUCKETS],
        required=False,
        help_text=_(
            "Créneau d'agrégation ; par défaut raw jusqu'à 6 h, 5m jusqu'à 3 jours, 1h au-delà. "
            "1d suit les jours d'Europe/Paris."
        ),
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields

    def validate_metric(self, value):
        sensor = self.context["sensor"]
        if metric_for(sensor.kind, value) is None:
            names = ", ".join(m.name for m in sensor.metrics)
            raise serializers.ValidationError(
                _("« %(metric)s » n'est pas une grandeur de ce capteur ; grandeurs : %(names)s.")
                % {"metric": value, "names": names}
            )
        return value

    def validate(self, attrs):
        end = attrs.get("to")
        start = attrs.get("from")
        if end is None:
            end = timezone.now()
        if start is None:
            start = end - DEFAULT_RANGE
        if start >= end:
            raise serializers.ValidationError({"from": _("Le début doit précéder la fin (to).")})
        bucket = attrs.get("bucket") or default_bucket(end - start)
        if bucket != "raw" and (end - start) / BUCKETS[bucket] > MAX_POINTS:
            raise serializers.ValidationError(
                {
                    "bucket": _(
                        "Plus de %(max)s créneaux sur cette période : "
                        "choisissez un créneau plus long ou une période plus courte."
                    )
                    % {"max": MAX_POINTS}
                }
            )
        return {
            "metric": attrs["metric"],
            "from": start,
            "to": end,
            "bucket": bucket,
            "unit": metric_for(self.context["sensor"].kind, attrs["metric"]).unit,
        }


def default_bucket(span: timedelta) -> str:
    """Choose raw points for up to 6 h, 5-minute buckets up to 3 days, hours beyond."""
    if span <= timedelta(hours=6):
        return "raw"
    if span <= timedelta(days=3):
        return "5m"
    return "1h"
