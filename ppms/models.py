from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from csu.roles import is_director, is_operator
from sensors.models import Commune, Zone


class SchoolQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Restrict to the schools of the user's communes (operators) or their own (directors)."""
        if user.is_superuser or user.is_staff:
            return self
        visible = Q(pk__in=[])
        if is_operator(user):
            visible |= Q(commune__in=Commune.objects.visible_to(user))
        if is_director(user):
            visible |= Q(directors=user)
        return self.filter(visible).distinct()


class School(models.Model):
    uai = models.CharField(
        _("code UAI"),
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^\d{7}[A-Z]$", _("Un code UAI : 7 chiffres et une lettre."))],
    )
    name = models.CharField(_("nom"), max_length=160)
    address = models.CharField(_("adresse"), max_length=255, blank=True)
    commune = models.ForeignKey(Commune, on_delete=models.PROTECT, related_name="schools")
    zones = models.ManyToManyField(Zone, blank=True, related_name="schools")
    latitude = models.FloatField(
        _("latitude"), validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        _("longitude"), validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    pupils = models.PositiveIntegerField(_("élèves"), default=0)
    staff = models.PositiveIntegerField(_("personnels"), default=0)
    directors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="schools",
        verbose_name=_("directeurs·rices"),
    )

    objects = SchoolQuerySet.as_manager()

    class Meta:
        ordering = ["commune__name", "name"]
        verbose_name = _("école")
        verbose_name_plural = _("écoles")

    def __str__(self):
        return f"{self.name} ({self.uai})"


class Shelter(models.Model):
    """A centre d'accueil (CARE): a gymnasium or hall that hosts people in a crisis."""

    name = models.CharField(_("nom"), max_length=160)
    address = models.CharField(_("adresse"), max_length=255, blank=True)
    commune = models.ForeignKey(Commune, on_delete=models.PROTECT, related_name="shelters")
    latitude = models.FloatField(
        _("latitude"), validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        _("longitude"), validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    capacity = models.PositiveIntegerField(_("capacité"))
    occupancy = models.PositiveIntegerField(_("occupation"), default=0)
    is_open = models.BooleanField(_("ouvert"), default=False)

    class Meta:
        ordering = ["commune__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["commune", "name"], name="shelter_unique_name")
        ]
        verbose_name = _("centre d'accueil")
        verbose_name_plural = _("centres d'accueil")

    def __str__(self):
        return self.name

    @property
    def is_full(self) -> bool:
        return self.occupancy >= self.capacity
