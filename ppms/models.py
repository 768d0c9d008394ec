from dataclasses import dataclass
from datetime import date, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from alerts.models import Rule
from core import texting
from core.models import Webhook, recorded_by
from core.roles import is_director, is_operator, sees_every_commune, supervised_communes
from sensors.models import Commune, Zone


class Scenario(models.TextChoices):
    """The four postures of the unified PPMS (circular of 8 June 2023), in its own words,
    with what a CAP message tells of them."""

    SHELTER = "shelter", _("Se mettre à l'abri")
    CONFINEMENT = "confinement", _("Se confiner")
    EVACUATION = "evacuation", _("Évacuer")
    INTRUSION = "intrusion", _("S'échapper ou s'enfermer et se cacher")

    @property
    def cap_response(self) -> str:
        """The CAP responseType of the posture."""
        return {
            "shelter": "Shelter",
            "confinement": "Shelter",
            "evacuation": "Evacuate",
            "intrusion": "Avoid",
        }[self.value]

    @property
    def guidance(self) -> str:
        """The posture's standing instructions, shown to the director with the school's plan."""
        return {
            "shelter": _(
                "Rejoignez les lieux de mise à l'abri prévus, fermez portes et fenêtres, "
                "faites l'appel et restez-y jusqu'à la fin d'alerte."
            ),
            "confinement": _(
                "Fermez et calfeutrez portes, fenêtres et aérations (adhésif, linges "
                "mouillés), arrêtez ventilation et chauffage, éloignez-vous des ouvertures, "
                "faites l'appel."
            ),
            "evacuation": _(
                "Quittez les bâtiments par les itinéraires prévus, rejoignez le lieu indiqué "
                "(point de rassemblement ou centre d'accueil) et faites l'appel à l'arrivée."
            ),
            "intrusion": _(
                "Échappez-vous si vous le pouvez sans danger ; sinon enfermez-vous, "
                "barricadez-vous, éteignez la lumière, faites silence et mettez les téléphones "
                "en silencieux, jusqu'à l'arrivée des forces de l'ordre."
            ),
        }[self.value]

    @property
    def french(self) -> str:
        """The posture's wording in French, whatever the reader's language (CAP, SMS)."""
        with translation.override("fr"):
            return str(self.label)

    @property
    def cap_instruction(self) -> str:
        """What the public is told to do (French: CAP text is for the French authorities)."""
        return {
            "shelter": (
                "Se mettre à l'abri : rejoignez sans attendre un bâtiment clos et sûr, "
                "restez-y jusqu'à la fin de l'alerte."
            ),
            "confinement": (
                "Se confiner : restez à l'intérieur, fermez et calfeutrez portes, fenêtres "
                "et aérations, arrêtez la ventilation et la climatisation."
            ),
            "evacuation": (
                "Évacuer : quittez les lieux par les itinéraires prévus "
                "et rejoignez le point de rassemblement."
            ),
            "intrusion": (
                "S'échapper ou s'enfermer et se cacher : évitez le secteur ; échappez-vous "
                "si possible, sinon enfermez-vous et cachez-vous. Appelez le 17 ou "
                "écrivez au 114 par SMS."
            ),
        }[self.value]


class SchoolQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Restrict to the schools of the user's communes (operators) or their own (directors)."""
        communes = supervised_communes(user)
        if communes is None:
            return self
        visible = Q(pk__in=[])
        if is_operator(user):
            visible |= Q(commune__in=communes)
        if is_director(user):
            visible |= Q(directors=user)
        return self.filter(visible).distinct()


def phone_numbers(text: str) -> list[str]:
    """The phone numbers of a comma-separated list, in E.164; those that are not one are
    left as written (the validator refuses them)."""
    numbers = [part.strip() for part in text.split(",") if part.strip()]
    return [texting.normalized(number) or number for number in numbers]


def validate_phone_numbers(text: str) -> None:
    wrong = [
        part.strip() for part in text.split(",") if part.strip() and not texting.normalized(part)
    ]
    if wrong:
        raise ValidationError(
            _("Pas un numéro de téléphone : %(numbers)s.") % {"numbers": ", ".join(wrong)}
        )


def default_open_days() -> list[int]:
    """Monday, Tuesday, Thursday, Friday: the four-day week of most French schools."""
    return [0, 1, 3, 4]


class SchoolHolidayQuerySet(models.QuerySet):
    def on(self, day: date, zone: str):
        return self.filter(zone=zone, first_day__lte=day, last_day__gte=day)


