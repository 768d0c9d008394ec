"""The PPMS API (CONTRACT.md section 2): schools, and centres d'accueil with their occupancy.

Schools: each user sees ``School.objects.visible_to`` (admins all, operators their
communes' schools, directors their own); a school outside is a 404.

Centres d'accueil: see ``visible_shelters``. Operators and admins record the occupancy;
each change is logged with who and when on the ``csu.audit`` logger until an audit
trail model exists.
"""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from csu.roles import is_admin, is_operator
from sensors.api import BAD_INPUT, _query_params
from sensors.models import Commune, Zone

from .models import School, Shelter
from .serializers import (
    OccupancyRecordSerializer,
    OccupancySerializer,
    SchoolFilterSerializer,
    SchoolSerializer,
    ShelterFilterSerializer,
    ShelterSerializer,
)

audit = logging.getLogger("csu.audit")

FORBIDDEN = OpenApiResponse(description=_("Réservé à d'autres rôles, ou hors de votre périmètre."))
NOT_FOUND = OpenApiResponse(description=_("Inconnu, ou hors de votre périmètre."))


class OperatorsAct(BasePermission):
    """Everyone signed in reads (and sees their perimeter); operators and admins act."""

    message = _("Réservé aux opérateurs et aux administrateurs.")

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return is_operator(request.user) or is_admin(request.user)


# --- Schools -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary=_("Écoles visibles"),
        parameters=[SchoolFilterSerializer],
        responses={200: SchoolSerializer(many=True), 400: BAD_INPUT},
    ),
    retrieve=extend_schema(
        summary=_("Une école"), responses={200: SchoolSerializer, 404: NOT_FOUND}
    ),
)
class SchoolViewSet(viewsets.ReadOnlyModelViewSet):
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
        return is_operator(self.request.user) or is_admin(self.request.user)

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

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = _query_params(SchoolFilterSerializer, self.request)
        if "commune" in params:
            queryset = queryset.filter(commune__insee_code=params["commune"])
        if "zone" in params:
            queryset = queryset.filter(zones=params["zone"])
        return queryset


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


@extend_schema_view(
    list=extend_schema(
        summary=_("Centres d'accueil visibles"),
        description=_(
            "Les centres des communes de l'opérateur, et les centres ouverts de toutes les "
            "communes (pour y orienter des personnes). Aucun pour les directeurs·rices."
        ),
        parameters=[ShelterFilterSerializer],
        responses={200: ShelterSerializer(many=True), 400: BAD_INPUT},
    ),
)
class ShelterViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, OperatorsAct]
    serializer_class = ShelterSerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return (
            visible_shelters(self.request.user)
            .select_related("commune")
            .order_by("commune__name", "name", "pk")
        )

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = _query_params(ShelterFilterSerializer, self.request)
        if "commune" in params:
            queryset = queryset.filter(commune__insee_code=params["commune"])
        if params["open"] is not None:
            queryset = queryset.filter(is_open=params["open"])
        return queryset

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

        with transaction.atomic():
            # Locked: two simultaneous counts each get their own "previous" value.
            shelter = (
                Shelter.objects.select_for_update().select_related("commune").get(pk=shelter.pk)
            )
            previous = shelter.occupancy
            shelter.occupancy = occupancy
            shelter.save(update_fields=["occupancy"])
            recorded_at = timezone.now()

        # The people are there whatever the capacity says: record them, but say so.
        warning = None
        if occupancy > shelter.capacity:
            warning = _("Capacité dépassée : %(occupancy)s personnes pour %(capacity)s places.") % {
                "occupancy": occupancy,
                "capacity": shelter.capacity,
            }
        # TODO(hardening): an audit trail model; until then, the log is the record.
        audit.info(
            "shelter occupancy: shelter=%s commune=%s from=%s to=%s capacity=%s by=%s at=%s",
            shelter.pk,
            shelter.commune.insee_code,
            previous,
            occupancy,
            shelter.capacity,
            request.user.get_username(),
            recorded_at.isoformat(),
        )
        shelter.previous_occupancy = previous
        shelter.recorded_by = request.user.get_username()
        shelter.recorded_at = recorded_at
        shelter.warning = warning
        return Response(OccupancyRecordSerializer(shelter).data)
