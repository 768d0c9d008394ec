"""The PPMS API (OpenAPI: /api/docs/): schools and their alarm, centres d'accueil with
their occupancy, PPMS activations with the schools' statuses, and the drills register.

Schools: each user sees ``School.objects.visible_to`` (admins all, operators their
communes' schools, directors their own); a school outside is a 404.

Activations: each user sees those concerning a school they see, and within them only
the statuses (and the timeline lines) of those schools: a director sees their own
school's, an operator their communes'. Operators and admins start and end them; a
school's situation is given by its director, or by an operator on their behalf (the
status update records who). Every write goes through ``services`` (who and when, live
events, notices to the safety services).

Centres d'accueil: see ``visible_shelters``. Operators and admins record the occupancy
and open or close them; the audit trail (``core.audit``) keeps who, when and the
previous value.
"""

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Min, Prefetch, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from alerts.serializers import ActionErrorSerializer
from core import audit
from core.api import ID_REGEX, OperatorsAct, OperatorsOnly
from core.cap import CAP_MEDIA_TYPE
from core.feeds import CapRenderer, XMLDocumentView
from core.fields import query_params
from core.openapi import BAD_INPUT_RESPONSE as BAD_INPUT
from core.openapi import FORBIDDEN_RESPONSE as FORBIDDEN
from core.openapi import NOT_FOUND_RESPONSE as NOT_FOUND
from core.roles import is_admin, is_operator, watches_the_town
from sensors.models import Commune, Zone

from . import notify, proposals, services
from .cap import activation_cap, for_cap
from .filters import ActivationFilter, ProposalFilter, SchoolFilter, ShelterFilter
from .models import (
    Activation,
    ActivationEvent,
    ActivationEventKind,
    Drill,
    Proposal,
    School,
    SchoolStatus,
    Shelter,
    Source,
    StatusUpdate,
    check_drills,
    directory_of,
    school_year,
    year_dates,
)
from .proposals import may_validate, proposal_communes
from .reach import reach_of
from .serializers import (
    ActivationCreateSerializer,
    ActivationDetailSerializer,
    ActivationSerializer,
    AlarmSerializer,
    DrillFilterSerializer,
    DrillSerializer,
    EndSerializer,
    OccupancyRecordSerializer,
    OccupancySerializer,
    ProposalSerializer,
    ReachSerializer,
    ReasonSerializer,
    ReportSerializer,
    SchoolDirectorySerializer,
    SchoolDrillsSerializer,
    SchoolSerializer,
    SchoolStatusSerializer,
    SeenSerializer,
    ShelterOpenSerializer,
    ShelterReportInputSerializer,
    ShelterReportSerializer,
    ShelterSerializer,
    VigicruesSerializer,
)
from .summaries import proposal_summary

ACTION_REFUSED = OpenApiResponse(
    ActionErrorSerializer,
    description=_("Action impossible dans l'état du déclenchement (message dans detail)."),
)
ALREADY_DECIDED = OpenApiResponse(
    ActionErrorSerializer, description=_("Déjà validée, écartée ou annulée : rien ne change.")
)
UAI_PARAMETER = OpenApiParameter(
    "uai", OpenApiTypes.STR, OpenApiParameter.PATH, description=_("Code UAI de l'école.")
)


@contextmanager
def domain_refusals():
    """The domain's refusals (Django's ``ValidationError``) in the block, answered as a 400
    with a message per field; what the activation's state forbids, in ``detail``."""
    try:
        yield
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict"):
            raise ValidationError({"detail": error.messages}) from error
        errors = dict(error.message_dict)
        if "activation" in errors:
            errors["detail"] = errors.pop("activation")[0]
        raise ValidationError(errors) from error


