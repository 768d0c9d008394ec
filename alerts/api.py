"""The alerts API (OpenAPI: /api/docs/): alerts and operator actions, silences, rules.

Each user sees the alerts of the sensors of the communes they supervise
(``Alert.objects.visible_to``): an alert outside them is a 404, and a director sees
none. Operators and admins act; rules are configured by admins only. The actions are
the model's (``Alert.acknowledge``…), which record who and when on the timeline.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core import exports
from core.api import ID_REGEX, OperatorsAct
from core.fields import ChoiceParam, Rfc3339Field, query_params
from core.openapi import BAD_INPUT_RESPONSE as BAD_INPUT
from core.openapi import FORBIDDEN_RESPONSE as FORBIDDEN
from core.openapi import NOT_FOUND_RESPONSE as NOT_FOUND
from core.roles import is_admin, is_operator, sees_every_commune
from core.throttling import ExportRateThrottle
from sensors.api import EXPORTED_FILE
from sensors.models import Commune, Sensor

from . import incidents
from .filters import AlertFilter, IncidentFilter, SilenceFilter
from .models import (
    Alert,
    AlertActionError,
    AlertEvent,
    AlertState,
    Incident,
    Rule,
    Severity,
    Silence,
)
from .notify import tell, tell_incident
from .serializers import (
    AcknowledgeSerializer,
    ActionErrorSerializer,
    AlertDetailSerializer,
    AlertSerializer,
    CommentSerializer,
    IncidentAcknowledgeSerializer,
    IncidentCommentSerializer,
    IncidentConflictSerializer,
    IncidentResolveSerializer,
    IncidentSerializer,
    ResolveSerializer,
    RuleSerializer,
    SilenceSerializer,
)

ACTION_REFUSED = OpenApiResponse(
    ActionErrorSerializer,
    description=_(
        "Paramètre invalide (un message par champ), ou action impossible dans l'état de "
        "l'alerte (message dans detail)."
    ),
)


class IsCsuAdmin(BasePermission):
    message = _("Réservé aux administrateurs.")

    def has_permission(self, request, view):
        return is_admin(request.user)


# --- Alerts ------------------------------------------------------------------------------

EXPORT_DEFAULT_RANGE = timedelta(days=30)


class AlertExportQuerySerializer(serializers.Serializer):
    start = Rfc3339Field(
        required=False,
        help_text=_(
            "Début (RFC 3339) ; par défaut 30 jours avant la fin. Sont exportées les "
            "alertes en cours pendant la période : ouvertes avant sa fin, et non résolues "
            "avant son début."
        ),
    )
    end = Rfc3339Field(
        required=False, help_text=_("Fin exclue (RFC 3339) ; par défaut maintenant.")
    )
    state = ChoiceParam(choices=AlertState.choices, required=False)
    severity = ChoiceParam(choices=Severity.choices, required=False)
    # A slug: it goes into the file name.
    sensor = serializers.SlugField(required=False, help_text=_("Référence du capteur."))
    format = exports.FormatParam()

    def get_fields(self):
        # "from" is a Python keyword.
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields

    def validate(self, attrs):
        attrs["to"] = attrs.get("to") or timezone.now()
        attrs["from"] = attrs.get("from") or attrs["to"] - EXPORT_DEFAULT_RANGE
        if attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"from": _("Le début doit précéder la fin (to).")})
        return attrs


def _username(relation: str) -> str:
    return f"{relation}__{get_user_model().USERNAME_FIELD}"


ALERT_EXPORT = [
    # (column, the value's lookup)
    (exports.Column("id", _("N°")), "id"),
    (exports.Column("title", _("Titre")), "title"),
    (exports.Column("opened_at", _("Ouverte le (heure de Paris)"), time=True), "opened_at"),
    (exports.Column("resolved_at", _("Résolue le (heure de Paris)"), time=True), "resolved_at"),
    (exports.Column("state", _("État"), dict(AlertState.choices)), "state"),
    (exports.Column("severity", _("Gravité"), dict(Severity.choices)), "severity"),
    (exports.Column("sensor", _("Capteur")), "sensor__ref"),
    (exports.Column("commune", _("Commune")), "sensor__commune__name"),
    (exports.Column("metric", _("Grandeur")), "metric"),
    (exports.Column("rule", _("Règle")), "rule__name"),
    (exports.Column("first_value", _("Première valeur")), "first_value"),
    (exports.Column("last_value", _("Dernière valeur")), "last_value"),
    (exports.Column("peak_value", _("Valeur extrême")), "peak_value"),
    (exports.Column("acknowledged_by", _("Acquittée par")), _username("acknowledged_by")),
    (
        exports.Column("acknowledged_at", _("Acquittée le (heure de Paris)"), time=True),
        "acknowledged_at",
    ),
    (exports.Column("resolved_by", _("Résolue par")), _username("resolved_by")),
]


@extend_schema_view(
    list=extend_schema(
        summary=_("Alertes visibles, les plus récentes d'abord"),
        responses={200: AlertSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(
        summary=_("Une alerte et sa chronologie"),
        responses={200: AlertDetailSerializer, 404: NOT_FOUND},
    ),
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = AlertFilter
    permission_classes = [IsAuthenticated, OperatorsAct]
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        alerts = (
            Alert.objects.visible_to(self.request.user)
            .select_related("rule", "sensor__commune", "acknowledged_by", "resolved_by")
            .order_by("-opened_at", "-pk")
        )
        if self.action not in ("list", "export"):
            events = AlertEvent.objects.select_related("user").order_by("at", "pk")
            alerts = alerts.prefetch_related(Prefetch("events", queryset=events))
        return alerts

    def get_serializer_class(self):
        return AlertSerializer if self.action == "list" else AlertDetailSerializer

    @extend_schema(
        summary=_("Exporter les alertes visibles d'une période (CSV ou JSON)"),
        parameters=[AlertExportQuerySerializer],
        responses={**EXPORTED_FILE, 400: BAD_INPUT, 413: exports.TOO_LARGE},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export",
        # ?format= names the file format here; errors are answered in JSON.
        renderer_classes=[JSONRenderer],
        content_negotiation_class=exports.ExportNegotiation,
        throttle_classes=[ExportRateThrottle],
    )
    def export(self, request):
        params = query_params(AlertExportQuerySerializer, request)
        alerts = (
            self.get_queryset()
            .filter(opened_at__lt=params["to"])
            .exclude(resolved_at__lt=params["from"])
            .order_by("opened_at", "pk")
        )
        for name in ("state", "severity"):
            if name in params:
                alerts = alerts.filter(**{name: params[name]})
        if "sensor" in params:
            alerts = alerts.filter(sensor__ref=params["sensor"])
        exports.ensure_within_cap(alerts[: exports.max_rows() + 1].count())
        rows = alerts.values_list(*(lookup for _column, lookup in ALERT_EXPORT))
        name = "_".join(
            filter(
                None,
                [
                    "alertes",
                    params.get("sensor"),
                    exports.stamp(params["from"]),
                    exports.stamp(params["to"]),
                ],
            )
        )
        return exports.export_response(
            request,
            columns=[column for column, _lookup in ALERT_EXPORT],
            rows=rows.iterator(chunk_size=exports.CHUNK_ROWS),
            fmt=params["format"],
            filename=name,
        )

    def act(self, request, serializer_class, do):
        """Validate the body, run ``do(alert, data)`` on the locked alert, tell the timeline
        line it returns, answer the alert."""
        alert = self.get_object()
        with transaction.atomic():
            # Locked: two operators acknowledging at once get one success and one 400.
            alert = Alert.objects.select_for_update().get(pk=alert.pk)
            serializer = serializer_class(data=request.data, context={"alert": alert})
            serializer.is_valid(raise_exception=True)
            try:
                tell(do(alert, serializer.validated_data))
            except AlertActionError as error:
                raise ValidationError({"detail": error.args[0]}) from error
        return Response(AlertDetailSerializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(
        summary=_("Acquitter une alerte, avec un commentaire et un rappel facultatifs"),
        request=AcknowledgeSerializer,
        responses={200: AlertDetailSerializer, 400: ACTION_REFUSED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        def do(alert, data):
            minutes = data.get("snooze_minutes")
            snooze = timedelta(minutes=minutes) if minutes else None
            return alert.acknowledge(by=request.user, comment=data["comment"], snooze=snooze)

        return self.act(request, AcknowledgeSerializer, do)

    @extend_schema(
        summary=_("Résoudre une alerte à la main"),
        request=ResolveSerializer,
        responses={200: AlertDetailSerializer, 400: ACTION_REFUSED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        def do(alert, data):
            return alert.resolve(by=request.user, text=data["comment"])

        return self.act(request, ResolveSerializer, do)

    @extend_schema(
        summary=_("Commenter une alerte"),
        request=CommentSerializer,
        responses={200: AlertDetailSerializer, 400: ACTION_REFUSED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def comments(self, request, pk=None):
        def do(alert, data):
            return alert.comment(by=request.user, text=data["text"])

        return self.act(request, CommentSerializer, do)


# --- Incidents ---------------------------------------------------------------------------


INCIDENT_CHANGED = OpenApiResponse(
    IncidentConflictSerializer,
    description=_(
        "L'incident a changé depuis la version envoyée (une alerte ouverte, acquittée, "
        "résolue…) : l'incident tel qu'il est, à montrer à l'opérateur avant qu'il agisse."
    ),
)
INCIDENT_ACTION_REFUSED = OpenApiResponse(
    ActionErrorSerializer,
    description=_(
        "Paramètre invalide (un message par champ), ou aucune de ses alertes ne permet "
        "l'action (message dans detail)."
    ),
)


@extend_schema_view(
    list=extend_schema(
        summary=_("Incidents visibles (alertes de même cause), les plus récents d'abord"),
        responses={200: IncidentSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(
        summary=_("Un incident et ses alertes"),
        responses={200: IncidentSerializer, 404: NOT_FOUND},
    ),
)
class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    """Incidents of the communes the user supervises, like alerts; the actions apply to
    every member alert that allows them, each recorded on the alert's timeline."""

    filterset_class = IncidentFilter
    permission_classes = [IsAuthenticated, OperatorsAct]
    serializer_class = IncidentSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        members = Alert.objects.select_related(
            "rule", "sensor__commune", "acknowledged_by", "resolved_by"
        ).order_by("opened_at", "pk")
        return (
            Incident.objects.visible_to(self.request.user)
            .select_related("commune", "zone")
            .prefetch_related(Prefetch("alerts", queryset=members, to_attr="member_list"))
            .order_by("-last_at", "-pk")
        )

    def act(self, request, serializer_class, allowed, do, refusal):
        """Validate the body; lock the members, then the incident; refuse (409) if its
        version is not the one sent; run ``do(alert, data)`` on each member ``allowed``,
        telling the timeline line it returns; answer the incident."""
        incident = self.get_object()
        serializer = serializer_class(data=request.data, context={"alert": None})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            # Members first, then the incident: the order in which an evaluation locks.
            members = list(
                Alert.objects.select_for_update().filter(incident=incident).order_by("pk")
            )
            incident = Incident.objects.select_for_update().get(pk=incident.pk)
            if incident.version != data["version"]:
                current = IncidentSerializer(self.get_queryset().get(pk=incident.pk)).data
                message = _(
                    "L'incident a changé depuis votre lecture (version %(sent)d, maintenant "
                    "%(now)d) : vérifiez ses alertes, puis recommencez."
                ) % {"sent": data["version"], "now": incident.version}
                return Response(
                    {"detail": message, "incident": current}, status=status.HTTP_409_CONFLICT
                )
            targets = [alert for alert in members if allowed(alert)]
            if not targets:
                raise ValidationError({"detail": refusal})
            try:
                events = [do(alert, data) for alert in targets]
            except AlertActionError as error:
                raise ValidationError({"detail": error.args[0]}) from error
            for event in events:
                tell(event, incident=False)
            tell_incident(incident.pk, events[0].kind)  # once, not once per alert
        return Response(IncidentSerializer(self.get_queryset().get(pk=incident.pk)).data)

    @extend_schema(
        summary=_("Acquitter toutes les alertes de l'incident qui peuvent l'être"),
        request=IncidentAcknowledgeSerializer,
        responses={
            200: IncidentSerializer,
            400: INCIDENT_ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: INCIDENT_CHANGED,
        },
    )
    @action(detail=True, methods=["post"], url_path="acknowledge-all")
    def acknowledge_all(self, request, pk=None):
        def do(alert, data):
            minutes = data.get("snooze_minutes")
            snooze = timedelta(minutes=minutes) if minutes else None
            if alert.state == AlertState.RESOLVED:
                snooze = None  # a resolved alert is not reminded
            return alert.acknowledge(by=request.user, comment=data["comment"], snooze=snooze)

        return self.act(
            request,
            IncidentAcknowledgeSerializer,
            incidents.acknowledgeable,
            do,
            _("Toutes les alertes de cet incident sont déjà acquittées."),
        )

    @extend_schema(
        summary=_("Résoudre à la main toutes les alertes encore ouvertes de l'incident"),
        request=IncidentResolveSerializer,
        responses={
            200: IncidentSerializer,
            400: INCIDENT_ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: INCIDENT_CHANGED,
        },
    )
    @action(detail=True, methods=["post"], url_path="resolve-all")
    def resolve_all(self, request, pk=None):
        def do(alert, data):
            return alert.resolve(by=request.user, text=data["comment"])

        return self.act(
            request,
            IncidentResolveSerializer,
            incidents.resolvable,
            do,
            _("Toutes les alertes de cet incident sont déjà résolues."),
        )

    @extend_schema(
        summary=_("Commenter un incident (le commentaire va à chacune de ses alertes)"),
        request=IncidentCommentSerializer,
        responses={
            200: IncidentSerializer,
            400: INCIDENT_ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: INCIDENT_CHANGED,
        },
    )
    @action(detail=True, methods=["post"])
    def comments(self, request, pk=None):
        def do(alert, data):
            return alert.comment(by=request.user, text=data["text"])

        return self.act(
            request, IncidentCommentSerializer, lambda alert: True, do, _("Incident sans alerte.")
        )


