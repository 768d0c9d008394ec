"""Threshold rules, their per-sensor state, alerts and their timeline, silences, webhooks.

Lifecycle: an alert opens (firing) when a rule's condition has held for its duration;
an operator acknowledges it (with a comment, optionally for a while: a snooze); it is
resolved by hand or, when the rule says so, by itself once the value is back past the
clearing threshold (hysteresis). The database allows one open alert per (rule, sensor).
Every change is an ``AlertEvent`` row written in the same transaction, and told through
the outbox (``alerts.notify.tell``).
"""

from datetime import time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import Webhook, recorded_by
from core.roles import supervised_communes
from sensors.metrics import Kind, metric_for
from sensors.models import Commune, Sensor, WaterPoint, Zone


class Severity(models.TextChoices):
    INFO = "info", _("Information")
    WARNING = "warning", _("Avertissement")
    CRITICAL = "critical", _("Critique")

    @property
    def colour(self) -> str:
        return {"info": "#1d70b8", "warning": "#f47738", "critical": "#d4351c"}[self.value]

    @property
    def cap(self) -> str:
        """The CAP 1.2 severity."""
        return {"info": "Minor", "warning": "Moderate", "critical": "Severe"}[self.value]


class RuleKind(models.TextChoices):
    THRESHOLD = "threshold", _("Seuil")
    OFFLINE = "offline", _("Capteur hors ligne")
    STUCK = "stuck", _("Valeur figée")
    ATMO = "atmo", _("Indice ATMO")
    RATE = "rate", _("Vitesse de montée")


class Aggregate(models.TextChoices):
    """What a threshold rule compares: the reading itself, or a mean the regulations use."""

    RAW = "", _("valeur brute (alerte technique)")
    HOURLY = "hourly", _("moyenne horaire")
    DAILY = "daily", _("moyenne journalière")
    EIGHT_HOURS = "8h", _("moyenne glissante sur 8 heures")


class DailyWindow(models.TextChoices):
    CALENDAR = "calendar", _("journée civile (heure de Paris)")
    SLIDING = "sliding", _("24 heures glissantes")


class RuleWaterPoints(models.TextChoices):
    """Which water points a rule on water sensors watches (blank: all of them)."""

    ALL = "", _("tous")
    DRINKING = "drinking", _("eau de consommation (sortie, réseau, robinet)")
    OUTLET = WaterPoint.OUTLET.value, WaterPoint.OUTLET.label
    NETWORK = WaterPoint.NETWORK.value, WaterPoint.NETWORK.label
    TAP = WaterPoint.TAP.value, WaterPoint.TAP.label
    RESOURCE = WaterPoint.RESOURCE.value, WaterPoint.RESOURCE.label
    BATHING = WaterPoint.BATHING.value, WaterPoint.BATHING.label

    @classmethod
    def including(cls, point: str) -> list[str]:
        """The values of the rules that watch a sensor at ``point``."""
        found = [cls.ALL.value]
        if point:
            found.append(point)
        if point in WaterPoint.drinking():
            found.append(cls.DRINKING.value)
        return found


class Condition(models.TextChoices):
    ABOVE = "above", _("au-dessus de")
    BELOW = "below", _("en dessous de")
    OUTSIDE = "outside", _("hors de la plage")
    EQUALS = "equals", _("égal à (état)")


WEEKDAYS = [
    (0, _("lundi")),
    (1, _("mardi")),
    (2, _("mercredi")),
    (3, _("jeudi")),
    (4, _("vendredi")),
    (5, _("samedi")),
    (6, _("dimanche")),
]


