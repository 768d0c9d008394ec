"""Serializers of the alerts API: alerts and their timeline, actions, silences, rules.

An alert has the keys of ``payloads.alert_summary`` (the live push and the webhooks), so
a client merges what it fetched and what it was pushed without translating; times are
RFC 3339 in UTC like the rest of the API.
"""

import copy
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import RefRelatedField, Rfc3339Field, TextField, UtcDateTimeField
from sensors.models import Commune, Sensor, Zone
from sensors.serializers import CommuneRefSerializer, ZoneRefSerializer

from . import payloads, states, triggers
from .models import (
    Alert,
    AlertState,
    EventKind,
    Incident,
    Rule,
    RuleKind,
    Silence,
    Webhook,
)

COMMENT_MAX = 2000
SNOOZE_MAX_MINUTES = 24 * 60
SILENCE_MAX = timedelta(days=30)


# --- Alerts ------------------------------------------------------------------------------


class RuleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=RuleKind.choices)

    def to_representation(self, rule):
        return payloads.rule_ref(rule)


class AlertEventSerializer(serializers.Serializer):
    """One line of the timeline: the keys of ``payloads.event_summary``."""

    id = serializers.IntegerField()
    at = UtcDateTimeField()
    kind = serializers.ChoiceField(choices=EventKind.choices)
    user = serializers.CharField(
        source="user.get_username",
        allow_null=True,
        help_text=_("Qui : l'identifiant de l'utilisateur ; null pour le système."),
    )
    text = serializers.CharField()
    value = serializers.FloatField(allow_null=True)


class AlertSerializer(serializers.ModelSerializer):
    """An alert, with the keys of ``payloads.alert_summary``."""

    rule = RuleRefSerializer()
    sensor = serializers.CharField(source="sensor.ref", help_text=_("Référence du capteur."))
    commune = CommuneRefSerializer(source="sensor.commune", help_text=_("La commune du capteur."))
    opened_at = UtcDateTimeField()
    last_value_at = UtcDateTimeField(allow_null=True)
    cleared_at = UtcDateTimeField(
        allow_null=True, help_text=_("Quand la condition a disparu, si l'alerte reste ouverte.")
    )
    acknowledged_at = UtcDateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.get_username", allow_null=True)
    snoozed_until = UtcDateTimeField(allow_null=True)
    resolved_at = UtcDateTimeField(allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.get_username", allow_null=True)
    needs_acknowledgement = serializers.BooleanField()
    ppms_scenario = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "title",
            "state",
            "severity",
            "rule",
            "sensor",
            "commune",
            "metric",
            "opened_at",
            "first_value",
            "last_value",
            "last_value_at",
            "peak_value",
            "cleared_at",
            "flapping",
            "acknowledged_at",
            "acknowledged_by",
            "snoozed_until",
            "resolved_at",
            "resolved_by",
            "needs_acknowledgement",
            "ppms_scenario",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text=_("Le scénario PPMS que déclenche la règle de l'alerte, ou null."),
        )
    )
    def get_ppms_scenario(self, alert) -> str | None:
        return triggers.code_of(alert.rule)


class AlertDetailSerializer(AlertSerializer):
    timeline = AlertEventSerializer(source="events", many=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "timeline"]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=COMMENT_MAX, default=""
    )
    snooze_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=SNOOZE_MAX_MINUTES,
        help_text=_("Rappel si l'alerte est toujours active après ce délai (1 à 1440 min)."),
    )

    def validate(self, attrs):
        alert = self.context["alert"]
        if attrs.get("snooze_minutes") and alert.state == AlertState.RESOLVED:
            raise serializers.ValidationError(
                {"snooze_minutes": _("Une alerte résolue n'a pas de rappel.")}
            )
        return attrs


class ResolveSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=COMMENT_MAX, default=""
    )


class CommentSerializer(serializers.Serializer):
    text = TextField(max_length=COMMENT_MAX)


class ActionErrorSerializer(serializers.Serializer):
    """Why an action was refused: ``detail`` when the state forbids it, else a list of
    messages under each bad field's name."""

    detail = serializers.CharField(required=False)


# --- Incidents ---------------------------------------------------------------------------


