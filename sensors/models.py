from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import insee_code
from core.roles import supervised_communes

from .metrics import Kind, metrics_of

SENSOR_REF_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Broker usernames of the CSU's own services (csu-ingest, csu-simulator...).
RESERVED_REF_PREFIX = "csu-"


def validate_not_reserved(ref: str) -> None:
    if ref.startswith(RESERVED_REF_PREFIX):
        raise ValidationError(
            _("Les références commençant par « %(prefix)s » sont réservées aux services du CSU."),
            params={"prefix": RESERVED_REF_PREFIX},
        )


class CommuneQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Restrict to the communes ``user`` may supervise."""
        communes = supervised_communes(user)
        return self if communes is None else self.filter(pk__in=communes)


class Commune(models.Model):
    insee_code = models.CharField(
        _("code INSEE"),
        max_length=5,
        unique=True,
        validators=[insee_code],
    )
    name = models.CharField(_("nom"), max_length=120)

    objects = CommuneQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("commune")
        verbose_name_plural = _("communes")

    def __str__(self):
        return self.name


class Operator(models.Model):
    """What a CSU operator supervises: some communes, or all (métropole level)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator"
    )
    communes = models.ManyToManyField(Commune, blank=True, verbose_name=_("communes"))
    all_communes = models.BooleanField(
        _("toutes les communes"),
        default=False,
        help_text=_("Opérateur de niveau métropole ou syndicat (mutualisation)."),
    )

    class Meta:
        verbose_name = _("périmètre d'opérateur")
        verbose_name_plural = _("périmètres d'opérateurs")

    def __str__(self):
        return str(self.user)


class Zone(models.Model):
    class Type(models.TextChoices):
        DISTRICT = "district", _("Quartier")
        FLOOD = "flood", _("Zone inondable")
        SEVESO = "seveso", _("Périmètre SEVESO")
        OTHER = "other", _("Autre")

    commune = models.ForeignKey(Commune, on_delete=models.PROTECT, related_name="zones")
    name = models.CharField(_("nom"), max_length=120)
    type = models.CharField(_("type"), max_length=16, choices=Type, default=Type.DISTRICT)
    geometry = models.JSONField(
        _("polygone (GeoJSON)"),
        null=True,
        blank=True,
        help_text=_("Facultatif : une géométrie GeoJSON Polygon ou MultiPolygon (lon, lat)."),
    )

    class Meta:
        ordering = ["commune__name", "name"]
        constraints = [models.UniqueConstraint(fields=["commune", "name"], name="zone_unique_name")]
        verbose_name = _("zone")
        verbose_name_plural = _("zones")

    def __str__(self):
        return f"{self.name} ({self.commune})"

    def clean(self):
        geometry = self.geometry
        if geometry in (None, ""):
            return
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            raise ValidationError(
                {"geometry": _("Attendu : un objet GeoJSON de type Polygon ou MultiPolygon.")}
            )
        if not isinstance(geometry.get("coordinates"), list) or not geometry["coordinates"]:
            raise ValidationError({"geometry": _("Le polygone n'a pas de coordonnées.")})


class StationType(models.TextChoices):
    """Where an air-quality station stands: what its readings stand for."""

    BACKGROUND = "background", _("fond urbain")
    TRAFFIC = "traffic", _("trafic")
    INDUSTRIAL = "industrial", _("industriel")


class WaterPoint(models.TextChoices):
    """Where a water sensor measures: what the arrêté of 11 January 2007 asks there."""

    RESOURCE = "resource", _("ressource (eau brute)")
    OUTLET = "outlet", _("sortie de station de traitement ou de réservoir")
    NETWORK = "network", _("réseau de distribution")
    TAP = "tap", _("robinet")
    BATHING = "bathing", _("baignade ou plan d'eau (pas une eau de consommation)")

    @classmethod
    def drinking(cls) -> frozenset[str]:
        """The points where water is drinking water."""
        return frozenset({cls.OUTLET, cls.NETWORK, cls.TAP})


