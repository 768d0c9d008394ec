"""The filters of the PPMS API's lists (``core/filters.py``)."""

import django_filters
from django.utils.translation import gettext_lazy as _

from core.filters import BooleanFilter, ChoiceFilter, IdFilter, InseeFilter

from .models import Activation, Proposal, ProposalState, School, Shelter


class SchoolFilter(django_filters.FilterSet):
    commune = InseeFilter()
    zone = IdFilter(field_name="zones", help_text=_("Identifiant de la zone."))

    class Meta:
        model = School
        fields = ["commune", "zone"]


class ShelterFilter(django_filters.FilterSet):
    commune = InseeFilter()
    open = BooleanFilter(
        field_name="is_open",
        help_text=_("true : les centres ouverts ; false : les centres fermés."),
    )

    class Meta:
        model = Shelter
        fields = ["commune", "open"]


class ActivationFilter(django_filters.FilterSet):
    active = BooleanFilter(
        field_name="ended_at",
        lookup_expr="isnull",
        help_text=_("true : les déclenchements en cours ; false : ceux terminés."),
    )

    class Meta:
        model = Activation
        fields = ["active"]


class ProposalFilter(django_filters.FilterSet):
    state = ChoiceFilter(choices=ProposalState.choices)

    class Meta:
        model = Proposal
        fields = ["state"]
