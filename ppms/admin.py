"""The admin of the PPMS app: schools with their PPMS plans and drills, centres d'accueil,
the webhooks that hear the PPMS, and the record of activations (read-mostly).

Activations are started and ended through the console and the API, which record who
and when and notify schools and safety services: here they are read, not written; only
a title may be corrected. Statuses and their updates are the schools' own reports: read-only.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdminMixin
from sensors.admin import CsvImportExportAdmin, ZonesInCommuneForm

from .models import (
    Activation,
    ActivationEvent,
    CommunePolicy,
    DirectoryEntry,
    Drill,
    EscalationStep,
    PpmsPlan,
    PpmsWebhook,
    Proposal,
    RuleTrigger,
    School,
    SchoolHoliday,
    SchoolStatus,
    Shelter,
    ShelterReport,
    StatusUpdate,
)
from .resources import SchoolResource


class ReadOnlyInline:
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PpmsPlanInline(admin.StackedInline):
    """One plan per posture (the four postures of the unified PPMS)."""

    model = PpmsPlan
    extra = 0
    max_num = 4


class DirectoryEntryInline(admin.TabularInline):
    """The school's crisis directory: roles and numbers, never names."""

    model = DirectoryEntry
    extra = 0
    max_num = 5
    fields = ("role", "phone", "note")


class DrillInline(admin.TabularInline):
    model = Drill
    extra = 0
    fields = ("held_on", "kind", "scenario", "notes", "activation")
    readonly_fields = ("activation",)
    ordering = ("-held_on",)


@admin.register(School)
class SchoolAdmin(CsvImportExportAdmin):
    resource_classes = [SchoolResource]
    form = ZonesInCommuneForm
    list_display = ("uai", "name", "commune", "pupils", "staff")
    list_filter = ("commune", "zones")
    search_fields = ("uai", "name", "address")
    list_select_related = ("commune",)
    filter_horizontal = ("zones", "directors")
    fieldsets = (
        (None, {"fields": ("uai", "name", "pupils", "staff", "directors")}),
        (_("Emplacement"), {"fields": ("address", "commune", "zones", "latitude", "longitude")}),
        (_("Horaires"), {"fields": ("open_days", "opens_at", "closes_at", "holiday_zone")}),
        (_("Joindre l'école en crise"), {"fields": ("crisis_phones", "sms_during_intrusion")}),
    )
    inlines = [DirectoryEntryInline, PpmsPlanInline, DrillInline]


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    """The escalation ladder of the schools that do not answer (ppms/ladder.py)."""

    list_display = ("after_minutes", "action")
    ordering = ("after_minutes", "pk")


@admin.register(Shelter)
class ShelterAdmin(admin.ModelAdmin):
    list_display = ("name", "commune", "capacity", "occupancy", "is_open")
    list_filter = ("commune", "is_open")
    search_fields = ("name", "address")
    list_select_related = ("commune",)


@admin.register(Drill)
class DrillAdmin(admin.ModelAdmin):
    list_display = ("school", "held_on", "kind", "scenario", "activation")
    list_filter = ("kind", "scenario", "school__commune")
    search_fields = ("school__uai", "school__name")
    list_select_related = ("school", "activation")
    autocomplete_fields = ("school",)
    readonly_fields = ("activation",)
    date_hierarchy = "held_on"


# --- Activations -------------------------------------------------------------------------


class SchoolStatusInline(ReadOnlyInline, admin.TabularInline):
    model = SchoolStatus
    fields = (
        "school",
        "state",
        "posture",
        "pupils_present",
        "pupils_missing",
        "pupils_injured",
        "adults_present",
        "adults_missing",
        "adults_injured",
        "updated_at",
        "updated_by",
        "escalated_at",
    )
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("school", "updated_by")


class ActivationEventInline(ReadOnlyInline, admin.TabularInline):
    model = ActivationEvent
    fields = ("at", "kind", "by", "schools", "text")
    readonly_fields = fields
    verbose_name_plural = _("chronologie (hors situations des écoles)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")


class ShelterReportInline(ReadOnlyInline, admin.TabularInline):
    model = ShelterReport
    fields = ("at", "by", "shelter", "arrivals", "staff", "supplies")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by", "shelter")


@admin.register(Activation)
class ActivationAdmin(admin.ModelAdmin):
    list_display = ("title", "scenario", "source", "drill", "started_at", "ended_at")
    list_filter = ("scenario", "source", "drill", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("title",)
    date_hierarchy = "started_at"
    list_select_related = ("started_by", "ended_by")
    fields = (
        "title",
        "scenario",
        "source",
        "drill",
        "alert",
        "zones",
        "shelter",
        "started_at",
        "started_by",
        "ended_at",
        "ended_by",
        "ended_on_order_of",
        "vigicrues_colour",
        "vigicrues_set_at",
        "vigicrues_set_by",
    )
    # Only the title may be corrected: the rest is what happened.
    readonly_fields = fields[1:]
    inlines = [SchoolStatusInline, ActivationEventInline, ShelterReportInline]

    def has_add_permission(self, request):
        return False  # started from the console or the API, which notify the schools

    def has_delete_permission(self, request, obj=None):
        return False  # the record of a crisis is kept


class StatusUpdateInline(ReadOnlyInline, admin.TabularInline):
    model = StatusUpdate
    fields = ("at", "by", "state", "data")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")


@admin.register(SchoolStatus)
class SchoolStatusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("school", "activation", "state", "posture", "updated_at", "escalated_at")
    list_filter = ("state", "posture", "activation__drill")
    search_fields = ("school__uai", "school__name", "activation__title")
    list_select_related = ("school", "activation")
    inlines = [StatusUpdateInline]


@admin.register(StatusUpdate)
class StatusUpdateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("status", "at", "by", "state")
    list_filter = ("state",)
    search_fields = ("status__school__uai", "status__school__name")
    list_select_related = ("status__school", "by")
    date_hierarchy = "at"


@admin.register(PpmsWebhook)
class PpmsWebhookAdmin(admin.ModelAdmin):
    list_display = ("webhook", "communes_list")
    list_select_related = ("webhook",)
    filter_horizontal = ("communes",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("communes")

    @admin.display(description=_("communes"))
    def communes_list(self, link):
        return ", ".join(commune.name for commune in link.communes.all()) or _("toutes")


@admin.register(RuleTrigger)
class RuleTriggerAdmin(admin.ModelAdmin):
    """The rules that propose a PPMS, how many sensors must confirm, and whether the
    proposal starts by itself when nobody answers."""

    list_display = ("rule", "scenario", "confirmations", "auto_activate_after")
    list_select_related = ("rule",)
    autocomplete_fields = ("rule",)


@admin.register(CommunePolicy)
class CommunePolicyAdmin(admin.ModelAdmin):
    list_display = ("commune", "operators_validate")
    list_select_related = ("commune",)
    fields = (
        "commune",
        "operators_validate",
        "family_message",
        "pcs_url",
        "dicrim_url",
        "vigicrues_url",
    )


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Proposals are decided on the PPMS board and through the API, which record who and
    when: here they are read."""

    list_display = ("title", "scenario", "state", "created_at", "decided_by", "decided_at")
    list_filter = ("state", "scenario")
    list_select_related = ("decided_by",)
    date_hierarchy = "created_at"


@admin.register(SchoolHoliday)
class SchoolHolidayAdmin(admin.ModelAdmin):
    """The school calendar: imported from the Ministry's, corrected here when needed."""

    list_display = ("name", "zone", "first_day", "last_day")
    list_filter = ("zone",)
    date_hierarchy = "first_day"
    search_fields = ("name",)
