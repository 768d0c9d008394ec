"""The audit trail: who did what, and when, on every write (DOMAIN.md: kept for a set time)."""

from datetime import timedelta

from django.conf import settings
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