# --- Silences ----------------------------------------------------------------------------


def visible_silences(user):
    """Silences of the sensors ``user`` sees, of their rules, and of the rules by kind."""
    if is_admin(user):
        return Silence.objects.all()
    if not is_operator(user):
        return Silence.objects.none()
    sensors = Sensor.objects.visible_to(user)
    return Silence.objects.filter(
        Q(sensor__in=sensors)
        | Q(rule__sensor__in=sensors)
        | Q(rule__isnull=False, rule__sensor__isnull=True)
    )


def silenceable_rules(user):
    """The rules ``user`` may mute: those that reach no commune outside their perimeter.

    A rule by kind with no commune or zone reaches every commune: muting it would mute
    the other communes' alerts too, so only a user who sees every commune may.
    """
    if sees_every_commune(user):
        return Rule.objects.all()
    communes = Commune.objects.visible_to(user)
    by_commune = Rule.communes.through.objects
    by_zone = Rule.zones.through.objects
    within_communes = Q(pk__in=by_commune.values("rule_id")) & ~Q(
        pk__in=by_commune.exclude(commune__in=communes).values("rule_id")
    )
    within_zones = Q(pk__in=by_zone.values("rule_id")) & ~Q(
        pk__in=by_zone.exclude(zone__commune__in=communes).values("rule_id")
    )
    return Rule.objects.filter(
        Q(sensor__in=Sensor.objects.visible_to(user))
        | (Q(sensor__isnull=True) & (within_communes | within_zones))
    )