class SchoolHoliday(models.Model):
    """Days without class in a holiday zone, from the first day to the last, inclusive.

    Imported from the Ministry's calendar (``manage.py import_school_holidays``) and
    edited in the admin (a school closed by the town, a local holiday).
    """

    zone = models.CharField(_("zone"), max_length=1, choices=[("A", "A"), ("B", "B"), ("C", "C")])
    name = models.CharField(_("nom"), max_length=80)
    first_day = models.DateField(_("premier jour sans classe"))
    last_day = models.DateField(_("dernier jour sans classe"))

    objects = SchoolHolidayQuerySet.as_manager()

    class Meta:
        ordering = ["first_day", "zone"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "first_day"], name="schoolholiday_unique"),
            models.CheckConstraint(
                condition=Q(last_day__gte=models.F("first_day")), name="schoolholiday_ordered"
            ),
        ]
        verbose_name = _("vacances scolaires")
        verbose_name_plural = _("vacances scolaires")

    def __str__(self):
        return f"{self.name} ({self.zone}) {self.first_day:%d/%m/%Y} – {self.last_day:%d/%m/%Y}"


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
    # When pupils are there: the school's hours, its days, and its holidays' zone.
    opens_at = models.TimeField(_("ouverture"), default=time(8, 20))
    closes_at = models.TimeField(_("fermeture"), default=time(16, 40))
    open_days = models.JSONField(
        _("jours de classe"),
        default=default_open_days,
        blank=True,
        help_text=_("0 = lundi … 6 = dimanche ; par défaut lundi, mardi, jeudi, vendredi."),
    )
    holiday_zone = models.CharField(
        _("zone de vacances"),
        max_length=1,
        choices=[("A", "A"), ("B", "B"), ("C", "C")],
        default="B",
    )
    # Reaching the school in a crisis: the numbers the escalation ladder texts and the
    # operators call (E.164 once saved), and whether its plan allows a text in an
    # intrusion (a phone that rings could betray people in hiding).
    crisis_phones = models.CharField(
        _("numéros de crise"),
        max_length=200,
        blank=True,
        validators=[validate_phone_numbers],
        help_text=_("Séparés par des virgules, p. ex. 06 12 34 56 78, 02 47 00 00 00."),
    )
    sms_during_intrusion = models.BooleanField(
        _("SMS pendant une intrusion"),
        default=False,
        help_text=_(
            "Seulement si le PPMS de l'école le prévoit (un téléphone qui sonne peut "
            "trahir des personnes cachées)."
        ),
    )

    objects = SchoolQuerySet.as_manager()

    class Meta:
        ordering = ["commune__name", "name"]
        verbose_name = _("école")
        verbose_name_plural = _("écoles")

    def __str__(self):
        return f"{self.name} ({self.uai})"

    def save(self, *args, **kwargs):
        self.crisis_phones = ", ".join(phone_numbers(self.crisis_phones))
        super().save(*args, **kwargs)

    @property
    def phones(self) -> list[str]:
        return phone_numbers(self.crisis_phones)

    def may_text(self, scenario: str) -> bool:
        """Whether the escalation ladder may text the school in this scenario."""
        return scenario != Scenario.INTRUSION or self.sms_during_intrusion

    def is_open(self, moment) -> bool:
        """Tell whether pupils are at school at ``moment`` (its days, hours and holidays)."""
        return self.pk in open_schools([self], moment)


class DirectoryRole(models.TextChoices):
    """The roles a school's crisis directory lists (circular of 8 June 2023, annex: the
    "annuaire de crise"): numbers of roles, never names."""

    SCHOOL = "school", _("École")
    DIRECTOR = "director", _("Directeur·rice")
    DEPUTY = "deputy", _("Adjoint·e")
    IEN = "ien", _("IEN de circonscription")
    TOWN_ON_CALL = "town_on_call", _("Mairie d'astreinte")


def validate_phone_number(text: str) -> None:
    if not texting.normalized(text):
        raise ValidationError(_("Pas un numéro de téléphone : %(numbers)s.") % {"numbers": text})


class DirectoryEntry(models.Model):
    """One line of a school's crisis directory: a role and the number to reach it."""

    school = models.ForeignKey(
        School, on_delete=models.CASCADE, related_name="directory", verbose_name=_("école")
    )
    role = models.CharField(_("rôle"), max_length=16, choices=DirectoryRole)
    phone = models.CharField(
        _("numéro"),
        max_length=32,
        validators=[validate_phone_number],
        help_text=_("Le numéro du rôle (pas de nom), p. ex. 02 47 00 00 00."),
    )
    note = models.CharField(
        _("précision"),
        max_length=120,
        blank=True,
        help_text=_("P. ex. « astreinte 24 h/24 », « portable de l'école ». Aucun nom."),
    )

    class Meta:
        ordering = ["school", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["school", "role"], name="directoryentry_unique_role")
        ]
        verbose_name = _("numéro de l'annuaire de crise")
        verbose_name_plural = _("annuaire de crise")

    def __str__(self):
        return f"{self.school} — {self.get_role_display()}"

    def save(self, *args, **kwargs):
        self.phone = texting.normalized(self.phone) or self.phone
        super().save(*args, **kwargs)


def directory_of(school) -> list[DirectoryEntry]:
    """A school's crisis directory in the circular's order (école, directeur·rice,
    adjoint·e, IEN, mairie d'astreinte), from ``school.directory`` (prefetched or not)."""
    order = {role: index for index, role in enumerate(DirectoryRole.values)}
    return sorted(school.directory.all(), key=lambda entry: order[entry.role])


def open_schools(schools, moment) -> set[int]:
    """The ids of the ``schools`` with pupils at ``moment``: a day and an hour of class,
    not a holiday of their zone (one query for them all)."""
    local = timezone.localtime(moment)
    on_holiday = set(
        SchoolHoliday.objects.filter(first_day__lte=local.date(), last_day__gte=local.date())
        .values_list("zone", flat=True)
        .distinct()
    )
    return {
        school.pk
        for school in schools
        if local.weekday() in (school.open_days or [])
        and school.opens_at <= local.time() < school.closes_at
        and school.holiday_zone not in on_holiday
    }


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


# --- The PPMS workflow -------------------------------------------------------------------


