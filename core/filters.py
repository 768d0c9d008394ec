"""The query-string filters of the API's lists, with django-filter: one FilterSet a list.

A bad value is a 400 naming its field, like every bad input of the API: DRF's
``DjangoFilterBackend`` raises the FilterSet's errors. An empty value counts as absent,
as DRF reads a query string like an HTML form. The filters below say what is wrong in
the API's words: a choice names the accepted values, a boolean is true or false, a
commune is its INSEE code, an identifier fits the database's integers.
"""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

from .fields import insee_code


class ListFilterBackend(DjangoFilterBackend):
    """Filter the lists only: a detail, an action or a deletion ignores the query string."""

    def get_filterset_class(self, view, queryset=None):
        if getattr(view, "action", "list") != "list":
            return None
        return super().get_filterset_class(view, queryset)


class NamedChoiceField(forms.ChoiceField):
    """A choice whose error names the accepted values."""

    def validate(self, value):
        if value in self.empty_values or self.valid_value(value):
            return
        choices = ", ".join(str(key) for key, _label in self.choices if key != "")
        raise forms.ValidationError(
            _("« %(value)s » n'est pas une valeur possible ; valeurs possibles : %(choices)s."),
            code="invalid_choice",
            params={"value": value, "choices": choices},
        )


class StrictBooleanField(forms.Field):
    """true or false (and what DRF's BooleanField reads as such); anything else is an
    error, not "no filter" as django-filter's own boolean would have it."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value in serializers.BooleanField.TRUE_VALUES:
            return True
        if value in serializers.BooleanField.FALSE_VALUES:
            return False
        raise forms.ValidationError(_("true ou false."), code="invalid")


class ChoiceFilter(django_filters.ChoiceFilter):
    field_class = NamedChoiceField


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class InseeFilter(django_filters.CharFilter):
    """A commune, by its INSEE code."""

    def __init__(self, field_name="commune__insee_code", **kwargs):
        kwargs.setdefault("help_text", _("Code INSEE de la commune (par exemple 37122)."))
        kwargs["validators"] = [insee_code]
        super().__init__(field_name=field_name, **kwargs)


class IdFilter(django_filters.NumberFilter):
    """The identifier of a row: beyond the largest key (BigAutoField) the database could
    not even compare it."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs):
        kwargs.update(min_value=1, max_value=2**63 - 1)
        super().__init__(**kwargs)
