"""The models of the bottom layer: the audit trail (who did what, and when, on every write,
kept AUDIT_RETENTION_DAYS), the API tokens, and the notifications with their webhooks."""

import base64
import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def recorded_by(verbose_name) -> models.ForeignKey:
    """Who did it, kept on the record: a user who acted cannot be deleted (PROTECT);
    none when the system did it. No reverse accessor on the user."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=verbose_name,
    )


class AuditEntryQuerySet(models.QuerySet):
    def expired(self, now=None):
        """Entries older than AUDIT_RETENTION_DAYS."""
        now = now or timezone.now()
        return self.filter(at__lt=now - timedelta(days=settings.AUDIT_RETENTION_DAYS))


class AuditEntry(models.Model):
    """One write request of a signed-in user (an operator's, a director's, an admin's), or
    a failed sign-in (no user: the username it tried)."""

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


# --- API tokens (core/api_tokens.py authenticates with them) ----------------------------


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A key to the REST API for one user (an integrator's system, a script).

    Only the SHA-256 of the secret is kept: the secret is shown once, when the token is
    issued, and nobody can read it afterwards. Its first characters (``prefix``) name it
    in lists. It expires after API_TOKEN_DAYS, and is deleted when its user's password
    changes or the account is deactivated (core/api_tokens.py).
    """

    PREFIX_LENGTH = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("utilisateur"),
    )
    name = models.CharField(
        _("usage"),
        max_length=100,
        blank=True,
        help_text=_("Ce qui s'en sert, par exemple « SIG »."),
    )
    prefix = models.CharField(_("début du jeton"), max_length=PREFIX_LENGTH, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(_("créé le"), default=timezone.now, editable=False)
    expires = models.DateTimeField(_("expire le"), editable=False)
    last_used = models.DateTimeField(_("dernier usage"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-pk"]
        verbose_name = _("jeton d'API")
        verbose_name_plural = _("jetons d'API")

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, *, user, name: str = "") -> tuple["ApiToken", str]:
        """Create a token for ``user``; return it with its secret, never stored."""
        secret = secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=secret[: cls.PREFIX_LENGTH],
            digest=token_digest(secret),
            created=now,
            expires=now + timedelta(days=settings.API_TOKEN_DAYS),
        )
        return token, secret

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires


# --- Notifications: the one outbox of the CSU (core/outbox.py) ---------------------------


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Webhook(models.Model):
    """A system to tell: police, pompiers, préfecture… JSON signed per Standard Webhooks.

    Rules name the webhooks their alerts go to; a ``ppms.PpmsWebhook`` makes one hear the
    PPMS activations too: one address, one secret and one delivery log for both.

    A secret typed before Standard Webhooks (any text, not ``whsec_…``) keeps working with
    no migration: its UTF-8 bytes are the signing key, which the receiver is given as
    ``standard_secret`` (``whsec_`` and their base64), and the deprecated
    ``X-CSU-Signature`` still uses the text as it always did.
    """

    name = models.CharField(_("nom"), max_length=120)
    url = models.URLField(_("adresse"), max_length=500)
    secret = models.CharField(
        _("secret"),
        max_length=200,
        default=new_webhook_secret,
        help_text=_("Clé de la signature HMAC-SHA256."),
    )
    active = models.BooleanField(_("actif"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self):
        return self.name

    @property
    def signing_key(self) -> bytes:
        """The HMAC key of the ``webhook-signature`` header, as the receiver decodes it."""
        if self.secret.startswith("whsec_"):
            # Decoded as the standardwebhooks library does: lenient on missing padding.
            return base64.b64decode(self.secret.removeprefix("whsec_") + "==")
        return self.secret.encode()

    @property
    def standard_secret(self) -> str:
        """The secret to give the receiver for Standard Webhooks (``whsec_…``)."""
        if self.secret.startswith("whsec_"):
            return self.secret
        return "whsec_" + base64.b64encode(self.signing_key).decode()


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

    topic = models.CharField(_("sujet"), max_length=16)  # "alert", "incident" or "ppms"
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
    # Web Push to the devices of users: [{"users": [id, …], "about": "…", "payload": {…}}, …]
    devices = models.JSONField(
        _("notifications poussées"), default=list, blank=True, encoder=DjangoJSONEncoder
    )
    # Text messages: [{"to": ["+33…", …], "about": "…", "text": "…"}, …]
    texts = models.JSONField(_("SMS"), default=list, blank=True, encoder=DjangoJSONEncoder)
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

    @property
    def message_id(self) -> str:
        """The ``webhook-id`` header: the same on every attempt, the receiver's idempotency key."""
        return f"msg_csu_{self.pk}"


# --- Phones and browsers that receive Web Push (core/webpush.py) -------------------------


class PushSubscription(models.Model):
    """A device of a user that receives Web Push (W3C Push API): an installed director's
    page on a phone, say. Removed when its push service says it is gone (404, 410)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="push_subscriptions",
        verbose_name=_("utilisateur"),
    )
    endpoint = models.URLField(_("adresse du service de push"), max_length=1000, unique=True)
    p256dh = models.CharField(_("clé publique"), max_length=200)
    auth = models.CharField(_("secret d'authentification"), max_length=100)
    user_agent = models.CharField(_("navigateur"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("abonné le"), default=timezone.now)
    last_pushed_at = models.DateTimeField(_("dernier envoi réussi"), null=True, blank=True)

    class Meta:
        ordering = ["user", "-created_at"]
        verbose_name = _("abonnement aux notifications")
        verbose_name_plural = _("abonnements aux notifications")

    def __str__(self):
        return f"{self.user} · {self.user_agent[:40] or self.endpoint[:40]}"

    def subscription_info(self) -> dict:
        """The subscription as the Push API gives it (what pywebpush takes)."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def receipt_token() -> str:
    return secrets.token_urlsafe(16)


class DevicePush(models.Model):
    """One notification pushed to one device: accepted by its push service or not, then
    received by the device (its service worker says so, with the push's ``token``).

    ``about``: what the push is about for those who follow who was told how (the PPMS
    board: ``ppms:<activation>:<UAI>``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("en cours")
        DELIVERED = "delivered", _("remis au service de push")
        FAILED = "failed", _("non remis")
        GONE = "gone", _("appareil désabonné")

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="device_pushes"
    )
    subscription = models.ForeignKey(
        PushSubscription, on_delete=models.SET_NULL, null=True, related_name="pushes"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    about = models.CharField(max_length=40, blank=True, db_index=True)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(_("reçue par l'appareil le"), null=True, blank=True)
    token = models.CharField(max_length=32, default=receipt_token, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification poussée")
        verbose_name_plural = _("notifications poussées")

    def __str__(self):
        return f"{self.user} {self.about} {self.status}"


class SmsMessage(models.Model):
    """One text message of a notification to one phone number, through the SMS gateway
    (core/texting.py): sent (accepted by the gateway), then delivered or not (its receipt)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("en cours")
        SENT = "sent", _("envoyé")
        DELIVERED = "delivered", _("remis")
        FAILED = "failed", _("non remis")

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="sms")
    to = models.CharField(_("numéro"), max_length=20)
    about = models.CharField(max_length=40, blank=True, db_index=True)
    text = models.TextField(_("texte"))
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    gateway_id = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("SMS")
        verbose_name_plural = _("SMS")

    def __str__(self):
        return f"{self.to} {self.about} {self.status}"
