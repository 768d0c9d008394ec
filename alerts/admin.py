"""The admin of the alerts app: rules and silences are configured here.

Alerts are read-only: they change through the console and the API, whose actions write
the timeline.
"""

import copy
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdminMixin
from core.numbers import french_number
from sensors.metrics import display

from . import triggers
from .models import WEEKDAYS, Alert, AlertEvent, Rule, Silence
from .states import Status, states_of

# --- Rules -------------------------------------------------------------------------------


class RuleForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        label=_("jours"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Aucun jour coché : tous les jours."),
    )
    ppms_scenario = forms.ChoiceField(
        label=_("scénario PPMS à déclencher"),
        required=False,
        help_text=_("Ses alertes déclenchent ce scénario dans les écoles de leurs zones."),
    )
    # No Meta: the admin builds the form from Rule and RuleAdmin's fieldsets.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What a rule may set off is told by the apps above alerts (alerts/triggers.py).
        self.fields["ppms_scenario"].choices = [("", "---------"), *triggers.choices()]
        if self.instance.pk:
            self.initial["ppms_scenario"] = triggers.code_of(self.instance) or ""

    def clean(self):
        cleaned = super().clean()
        rule = copy.copy(self.instance)
        rule.duration = cleaned.get("duration") or timedelta(0)
        if problem := triggers.problem(rule, cleaned.get("ppms_scenario", "")):
            self.add_error("ppms_scenario", problem)
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = (
        "name",
        "kind",
        "sensor_kind",
        "metric",
        "aggregate",
        "condition",
        "threshold",
        "severity",
        "active",
    )
    list_filter = ("kind", "aggregate", "severity", "active", "sensor_kind")
    search_fields = ("name",)
    autocomplete_fields = ("sensor",)
    filter_horizontal = ("zones", "communes", "webhooks")
    fieldsets = (
        (None, {"fields": ("name", "kind", "severity", "active")}),
        (
            _("Portée"),
            {
                "fields": ("sensor", "sensor_kind", "zones", "communes", "water_points"),
                "description": _(
                    "Un capteur, ou les capteurs d'un type dans des zones ou communes "
                    "(aucune : toutes)."
                ),
            },
        ),
        (
            _("Condition"),
            {
                "fields": (
                    "metric",
                    "condition",
                    "threshold",
                    "threshold_high",
                    "clear_threshold",
                    "clear_threshold_high",
                    "rise",
                )
            },
        ),
        (
            _("Moyenne"),
            {
                "fields": (
                    "aggregate",
                    "daily_window",
                    "consecutive_hours",
                    "completeness",
                    "sensor_states",
                ),
                "description": _(
                    "Les seuils réglementaires portent sur des moyennes, calculées à partir "
                    "des agrégats horaires quand chaque heure est close."
                ),
            },
        ),
        (
            _("Durées"),
            {"fields": ("duration", "window", "escalate_after", "renotify_after", "auto_resolve")},
        ),
        (_("Horaires"), {"fields": ("days", "start_time", "end_time")}),
        (_("Notifications"), {"fields": ("notify_emails", "webhooks")}),
        (_("PPMS"), {"fields": ("ppms_scenario",)}),
    )

    readonly_fields = ("sensor_states",)

    @admin.display(description=_("dernières moyennes"))
    def sensor_states(self, rule):
        """Per sensor, the last mean judged and how complete it was, or why there was none."""
        if rule.pk is None or not rule.aggregate:
            return "—"
        # What the rules API gives as the rule's ``states`` (alerts/states.py).
        kind = {s.ref: s.kind for s in rule.sensors_in_scope()}
        rows = [
            (
                state.sensor,
                state.status.label,
                (
                    ""
                    if state.value is None
                    else display(kind[state.sensor], rule.metric, state.value)
                ),
                "" if state.completeness is None else french_number(state.completeness, 0, "%"),
                state.message,
            )
            for state in states_of(rule)
            if state.status != Status.NOT_JUDGED or state.reason is not None
        ]
        if not rows:
            return _("Aucune moyenne jugée pour l'instant.")
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("capteur"),
            _("état"),
            _("dernière moyenne"),
            _("complétude"),
            _("moyenne non calculée"),
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        triggers.set_for(obj, form.cleaned_data.get("ppms_scenario", ""))


# --- Alerts ------------------------------------------------------------------------------


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    fields = readonly_fields = ("event_at", "event_kind", "event_user", "event_text", "event_value")
    extra = 0
    can_delete = False
    ordering = ("at", "pk")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description=_("quand"))
    def event_at(self, event):
        return event.at

    @admin.display(description=_("événement"))
    def event_kind(self, event):
        return event.get_kind_display()

    @admin.display(description=_("qui"))
    def event_user(self, event):
        return event.user or "—"

    @admin.display(description=_("texte"))
    def event_text(self, event):
        return event.text

    @admin.display(description=_("valeur"))
    def event_value(self, event):
        return "—" if event.value is None else event.value


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "title",
        "state",
        "severity",
        "sensor",
        "opened_at",
        "acknowledged_by",
        "resolved_at",
    )
    list_filter = ("state", "severity", "flapping")
    list_select_related = ("sensor", "acknowledged_by")
    search_fields = ("title", "sensor__ref", "rule__name")
    date_hierarchy = "opened_at"
    inlines = [AlertEventInline]
    fieldsets = (
        (None, {"fields": ("title", "state", "severity", "flapping", "rule", "sensor", "metric")}),
        (
            _("Valeurs"),
            {
                "fields": (
                    "opened_at",
                    "first_value",
                    "peak_value",
                    "last_value",
                    "last_value_at",
                    "cleared_at",
                )
            },
        ),
        (
            _("Traitement"),
            {
                "fields": (
                    "acknowledged_at",
                    "acknowledged_by",
                    "snoozed_until",
                    "resolved_at",
                    "resolved_by",
                )
            },
        ),
    )


# --- Silences ----------------------------------------------------------------------------


class SilenceStateFilter(admin.SimpleListFilter):
    title = _("état")
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("active", _("En cours")), ("future", _("À venir")), ("past", _("Terminées"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.active_at(now)
        if self.value() == "future":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "past":
            return queryset.filter(ends_at__lte=now)
        return queryset


class SilenceForm(forms.ModelForm):
    class Meta:
        model = Silence
        fields = ("sensor", "rule", "starts_at", "ends_at", "reason")

    def clean(self):
        cleaned_data = super().clean()
        if not cleaned_data.get("sensor") and not cleaned_data.get("rule"):
            # On the field: the model's constraint, then skipped, would say it again.
            self.add_error("sensor", _("Choisissez un capteur ou une règle."))
        starts_at, ends_at = cleaned_data.get("starts_at"), cleaned_data.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", _("La fin doit suivre le début."))
        return cleaned_data


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    form = SilenceForm
    list_display = ("__str__", "reason", "starts_at", "ends_at", "created_by")
    list_filter = (SilenceStateFilter, "sensor__commune")
    list_select_related = ("sensor", "rule", "created_by")
    search_fields = ("reason", "sensor__ref", "rule__name")
    autocomplete_fields = ("sensor", "rule")
    readonly_fields = ("created_by", "created_at")
    date_hierarchy = "starts_at"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