class RuleQuerySet(models.QuerySet):
    def applying_to(self, sensor: Sensor):
        """The active rules whose scope includes ``sensor``."""
        zone_ids = [zone.pk for zone in sensor.zones.all()]
        return (
            self.filter(active=True)
            .filter(
                Q(sensor=sensor)
                | (
                    Q(sensor__isnull=True)
                    & (Q(sensor_kind="") | Q(sensor_kind=sensor.kind))
                    & (Q(communes__isnull=True) | Q(communes=sensor.commune_id))
                    & (Q(zones__isnull=True) | Q(zones__in=zone_ids))
                    & Q(water_points__in=RuleWaterPoints.including(sensor.water_point))
                )
            )
            .distinct()
        )

    def by_sensor(self) -> dict[int, list["Rule"]]:
        """``applying_to`` for every sensor at once: sensor id → its active rules, in the
        rules' order, in five queries whatever the number of sensors (the evaluation keeps
        it, alerts/evaluation.py). The same scope as ``applying_to``, read in memory;
        tests/test_rule_scope.py checks that both agree, and with the converse
        ``Rule.sensors_in_scope``."""
        rules = list(self.filter(active=True).prefetch_related("communes", "zones"))
        scopes = [
            (
                rule,
                {commune.pk for commune in rule.communes.all()},
                {zone.pk for zone in rule.zones.all()},
            )
            for rule in rules
        ]
        zones_of: dict[int, set[int]] = {}
        for sensor_id, zone_id in Sensor.zones.through.objects.values_list("sensor_id", "zone_id"):
            zones_of.setdefault(sensor_id, set()).add(zone_id)
        found: dict[int, list[Rule]] = {}
        sensors = Sensor.objects.values_list("pk", "kind", "commune_id", "water_point")
        for sensor_id, kind, commune_id, water_point in sensors:
            zones = zones_of.get(sensor_id, set())
            points = RuleWaterPoints.including(water_point)
            found[sensor_id] = [
                rule
                for rule, communes, rule_zones in scopes
                if rule.sensor_id == sensor_id
                or (
                    rule.sensor_id is None
                    and rule.sensor_kind in ("", kind)
                    and (not communes or commune_id in communes)
                    and (not rule_zones or not rule_zones.isdisjoint(zones))
                    and rule.water_points in points
                )
            ]
        return found