class SensorQuerySet(models.QuerySet):
    def mark_silent_offline(self, now=None) -> list[int]:
        """Mark offline the online sensors silent for too long; return their ids."""
        now = now or timezone.now()
        silent = [
            sensor.pk
            for sensor in self.filter(state="online", active=True).only(
                "pk", "last_seen", "expected_interval"
            )
            if sensor.silent_for_too_long(now)
        ]
        if silent:
            self.filter(pk__in=silent, state="online").update(state="offline", state_changed_at=now)
        return silent

    def visible_to(self, user):
        """Restrict to the sensors of the communes ``user`` may supervise."""
        communes = supervised_communes(user)
        return self if communes is None else self.filter(commune__in=communes)


class Sensor(models.Model):
    class State(models.TextChoices):
        UNKNOWN = "unknown", _("Inconnu")
        ONLINE = "online", _("En ligne")
        OFFLINE = "offline", _("Hors ligne")

    ref = models.CharField(
        _("référence"),
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                SENSOR_REF_RE,
                _("Minuscules, chiffres et tirets ; commence par une lettre ou un chiffre."),
            ),
            validate_not_reserved,
        ],
        help_text=_("Identifiant unique, aussi nom d'utilisateur MQTT du capteur."),
    )
    name = models.CharField(_("nom"), max_length=120)
    kind = models.CharField(_("type"), max_length=16, choices=Kind)
    commune = models.ForeignKey(Commune, on_delete=models.PROTECT, related_name="sensors")
    zones = models.ManyToManyField(Zone, blank=True, related_name="sensors")
    latitude = models.FloatField(
        _("latitude"), validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        _("longitude"), validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    building = models.CharField(
        _("bâtiment"), max_length=120, blank=True, help_text=_("Pour les ouvertures.")
    )
    # None: the period is not known. Nothing is then guessed from it: the sensor is not
    # declared offline for its silence, its values are not said current, and a rule on a
    # mean says it cannot judge the completeness (alerts/aggregates.py).
    expected_interval = models.PositiveIntegerField(
        _("intervalle attendu (s)"),
        default=60,
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Période d'émission attendue, en secondes. Vide si elle n'est pas connue : le "
            "capteur n'est alors pas déclaré hors ligne par son silence, ses valeurs ne "
            "sont pas dites récentes et les règles sur une moyenne ne jugent pas sa "
            "complétude."
        ),
    )
    station_type = models.CharField(
        _("type de station (air)"),
        max_length=16,
        choices=StationType,
        blank=True,
        help_text=_(
            "Qualité de l'air : l'indice ATMO estimé n'est calculé que sur les stations de "
            "fond urbain (une station trafic ou industrielle mesure sa source)."
        ),
    )
    water_point = models.CharField(
        _("point d'eau"),
        max_length=16,
        choices=WaterPoint,
        blank=True,
        help_text=_(
            "Eau : où le capteur mesure. Les limites et références de qualité de l'eau "
            "potable ne s'appliquent qu'aux points d'eau de consommation (sortie de "
            "station ou de réservoir, réseau, robinet)."
        ),
    )
    active = models.BooleanField(_("actif"), default=True)
    last_seen = models.DateTimeField(_("vu pour la dernière fois"), null=True, blank=True)
    state = models.CharField(_("état"), max_length=8, choices=State, default=State.UNKNOWN)
    state_changed_at = models.DateTimeField(
        _("état changé le"), null=True, blank=True, editable=False
    )
    mqtt_password_hash = models.CharField(
        _("mot de passe MQTT (empreinte)"),
        max_length=255,
        blank=True,
        editable=False,
        help_text=_("Empreinte PBKDF2-SHA512 au format de Mosquitto ; jamais le mot de passe."),
    )

    objects = SensorQuerySet.as_manager()

    class Meta:
        ordering = ["ref"]
        verbose_name = _("capteur")
        verbose_name_plural = _("capteurs")

    def __str__(self):
        return self.ref

    @property
    def metrics(self):
        return metrics_of(self.kind)

    def set_mqtt_password(self, password: str) -> None:
        from .mqtt_auth import hash_password

        self.mqtt_password_hash = hash_password(password)

    def clean(self):
        errors = {}
        if self.station_type and self.kind != Kind.AIR:
            errors["station_type"] = _(
                "Seule une station de qualité de l'air a un type de station."
            )
        if self.water_point and self.kind != Kind.WATER:
            errors["water_point"] = _("Seul un capteur d'eau a un point d'eau.")
        if errors:
            raise ValidationError(errors)

    def is_current(self, moment, now=None) -> bool:
        """Tell whether what the sensor said at ``moment`` still holds: it is no older than
        SENSOR_OFFLINE_INTERVALS of its expected intervals. Without a period, nothing
        can be said current."""
        if self.expected_interval is None:
            return False
        allowed = timedelta(seconds=self.expected_interval * settings.SENSOR_OFFLINE_INTERVALS)
        return (now or timezone.now()) - moment <= allowed

    def silent_for_too_long(self, now=None) -> bool:
        """Tell whether the sensor has sent nothing for SENSOR_OFFLINE_INTERVALS periods
        (never, without a period: its silence cannot be judged)."""
        return (
            self.last_seen is not None
            and self.expected_interval is not None
            and not self.is_current(self.last_seen, now)
        )


