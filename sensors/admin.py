from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from import_export.admin import ImportExportModelAdmin

from core.audit import annotate
from core.cache import forget_all
from core.roles import ADMINS, is_admin
from core.twofactor import second_factor_reset

from .models import Commune, LatestReading, Operator, RejectedMessage, Sensor, Zone
from .resources import CSV, SensorResource

# Reading is not registered: the Django 5.2 admin does not support its composite
# primary key. Readings are browsed on the dashboard and through the API.


class CsvImportExportAdmin(ImportExportModelAdmin):
    """Import and export as CSV, with the dry-run preview and per-line error report."""

    import_formats = [CSV]
    export_formats = [CSV]
    # With a BOM, spreadsheets open the accented names of an export correctly.
    to_encoding = "utf-8-sig"

    def has_import_permission(self, request):
        # An import creates and updates rows: a user who may only view must not import.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)


class ZonesInCommuneForm(forms.ModelForm):
    """Refuse zones of another commune than the object's, as the CSV import does."""

    def clean(self):
        cleaned_data = super().clean()
        commune, zones = cleaned_data.get("commune"), cleaned_data.get("zones")
        if commune and zones:
            foreign = [zone.name for zone in zones if zone.commune_id != commune.pk]
            if foreign:
                self.add_error(
                    "zones",
                    _("Ces zones ne sont pas dans la commune %(commune)s : %(zones)s.")
                    % {"commune": commune, "zones": ", ".join(foreign)},
                )
        return cleaned_data


class SensorForm(ZonesInCommuneForm):
    """The sensor form, with a write-only MQTT password (only its hash is stored)."""

    mqtt_password = forms.CharField(
        label=_("nouveau mot de passe MQTT"),
        required=False,
        min_length=12,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Laissez vide pour garder l'actuel. Le capteur se connecte avec sa référence "
            "comme identifiant ; lancez ensuite « manage.py mosquitto_auth »."
        ),
    )

    def save(self, commit=True):
        sensor = super().save(commit=False)
        if self.cleaned_data.get("mqtt_password"):
            sensor.set_mqtt_password(self.cleaned_data["mqtt_password"])
        if commit:
            sensor.save()
            self.save_m2m()
        return sensor


@admin.register(Commune)
class CommuneAdmin(admin.ModelAdmin):
    list_display = ("insee_code", "name")
    search_fields = ("insee_code", "name")


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    list_display = ("name", "commune", "type")
    list_filter = ("commune", "type")
    search_fields = ("name",)
    list_select_related = ("commune",)