class SchoolState(models.TextChoices):
    PENDING = "pending", _("En attente")
    SAFE = "safe", _("En sûreté")
    NEEDS_HELP = "needs_help", _("Besoin d'aide")
    EVACUATED = "evacuated", _("Évacués")

    @property
    def colour(self) -> str:
        return {
            "pending": "#6f777b",
            "safe": "#00703c",
            "needs_help": "#d4351c",
            "evacuated": "#1d70b8",
        }[self.value]


class Source(models.TextChoices):
    ALERT = "alert", _("Alerte d'un capteur")
    OPERATOR = "operator", _("Opérateur du CSU")
    SCHOOL = "school", _("Alarme d'une école")


class PpmsPlan(models.Model):
    """What a school does for one posture: where it shelters, where it gathers, how."""

    school = models.ForeignKey(
        School, on_delete=models.CASCADE, related_name="plans", verbose_name=_("école")
    )
    scenario = models.CharField(_("posture"), max_length=16, choices=Scenario)
    sheltering_places = models.TextField(_("lieux de mise en sûreté"), blank=True)
    assembly_point = models.CharField(_("point de rassemblement"), max_length=255, blank=True)
    instructions = models.TextField(_("consignes"), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["school", "scenario"], name="ppmsplan_unique")
        ]
        verbose_name = _("plan PPMS")
        verbose_name_plural = _("plans PPMS")

    def __str__(self):
        return f"{self.school} — {self.get_scenario_display()}"


class DrillKind(models.TextChoices):
    PPMS = "ppms", _("Exercice PPMS")
    FIRE = "fire", _("Exercice d'évacuation incendie")


class Drill(models.Model):
    """A drill held by a school: PPMS drills (at least two per school year: circular of
    8 June 2023) and, kept apart, fire drills, which do not count for the PPMS."""

    school = models.ForeignKey(
        School, on_delete=models.CASCADE, related_name="drills", verbose_name=_("école")
    )
    kind = models.CharField(
        _("type d'exercice"), max_length=8, choices=DrillKind, default=DrillKind.PPMS
    )
    # The posture drilled (a PPMS drill's; a fire drill has none).
    scenario = models.CharField(_("posture"), max_length=16, choices=Scenario, blank=True)
    held_on = models.DateField(_("date"))
    notes = models.TextField(
        _("observations"), blank=True, help_text=_("Aucun nom d'élève ni de personne.")
    )
    activation = models.ForeignKey(
        "Activation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="drills",
        verbose_name=_("déclenchement d'exercice"),
    )

    class Meta:
        ordering = ["-held_on"]
        verbose_name = _("exercice PPMS")
        verbose_name_plural = _("exercices PPMS")

    def __str__(self):
        return f"{self.school} — {self.held_on:%d/%m/%Y}"

    def clean(self):
        if self.kind == DrillKind.PPMS and not self.scenario:
            raise ValidationError({"scenario": _("Un exercice PPMS exerce une posture.")})


def school_year(day: date) -> tuple[date, date]:
    """The school year holding ``day``: September 1 to August 31."""
    start = date(day.year if day.month >= 9 else day.year - 1, 9, 1)
    return start, date(start.year + 1, 8, 31)


# The holidays the drills' deadlines hang on, as named in the Ministry's calendar: the
# dates themselves are the SchoolHoliday rows (imported from the Ministry's open data by
# ``manage.py import_school_holidays``, edited in the admin), never written here.
WINTER_HOLIDAYS = "Vacances d'hiver"
SUMMER_HOLIDAYS = "Vacances d'été"


@dataclass(frozen=True)
class YearDates:
    """The days a zone's school year ends its terms on: the last days of class before its
    winter and its summer holidays (None when the calendar does not have them)."""

    before_winter: date | None
    before_summer: date | None


def year_dates(start: date) -> dict[str, YearDates]:
    """The last days of class before the winter and summer holidays of the school year
    beginning ``start``, by zone (one query for every zone)."""
    found: dict[tuple[str, str], date] = {}
    for zone, name, first_day in SchoolHoliday.objects.filter(
        name__in=[WINTER_HOLIDAYS, SUMMER_HOLIDAYS],
        first_day__gt=start,
        first_day__lte=date(start.year + 1, 8, 31),
    ).values_list("zone", "name", "first_day"):
        found.setdefault((zone, name), first_day - timedelta(days=1))
    return {
        zone: YearDates(found.get((zone, WINTER_HOLIDAYS)), found.get((zone, SUMMER_HOLIDAYS)))
        for zone in ("A", "B", "C")
    }


@dataclass(frozen=True)
class DrillCheck:
    label: str
    deadline: date
    met: bool
    overdue: bool