def may_silence(user, silence) -> bool:
    """Tell whether ``user`` may have created (and so may end) ``silence``."""
    if (
        silence.sensor_id
        and not Sensor.objects.visible_to(user).filter(pk=silence.sensor_id).exists()
    ):
        return False
    return not silence.rule_id or silenceable_rules(user).filter(pk=silence.rule_id).exists()


@extend_schema_view(
    list=extend_schema(
        summary=_("Mises en sourdine en cours et à venir (toutes avec all=true)"),
        responses={200: SilenceSerializer(many=True), 400: BAD_INPUT},
    ),
    create=extend_schema(
        summary=_("Mettre en sourdine un capteur ou une règle (maintenance)"),
        responses={201: SilenceSerializer, 400: BAD_INPUT, 403: FORBIDDEN},
    ),
    destroy=extend_schema(
        summary=_("Terminer une mise en sourdine maintenant (supprimée si elle n'a pas commencé)"),
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class SilenceViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = SilenceFilter
    permission_classes = [IsAuthenticated, OperatorsAct]
    serializer_class = SilenceSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return (
            visible_silences(self.request.user)
            .select_related("sensor", "rule", "created_by")
            .order_by("-starts_at", "-pk")
        )

    def get_serializer(self, *args, **kwargs):
        if self.action == "create":
            user = self.request.user
            kwargs.update(sensors=Sensor.objects.visible_to(user), rules=silenceable_rules(user))
        return super().get_serializer(*args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    def perform_destroy(self, silence):
        if not may_silence(self.request.user, silence):
            raise PermissionDenied(
                _("Cette mise en sourdine concerne aussi des communes hors de votre périmètre.")
            )
        now = timezone.now()
        if silence.ends_at <= now:
            return  # over already: kept as history
        if silence.starts_at >= now:
            silence.delete()
        else:
            silence.ends_at = now
            silence.save(update_fields=["ends_at"])


# --- Rules -------------------------------------------------------------------------------


class RuleInUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _(
        "Cette règle a des alertes : désactivez-la (active=false) pour garder leur historique."
    )
    default_code = "rule_in_use"


@extend_schema_view(
    list=extend_schema(summary=_("Règles d'alerte (administrateurs)")),
    create=extend_schema(
        summary=_("Créer une règle (administrateurs)"),
        responses={201: RuleSerializer, 400: BAD_INPUT},
    ),
    retrieve=extend_schema(summary=_("Une règle (administrateurs)")),
    partial_update=extend_schema(
        summary=_("Modifier une règle (administrateurs)"),
        responses={200: RuleSerializer, 400: BAD_INPUT},
    ),
    destroy=extend_schema(
        summary=_("Supprimer une règle sans alerte (administrateurs)"),
        responses={
            204: None,
            409: OpenApiResponse(
                description=_("La règle a des alertes : la désactiver plutôt (active=false).")
            ),
        },
    ),
)
class RuleViewSet(viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, IsCsuAdmin]
    serializer_class = RuleSerializer
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return (
            Rule.objects.select_related("sensor")
            .prefetch_related("zones", "communes", "webhooks")
            .order_by("name", "pk")
        )

    def perform_destroy(self, rule):
        # Deleting a rule would delete its alerts and their timelines (after-action reports).
        if rule.alerts.exists():
            raise RuleInUse()
        rule.delete()
