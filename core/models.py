"""The models of the bottom layer: the audit trail (who did what, and when, on every write,
kept AUDIT_RETENTION_DAYS) and the notifications with their webhooks."""

from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntryQuerySet(models.QuerySet):
    def expired(self, now=None):
        """Entries older than AUDIT_RETENTION_DAYS."""
        now = now or timezone.now()
        return self.filter(at__lt=now - timedelta(days=settings.AUDIT_RETENTION_DAYS))


class AuditEntry(models.Model):
    """One write request of a signed-in user (an operator's, a director's, an admin's)."""

    at = models.DateTimeField(_("date"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("utilisateur"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
    )
    # Kept as written: the trail outlives a deleted account.
    username = models.CharField(_("identifiant"), max_length=150)
    action = models.CharField(_("action"), max_length=80, db_index=True)
    method = models.CharField(_("méthode"), max_length=8)
    path = models.CharField(_("adresse"), max_length=300)
    target = models.CharField(_("objet"), max_length=200, blank=True)
    status = models.PositiveSmallIntegerField(_("réponse"))
    data = models.JSONField(_("données"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("entrée du journal d'audit")
        verbose_name_plural = _("journal d'audit")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target}".strip()

    @property
    def refused(self) -> bool:
        return self.status >= 400


# --- Notifications: the one outbox of the CSU (core/outbox.py) ---------------------------


class Webhook(models.Model):
    """A system to tell: police, pompiers, préfecture… JSON, HMAC-SHA256 signed.

    Rules name the webhooks their alerts go to; a ``ppms.PpmsWebhook`` makes one hear the
    PPMS activations too: one address, one secret and one delivery log for both.
    """

    name = models.CharField(_("nom"), max_length=120)
    url = models.URLField(_("adresse"), max_length=500)
    secret = models.CharField(
        _("secret"), max_length=200, help_text=_("Clé de la signature HMAC-SHA256.")
    )
    active = models.BooleanField(_("actif"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self):
        return self.name


class NotificationQuerySet(models.QuerySet):
    def expired(self, now=None):
        """Sent notifications older than NOTIFICATION_RETENTION_DAYS (with their deliveries)."""
        now = now or timezone.now()
        cutoff = now - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
        return self.filter(notified_at__isnull=False, created_at__lt=cutoff)


class Notification(models.Model):
    """Something that happened and must be told, written in the transaction of the change.

    It says everything that goes out: the live pushes (a channel-layer group and its
    payload), the e-mails, and the webhooks with the body they receive. ``notified_at``
    is set when a worker claimed it: null means still to send.
    """

    topic = models.CharField(_("sujet"), max_length=16)  # "alert" or "ppms"
    event = models.CharField(_("événement"), max_length=32)  # "opened", "activated"…
    created_at = models.DateTimeField(_("créée le"), default=timezone.now)
    # [{"group": "commune-3", "payload": {...}, "only_schools": [7, 8] | null}, …]
    live = models.JSONField(
        _("envois en direct"), default=list, blank=True, encoder=DjangoJSONEncoder
    )
    # [{"subject": "…", "body": "…", "to": ["…"]}, …]
    emails = models.JSONField(_("courriels"), default=list, blank=True, encoder=DjangoJSONEncoder)
    webhook_payload = models.JSONField(
        _("contenu des webhooks"), null=True, blank=True, encoder=DjangoJSONEncoder
    )
    webhooks = models.ManyToManyField(Webhook, blank=True, verbose_name=_("webhooks"))
    notified_at = models.DateTimeField(_("envoyée le"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["notified_at"],
                name="notification_unsent",
                condition=models.Q(notified_at__isnull=True),
            )
        ]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self):
        return f"{self.topic} {self.event} {self.created_at:%Y-%m-%d %H:%M:%S}"


class WebhookDelivery(models.Model):
    """The attempts to deliver one notification to one webhook."""

    class Status(models.TextChoices):
        PENDING = "pending", _("en attente")
        DELIVERED = "delivered", _("livré")
        FAILED = "failed", _("échec")

    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("webhook")
    )
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("notification"),
    )
    payload = models.JSONField(_("contenu"))
    status = models.CharField(_("état"), max_length=12, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("tentatives"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("dernier code HTTP"), null=True, blank=True
    )
    last_error = models.CharField(_("dernière erreur"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("livré le"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("envoi de webhook")
        verbose_name_plural = _("envois de webhooks")

    def __str__(self):
        return f"{self.webhook} #{self.pk} {self.status}"