def check_drills(drills, today: date, dates: YearDates) -> list[DrillCheck]:
    """Judge a school's ``drills`` of this school year (with ``held_on``, ``kind`` and
    ``scenario``) by the circular of 8 June 2023 (BO n°26), as of ``today``.

    At least two PPMS drills a year, fire drills apart: one in September or October, a
    second before the winter holidays of the school's zone; and the intrusion scenario
    drilled at least once in the year, before the summer holidays. ``dates``: the zone's
    last days of class; a deadline the calendar lacks is the school year's end (judged
    then, never guessed). A new regulation gets its own function, so that past years stay
    judged by their own rules.
    """
    start, end = school_year(today)
    ppms = [drill for drill in drills if drill.kind == DrillKind.PPMS]
    rules = (
        (_("Un exercice en septembre ou octobre"), date(start.year, 10, 31), 1, ppms),
        (
            _("Deux exercices avant les vacances d'hiver de la zone"),
            dates.before_winter or end,
            2,
            ppms,
        ),
        (
            _("Le scénario intrusion exercé au moins une fois dans l'année"),
            dates.before_summer or end,
            1,
            [drill for drill in ppms if drill.scenario == Scenario.INTRUSION],
        ),
    )
    checks = []
    for label, deadline, count, counted in rules:
        met = sum(start <= drill.held_on <= deadline for drill in counted) >= count
        checks.append(DrillCheck(str(label), deadline, met, not met and today > deadline))
    return checks


class VigicruesColour(models.TextChoices):
    """The four colours of the Vigicrues flood vigilance (vigicrues.gouv.fr)."""

    GREEN = "vert", _("Vert : pas de vigilance particulière")
    YELLOW = "jaune", _("Jaune : risque de crue modérée")
    ORANGE = "orange", _("Orange : risque de crue importante")
    RED = "rouge", _("Rouge : risque de crue majeure")

    @property
    def colour(self) -> str:
        return {"vert": "#00703c", "jaune": "#ffdd00", "orange": "#f47738", "rouge": "#d4351c"}[
            self.value
        ]


class ActivationQuerySet(models.QuerySet):
    def active(self):
        return self.filter(ended_at__isnull=True)

    def ended_before(self, moment):
        """Activations ended (or cancelled) before ``moment``."""
        return self.filter(ended_at__lt=moment)

    def visible_to(self, user):
        """Activations concerning a school the user may see."""
        if sees_every_commune(user):
            return self
        return self.filter(statuses__school__in=School.objects.visible_to(user)).distinct()


class Activation(models.Model):
    """A PPMS activation (déclenchement): an instruction to the schools concerned."""

    scenario = models.CharField(_("posture"), max_length=16, choices=Scenario)
    title = models.CharField(_("titre"), max_length=200)
    source = models.CharField(_("origine"), max_length=16, choices=Source)
    drill = models.BooleanField(_("exercice"), default=False)
    alert = models.ForeignKey(
        "alerts.Alert",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ppms_activations",
        verbose_name=_("alerte"),
    )
    zones = models.ManyToManyField(Zone, blank=True, verbose_name=_("zones"))
    # An evacuation's destination named by the operator; without, each school goes to
    # the assembly point of its plan.
    shelter = models.ForeignKey(
        Shelter,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activations",
        verbose_name=_("centre d'accueil de destination"),
    )
    started_at = models.DateTimeField(_("déclenchée le"), default=timezone.now)
    started_by = recorded_by(_("déclenchée par"))
    ended_at = models.DateTimeField(_("fin d'alerte le"), null=True, blank=True)
    ended_by = recorded_by(_("fin d'alerte donnée par"))
    # The authority that ordered the end of alert (a real event's end).
    ended_on_order_of = models.CharField(_("fin d'alerte ordonnée par"), max_length=200, blank=True)
    # Started by mistake: ended as a cancellation (CAP Cancel), with why.
    cancelled = models.BooleanField(_("annulé (erreur)"), default=False)
    cancel_reason = models.TextField(_("motif de l'annulation"), blank=True)
    # Validated by nobody: its proposal's rule activated it when nobody answered in time.
    automatic = models.BooleanField(_("déclenché automatiquement"), default=False)
    # The ready text for families, fixed when it starts (the commune's, or the default).
    family_message = models.TextField(_("message aux familles"), blank=True)
    # A flood's Vigicrues vigilance colour, as the operator read it on vigicrues.gouv.fr.
    vigicrues_colour = models.CharField(
        _("vigilance Vigicrues"), max_length=8, choices=VigicruesColour, blank=True
    )
    vigicrues_set_at = models.DateTimeField(_("vigilance donnée le"), null=True, blank=True)
    vigicrues_set_by = recorded_by(_("vigilance donnée par"))

    objects = ActivationQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("déclenchement PPMS")
        verbose_name_plural = _("déclenchements PPMS")

    def __str__(self):
        return self.title

    @property
    def family_text(self) -> str:
        return self.family_message or FAMILY_MESSAGE

    @property
    def is_flood(self) -> bool:
        """A flood's activation: one of its zones, or of its schools', is a flood zone
        (where the Vigicrues vigilance applies)."""
        flood = Zone.Type.FLOOD
        return (
            self.zones.filter(type=flood).exists()
            or Zone.objects.filter(type=flood, schools__ppms_statuses__activation=self).exists()
        )

    @property
    def vigicrues_colour_or_none(self) -> str | None:
        return self.vigicrues_colour or None

    @property
    def last_shelter_report(self) -> "ShelterReport | None":
        """The destination's last record (arrivals, staff, supplies), if any."""
        if not self.shelter_id:
            return None
        return (
            self.shelter_reports.filter(shelter_id=self.shelter_id)
            .select_related("shelter", "by")
            .order_by("-at", "-pk")
            .first()
        )

    @property
    def vigicrues(self) -> "VigicruesColour | None":
        return VigicruesColour(self.vigicrues_colour) if self.vigicrues_colour else None


