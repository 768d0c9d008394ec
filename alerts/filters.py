"""The filters of the alerts API's lists (``core/filters.py``)."""

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.filters import BooleanFilter, ChoiceFilter

from .models import Alert, AlertState, Incident, Severity, Silence


class AlertFilter(django_filters.FilterSet):
    state = ChoiceFilter(choices=AlertState.choices)
    severity = ChoiceFilter(choices=Severity.choices)
    attention = BooleanFilter(
        method="needing_attention",
        help_text=_(
            "true : les alertes ouvertes, et les avertissements ou pires résolus "
            "sans avoir été acquittés."
        ),
    )

    class Meta:
        model = Alert
        fields = ["state", "severity", "attention"]

    def needing_attention(self, queryset, name, value):
        return queryset.needing_attention() if value else queryset


class IncidentFilter(django_filters.FilterSet):
    state = ChoiceFilter(choices=AlertState.choices)
    severity = ChoiceFilter(choices=Severity.choices)
    attention = BooleanFilter(
        method="needing_attention",
        help_text=_(
            "true : les incidents dont une alerte est ouverte, ou un avertissement ou pire "
            "résolu sans avoir été acquitté."
        ),
    )

    class Meta:
        model = Incident
        fields = ["state", "severity", "attention"]

    def needing_attention(self, queryset, name, value):
        return queryset.needing_attention() if value else queryset


class SilenceFilter(django_filters.FilterSet):
    all = BooleanFilter(
        method="with_past",
        help_text=_(
            "true : aussi les mises en sourdine terminées ; par défaut en cours et à venir."
        ),
    )

    class Meta:
        model = Silence
        fields = ["all"]

    def with_past(self, queryset, name, value):
        return queryset  # what to leave out is decided by filter_queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("all"):
            queryset = queryset.filter(ends_at__gt=timezone.now())
        return queryset