# --- Schools -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary=_("Écoles visibles"),
        responses={200: SchoolSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(
        summary=_("Une école"), responses={200: SchoolSerializer, 404: NOT_FOUND}
    ),
)
class SchoolViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = SchoolFilter
    serializer_class = SchoolSerializer
    lookup_field = "uai"
    lookup_value_regex = r"[0-9]{7}[A-Z]"

    def shows_directors(self) -> bool:
        """Tell whether the caller sees who directs a school: operators and admins do.

        A director sees their own school, not who directs the others. The schema is
        generated for an anonymous caller: it documents the field all the same.
        """
        if getattr(self, "swagger_fake_view", False):
            return True
        return watches_the_town(self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "show_directors": self.shows_directors()}

    def get_queryset(self):
        schools = (
            School.objects.visible_to(self.request.user)
            .select_related("commune")
            .prefetch_related(Prefetch("zones", queryset=Zone.objects.order_by("name", "pk")))
            .order_by("commune__name", "name", "uai")
        )
        if self.shows_directors():
            directors = get_user_model().objects.order_by("username").only("pk", "username")
            schools = schools.prefetch_related(Prefetch("directors", queryset=directors))
        return schools

    @extend_schema(
        summary=_("Donner l'alarme depuis l'école (directeur·rice)"),
        description=_(
            "Rejoint le déclenchement en cours de la même posture qui concerne déjà l'école "
            "(200), sinon en démarre un pour l'école (201). Les opérateurs sont prévenus "
            "aussitôt, les services de secours par webhook. N'écrivez aucun nom dans le message."
        ),
        request=AlarmSerializer,
        responses={
            200: ActivationDetailSerializer,
            201: ActivationDetailSerializer,
            400: BAD_INPUT,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def alarm(self, request, uai=None):
        school = self.get_object()
        if not school.directors.filter(pk=request.user.pk).exists():
            raise PermissionDenied(_("Seuls les directeurs·rices de l'école donnent son alarme."))
        serializer = AlarmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        activation, created = services.ppms_alarm(
            school=school,
            scenario=serializer.validated_data["scenario"],
            message=serializer.validated_data["message"],
            by=request.user,
        )
        detail = activation_detail(request.user, activation.pk)
        return Response(
            ActivationDetailSerializer(detail).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary=_("L'annuaire de crise de l'école"),
        description=_(
            "Les rôles à joindre et leurs numéros (école, directeur·rice, adjoint·e, IEN, "
            "mairie d'astreinte), sans nom : pour les opérateurs de la commune de l'école "
            "et ses directeurs·rices."
        ),
        responses={200: SchoolDirectorySerializer, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def directory(self, request, uai=None):
        school = self.get_object()
        school.entries = directory_of(school)
        return Response(SchoolDirectorySerializer(school).data)


# --- Centres d'accueil -------------------------------------------------------------------


def visible_shelters(user):
    """The centres d'accueil ``user`` sees: their communes' ones, and open ones anywhere.

    A centre hosts the people of neighbouring towns too: an operator must see where
    there is room before sending anyone, so every open centre is visible to every
    operator. Closed ones stay within their commune. Directors see none: they run a
    school's PPMS, not the reception of evacuees.
    """
    if is_admin(user):
        return Shelter.objects.all()
    if not is_operator(user):
        return Shelter.objects.none()
    return Shelter.objects.filter(Q(commune__in=Commune.objects.visible_to(user)) | Q(is_open=True))


def may_record_occupancy(user, shelter) -> bool:
    """Tell whether ``user`` may record how many people ``shelter`` hosts.

    Its own commune's operators count the people it hosts; a neighbour sees an open
    centre but does not change its figures.
    """
    if is_admin(user):
        return True
    return (
        is_operator(user)
        and Commune.objects.visible_to(user).filter(pk=shelter.commune_id).exists()
    )


def update_shelter(request, shelter, **changes):
    """Apply ``changes`` (occupancy, is_open) under a row lock, note the previous values in
    the request's audit entry, and push the centre live once committed; return it, the
    previous values and the time."""
    with transaction.atomic():
        # Locked: two simultaneous counts each get their own "previous" value.
        shelter = Shelter.objects.select_for_update().select_related("commune").get(pk=shelter.pk)
        previous = {field: getattr(shelter, field) for field in changes}
        for field, value in changes.items():
            setattr(shelter, field, value)
        shelter.save(update_fields=list(changes))
        at = timezone.now()
        announce_shelter(shelter)
    audit.annotate(request, previous=previous)
    return shelter, previous, at


def announce_shelter(shelter) -> None:
    """Tell the centre to its commune's operators (the PPMS board), once committed."""
    notify.tell_live("shelter", notify.shelter_pushes(shelter))


@extend_schema_view(
    list=extend_schema(
        summary=_("Centres d'accueil visibles"),
        description=_(
            "Les centres des communes de l'opérateur, et les centres ouverts de toutes les "
            "communes (pour y orienter des personnes). Aucun pour les directeurs·rices."
        ),
        responses={200: ShelterSerializer(many=True), 400: BAD_INPUT},
    ),
)
class ShelterViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    filterset_class = ShelterFilter
    permission_classes = [IsAuthenticated, OperatorsAct]
    serializer_class = ShelterSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return (
            visible_shelters(self.request.user)
            .select_related("commune")
            .order_by("commune__name", "name", "pk")
        )

    @extend_schema(
        summary=_("Enregistrer l'occupation d'un centre d'accueil"),
        description=_(
            "Accepté au-delà de la capacité, avec un avertissement (warning). Chaque "
            "changement est enregistré avec son auteur et son heure."
        ),
        request=OccupancySerializer,
        responses={
            200: OccupancyRecordSerializer,
            400: BAD_INPUT,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def occupancy(self, request, pk=None):
        shelter = self.get_object()
        if not may_record_occupancy(request.user, shelter):
            raise PermissionDenied(
                _("Seuls les opérateurs de la commune du centre enregistrent son occupation.")
            )
        serializer = OccupancySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        occupancy = serializer.validated_data["occupancy"]

        shelter, previous, recorded_at = update_shelter(request, shelter, occupancy=occupancy)
        # The people are there whatever the capacity says: record them, but say so.
        warning = None
        if occupancy > shelter.capacity:
            warning = _("Capacité dépassée : %(occupancy)s personnes pour %(capacity)s places.") % {
                "occupancy": occupancy,
                "capacity": shelter.capacity,
            }
        shelter.previous_occupancy = previous["occupancy"]
        shelter.recorded_by = request.user.get_username()
        shelter.recorded_at = recorded_at
        shelter.warning = warning
        return Response(OccupancyRecordSerializer(shelter).data)

    @extend_schema(
        summary=_("Ouvrir ou fermer un centre d'accueil"),
        description=_(
            "Par les opérateurs de la commune du centre, les opérateurs de la métropole et "
            "les administrateurs. Chaque changement est enregistré avec son auteur et son "
            "heure, et poussé en direct aux opérateurs de la commune (événement ppms "
            "« shelter »)."
        ),
        request=ShelterOpenSerializer,
        responses={200: ShelterSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="open", url_name="open")
    def open_shelter(self, request, pk=None):
        shelter = self.get_object()
        if not may_record_occupancy(request.user, shelter):
            raise PermissionDenied(
                _("Seuls les opérateurs de la commune du centre l'ouvrent ou le ferment.")
            )
        serializer = ShelterOpenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        is_open = serializer.validated_data["open"]

        shelter, _previous, _at = update_shelter(request, shelter, is_open=is_open)
        return Response(ShelterSerializer(shelter).data)


# --- PPMS activations ----------------------------------------------------------------------


def visible_statuses(user):
    """The school statuses ``user`` sees: those of the schools they see."""
    return (
        SchoolStatus.objects.visible_to(user)
        .select_related("school", "updated_by")
        .order_by("school__name", "school__uai")
    )


def activations_for(user, *, detail: bool = False):
    """The activations ``user`` sees, with what their representation reads."""
    statuses = visible_statuses(user)
    if detail:
        updates = StatusUpdate.objects.select_related("by").order_by("at", "pk")
        statuses = statuses.prefetch_related(Prefetch("updates", queryset=updates))
    activations = (
        Activation.objects.visible_to(user)
        .select_related("started_by", "ended_by", "vigicrues_set_by", "shelter")
        .prefetch_related(
            Prefetch("zones", queryset=Zone.objects.order_by("name", "pk")),
            Prefetch("statuses", queryset=statuses, to_attr="visible_statuses"),
        )
        .order_by("-started_at", "-pk")
    )
    if detail:
        events = ActivationEvent.objects.select_related("by").order_by("at", "pk")
        activations = activations.prefetch_related(Prefetch("events", queryset=events))
    return activations


def activation_detail(user, pk: int) -> Activation:
    activation = activations_for(user, detail=True).get(pk=pk)
    activation.timeline = timeline(activation, everything=is_admin(user))
    return activation


# Within one instant: the start first, the end last.
KIND_RANK = {
    ActivationEventKind.STARTED: 0,
    ActivationEventKind.ENDED: 2,
    ActivationEventKind.CANCELLED: 2,
}
# Lines about the whole activation, not some of its schools.
WHOLE_ACTIVATION = (
    ActivationEventKind.STARTED,
    ActivationEventKind.ENDED,
    ActivationEventKind.CANCELLED,
)


def timeline(activation: Activation, *, everything: bool) -> list[dict]:
    """The start, every school's report, alarms, escalations and the end, in order.

    Lines about schools the user does not see are left out (``everything``: admins).
    """
    seen = {status.school.uai for status in activation.visible_statuses}
    lines = []
    for event in activation.events.all():
        schools = event.schools if everything else [uai for uai in event.schools if uai in seen]
        about_schools = event.kind not in WHOLE_ACTIVATION
        if about_schools and not schools:
            continue
        lines.append(
            {
                "at": event.at,
                "kind": event.kind,
                "by": event.by.get_username() if event.by else None,
                "schools": schools,
                "state": None,
                # A school's message is for those who see the school.
                "text": event.text if len(schools) == len(event.schools) else "",
                "data": None,
                "order": (event.at, KIND_RANK.get(event.kind, 1), 0, event.pk),
            }
        )
    for school_status in activation.visible_statuses:
        for update in school_status.updates.all():
            lines.append(
                {
                    "at": update.at,
                    "kind": "status",
                    "by": update.by.get_username() if update.by else None,
                    "schools": [school_status.school.uai],
                    "state": update.state,
                    "text": "",
                    "data": {k: v for k, v in update.data.items() if k != "client_id"},
                    "order": (update.at, 1, 1, update.pk),
                }
            )
    lines.sort(key=lambda line: line["order"])
    for line in lines:
        del line["order"]
    return lines


NOT_AN_AUTHORITY = _(
    "Réservé à qui peut valider un déclenchement PPMS : une autorité, ou les opérateurs "
    "des communes qui le leur confient, pour toutes les communes concernées."
)


def represent(user, proposals) -> list[dict]:
    """Proposals as the API shows them to ``user``: with whether they may decide."""
    return [
        proposal_summary(proposal) | {"may_decide": may_validate(user, proposal_communes(proposal))}
        for proposal in proposals
    ]


class AlreadyDecided(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("Cette proposition a déjà été décidée.")
    default_code = "already_decided"


@extend_schema_view(
    list=extend_schema(
        summary=_("Propositions de déclenchement visibles, les plus récentes d'abord"),
        description=_(
            "Une alerte sur une règle qui nomme un scénario PPMS propose le déclenchement ; "
            "une autorité le valide ou l'écarte. state=pending : celles qui attendent."
        ),
    ),
    retrieve=extend_schema(summary=_("Une proposition de déclenchement")),
)
class ProposalViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAuthenticated, OperatorsOnly]
    serializer_class = ProposalSerializer
    filterset_class = ProposalFilter
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return Proposal.objects.visible_to(self.request.user).order_by("-created_at", "-pk")

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(represent(self.request.user, page))

    def retrieve(self, request, pk=None):
        return Response(represent(self.request.user, [self.get_object()])[0])

    def decide(self, request, decision):
        """Check that ``request.user`` may decide, run ``decision(proposal)``, answer."""
        proposal = self.get_object()
        if not may_validate(request.user, proposal_communes(proposal)):
            raise PermissionDenied(NOT_AN_AUTHORITY)
        try:
            with domain_refusals():
                decision(proposal)
        except proposals.AlreadyDecided as error:
            raise AlreadyDecided(
                _("Cette proposition a déjà été décidée : %(state)s.") % {"state": error.args[0]}
            ) from error
        return Response(represent(self.request.user, [Proposal.objects.get(pk=proposal.pk)])[0])

    @extend_schema(
        summary=_("Valider : la proposition devient le déclenchement (autorité)"),
        request=None,
        responses={200: ProposalSerializer, 403: FORBIDDEN, 409: ALREADY_DECIDED},
    )
    @action(detail=True, methods=["post"])
    def validate(self, request, pk=None):
        return self.decide(
            request, lambda proposal: proposals.ppms_validate(proposal=proposal, by=request.user)
        )

    @extend_schema(
        summary=_("Écarter la proposition, avec le motif (autorité)"),
        request=ReasonSerializer,
        responses={200: ProposalSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 409: ALREADY_DECIDED},
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        reason = self.reason(request)
        return self.decide(
            request,
            lambda proposal: proposals.ppms_dismiss(
                proposal=proposal, by=request.user, reason=reason
            ),
        )

    @extend_schema(
        summary=_("Annuler une proposition faite par erreur, avec le motif (autorité)"),
        request=ReasonSerializer,
        responses={200: ProposalSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 409: ALREADY_DECIDED},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        reason = self.reason(request)
        return self.decide(
            request,
            lambda proposal: proposals.ppms_dismiss(
                proposal=proposal, by=request.user, reason=reason, cancelled=True
            ),
        )

    def reason(self, request) -> str:
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["reason"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Déclenchements PPMS visibles, les plus récents d'abord"),
        description=_(
            "Les effectifs par état (counts) sont ceux des écoles que vous voyez : un·e "
            "directeur·rice ne voit que ses écoles."
        ),
        responses={200: ActivationSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(
        summary=_("Un déclenchement, la situation des écoles et sa chronologie"),
        responses={200: ActivationDetailSerializer, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary=_("Déclencher le PPMS (opérateurs)"),
        description=_(
            "Pour les écoles des zones (zones) et les écoles choisies (schools), dans votre "
            "périmètre. drill=true : un exercice."
        ),
        request=ActivationCreateSerializer,
        responses={201: ActivationDetailSerializer, 400: BAD_INPUT, 403: FORBIDDEN},
    ),
)
class ActivationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = ActivationFilter
    permission_classes = [IsAuthenticated, OperatorsAct]
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return activations_for(self.request.user)

    def get_serializer_class(self):
        return ActivationSerializer if self.action == "list" else ActivationDetailSerializer

    def detail_response(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        activation = activation_detail(self.request.user, pk)
        return Response(ActivationDetailSerializer(activation).data, status=code)

    def retrieve(self, request, pk=None):
        return self.detail_response(self.get_object().pk)

    def create(self, request):
        user = request.user
        serializer = ActivationCreateSerializer(
            data=request.data,
            context={
                "zones": Zone.objects.filter(commune__in=Commune.objects.visible_to(user)),
                "schools": School.objects.visible_to(user),
                "shelters": visible_shelters(user),
            },
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with domain_refusals():
            activation = services.ppms_activate(
                scenario=data["scenario"],
                title=data["title"],
                source=Source.OPERATOR,
                zones=data["zones"],
                schools=data["schools"],
                drill=data["drill"],
                by=user,
                shelter=data["shelter"],
            )
        return self.detail_response(activation.pk, status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Donner la fin d'alerte (opérateurs, sur instruction des autorités)"),
        description=_(
            "Nommez l'autorité qui l'a ordonnée (ordered_by, sauf exercice) et confirmez "
            "chaque école sans réponse ou ayant besoin d'aide (confirmed_schools) : sans "
            "cela, la réponse 400 les nomme."
        ),
        request=EndSerializer,
        responses={
            200: ActivationDetailSerializer,
            400: ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        activation = self.get_object()
        serializer = EndSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with domain_refusals():
            services.ppms_end(activation=activation, by=request.user, **serializer.validated_data)
        return self.detail_response(activation.pk)

    @extend_schema(
        summary=_("Annuler un déclenchement envoyé par erreur (autorité)"),
        description=_(
            "Pas une fin d'alerte : chacun de ceux qui l'ont reçu apprend qu'il était une "
            "erreur (CAP Cancel, webhooks, pages). Réservé à qui peut valider un déclenchement."
        ),
        request=ReasonSerializer,
        responses={200: ActivationDetailSerializer, 400: ACTION_REFUSED, 403: FORBIDDEN},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        activation = self.get_object()
        communes = set(activation.statuses.values_list("school__commune_id", flat=True))
        if not may_validate(request.user, communes):
            raise PermissionDenied(NOT_AN_AUTHORITY)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with domain_refusals():
            services.ppms_cancel(
                activation=activation, by=request.user, reason=serializer.validated_data["reason"]
            )
        return self.detail_response(activation.pk)

    @extend_schema(
        summary=_("La situation de chaque école (les vôtres seulement pour un·e directeur·rice)"),
        responses={200: SchoolStatusSerializer(many=True), 404: NOT_FOUND},
    )
    # Every school of the activation at once, not a page: said so, or the schema pages it.
    @action(detail=True, methods=["get"], pagination_class=None)
    def statuses(self, request, pk=None):
        activation = self.get_object()
        return Response(SchoolStatusSerializer(activation.visible_statuses, many=True).data)

    @extend_schema(
        summary=_("Donner la situation d'une école"),
        description=_(
            "Par un·e directeur·rice de l'école, ou un opérateur pour son compte (enregistré "
            "avec son auteur). 201 : enregistrée ; 200 : déjà reçue avec ce client_id, "
            "rien n'est changé."
        ),
        parameters=[UAI_PARAMETER],
        request=ReportSerializer,
        responses={
            200: SchoolStatusSerializer,
            201: SchoolStatusSerializer,
            400: BAD_INPUT,
            404: NOT_FOUND,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"statuses/(?P<uai>[0-9]{7}[A-Z])",
        # A director gives their school's situation: not OperatorsAct.
        permission_classes=[IsAuthenticated],
    )
    def report(self, request, pk=None, uai=None):
        activation = get_object_or_404(Activation.objects.visible_to(request.user), pk=pk)
        school_status = get_object_or_404(
            visible_statuses(request.user), activation=activation, school__uai=uai
        )
        serializer = ReportSerializer(data=request.data, context={"school": school_status.school})
        serializer.is_valid(raise_exception=True)
        report = dict(serializer.validated_data)
        client_id = report.pop("client_id", None)
        with domain_refusals():
            school_status = services.ppms_report(
                status=school_status,
                report=report,
                by=request.user,
                client_id=str(client_id) if client_id else None,
            )
        code = status.HTTP_200_OK if school_status.replayed else status.HTTP_201_CREATED
        return Response(SchoolStatusSerializer(school_status).data, status=code)

    @extend_schema(
        summary=_("Relever un centre d'accueil pendant une évacuation"),
        description=_(
            "Par les opérateurs de la commune du centre (son personnel d'accueil) : les "
            "personnes arrivées par commune d'origine, le personnel présent, le "
            "ravitaillement. Au-delà de la capacité, enregistré avec un avertissement "
            "(warning), jamais refusé. Chaque relevé est gardé avec son auteur et son heure ; "
            "l'occupation du centre devient le total des arrivées."
        ),
        request=ShelterReportInputSerializer,
        responses={
            201: ShelterReportSerializer,
            400: ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"], url_path="shelter", url_name="shelter")
    def shelter_report(self, request, pk=None):
        activation = self.get_object()
        serializer = ShelterReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        shelter_id = data["shelter"] or activation.shelter_id
        if shelter_id is None:
            raise ValidationError(
                {"shelter": [_("Ce déclenchement n'envoie personne dans un centre d'accueil.")]}
            )
        shelter = visible_shelters(request.user).filter(pk=shelter_id).first()
        if shelter is None:
            raise ValidationError(
                {
                    "shelter": [
                        _("Centre d'accueil inconnu ou hors de votre périmètre : %(id)s.")
                        % {"id": shelter_id}
                    ]
                }
            )
        if not may_record_occupancy(request.user, shelter):
            raise PermissionDenied(
                _("Seuls les opérateurs de la commune du centre relèvent ses arrivées.")
            )
        with domain_refusals():
            report = services.ppms_shelter_report(
                activation=activation,
                shelter=shelter,
                arrivals=data["arrivals"],
                staff=data["staff"],
                supplies=data["supplies"],
                by=request.user,
            )
        return Response(ShelterReportSerializer(report).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Donner la vigilance Vigicrues d'une crue"),
        description=_(
            "La couleur lue sur vigicrues.gouv.fr (vert, jaune, orange, rouge ; vide pour "
            "l'effacer), pour un déclenchement lié à une zone inondable ; enregistrée avec "
            "son auteur et son heure, montrée au tableau et aux directeurs·rices."
        ),
        request=VigicruesSerializer,
        responses={
            200: ActivationDetailSerializer,
            400: ACTION_REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def vigicrues(self, request, pk=None):
        activation = self.get_object()
        serializer = VigicruesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with domain_refusals():
            services.ppms_vigicrues(
                activation=activation, colour=serializer.validated_data["colour"], by=request.user
            )
        return self.detail_response(activation.pk)

    @extend_schema(
        summary=_("Qui a été joint et comment, école par école"),
        description=_(
            "Pour chaque école que vous voyez : la page du directeur vue (seen_at), les "
            "notifications poussées (push : none, pending, sent, received, failed ; devices), "
            "les SMS aux numéros de crise (sms : none, not_needed, no_number, withheld, "
            "pending, sent, delivered, failed), l'appel demandé aux opérateurs, le "
            "signalement aux services, le premier signe de vie."
        ),
        responses={200: ReachSerializer(many=True), 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def reach(self, request, pk=None):
        activation = self.get_object()
        statuses = (
            visible_statuses(request.user)
            .filter(activation=activation)
            .select_related("activation")
            .annotate(first_reply_at=Min("updates__at"))
        )
        return Response(ReachSerializer(reach_of(statuses).values(), many=True).data)

    @extend_schema(
        summary=_("La page du directeur a affiché le déclenchement"),
        description=_(
            "Envoyé par la page d'un·e directeur·rice de l'école quand elle montre le "
            "déclenchement : le premier signe de vie de l'école. Une fois enregistré, "
            "les suivants ne changent rien."
        ),
        parameters=[UAI_PARAMETER],
        request=None,
        responses={200: SeenSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"statuses/(?P<uai>[0-9]{7}[A-Z])/seen",
        permission_classes=[IsAuthenticated],
    )
    def seen(self, request, pk=None, uai=None):
        activation = get_object_or_404(Activation.objects.visible_to(request.user), pk=pk)
        school_status = get_object_or_404(
            visible_statuses(request.user), activation=activation, school__uai=uai
        )
        if not school_status.school.directors.filter(pk=request.user.pk).exists():
            raise PermissionDenied(_("Réservé aux directeurs·rices de l'école."))
        seen_at = services.ppms_seen(status=school_status)
        return Response(SeenSerializer({"school": uai, "seen_at": seen_at}).data)


class ActivationCapView(XMLDocumentView):
    """The activation's current CAP 1.2 message, for the safety services' systems."""

    renderer_classes = [CapRenderer]
    restricted = True  # the safety services' copy; the public one is ActivationPublicCapView

    @extend_schema(
        summary="CAP 1.2 document of a PPMS activation (operators and admins)",
        description=(
            "msgType Alert when it starts, then Update (schools added, escalation, and the "
            "end of alert with responseType AllClear), referencing the first message; "
            "status Exercise for a drill. The safety services' copy: scope Restricted, "
            "the silent schools named, the missing and injured counted."
        ),
        responses={(200, CAP_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR), 403: FORBIDDEN},
        tags=["ppms"],
    )
    def get(self, request, pk: int):
        if not watches_the_town(request.user):
            raise PermissionDenied(_("Réservé aux opérateurs et aux administrateurs."))
        activation = get_object_or_404(
            for_cap(Activation.objects.visible_to(request.user), request.user), pk=pk
        )
        return Response(activation_cap(activation, restricted=self.restricted))


class ActivationPublicCapView(ActivationCapView):
    """The activation's CAP message for the public: no count of missing or injured, no
    silent school named, the families' message in the instruction."""

    restricted = False

    @extend_schema(
        summary="Public CAP 1.2 document of a PPMS activation (operators and admins)",
        description=(
            "The copy for the public (scope Public): the posture's instruction and the "
            "families' message; no count of missing or injured, no silent school named. "
            "An intrusion stays Restricted."
        ),
        responses={(200, CAP_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR), 403: FORBIDDEN},
        tags=["ppms"],
    )
    def get(self, request, pk: int):
        return super().get(request, pk)


activation_public_cap_view = ActivationPublicCapView.as_view()
activation_cap_view = ActivationCapView.as_view()


# --- Drills -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary=_("Registre des exercices PPMS de l'année scolaire, par école"),
        description=_(
            "Au moins deux exercices PPMS par année scolaire (1er septembre – 31 août), les "
            "exercices incendie à part : un en septembre-octobre, un deuxième avant les "
            "vacances d'hiver de la zone de l'école ; et le scénario intrusion exercé au "
            "moins une fois, avant les vacances d'été (circulaire du 8 juin 2023). "
            "overdue=true : les écoles dont une échéance est passée sans ses exercices."
        ),
        parameters=[DrillFilterSerializer],
        responses={200: SchoolDrillsSerializer(many=True), 400: BAD_INPUT, 403: FORBIDDEN},
    ),
    create=extend_schema(
        summary=_("Enregistrer un exercice tenu par une école"),
        request=DrillSerializer,
        responses={201: DrillSerializer, 400: BAD_INPUT, 403: FORBIDDEN},
    ),
)
class DrillViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, OperatorsOnly]
    serializer_class = DrillSerializer
    # The schema reads the model here; the list builds the register from the schools.
    queryset = Drill.objects.none()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["schools"] = School.objects.visible_to(self.request.user)
        return context

    def list(self, request):
        params = query_params(DrillFilterSerializer, request)
        today = timezone.localdate()
        start, end = school_year(today)
        calendar = year_dates(start)
        drills = Drill.objects.filter(held_on__range=(start, end)).order_by("held_on", "pk")
        schools = (
            School.objects.visible_to(request.user)
            .select_related("commune")
            .prefetch_related(Prefetch("drills", queryset=drills, to_attr="year_drills"))
            .order_by("commune__name", "name", "uai")
        )
        if "commune" in params:
            schools = schools.filter(commune__insee_code=params["commune"])
        register = []
        for school in schools:
            school.school_year = {"start": start, "end": end}
            school.requirements = check_drills(
                school.year_drills, today, calendar[school.holiday_zone]
            )
            school.overdue = any(check.overdue for check in school.requirements)
            if params["overdue"] is None or school.overdue == params["overdue"]:
                register.append(school)
        page = self.paginate_queryset(register)
        return self.get_paginated_response(SchoolDrillsSerializer(page, many=True).data)