# What families are told while their children's schools apply the PPMS (a commune
# writes its own: CommunePolicy.family_message).
FAMILY_MESSAGE = (
    "N'allez pas chercher vos enfants : l'école les met en sûreté. Ne téléphonez pas à "
    "l'école, pour laisser les lignes aux secours. Écoutez la radio locale et suivez les "
    "consignes des autorités."
)


def family_message_for(schools) -> str:
    """The family message of the schools' commune, if they are of one that wrote its own."""
    communes = {school.commune_id for school in schools}
    if len(communes) != 1:
        return FAMILY_MESSAGE
    policy = CommunePolicy.objects.filter(commune_id=communes.pop()).first()
    return (policy.family_message if policy else "") or FAMILY_MESSAGE


@dataclass(frozen=True)
class EmergencyNumber:
    number: str
    label: str
    sms: bool = False  # reached by text message (114: for people who cannot speak)


# The numbers a school may need, in the order the page lists them: 114 first in an
# intrusion (a text makes no sound: nobody hiding may speak on the phone).
EMERGENCY_NUMBERS = {
    "112": EmergencyNumber("112", _("urgences (toute l'Europe)")),
    "15": EmergencyNumber("15", _("SAMU (urgence médicale)")),
    "17": EmergencyNumber("17", _("police, gendarmerie")),
    "18": EmergencyNumber("18", _("sapeurs-pompiers")),
    "114": EmergencyNumber("114", _("par SMS, pour qui ne peut pas parler ou entendre"), sms=True),
}
EMERGENCY_ORDER = {
    "intrusion": ("114", "17", "112", "15", "18"),
    "default": ("18", "15", "17", "112", "114"),
}


def emergency_numbers(scenario: str | None) -> list[EmergencyNumber]:
    """The emergency numbers for ``scenario``, in the order to try them."""
    order = EMERGENCY_ORDER["intrusion" if scenario == Scenario.INTRUSION else "default"]
    return [EMERGENCY_NUMBERS[number] for number in order]


class ActivationEventKind(models.TextChoices):
    STARTED = "started", _("Déclenchement")
    EXTENDED = "extended", _("Écoles ajoutées")
    ALARM = "alarm", _("Alarme d'une école")
    ESCALATED = "escalated", _("Écoles sans réponse signalées aux services")
    LADDER = "ladder", _("Relance des écoles sans réponse")
    ENDED = "ended", _("Fin d'alerte")
    CANCELLED = "cancelled", _("Annulation (déclenchement par erreur)")


class ActivationEvent(models.Model):
    """A change of an activation that safety services hear of (``ppms.notify``).

    Reports of the schools are ``StatusUpdate`` rows; these are the rest of the timeline.
    """

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("type"), max_length=16, choices=ActivationEventKind)
    at = models.DateTimeField(_("le"), default=timezone.now)
    by = recorded_by(_("par"))
    schools = models.JSONField(_("écoles (UAI)"), default=list)  # those the event is about
    text = models.TextField(_("message"), blank=True)  # a school's alarm message

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("événement d'un déclenchement")
        verbose_name_plural = _("événements des déclenchements")

    def __str__(self):
        return f"{self.activation_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class PpmsWebhook(models.Model):
    """A webhook that also hears the PPMS activations (police, SDIS…)."""

    webhook = models.OneToOneField(
        Webhook, on_delete=models.CASCADE, related_name="ppms", verbose_name=_("webhook")
    )
    communes = models.ManyToManyField(
        Commune,
        blank=True,
        verbose_name=_("communes"),
        help_text=_("Les déclenchements concernant ces communes ; aucune : toutes."),
    )

    class Meta:
        verbose_name = _("webhook PPMS")
        verbose_name_plural = _("webhooks PPMS")

    def __str__(self):
        return str(self.webhook)

    def hears(self, commune_ids: set[int]) -> bool:
        """Tell whether an activation concerning these communes is sent here (prefetched)."""
        communes = {commune.pk for commune in self.communes.all()}
        return not communes or bool(communes & commune_ids)


# The headcounts of a school's status, in the order the pages show them.
COUNTS = (
    "pupils_present",
    "pupils_absent",
    "pupils_missing",
    "pupils_injured",
    "adults_present",
    "adults_absent",
    "adults_missing",
    "adults_injured",
)
# The counts that together make the school's whole roll: présents + absents + manquants
# is the enrolment (pupils) or the staff (adults); the injured are among them.
ROLL = {
    "pupils": ("pupils_present", "pupils_absent", "pupils_missing"),
    "adults": ("adults_present", "adults_absent", "adults_missing"),
}
# A count above the roll by more than this share is a slip, not a school (a visiting
# class, a few parents helping are within it).
COUNT_MARGIN = 0.2


# What the phone and the board say of a roll not matched, by group and sign; French
# plural (1 is singular), the forms given to the pages' scripts too.
UNCOUNTED_TEXTS = {
    "pupils": (
        (_("%(n)s élève non compté"), _("%(n)s élèves non comptés")),
        (_("%(n)s élève de plus que l'effectif"), _("%(n)s élèves de plus que l'effectif")),
    ),
    "adults": (
        (_("%(n)s adulte non compté"), _("%(n)s adultes non comptés")),
        (_("%(n)s adulte de plus que l'effectif"), _("%(n)s adultes de plus que l'effectif")),
    ),
}


# What one group of a school's report holds: where, in which posture, how many.
GROUP_KEYS = ("posture", "location", *COUNTS)


