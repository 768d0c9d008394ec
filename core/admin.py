from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .audit import action_label
from .models import AuditEntry


class OutcomeFilter(admin.SimpleListFilter):
    title = _("résultat")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("done", _("effectuée")), ("refused", _("refusée ou en erreur"))]

    def queryset(self, request, queryset):
        if self.value() == "done":
            return queryset.filter(status__lt=400)
        if self.value() == "refused":
            return queryset.filter(status__gte=400)
        return queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The trail, read-only: written by core.audit, emptied by retention only."""

    list_display = ["at", "username", "action_display", "target", "status", "ip"]
    list_filter = [OutcomeFilter, "action", "at"]
    search_fields = ["username", "path", "target"]
    date_hierarchy = "at"
    list_select_related = ["user"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description=_("action"), ordering="action")
    def action_display(self, entry):
        return action_label(entry.action)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