class Reading(models.Model):
    """One value of one metric of one sensor at one instant.

    On PostgreSQL the table is range-partitioned by day on ``ts`` (see
    ``sensors/partitions.py``); its primary key (sensor, metric, ts) serves both the
    uniqueness rule and "one sensor-metric over a time range".
    """

    pk = models.CompositePrimaryKey("sensor_id", "metric", "ts")
    # No separate index: the primary key starts with sensor_id. No foreign key constraint
    # in the database either: PostgreSQL checked it row by row at each commit (11 ms of
    # its CPU a batch of 1,000 readings, a third of its share). Ingest writes only the
    # sensors it knows, and each batch's latest values, whose table keeps its constraint,
    # refuse a sensor deleted meanwhile: the batch is then judged again
    # (sensors/ingest/worker.py). Deleting a sensor deletes its readings (Django's cascade).
    sensor = models.ForeignKey(
        Sensor,
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
        verbose_name=_("capteur"),
    )
    metric = models.CharField(_("grandeur"), max_length=32)
    ts = models.DateTimeField(_("horodatage"))
    value = models.FloatField(_("valeur"))

    class Meta:
        verbose_name = _("mesure")
        verbose_name_plural = _("mesures")

    def __str__(self):
        return f"{self.sensor_id}/{self.metric}@{self.ts:%Y-%m-%dT%H:%M:%S%z}={self.value}"