def group_totals(groups: list[dict]) -> dict:
    """The school's counts from its groups: each count summed over the groups that gave
    it (None if none did); the posture of the first group, the places joined."""
    totals = {}
    for field in COUNTS:
        given = [group[field] for group in groups if group.get(field) is not None]
        totals[field] = sum(given) if given else None
    totals["posture"] = next((group["posture"] for group in groups if group.get("posture")), "")
    totals["location"] = " ; ".join(group["location"] for group in groups if group.get("location"))[
        :255
    ]
    return totals


def uncounted_text(group: str, uncounted: int | None) -> str:
    """« 8 élèves non comptés », « 2 adultes de plus que l'effectif », or nothing."""
    if not uncounted:
        return ""
    missing, extra = UNCOUNTED_TEXTS[group]
    singular, plural = missing if uncounted > 0 else extra
    n = abs(uncounted)
    return str(plural if n > 1 else singular) % {"n": n}


def count_problems(school, counts: dict) -> dict[str, str]:
    """The counts that cannot be true for ``school``: more than its roll and a fifth."""
    problems = {}
    for group, fields in ROLL.items():
        roll = school.pupils if group == "pupils" else school.staff
        if not roll:
            continue  # the roll is not known: nothing to judge by
        ceiling = int(roll * (1 + COUNT_MARGIN))
        for field in fields:
            value = counts.get(field)
            if isinstance(value, int) and value > ceiling:
                problems[field] = _(
                    "%(count)d, pour un effectif de %(roll)d : vérifiez le nombre."
                ) % {"count": value, "roll": roll}
    return problems


class SchoolStatusQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The statuses of the schools the user sees."""
        if sees_every_commune(user):
            return self
        return self.filter(school__in=School.objects.visible_to(user))


class SchoolStatus(models.Model):
    """A school's answer to an activation; every change is kept in StatusUpdate."""

    activation = models.ForeignKey(
        Activation,
        on_delete=models.CASCADE,
        related_name="statuses",
        verbose_name=_("déclenchement"),
    )
    school = models.ForeignKey(
        School, on_delete=models.PROTECT, related_name="ppms_statuses", verbose_name=_("école")
    )
    state = models.CharField(
        _("état"), max_length=16, choices=SchoolState, default=SchoolState.PENDING
    )
    posture = models.CharField(_("posture appliquée"), max_length=16, choices=Scenario)
    pupils_present = models.PositiveIntegerField(_("élèves présents"), null=True, blank=True)
    pupils_absent = models.PositiveIntegerField(_("élèves absents"), null=True, blank=True)
    pupils_missing = models.PositiveIntegerField(_("élèves manquants"), null=True, blank=True)
    pupils_injured = models.PositiveIntegerField(_("élèves blessés"), null=True, blank=True)
    adults_present = models.PositiveIntegerField(_("adultes présents"), null=True, blank=True)
    adults_absent = models.PositiveIntegerField(_("adultes absents"), null=True, blank=True)
    adults_missing = models.PositiveIntegerField(_("adultes manquants"), null=True, blank=True)
    adults_injured = models.PositiveIntegerField(_("adultes blessés"), null=True, blank=True)
    location = models.CharField(_("lieu de mise en sûreté"), max_length=255, blank=True)
    needs = models.TextField(
        _("besoins"), blank=True, help_text=_("N'écrivez aucun nom d'élève ni de personne.")
    )
    # The groups of pupils in different places, each with its posture, place and counts
    # (``GROUP_KEYS``); the counts above are their sums. Empty: one group, the above.
    groups = models.JSONField(_("groupes"), default=list, blank=True)
    updated_at = models.DateTimeField(_("mis à jour le"), null=True, blank=True)
    updated_by = recorded_by(_("mis à jour par"))
    # The escalation ladder (EscalationStep): pending past ``escalate_at``, the school
    # gets its step number ``ladder_step`` (indexed, for the periodic task).
    escalate_at = models.DateTimeField(_("relance prévue le"), null=True, blank=True, db_index=True)
    ladder_step = models.PositiveSmallIntegerField(_("prochain échelon"), default=0)
    texted_at = models.DateTimeField(_("SMS envoyé le"), null=True, blank=True)
    call_asked_at = models.DateTimeField(_("appel demandé le"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("signalée aux services le"), null=True, blank=True)
    # The first time a director's page showed the activation.
    seen_at = models.DateTimeField(_("vu sur la page le"), null=True, blank=True)

    objects = SchoolStatusQuerySet.as_manager()

    class Meta:
        ordering = ["school__name"]
        constraints = [
            models.UniqueConstraint(fields=["activation", "school"], name="schoolstatus_unique")
        ]
        verbose_name = _("état d'une école")
        verbose_name_plural = _("états des écoles")

    def __str__(self):
        return f"{self.school}: {self.get_state_display()}"

    def uncounted(self, group: str) -> int | None:
        """How many of the school's roll (``"pupils"`` or ``"adults"``) the counts leave
        out: the roll less présents, absents and manquants (negative: counted too many);
        None before any of these counts or without a roll to compare with."""
        roll = self.school.pupils if group == "pupils" else self.school.staff
        counts = [getattr(self, field) for field in ROLL[group]]
        if not roll or all(count is None for count in counts):
            return None
        return roll - sum(count or 0 for count in counts)

    @property
    def pupils_uncounted(self) -> int | None:
        return self.uncounted("pupils")

    @property
    def adults_uncounted(self) -> int | None:
        return self.uncounted("adults")

    @property
    def pupils_uncounted_text(self) -> str:
        return uncounted_text("pupils", self.pupils_uncounted)

    @property
    def adults_uncounted_text(self) -> str:
        return uncounted_text("adults", self.adults_uncounted)


class EscalationStep(models.Model):
    """One step of the escalation ladder: what is done for a school still silent
    ``after_minutes`` into an activation (``ppms/ladder.py``). A report stops it."""

    class Action(models.TextChoices):
        NOTIFY = "notify", _("Page et notification au directeur")
        SMS = "sms", _("SMS aux numéros de crise de l'école")
        CALL = "call", _("Appel de l'école par l'opérateur")
        SERVICES = "services", _("Signalement aux services de secours")

    after_minutes = models.PositiveSmallIntegerField(
        _("après (min)"), validators=[MaxValueValidator(240)]
    )
    action = models.CharField(_("action"), max_length=12, choices=Action)

    class Meta:
        ordering = ["after_minutes", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["after_minutes", "action"], name="escalationstep_unique"
            )
        ]
        verbose_name = _("échelon de relance")
        verbose_name_plural = _("échelons de relance")

    def __str__(self):
        return f"{self.after_minutes} min : {self.get_action_display()}"