class IncidentSerializer(serializers.ModelSerializer):
    """An incident with its alerts: the keys of ``incidents.incident_summary``."""

    commune = CommuneRefSerializer(help_text=_("La commune de l'incident."))
    zone = ZoneRefSerializer(
        allow_null=True, help_text=_("La zone de ses alertes ; null hors de toute zone.")
    )
    family = serializers.CharField(
        help_text=_(
            "La famille de règles : « <type de capteur>.<grandeur> » (water.level), "
            "« stuck:<type>.<grandeur> » pour une valeur figée, « offline » pour un capteur "
            "hors ligne."
        )
    )
    first_at = UtcDateTimeField(help_text=_("Ouverture de sa première alerte."))
    last_at = UtcDateTimeField(help_text=_("Ouverture de sa dernière alerte."))
    version = serializers.IntegerField(
        help_text=_(
            "Croît à chaque changement d'une de ses alertes : à renvoyer avec une action, "
            "refusée (409) si l'incident a changé depuis."
        )
    )
    alert_count = serializers.IntegerField()
    needs_acknowledgement = serializers.BooleanField(
        help_text=_("Une de ses alertes attend d'être acquittée.")
    )
    alerts = AlertSerializer(
        source="member_list", many=True, help_text=_("Ses alertes, la plus ancienne d'abord.")
    )

    class Meta:
        model = Incident
        fields = [
            "id",
            "title",
            "state",
            "severity",
            "family",
            "commune",
            "zone",
            "first_at",
            "last_at",
            "version",
            "alert_count",
            "needs_acknowledgement",
            "alerts",
        ]
        read_only_fields = fields

    def to_representation(self, incident):
        members = incident.member_list
        incident.alert_count = len(members)
        incident.needs_acknowledgement = any(alert.needs_acknowledgement for alert in members)
        return super().to_representation(incident)


class IncidentActionSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1,
        help_text=_(
            "La version de l'incident que l'opérateur a vue : s'il a changé depuis, l'action "
            "est refusée (409, avec l'incident tel qu'il est)."
        ),
    )


class IncidentAcknowledgeSerializer(IncidentActionSerializer, AcknowledgeSerializer):
    def validate(self, attrs):
        return attrs  # a snooze applies to the members still open


class IncidentResolveSerializer(IncidentActionSerializer, ResolveSerializer):
    pass


class IncidentCommentSerializer(IncidentActionSerializer, CommentSerializer):
    pass


class IncidentConflictSerializer(serializers.Serializer):
    """The incident changed since the version sent: why, and the incident as it is now."""

    detail = serializers.CharField()
    incident = IncidentSerializer()


# --- Silences ----------------------------------------------------------------------------