class LatestReading(models.Model):
    """The last value of each sensor and metric, upserted with each batch."""

    sensor = models.ForeignKey(
        Sensor, on_delete=models.CASCADE, related_name="latest", verbose_name=_("capteur")
    )
    metric = models.CharField(_("grandeur"), max_length=32)
    ts = models.DateTimeField(_("horodatage"))
    value = models.FloatField(_("valeur"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sensor", "metric"], name="latest_unique_metric")
        ]
        ordering = ["sensor_id", "metric"]
        verbose_name = _("dernière mesure")
        verbose_name_plural = _("dernières mesures")

    def __str__(self):
        return f"{self.sensor_id}/{self.metric}={self.value}"


class RejectedMessage(models.Model):
    """An MQTT message, or one reading of it, that could not be stored."""

    class Reason(models.TextChoices):
        TOO_LARGE = "too_large", _("Trop volumineux")
        MALFORMED = "malformed", _("Malformé")
        UNKNOWN_SENSOR = "unknown_sensor", _("Capteur inconnu")
        INACTIVE_SENSOR = "inactive_sensor", _("Capteur désactivé")
        UNKNOWN_METRIC = "unknown_metric", _("Grandeur inconnue")
        NOT_A_NUMBER = "not_a_number", _("Valeur non numérique")
        OUT_OF_RANGE = "out_of_range", _("Hors de la plage physique")
        BAD_TIMESTAMP = "bad_timestamp", _("Horodatage invalide")
        UNIT_MISMATCH = "unit_mismatch", _("Unité différente")
        RATE_LIMITED = "rate_limited", _("Débit du capteur dépassé")
        UNSUPPORTED_VERSION = "unsupported_version", _("Version SenML non prise en charge")

    PAYLOAD_LIMIT = 4096

    received_at = models.DateTimeField(_("reçu le"), default=timezone.now, db_index=True)
    topic = models.CharField(_("sujet MQTT"), max_length=255)
    sensor_ref = models.CharField(_("capteur"), max_length=255, blank=True, db_index=True)
    reason = models.CharField(_("motif"), max_length=24, choices=Reason, db_index=True)
    detail = models.CharField(_("détail"), max_length=500, blank=True)
    metric = models.CharField(_("grandeur"), max_length=64, blank=True)
    payload = models.TextField(
        _("contenu (tronqué)"), blank=True, help_text=_("Tronqué à sa limite de stockage.")
    )

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("message rejeté")
        verbose_name_plural = _("messages rejetés")

    def __str__(self):
        return f"{self.topic}: {self.reason}"

    @classmethod
    def bounded_payload(cls, payload: bytes | str) -> str:
        """Return the payload as text, cut to the stored limit."""
        if isinstance(payload, bytes):
            payload = payload[: cls.PAYLOAD_LIMIT * 4].decode("utf-8", errors="backslashreplace")
        return payload[: cls.PAYLOAD_LIMIT]


class ReadingHourly(models.Model):
    """The count, sum, min and max of one sensor metric over one UTC hour.

    Computed from the raw readings by ``sensors/rollups.py`` and kept for
    ``ROLLUP_RETENTION_DAYS``, longer than the readings: it serves the hourly and daily
    history. ``RollupProgress`` and ``RollupDirtyHour`` say which hours it is right for.
    """

    pk = models.CompositePrimaryKey("sensor_id", "metric", "hour")
    # No separate index: the primary key starts with sensor_id.
    sensor = models.ForeignKey(
        Sensor, on_delete=models.CASCADE, db_index=False, verbose_name=_("capteur")
    )
    metric = models.CharField(_("grandeur"), max_length=32)
    hour = models.DateTimeField(_("heure"), help_text=_("Début de l'heure UTC."))
    count = models.PositiveIntegerField(_("nombre de mesures"))
    sum = models.FloatField(_("somme"))
    min = models.FloatField(_("minimum"))
    max = models.FloatField(_("maximum"))

    class Meta:
        verbose_name = _("agrégat horaire")
        verbose_name_plural = _("agrégats horaires")

    def __str__(self):
        return f"{self.sensor_id}/{self.metric}@{self.hour:%Y-%m-%dT%H}h n={self.count}"


class RollupDirtyHour(models.Model):
    """An hour that received readings after it was rolled up: its roll-ups are stale.

    Ingest marks the hour (and bumps ``version``) after each batch holding late readings;
    the roll-up task recomputes the hour, then deletes the mark only if its version is
    still the one it read, so a mark made meanwhile is never lost.
    """

    hour = models.DateTimeField(_("heure"), primary_key=True)
    version = models.PositiveBigIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("heure à recalculer")
        verbose_name_plural = _("heures à recalculer")

    def __str__(self):
        return f"{self.hour:%Y-%m-%dT%H}h v{self.version}"


class RollupProgress(models.Model):
    """How far the hourly roll-ups go: every hour before ``until`` is rolled up.

    Hours from ``until`` on, and the dirty hours before it, are read from the raw
    readings instead.
    """

    name = models.CharField(_("nom"), max_length=32, primary_key=True)
    until = models.DateTimeField(_("jusqu'à"))

    class Meta:
        verbose_name = _("avancement des agrégats")
        verbose_name_plural = _("avancement des agrégats")

    def __str__(self):
        return f"{self.name}: {self.until:%Y-%m-%dT%H:%M}"