class StatusUpdate(models.Model):
    """One report of a school during an activation: who, when, what."""

    status = models.ForeignKey(
        SchoolStatus, on_delete=models.CASCADE, related_name="updates", verbose_name=_("école")
    )
    at = models.DateTimeField(_("le"), default=timezone.now)
    by = recorded_by(_("par"))
    state = models.CharField(_("état"), max_length=16, choices=SchoolState)
    # The counts, posture, location and needs reported, and the phone's client_id.
    data = models.JSONField(_("situation donnée"), default=dict)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("mise à jour d'une école")
        verbose_name_plural = _("mises à jour des écoles")

    def __str__(self):
        return f"{self.status} @ {self.at:%H:%M:%S}"


class ShelterReport(models.Model):
    """What a centre d'accueil's staff recorded during an activation: the people arrived,
    by home commune (the town shelters its neighbours too), the staff on duty and the
    supplies. Each record is kept; the last one is the centre's situation."""

    activation = models.ForeignKey(
        Activation,
        on_delete=models.CASCADE,
        related_name="shelter_reports",
        verbose_name=_("déclenchement"),
    )
    shelter = models.ForeignKey(
        Shelter, on_delete=models.PROTECT, related_name="reports", verbose_name=_("centre")
    )
    at = models.DateTimeField(_("le"), default=timezone.now)
    by = recorded_by(_("par"))
    # [{"commune": {"id", "insee_code", "name"}, "count": people}], in the order given
    # (the commune as it was named then).
    arrivals = models.JSONField(_("arrivées par commune"), default=list)
    staff = models.PositiveIntegerField(_("personnel présent"), null=True, blank=True)
    supplies = models.TextField(
        _("ravitaillement et matériel"), blank=True, help_text=_("Aucun nom de personne.")
    )

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("relevé d'un centre d'accueil")
        verbose_name_plural = _("relevés des centres d'accueil")

    def __str__(self):
        return f"{self.shelter} @ {self.at:%H:%M:%S}"

    @property
    def total(self) -> int:
        return sum(arrival["count"] for arrival in self.arrivals)

    @property
    def arrival_rows(self) -> list[dict]:
        """The arrivals with each commune as a (detached) Commune."""
        return [
            {"commune": Commune(**arrival["commune"]), "count": arrival["count"]}
            for arrival in self.arrivals
        ]

    @property
    def over_capacity(self) -> bool:
        return self.total > self.shelter.capacity

    @property
    def warning(self) -> str:
        """Over capacity: the people are there whatever the capacity says; said, not refused."""
        if not self.over_capacity:
            return ""
        return _("Capacité dépassée : %(occupancy)s personnes pour %(capacity)s places.") % {
            "occupancy": self.total,
            "capacity": self.shelter.capacity,
        }


# No single reading decides a PPMS: a rule that proposes one holds this long, or is
# confirmed by this many sensors of its scope.
MIN_TRIGGER_DURATION = timedelta(minutes=2)
MIN_TRIGGER_CONFIRMATIONS = 2


def trigger_problem(duration: timedelta | None, confirmations: int) -> str | None:
    """Why a rule with this duration and these confirmations may not propose a PPMS."""
    if (duration or timedelta(0)) >= MIN_TRIGGER_DURATION:
        return None
    if confirmations >= MIN_TRIGGER_CONFIRMATIONS:
        return None
    return _(
        "Aucune mesure isolée ne décide d'un PPMS : la condition doit tenir au moins "
        "%(minutes)d minutes (durée avant déclenchement), ou être confirmée par au moins "
        "%(sensors)d capteurs de la règle."
    ) % {
        "minutes": MIN_TRIGGER_DURATION.seconds // 60,
        "sensors": MIN_TRIGGER_CONFIRMATIONS,
    }