class SilenceSerializer(serializers.ModelSerializer):
    """A maintenance window; on creation, the sensor must be one the user supervises."""

    sensor = serializers.SlugRelatedField(
        slug_field="ref",
        queryset=Sensor.objects.none(),
        required=False,
        allow_null=True,
        help_text=_("Référence du capteur à mettre en sourdine."),
    )
    rule = RefRelatedField(
        RuleRefSerializer,
        queryset=Rule.objects.none(),
        required=False,
        allow_null=True,
        help_text=_("La règle à mettre en sourdine : son identifiant dans une demande."),
    )
    starts_at = Rfc3339Field(required=False, help_text=_("Début ; par défaut maintenant."))
    ends_at = Rfc3339Field(help_text=_("Fin : après le début, au plus 30 jours plus tard."))
    created_by = serializers.CharField(source="created_by.get_username", read_only=True)
    created_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Silence
        fields = [
            "id",
            "sensor",
            "rule",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "created_by", "created_at"]

    def __init__(self, *args, sensors=None, rules=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The targets the user may silence (see api.SilenceViewSet).
        if sensors is not None:
            self.fields["sensor"].queryset = sensors
        if rules is not None:
            self.fields["rule"].queryset = rules

    def validate(self, attrs):
        sensor, rule = attrs.get("sensor"), attrs.get("rule")
        if sensor and rule:
            message = _("Une mise en sourdine vise un capteur ou une règle, pas les deux.")
            raise serializers.ValidationError({"sensor": message, "rule": message})
        if not sensor and not rule:
            raise serializers.ValidationError(
                {
                    "sensor": _(
                        "Indiquez le capteur (sensor) ou la règle (rule) à mettre en sourdine."
                    )
                }
            )
        now = timezone.now()
        starts_at = attrs.setdefault("starts_at", now)
        ends_at = attrs["ends_at"]
        if ends_at <= starts_at:
            raise serializers.ValidationError({"ends_at": _("La fin doit suivre le début.")})
        if ends_at <= now:
            raise serializers.ValidationError({"ends_at": _("La fin est déjà passée.")})
        if ends_at - starts_at > SILENCE_MAX:
            raise serializers.ValidationError(
                {"ends_at": _("Une mise en sourdine dure au plus 30 jours.")}
            )
        return attrs


# --- Rules -------------------------------------------------------------------------------


class DurationSecondsField(serializers.IntegerField):
    """A duration as a whole number of seconds: simpler for integrators than ISO 8601."""

    # 366 days: beyond, the duration is a typing error, and a huge one overflows the
    # database and the date arithmetic of the evaluation.
    MAX_SECONDS = 366 * 86400

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", self.MAX_SECONDS)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        # Validated as an integer (bounds included), then made a duration.
        seconds = super().run_validation(data)
        return None if seconds is None else timedelta(seconds=seconds)

    def to_representation(self, value):
        return int(value.total_seconds())


# A time of day of the rule's hours: local (Europe/Paris) and without offset, which
# OpenAPI's "time" format (RFC 3339 full-time) would require.
@extend_schema_field({"type": "string", "format": "partial-time", "example": "22:00:00"})
class LocalTimeField(serializers.TimeField):
    pass


# API names of the model's duration fields: the model's errors are reported under them.
DURATION_FIELDS = {
    "duration": "duration_s",
    "window": "window_s",
    "escalate_after": "escalate_after_s",
    "renotify_after": "renotify_after_s",
}


class TriggerField(serializers.ChoiceField):
    """What the rule sets off (``alerts/triggers.py``): a PPMS scenario, or "" for nothing."""

    def __init__(self, **kwargs):
        kwargs.update(choices=[], source="*", required=False, allow_blank=True)
        super().__init__(**kwargs)

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.choices = triggers.choices()  # registered once the apps are ready

    def to_representation(self, rule):
        return triggers.code_of(rule) or ""

    def to_internal_value(self, data):
        return {self.field_name: super().to_internal_value(data)}


class CannotJudgeSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=[(r.value, r.value) for r in states.Reason],
        help_text=_(
            "no_period : le capteur n'a pas de période, la complétude ne peut être "
            "jugée ; incomplete : la dernière fenêtre n'avait pas assez de mesures "
            "pour une moyenne."
        ),
    )
    message = serializers.CharField(help_text=_("La raison, en français."))


class RuleSensorStateSerializer(serializers.Serializer):
    """What the rule makes of one sensor now (``alerts/states.py``)."""

    sensor = serializers.CharField(help_text=_("Référence du capteur."))
    status = serializers.ChoiceField(
        choices=[(s.value, s.value) for s in states.Status],
        help_text=_(
            "not_judged : rien d'évalué encore ; normal ; pending : la "
            "condition tient, pas encore assez longtemps ; firing : une alerte est "
            "ouverte ; cannot_judge : voir cannot_judge."
        ),
    )
    value = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "La dernière valeur comparée : la moyenne (règle sur une moyenne) ou la mesure."
        ),
    )
    window_start = UtcDateTimeField(
        allow_null=True, help_text=_("Début des heures de cette moyenne (règle sur une moyenne).")
    )
    window_end = UtcDateTimeField(allow_null=True, help_text=_("Fin de ces heures."))
    completeness = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Part (%) des données attendues derrière cette moyenne, comme « completeness »."
        ),
    )
    judged_until = UtcDateTimeField(
        allow_null=True,
        help_text=_("La dernière mesure jugée ; pour une moyenne, la fin de la dernière heure."),
    )
    cannot_judge = serializers.SerializerMethodField()
    alert = serializers.IntegerField(allow_null=True, help_text=_("L'alerte ouverte, ou null."))

    @extend_schema_field(CannotJudgeSerializer(allow_null=True))
    def get_cannot_judge(self, state) -> dict | None:
        if state.reason is None:
            return None
        return {"reason": state.reason.value, "message": state.message}