@admin.register(Sensor)
class SensorAdmin(CsvImportExportAdmin):
    resource_classes = [SensorResource]
    form = SensorForm
    list_display = ("ref", "name", "kind", "commune", "state", "active", "last_seen")
    list_filter = ("kind", "station_type", "water_point", "commune", "state", "active", "zones")
    search_fields = ("ref", "name", "building")
    list_select_related = ("commune",)
    filter_horizontal = ("zones",)
    actions = ["activate", "deactivate"]
    # Ingest keeps these up to date; an edit by hand would be overwritten.
    readonly_fields = ("state", "state_since", "last_seen", "has_mqtt_password")
    fieldsets = (
        (None, {"fields": ("ref", "name", "kind", "station_type", "water_point", "active")}),
        (_("Emplacement"), {"fields": ("commune", "zones", "latitude", "longitude", "building")}),
        (_("Supervision"), {"fields": ("expected_interval", "state", "state_since", "last_seen")}),
        (_("Connexion MQTT"), {"fields": ("has_mqtt_password", "mqtt_password")}),
    )

    @admin.display(description=_("mot de passe MQTT défini"), boolean=True)
    def has_mqtt_password(self, sensor):
        return bool(sensor.mqtt_password_hash)

    @admin.display(description=_("état depuis"))
    def state_since(self, sensor):
        return sensor.state_changed_at

    @admin.action(description=_("Activer les capteurs sélectionnés"), permissions=["change"])
    def activate(self, request, queryset):
        count = queryset.update(active=True)
        forget_all()  # an update sends no signal: the caches would keep the old state
        self.message_user(
            request,
            ngettext("%(count)d capteur activé.", "%(count)d capteurs activés.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Désactiver les capteurs sélectionnés"), permissions=["change"])
    def deactivate(self, request, queryset):
        count = queryset.update(active=False)
        forget_all()  # an update sends no signal: the caches would keep the old state
        self.message_user(
            request,
            ngettext("%(count)d capteur désactivé.", "%(count)d capteurs désactivés.", count)
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(LatestReading)
class LatestReadingAdmin(admin.ModelAdmin):
    """The latest value of each metric, written by ingest only."""

    list_display = ("sensor_ref", "metric_name", "reading_value", "reading_ts")
    list_select_related = ("sensor",)
    search_fields = ("sensor__ref",)
    fields = readonly_fields = ("sensor_ref", "metric_name", "reading_value", "reading_ts")

    # The model's fields carry no French verbose names: label them here.
    @admin.display(description=_("capteur"), ordering="sensor__ref")
    def sensor_ref(self, reading):
        return reading.sensor.ref

    @admin.display(description=_("grandeur"), ordering="metric")
    def metric_name(self, reading):
        return reading.metric

    @admin.display(description=_("valeur"), ordering="value")
    def reading_value(self, reading):
        return reading.value

    @admin.display(description=_("horodatage"), ordering="ts")
    def reading_ts(self, reading):
        return reading.ts

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    """Messages ingest could not store: read them, delete them, register their sensor."""

    list_display = (
        "received_at",
        "topic",
        "sensor_ref",
        "reason",
        "metric",
        "detail",
        "register_sensor",
    )
    list_filter = ("reason",)
    date_hierarchy = "received_at"
    search_fields = ("topic", "sensor_ref", "detail")

    @admin.display(description=_("enregistrer"))
    def register_sensor(self, message):
        if message.reason != RejectedMessage.Reason.UNKNOWN_SENSOR or not message.sensor_ref:
            return ""
        url = reverse("admin:sensors_sensor_add") + "?" + urlencode({"ref": message.sensor_ref})
        return format_html('<a href="{}">{}</a>', url, _("Créer ce capteur"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OperatorInline(admin.StackedInline):
    """The communes an operator supervises, set on the user's page."""

    model = Operator
    max_num = 1
    filter_horizontal = ("communes",)
    verbose_name = _("périmètre d'opérateur")
    verbose_name_plural = _("périmètres d'opérateurs")


User = get_user_model()


class UserAdmin(DjangoUserAdmin):
    """Users, with their communes. An admin configures the town but makes nobody more
    than that, themselves included: only a superuser changes who is superuser, staff or
    in the admins' group, a user's own permissions, or a superuser's account (its
    password too). Every change is in the audit trail, as every admin write."""

    inlines = [*DjangoUserAdmin.inlines, OperatorInline]
    actions = ["reset_second_factor"]

    @admin.action(description=_("Réinitialiser la double authentification"), permissions=["change"])
    def reset_second_factor(self, request, queryset):
        """Delete the users' authenticator apps and recovery codes (a phone lost): they
        sign in again with their password and, if their role requires it, set up a new
        app. A superuser's only a superuser resets. In the audit trail with the names."""
        if not request.user.is_superuser and queryset.filter(is_superuser=True).exists():
            self.message_user(
                request,
                _(
                    "Seul un superutilisateur réinitialise la double authentification "
                    "d'un superutilisateur."
                ),
                messages.ERROR,
            )
            return
        users = list(queryset)
        for user in users:
            second_factor_reset(user=user)
        annotate(request, second_factor_reset=[user.get_username() for user in users])
        self.message_user(
            request,
            ngettext(
                "Double authentification réinitialisée pour %(count)d utilisateur.",
                "Double authentification réinitialisée pour %(count)d utilisateurs.",
                len(users),
            )
            % {"count": len(users)},
            messages.SUCCESS,
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ["is_superuser", "is_staff", "user_permissions"]
            if obj is not None and is_admin(obj):
                fields.append("groups")
        return fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.exclude(name=ADMINS)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


class GroupAdmin(DjangoGroupAdmin):
    """The role groups are set by the code (``core.roles.ensure_role_groups``): an admin
    sees them; only a superuser changes what a group may do."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)
# Nobody reads a user's authenticator secret or recovery codes, superusers included: the
# users' action resets a second factor (UserAdmin.reset_second_factor).
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)