class RuleTrigger(models.Model):
    """A rule whose alerts propose a PPMS scenario for the schools of their zones."""

    rule = models.OneToOneField(
        Rule, on_delete=models.CASCADE, related_name="ppms_trigger", verbose_name=_("règle")
    )
    scenario = models.CharField(_("scénario PPMS à proposer"), max_length=16, choices=Scenario)
    confirmations = models.PositiveSmallIntegerField(
        _("capteurs qui confirment"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "La proposition n'est faite que lorsque ce nombre de capteurs de la règle sont "
            "en alerte (k sur n)."
        ),
    )
    auto_activate_after = models.DurationField(
        _("déclencher automatiquement sans réponse après"),
        null=True,
        blank=True,
        help_text=_(
            "Vide : jamais (par défaut). Pour les événements très rapides (nuage toxique) : "
            "le PPMS est déclenché si personne n'a validé ni écarté la proposition à temps."
        ),
    )

    class Meta:
        verbose_name = _("déclenchement PPMS d'une règle")
        verbose_name_plural = _("déclenchements PPMS des règles")

    def __str__(self):
        return f"{self.rule} → {self.get_scenario_display()}"

    def clean(self):
        problem = trigger_problem(self.rule.duration, self.confirmations)
        if problem:
            raise ValidationError({"confirmations": problem})


class CommunePolicy(models.Model):
    """What a commune decides for its PPMS: who may validate a proposal besides the
    authorities (the mayor, the on-call manager), what families are told."""

    commune = models.OneToOneField(
        Commune, on_delete=models.CASCADE, related_name="ppms_policy", verbose_name=_("commune")
    )
    operators_validate = models.BooleanField(
        _("les opérateurs valident les déclenchements"),
        default=False,
        help_text=_(
            "Les opérateurs du CSU de la commune peuvent valider ou écarter une "
            "proposition de déclenchement, comme l'autorité."
        ),
    )
    family_message = models.TextField(
        _("message aux familles"),
        blank=True,
        help_text=_(
            "Donné aux opérateurs et aux médias à chaque déclenchement concernant la "
            "commune ; vide : le message par défaut (n'allez pas chercher vos enfants, ne "
            "téléphonez pas à l'école, écoutez la radio locale)."
        ),
    )
    # The documents the town already has, linked from the board.
    pcs_url = models.URLField(_("plan communal de sauvegarde (PCS)"), blank=True)
    dicrim_url = models.URLField(
        _("document d'information communal sur les risques majeurs (DICRIM)"), blank=True
    )
    vigicrues_url = models.URLField(
        _("station Vigicrues"),
        blank=True,
        help_text=_("La page de la station ou du tronçon de vigilance sur vigicrues.gouv.fr."),
    )

    class Meta:
        verbose_name = _("règles PPMS d'une commune")
        verbose_name_plural = _("règles PPMS des communes")

    def __str__(self):
        return str(self.commune)

    @property
    def links(self) -> list[tuple[str, str]]:
        """The commune's documents given: (label, address)."""
        named = (
            (_("PCS"), self.pcs_url),
            (_("DICRIM"), self.dicrim_url),
            (_("Vigicrues"), self.vigicrues_url),
        )
        return [(str(label), url) for label, url in named if url]


class ProposalState(models.TextChoices):
    PENDING = "pending", _("À valider")
    VALIDATED = "validated", _("Validée")
    DISMISSED = "dismissed", _("Écartée")
    CANCELLED = "cancelled", _("Annulée (erreur)")


class ProposalQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(state=ProposalState.PENDING)

    def visible_to(self, user):
        """Proposals concerning a commune the user supervises (operators, authorities)."""
        communes = supervised_communes(user)
        if communes is None:
            return self
        if not is_operator(user):
            return self.none()
        return self.filter(communes__in=communes).distinct()


class Proposal(models.Model):
    """A proposition de déclenchement: a rule's alerts ask a human to start the PPMS.

    It becomes an activation when someone who may validate does so (or, if the rule
    says so, when nobody answered in time), or is dismissed with a reason.
    """

    rule = models.ForeignKey(
        Rule, on_delete=models.PROTECT, related_name="ppms_proposals", verbose_name=_("règle")
    )
    scenario = models.CharField(_("posture"), max_length=16, choices=Scenario)
    title = models.CharField(_("titre"), max_length=200)
    alerts = models.ManyToManyField(
        "alerts.Alert", related_name="ppms_proposals", verbose_name=_("alertes")
    )
    zones = models.ManyToManyField(Zone, blank=True, verbose_name=_("zones"))
    schools = models.ManyToManyField("School", related_name="+", verbose_name=_("écoles"))
    communes = models.ManyToManyField(Commune, related_name="+", verbose_name=_("communes"))
    state = models.CharField(
        _("état"), max_length=16, choices=ProposalState, default=ProposalState.PENDING
    )
    created_at = models.DateTimeField(_("proposée le"), default=timezone.now)
    auto_activate_at = models.DateTimeField(
        _("déclenchée automatiquement le"), null=True, blank=True, db_index=True
    )
    decided_at = models.DateTimeField(_("décidée le"), null=True, blank=True)
    decided_by = recorded_by(_("décidée par"))
    reason = models.TextField(_("motif"), blank=True)
    activation = models.OneToOneField(
        "Activation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="proposal",
        verbose_name=_("déclenchement"),
    )

    objects = ProposalQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("validate_activation", _("Valider un déclenchement PPMS"))]
        verbose_name = _("proposition de déclenchement")
        verbose_name_plural = _("propositions de déclenchement")

    def __str__(self):
        return self.title