class RuleSerializer(serializers.ModelSerializer):
    """A threshold rule, validated as a whole by ``Rule.full_clean()``.

    Durations are whole numbers of seconds (``duration_s``, ``window_s``,
    ``escalate_after_s``, ``renotify_after_s``): simpler for integrators than ISO 8601.
    """

    sensor = serializers.SlugRelatedField(
        slug_field="ref",
        queryset=Sensor.objects.all(),
        required=False,
        allow_null=True,
        help_text=_("Référence du capteur, pour une règle sur un seul capteur."),
    )
    zones = RefRelatedField(
        ZoneRefSerializer, queryset=Zone.objects.all(), many=True, required=False
    )
    communes = RefRelatedField(
        CommuneRefSerializer, queryset=Commune.objects.all(), many=True, required=False
    )
    webhooks = serializers.PrimaryKeyRelatedField(
        queryset=Webhook.objects.all(), many=True, required=False
    )
    duration_s = DurationSecondsField(
        source="duration",
        required=False,
        help_text=_("Durée (en secondes) pendant laquelle la condition doit tenir ; 0 par défaut."),
    )
    window_s = DurationSecondsField(
        source="window",
        required=False,
        allow_null=True,
        help_text=_("Vitesse de montée ou valeur figée : la fenêtre, en secondes."),
    )
    escalate_after_s = DurationSecondsField(
        source="escalate_after",
        required=False,
        allow_null=True,
        help_text=_("Passe en critique si la condition tient aussi longtemps (secondes)."),
    )
    renotify_after_s = DurationSecondsField(
        source="renotify_after",
        required=False,
        allow_null=True,
        help_text=_(
            "Une alerte critique non acquittée est notifiée de nouveau après ce délai "
            "(secondes ; 900 par défaut)."
        ),
    )
    days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        help_text=_("Jours actifs, 0 = lundi … 6 = dimanche ; vide = tous."),
    )

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "kind",
            "active",
            "sensor",
            "sensor_kind",
            "zones",
            "communes",
            "water_points",
            "metric",
            "condition",
            "threshold",
            "threshold_high",
            "clear_threshold",
            "clear_threshold_high",
            "duration_s",
            "rise",
            "window_s",
            "aggregate",
            "daily_window",
            "consecutive_hours",
            "completeness",
            "severity",
            "escalate_after_s",
            "renotify_after_s",
            "auto_resolve",
            "days",
            "start_time",
            "end_time",
            "ppms_scenario",
            "notify_emails",
            "webhooks",
            "states",
        ]

    states = serializers.SerializerMethodField()
    ppms_scenario = TriggerField(help_text=_("Le scénario PPMS que ses alertes déclenchent."))

    @extend_schema_field(
        RuleSensorStateSerializer(
            many=True,
            help_text=_(
                "Ce que la règle fait de chaque capteur actif de son périmètre maintenant "
                "(lecture seule)."
            ),
        )
    )
    def get_states(self, rule) -> list[dict]:
        return RuleSensorStateSerializer(states.states_of(rule), many=True).data

    many_to_many = ("zones", "communes", "webhooks")
    not_on_the_model = (*many_to_many, "ppms_scenario")
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: LocalTimeField,
    }

    def validate(self, attrs):
        fields = {key: value for key, value in attrs.items() if key not in self.not_on_the_model}
        if self.instance is None:
            rule = Rule(**fields)
        else:
            rule = copy.copy(self.instance)
            for key, value in fields.items():
                setattr(rule, key, value)
        # Rule.clean() compares the clearing threshold with the threshold: without one it
        # would fail on None; the missing threshold is the error to report.
        if (
            rule.kind == RuleKind.THRESHOLD
            and rule.threshold is None
            and rule.clear_threshold is not None
        ):
            raise serializers.ValidationError({"threshold": _("Indiquez le seuil.")})
        try:
            rule.full_clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(
                {
                    "non_field_errors" if key == "__all__" else DURATION_FIELDS.get(key, key): value
                    for key, value in error.message_dict.items()
                }
            ) from error
        code = attrs.get("ppms_scenario")
        if code is None and self.instance is not None:
            code = triggers.code_of(self.instance) or ""
        if problem := triggers.problem(rule, code or ""):
            raise serializers.ValidationError({"ppms_scenario": [problem]})
        return attrs

    def create(self, validated_data):
        trigger = validated_data.pop("ppms_scenario", None)
        rule = super().create(validated_data)
        if trigger is not None:
            triggers.set_for(rule, trigger)
        return rule

    def update(self, rule, validated_data):
        trigger = validated_data.pop("ppms_scenario", None)
        rule = super().update(rule, validated_data)
        if trigger is not None:
            triggers.set_for(rule, trigger)
        return rule
