import json

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .api_tokens import token_issue, tokens_revoke
from .audit import action_label
from .models import (
    ApiToken,
    AuditEntry,
    DevicePush,
    Notification,
    SmsMessage,
    Webhook,
    WebhookDelivery,
)


class ReadOnlyAdminMixin:
    """Shown, never added, changed or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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


# --- API tokens --------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued here, shown once, listed by their first characters, and deleted
    (revoked); never changed, and their secret is nowhere to read (only its hash is kept,
    and never shown). Only a superuser issues one for a superuser."""

    list_display = ("prefix_display", "user", "name", "created", "expires", "last_used")
    list_filter = ("expires",)
    search_fields = ("user__username", "name", "prefix")
    list_select_related = ("user",)
    date_hierarchy = "created"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix_display", "created", "expires", "last_used")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = get_user_model().objects.filter(is_active=True)
            if not request.user.is_superuser:
                users = users.filter(is_superuser=False)
            kwargs["queryset"] = users.order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("jeton"), ordering="prefix")
    def prefix_display(self, token):
        return f"{token.prefix}…"

    def save_model(self, request, obj, form, change):
        token, secret = token_issue(user=obj.user, name=obj.name)
        obj.pk = token.pk
        obj.refresh_from_db()
        request._csu_api_token_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        # The secret is shown on this page only: no redirect, no message stored.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Jeton d'API créé"),
            "token": obj,
            "secret": request._csu_api_token_secret,
        }
        return TemplateResponse(request, "admin/core/apitoken/issued.html", context)

    def delete_model(self, request, obj):
        tokens_revoke(tokens=ApiToken.objects.filter(pk=obj.pk), reason="admin")

    def delete_queryset(self, request, queryset):
        tokens_revoke(tokens=queryset, reason="admin")


# --- Webhooks ----------------------------------------------------------------------------


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "active", "deliveries_link")
    list_filter = ("active",)
    search_fields = ("name", "url")
    readonly_fields = ("standard_secret",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("deliveries"))

    @admin.display(description=_("secret Standard Webhooks (à donner au destinataire)"))
    def standard_secret(self, webhook):
        return webhook.standard_secret if webhook.pk else ""

    @admin.display(description=_("envois"), ordering="delivery_count")
    def deliveries_link(self, webhook):
        url = reverse("admin:core_webhookdelivery_changelist")
        query = urlencode({"webhook__id__exact": webhook.pk})
        return format_html('<a href="{}?{}">{}</a>', url, query, webhook.delivery_count)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the CSU told, or is about to tell: written with each change, sent once."""

    list_display = ("created_at", "topic", "event", "notified_at")
    list_filter = ("topic", "event")
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "topic",
        "event",
        "created_at",
        "notified_at",
        "live_pretty",
        "emails_pretty",
        "webhook_payload_pretty",
    )

    @admin.display(description=_("envois en direct"))
    def live_pretty(self, notification):
        return format_html("<pre>{}</pre>", _pretty(notification.live))

    @admin.display(description=_("courriels"))
    def emails_pretty(self, notification):
        return format_html("<pre>{}</pre>", _pretty(notification.emails))

    @admin.display(description=_("contenu des webhooks"))
    def webhook_payload_pretty(self, notification):
        return format_html("<pre>{}</pre>", _pretty(notification.webhook_payload))


class DeliveryStatusFilter(admin.ChoicesFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("état")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # The model's fields have no French verbose names: the columns are labelled here.
    list_display = (
        "webhook",
        "delivery_event",
        "delivery_status",
        "delivery_attempts",
        "delivery_status_code",
        "delivery_error",
        "delivery_created_at",
        "delivery_delivered_at",
    )
    list_filter = (("status", DeliveryStatusFilter), "webhook")
    list_select_related = ("webhook", "notification")
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "webhook",
        "delivery_event",
        "delivery_status",
        "delivery_attempts",
        "delivery_status_code",
        "delivery_error",
        "delivery_created_at",
        "delivery_delivered_at",
        "delivery_payload",
    )

    @admin.display(description=_("événement"))
    def delivery_event(self, delivery):
        return delivery.notification

    @admin.display(description=_("état"), ordering="status")
    def delivery_status(self, delivery):
        return delivery.get_status_display()

    @admin.display(description=_("tentatives"), ordering="attempts")
    def delivery_attempts(self, delivery):
        return delivery.attempts

    @admin.display(description=_("dernier code HTTP"))
    def delivery_status_code(self, delivery):
        return delivery.last_status_code or "—"

    @admin.display(description=_("dernière erreur"))
    def delivery_error(self, delivery):
        return delivery.last_error or "—"

    @admin.display(description=_("créé le"), ordering="created_at")
    def delivery_created_at(self, delivery):
        return delivery.created_at

    @admin.display(description=_("livré le"), ordering="delivered_at")
    def delivery_delivered_at(self, delivery):
        return delivery.delivered_at or "—"

    @admin.display(description=_("contenu"))
    def delivery_payload(self, delivery):
        return format_html("<pre>{}</pre>", _pretty(delivery.payload))


def _pretty(payload) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False)


@admin.register(DevicePush)
class DevicePushAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each notification pushed to a director's device: accepted, received, or not."""

    list_display = (
        "created_at",
        "user",
        "about",
        "status",
        "attempts",
        "delivered_at",
        "received_at",
    )
    list_filter = ("status",)
    search_fields = ("about", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "user",
        "about",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "delivered_at",
        "received_at",
        "payload",
    )


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each text message to a school's crisis number: sent, delivered, or not."""

    list_display = ("created_at", "to", "about", "status", "attempts", "sent_at", "delivered_at")
    list_filter = ("status",)
    search_fields = ("about", "to")
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "to",
        "about",
        "text",
        "status",
        "attempts",
        "last_error",
        "gateway_id",
        "created_at",
        "sent_at",
        "delivered_at",
    )