class Rule(models.Model):
    name = models.CharField(_("nom"), max_length=160)
    kind = models.CharField(
        _("type de règle"), max_length=16, choices=RuleKind, default=RuleKind.THRESHOLD
    )
    active = models.BooleanField(_("active"), default=True)

    # Scope: one sensor, or sensors of a kind within zones and/or communes.
    sensor = models.ForeignKey(
        Sensor,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name=_("capteur"),
    )
    sensor_kind = models.CharField(_("type de capteur"), max_length=16, choices=Kind, blank=True)
    zones = models.ManyToManyField(Zone, blank=True, verbose_name=_("zones"))
    communes = models.ManyToManyField(Commune, blank=True, verbose_name=_("communes"))
    water_points = models.CharField(
        _("points d'eau"),
        max_length=16,
        choices=RuleWaterPoints,
        blank=True,
        help_text=_("Capteurs d'eau seulement : où la règle s'applique (vide : partout)."),
    )

    metric = models.CharField(_("grandeur"), max_length=32, blank=True)
    condition = models.CharField(
        _("condition"), max_length=8, choices=Condition, default=Condition.ABOVE
    )
    threshold = models.FloatField(
        _("seuil"),
        null=True,
        blank=True,
        help_text=_("Plage : borne basse. ATMO : classe (1 à 6)."),
    )
    threshold_high = models.FloatField(
        _("seuil haut"), null=True, blank=True, help_text=_("Plage seulement : borne haute.")
    )
    clear_threshold = models.FloatField(
        _("seuil de retour"),
        null=True,
        blank=True,
        help_text=_(
            "Hystérésis : l'alerte cesse quand la valeur repasse ce seuil "
            "(par défaut le seuil lui-même). Plage : borne basse de retour."
        ),
    )
    clear_threshold_high = models.FloatField(_("seuil de retour haut"), null=True, blank=True)
    duration = models.DurationField(
        _("durée avant déclenchement"),
        default=timedelta(0),
        help_text=_("La condition doit tenir aussi longtemps avant d'ouvrir une alerte."),
    )
    # Rate of rise: by how much in how long; stuck value: for how long.
    rise = models.FloatField(
        _("montée"),
        null=True,
        blank=True,
        help_text=_("Vitesse de montée : hausse (dans l'unité) sur la fenêtre."),
    )
    window = models.DurationField(
        _("fenêtre"),
        null=True,
        blank=True,
        help_text=_("Vitesse de montée ou valeur figée : la durée."),
    )

    # Means: computed from the hourly roll-ups (alerts/aggregates.py), never per reading.
    aggregate = models.CharField(
        _("valeur comparée"),
        max_length=8,
        choices=Aggregate,
        default=Aggregate.RAW,
        blank=True,
        help_text=_(
            "Seuils réglementaires : la moyenne que le texte prévoit. Valeur brute : "
            "alertes techniques (capteur qui s'emballe, bouchon)."
        ),
    )
    daily_window = models.CharField(
        _("journée de la moyenne"),
        max_length=8,
        choices=DailyWindow,
        default=DailyWindow.CALENDAR,
        help_text=_("Moyenne journalière seulement."),
    )
    consecutive_hours = models.PositiveSmallIntegerField(
        _("heures consécutives"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text=_(
            "Moyenne horaire seulement : la condition doit tenir sur autant de moyennes "
            "horaires successives (3 pour les seuils d'alerte NO₂ et SO₂)."
        ),
    )
    completeness = models.PositiveSmallIntegerField(
        _("complétude exigée (%)"),
        default=75,
        help_text=_(
            "Part des mesures attendues (d'après la période du capteur) sans laquelle une "
            "moyenne horaire n'est pas calculée ; part des heures pour une moyenne sur "
            "plusieurs heures."
        ),
    )

    severity = models.CharField(
        _("gravité"), max_length=8, choices=Severity, default=Severity.WARNING
    )
    escalate_after = models.DurationField(
        _("aggraver après"),
        null=True,
        blank=True,
        help_text=_("Passe en critique si la condition tient aussi longtemps."),
    )
    renotify_after = models.DurationField(
        _("relancer après"),
        null=True,
        blank=True,
        default=timedelta(minutes=15),
        help_text=_("Une alerte critique non acquittée est notifiée de nouveau."),
    )
    auto_resolve = models.BooleanField(_("résolution automatique"), default=True)

    # Active schedule: empty days means every day; start = end means all day.
    days = models.JSONField(
        _("jours"),
        default=list,
        blank=True,
        help_text=_("Jours actifs, 0 = lundi … 6 = dimanche ; vide = tous."),
    )
    start_time = models.TimeField(_("de"), default=time(0, 0))
    end_time = models.TimeField(
        _("à"), default=time(0, 0), help_text=_("Peut passer minuit (22:00 → 06:00).")
    )

    notify_emails = models.TextField(
        _("courriels à prévenir"), blank=True, help_text=_("Une adresse par ligne.")
    )
    webhooks = models.ManyToManyField(Webhook, blank=True, verbose_name=_("webhooks"))

    objects = RuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("règle")
        verbose_name_plural = _("règles")

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        needs_metric = self.kind in (RuleKind.THRESHOLD, RuleKind.STUCK, RuleKind.RATE)
        if needs_metric and not self.metric:
            errors["metric"] = _("Choisissez la grandeur surveillée.")
        if self.kind in (RuleKind.THRESHOLD, RuleKind.ATMO) and self.threshold is None:
            errors["threshold"] = _("Indiquez le seuil.")
        if self.kind == RuleKind.THRESHOLD and self.condition == Condition.OUTSIDE:
            if self.threshold_high is None:
                errors["threshold_high"] = _("Une plage a une borne haute.")
            elif self.threshold is not None and self.threshold_high <= self.threshold:
                errors["threshold_high"] = _("La borne haute doit dépasser la borne basse.")
        if (
            self.kind == RuleKind.THRESHOLD
            and self.clear_threshold is not None
            and self.threshold is not None
        ):
            if self.condition == Condition.ABOVE and self.clear_threshold > self.threshold:
                errors["clear_threshold"] = _("Au-dessus d'un seuil, le retour se fait en dessous.")
            if self.condition == Condition.BELOW and self.clear_threshold < self.threshold:
                errors["clear_threshold"] = _("En dessous d'un seuil, le retour se fait au-dessus.")
        if self.kind == RuleKind.RATE and (self.rise is None or self.window is None):
            errors["rise"] = _("Une vitesse de montée a une hausse et une fenêtre.")
        if self.kind == RuleKind.STUCK and self.window is None:
            errors["window"] = _("Indiquez la durée après laquelle une valeur est figée.")
        if (
            self.kind == RuleKind.ATMO
            and self.threshold is not None
            and not (1 <= self.threshold <= 6)
        ):
            errors["threshold"] = _("Une classe ATMO va de 1 à 6.")
        kind = self.sensor.kind if self.sensor_id else self.sensor_kind
        if self.water_points and kind != Kind.WATER:
            errors["water_points"] = _("Les points d'eau ne portent que sur les capteurs d'eau.")
        errors.update(self.aggregate_errors())
        if any(day not in range(7) for day in self.days or []):
            errors["days"] = _("Jours de 0 (lundi) à 6 (dimanche).")
        if self.sensor_id is None and not self.sensor_kind and self.kind != RuleKind.OFFLINE:
            errors["sensor_kind"] = _("Choisissez un capteur ou un type de capteur.")
        if errors:
            raise ValidationError(errors)

    def aggregate_errors(self) -> dict:
        """What is wrong with the rule's mean, field by field."""
        errors = {}
        if self.completeness is not None and self.completeness > 100:
            errors["completeness"] = _(
                "La complétude exigée est un pourcentage : elle ne peut dépasser 100 %."
            )
        if not self.aggregate:
            if self.consecutive_hours and self.consecutive_hours > 1:
                errors["consecutive_hours"] = _(
                    "Les heures consécutives portent sur des moyennes horaires : choisissez "
                    "la moyenne horaire."
                )
            return errors
        if self.kind != RuleKind.THRESHOLD:
            errors["aggregate"] = _("Seule une règle de seuil compare une moyenne.")
            return errors
        kind = self.sensor.kind if self.sensor_id else self.sensor_kind
        metric = metric_for(kind, self.metric) if kind and self.metric else None
        if self.metric and (metric is None or metric.is_state):
            errors["aggregate"] = _(
                "La grandeur « %(metric)s » n'a pas de moyenne horaire (un état, ou une "
                "grandeur inconnue de ce type de capteur) : comparez la valeur brute."
            ) % {"metric": self.metric}
        if self.duration:
            errors["duration"] = _(
                "Une moyenne attend déjà la fin de son heure : exprimez la durée en heures "
                "consécutives."
            )
        if self.aggregate != Aggregate.HOURLY and self.consecutive_hours > 1:
            errors["consecutive_hours"] = _(
                "Les heures consécutives portent sur des moyennes horaires."
            )
        return errors

    def sensors_in_scope(self):
        """The active sensors the rule applies to (the converse of ``applying_to``)."""
        if self.sensor_id:
            return Sensor.objects.filter(pk=self.sensor_id, active=True)
        sensors = Sensor.objects.filter(active=True)
        if self.sensor_kind:
            sensors = sensors.filter(kind=self.sensor_kind)
        if communes := list(self.communes.values_list("pk", flat=True)):
            sensors = sensors.filter(commune__in=communes)
        if zones := list(self.zones.values_list("pk", flat=True)):
            sensors = sensors.filter(zones__in=zones).distinct()
        if self.water_points == RuleWaterPoints.DRINKING:
            sensors = sensors.filter(water_point__in=WaterPoint.drinking())
        elif self.water_points:
            sensors = sensors.filter(water_point=self.water_points)
        return sensors

    @property
    def hold_for(self) -> timedelta:
        """How long the condition must hold before an alert opens."""
        if self.aggregate:
            return timedelta(hours=self.consecutive_hours - 1)
        return self.duration

    @property
    def email_list(self) -> list[str]:
        return [line.strip() for line in self.notify_emails.splitlines() if line.strip()]


class RuleState(models.Model):
    """What the evaluation remembers per (rule, sensor) between batches."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    sensor = models.ForeignKey(
        Sensor, on_delete=models.CASCADE, related_name="rule_states", verbose_name=_("capteur")
    )
    # The newest reading evaluated; for a mean, the end of the last hour judged.
    last_ts = models.DateTimeField(_("dernière valeur jugée le"), null=True)
    last_value = models.FloatField(_("dernière valeur"), null=True)
    pending_since = models.DateTimeField(null=True)  # condition true since, not yet fired
    value_since = models.DateTimeField(null=True)  # stuck rules: the value unchanged since
    transitions = models.JSONField(default=list)  # recent open/clear times, for flapping
    samples = models.JSONField(default=list)  # rate rules: [epoch, value] within the window
    # Rules on a mean: the share of the expected data behind the last mean, and why the
    # last hour evaluated gave no mean ("" when it gave one).
    coverage = models.FloatField(_("complétude"), null=True)
    no_mean = models.CharField(_("moyenne non calculée"), max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "sensor"], name="rulestate_unique")]

    def __str__(self):
        return f"{self.rule_id}/{self.sensor_id}"


class PendingEvaluation(models.Model):
    """A committed ingest batch the rules have not seen yet (the evaluation's outbox).

    Written in the batch's own transaction and deleted in the evaluation's: whatever
    happens between the two (Redis away, a worker or ingest killed), the batch stays
    here until a worker evaluates it. ``items`` are the batch reduced per sensor and
    metric (``alerts.receivers.reduce_batch``): [sensor_id, metric, epoch, value].
    """

    items = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.pk} ({len(self.items)} items)"


class AlertState(models.TextChoices):
    FIRING = "firing", _("En cours")
    ACKNOWLEDGED = "acknowledged", _("Acquittée")
    RESOLVED = "resolved", _("Résolue")


class AlertQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(state=AlertState.RESOLVED)

    def visible_to(self, user):
        """Alerts of the sensors of the communes ``user`` supervises."""
        communes = supervised_communes(user)
        return self if communes is None else self.filter(sensor__commune__in=communes)

    def needing_attention(self):
        """Open alerts, and warnings or worse that resolved unacknowledged."""
        return self.filter(
            ~Q(state=AlertState.RESOLVED)
            | Q(acknowledged_at__isnull=True, severity__in=["warning", "critical"])
        )


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class IncidentQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Incidents of the communes ``user`` supervises (an incident is in one commune)."""
        communes = supervised_communes(user)
        return self if communes is None else self.filter(commune__in=communes)

    def needing_attention(self):
        """Incidents with a member alert needing attention (``AlertQuerySet``'s)."""
        return self.filter(
            pk__in=Alert.objects.needing_attention()
            .filter(incident__isnull=False)
            .values("incident_id")
        )


class Incident(models.Model):
    """Alerts that share a cause, handled as one (alerts/incidents.py groups them).

    Its members are alerts of one commune: of one rule family (``incidents.family``) in
    one zone, each opened within ``CSU_INCIDENT_WINDOW_MINUTES`` of the previous one, or
    alerts that set off the same PPMS proposal. ``severity``, ``state``, ``first_at`` and
    ``last_at`` summarise the members, and ``version`` grows at each change of a member:
    an action sent with an older version is refused (409), the operator saw another
    state.
    """

    commune = models.ForeignKey(
        Commune, on_delete=models.PROTECT, related_name="+", verbose_name=_("commune")
    )
    zone = models.ForeignKey(
        Zone,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("zone"),
    )
    family = models.CharField(_("famille de règles"), max_length=80)
    title = models.CharField(_("titre"), max_length=255)
    severity = models.CharField(_("gravité"), max_length=8, choices=Severity)
    state = models.CharField(
        _("état"), max_length=16, choices=AlertState, default=AlertState.FIRING, db_index=True
    )
    first_at = models.DateTimeField(_("première alerte le"), db_index=True)
    last_at = models.DateTimeField(_("dernière alerte le"), db_index=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-last_at", "-pk"]
        indexes = [models.Index(fields=["commune", "family", "last_at"])]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")

    def __str__(self):
        return self.title


class Alert(models.Model):
    # PROTECT: an alert's history outlives a change of mind; deactivate rules and sensors.
    rule = models.ForeignKey(
        Rule, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("règle")
    )
    sensor = models.ForeignKey(
        Sensor, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("capteur")
    )
    metric = models.CharField(_("grandeur"), max_length=32, blank=True)
    state = models.CharField(
        _("état"), max_length=16, choices=AlertState, default=AlertState.FIRING, db_index=True
    )
    severity = models.CharField(_("gravité"), max_length=8, choices=Severity)
    title = models.CharField(_("titre"), max_length=255)
    opened_at = models.DateTimeField(_("ouverte le"), default=timezone.now, db_index=True)
    first_value = models.FloatField(_("première valeur"), null=True)
    last_value = models.FloatField(_("dernière valeur"), null=True)
    last_value_at = models.DateTimeField(_("dernière valeur le"), null=True)
    peak_value = models.FloatField(_("valeur extrême"), null=True)
    cleared_at = models.DateTimeField(_("condition disparue le"), null=True, blank=True)
    flapping = models.BooleanField(_("instable"), default=False)
    acknowledged_at = models.DateTimeField(_("acquittée le"), null=True, blank=True)
    acknowledged_by = recorded_by(_("acquittée par"))
    snoozed_until = models.DateTimeField(_("rappel le"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("résolue le"), null=True, blank=True)
    resolved_by = recorded_by(_("résolue par"))
    # The incident the alert belongs to (alerts/incidents.py), set when it opens.
    incident = models.ForeignKey(
        Incident,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        verbose_name=_("incident"),
    )
    # The next time the escalation task must look at this alert (renotify, snooze end).
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open alert per (rule, sensor), enforced by the database.
            models.UniqueConstraint(
                fields=["rule", "sensor"],
                condition=~Q(state="resolved"),
                name="alert_one_open_per_rule_sensor",
            )
        ]
        verbose_name = _("alerte")
        verbose_name_plural = _("alertes")

    def __str__(self):
        return self.title

    # --- Lifecycle: every change writes its event in the same transaction ----------------

    def record(self, kind: str, *, user=None, text: str = "", value=None, at=None):
        """Add a line to the timeline and return it (``alerts.notify.tell`` tells it)."""
        return AlertEvent.objects.create(
            alert=self, kind=kind, user=user, text=text, value=value, at=at or timezone.now()
        )

    def acknowledge(self, *, by, comment: str = "", snooze: timedelta | None = None, now=None):
        """Take the alert in hand; with ``snooze``, be reminded if it still fires then.

        Return the timeline's new line."""
        now = now or timezone.now()
        if self.acknowledged_at and self.state != AlertState.FIRING:
            raise AlertActionError(_("Cette alerte est déjà acquittée."))
        if snooze and self.state == AlertState.RESOLVED:
            raise AlertActionError(_("Une alerte résolue ne peut pas être rappelée plus tard."))
        self.acknowledged_at, self.acknowledged_by = now, by
        if self.state == AlertState.FIRING:
            self.state = AlertState.ACKNOWLEDGED
        self.snoozed_until = now + snooze if snooze else None
        self.next_check_at = self.snoozed_until
        self.save(
            update_fields=[
                "acknowledged_at",
                "acknowledged_by",
                "state",
                "snoozed_until",
                "next_check_at",
            ]
        )
        text = comment
        if snooze:
            minutes = int(snooze.total_seconds() // 60)
            text = f"{comment}\n" if comment else ""
            text += _("Rappel dans %(minutes)d min si elle est toujours active.") % {
                "minutes": minutes
            }
        return self.record(EventKind.ACKNOWLEDGED, user=by, text=text, at=now)

    def resolve(self, *, by=None, text: str = "", now=None):
        """Close the alert: by hand (``by``), or by itself when its condition cleared.

        Return the timeline's new line."""
        now = now or timezone.now()
        if self.state == AlertState.RESOLVED:
            raise AlertActionError(_("Cette alerte est déjà résolue."))
        self.state = AlertState.RESOLVED
        self.resolved_at, self.resolved_by = now, by
        self.next_check_at = None
        self.snoozed_until = None
        self.save(
            update_fields=["state", "resolved_at", "resolved_by", "next_check_at", "snoozed_until"]
        )
        return self.record(EventKind.RESOLVED, user=by, text=text, at=now, value=self.last_value)

    def comment(self, *, by, text: str):
        if not text.strip():
            raise AlertActionError(_("Le commentaire est vide."))
        return self.record(EventKind.COMMENTED, user=by, text=text.strip())

    @property
    def needs_acknowledgement(self) -> bool:
        return self.acknowledged_at is None and self.severity != Severity.INFO


class AlertActionError(Exception):
    """An operator action that does not fit the alert's state (answered as a 400)."""


class EventKind(models.TextChoices):
    OPENED = "opened", _("ouverte")
    ACKNOWLEDGED = "acknowledged", _("acquittée")
    COMMENTED = "commented", _("commentée")
    RESOLVED = "resolved", _("résolue")
    ESCALATED = "escalated", _("aggravée")
    RENOTIFIED = "renotified", _("relancée")
    FLAPPING = "flapping", _("instable")


class AlertEvent(models.Model):
    """One line of an alert's timeline."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=EventKind)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True)
    value = models.FloatField(null=True, blank=True)
    # Recorded while the sensor or the rule was silenced: shown, not sounded nor sent out.
    muted = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("événement d'alerte")
        verbose_name_plural = _("événements d'alerte")

    def __str__(self):
        return f"{self.alert_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class SilenceQuerySet(models.QuerySet):
    def active_at(self, moment):
        return self.filter(starts_at__lte=moment, ends_at__gt=moment)


class Silence(models.Model):
    """A maintenance window: a sensor or a rule evaluated but not notified."""

    sensor = models.ForeignKey(
        Sensor,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="silences",
        verbose_name=_("capteur"),
    )
    rule = models.ForeignKey(
        Rule,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="silences",
        verbose_name=_("règle"),
    )
    starts_at = models.DateTimeField(_("début"), default=timezone.now)
    ends_at = models.DateTimeField(_("fin"))
    reason = models.CharField(_("motif"), max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("créée par"),
    )
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sensor__isnull=False) | Q(rule__isnull=False),
                name="silence_has_target",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start"
            ),
        ]
        verbose_name = _("mise en sourdine")
        verbose_name_plural = _("mises en sourdine")

    def __str__(self):
        return (
            f"{self.sensor or self.rule}: {self.starts_at:%d/%m %H:%M} → {self.ends_at:%d/%m %H:%M}"
        )
