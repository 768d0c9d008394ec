"""Serializers of the PPMS API: schools, centres d'accueil, activations and the schools'
statuses, drills, and their query parameters.

An activation and a status have the keys of ``summaries.activation_summary`` and
``summaries.status_summary`` (the live ``ppms`` events), so a page merges what it fetched
and what it was pushed without translating; times are RFC 3339 in UTC.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from alerts.serializers import RuleRefSerializer
from core.fields import ChoiceParam, IdParam, InseeParam, UtcDateTimeField
from sensors.models import Commune, Zone
from sensors.serializers import CommuneRefSerializer, ZoneRefSerializer

from .models import (
    Activation,
    ActivationEventKind,
    DirectoryRole,
    Drill,
    DrillKind,
    ProposalState,
    Scenario,
    School,
    SchoolState,
    SchoolStatus,
    Shelter,
    VigicruesColour,
    count_problems,
    group_totals,
)

# The largest value of the occupancy column (a 32-bit integer on PostgreSQL): beyond, the
# database would refuse the write with a 500 instead of a message.
MAX_OCCUPANCY = 2_147_483_647


# --- Representations ------------------------------------------------------------------


class SchoolSerializer(serializers.ModelSerializer):
    """A school; its directors are listed to operators and admins only."""

    commune = CommuneRefSerializer()
    zones = ZoneRefSerializer(many=True)
    # Not read_only, though nothing writes it: drf-spectacular marks every read-only field
    # required, and this one is absent from what directors receive.
    directors = serializers.SlugRelatedField(
        slug_field="username",
        many=True,
        required=False,
        queryset=get_user_model().objects.none(),
        help_text=_("Identifiants des directeurs·rices ; absent pour les directeurs·rices."),
    )
    in_flood_zone = serializers.SerializerMethodField(
        help_text=_("Vrai si l'école est dans une zone inondable.")
    )

    class Meta:
        model = School
        fields = [
            "uai",
            "name",
            "address",
            "commune",
            "zones",
            "latitude",
            "longitude",
            "pupils",
            "staff",
            "directors",
            "in_flood_zone",
        ]
        read_only_fields = fields

    def get_fields(self):
        fields = super().get_fields()
        # The view says whether the caller may see them (``show_directors``).
        if self.context.get("show_directors") is False:
            fields.pop("directors")
        return fields

    def get_in_flood_zone(self, school) -> bool:
        # From the prefetched zones: no query per school.
        return any(zone.type == Zone.Type.FLOOD for zone in school.zones.all())


class ShelterSerializer(serializers.ModelSerializer):
    commune = CommuneRefSerializer()
    is_full = serializers.BooleanField(help_text=_("Occupation égale ou supérieure à la capacité."))
    free_places = serializers.SerializerMethodField(
        help_text=_("Places libres (0 si la capacité est atteinte ou dépassée).")
    )

    class Meta:
        model = Shelter
        fields = [
            "id",
            "name",
            "address",
            "commune",
            "latitude",
            "longitude",
            "capacity",
            "occupancy",
            "is_open",
            "is_full",
            "free_places",
        ]
        read_only_fields = fields

    def get_free_places(self, shelter) -> int:
        return max(shelter.capacity - shelter.occupancy, 0)


class OccupancyRecordSerializer(ShelterSerializer):
    """The shelter after an occupancy change, with who changed it, when, and any warning."""

    previous_occupancy = serializers.IntegerField()
    recorded_by = serializers.CharField(help_text=_("Qui : l'identifiant de l'utilisateur."))
    recorded_at = UtcDateTimeField()
    warning = serializers.CharField(
        allow_null=True,
        help_text=_("Avertissement, par exemple si la capacité est dépassée ; sinon null."),
    )

    class Meta(ShelterSerializer.Meta):
        fields = [
            *ShelterSerializer.Meta.fields,
            "previous_occupancy",
            "recorded_by",
            "recorded_at",
            "warning",
        ]
        read_only_fields = fields


# --- Input ------------------------------------------------------------------------------


class OccupancySerializer(serializers.Serializer):
    occupancy = serializers.IntegerField(
        min_value=0,
        max_value=MAX_OCCUPANCY,
        help_text=_(
            "Nombre de personnes accueillies. Au-delà de la capacité, il est enregistré "
            "avec un avertissement."
        ),
    )


class RequiredBooleanField(serializers.BooleanField):
    """A boolean the request must give, also as a form: DRF reads a form without it as an
    unticked box, false (and a centre would close). In JSON, a true boolean: DRF would
    read a number 0 or 1 as one, and a slip of the integrator's would close a centre."""

    default_empty_html = empty

    def to_internal_value(self, data):
        if isinstance(data, int | float) and not isinstance(data, bool):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


class ShelterOpenSerializer(serializers.Serializer):
    open = RequiredBooleanField(
        help_text=_("true : ouvrir le centre (il accueille) ; false : le fermer.")
    )


# --- Query parameters -----------------------------------------------------------------


# --- PPMS activations -----------------------------------------------------------------

# The largest headcount taken: beyond, a typing slip rather than a school.
MAX_COUNT = 100_000
NO_NAMES = _("N'écrivez aucun nom d'élève ni de personne.")
REPORTED_STATES = [
    (state.value, state.label)
    for state in (SchoolState.SAFE, SchoolState.NEEDS_HELP, SchoolState.EVACUATED)
]
COUNT_FIELDS = (
    ("pupils_present", _("Élèves présents.")),
    ("pupils_absent", _("Élèves absents : pas à l'école ce jour.")),
    ("pupils_missing", _("Élèves manquants : présents ce matin, ne répondent pas à l'appel.")),
    ("pupils_injured", _("Élèves blessés.")),
    ("adults_present", _("Adultes présents.")),
    ("adults_absent", _("Adultes absents : pas à l'école ce jour.")),
    ("adults_missing", _("Adultes manquants.")),
    ("adults_injured", _("Adultes blessés.")),
)


class GroupStateSerializer(serializers.Serializer):
    """A group as recorded: its posture, place and counts (null: not given)."""

    posture = serializers.ChoiceField(choices=Scenario.choices)
    location = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        for name, help_text in COUNT_FIELDS:
            fields[name] = serializers.IntegerField(allow_null=True, help_text=help_text)
        return fields


def _username(user) -> str | None:
    return user.get_username() if user else None


class SchoolStatusSerializer(serializers.ModelSerializer):
    """A school's status in an activation: the keys of ``summaries.status_summary``."""

    school = serializers.CharField(source="school.uai", help_text=_("Code UAI de l'école."))
    school_name = serializers.CharField(source="school.name")
    updated_at = UtcDateTimeField(allow_null=True)
    updated_by = serializers.SerializerMethodField(
        help_text=_("Qui a donné la situation (directeur·rice, ou opérateur pour son compte).")
    )
    escalated_at = UtcDateTimeField(
        allow_null=True, help_text=_("Relancée pour être restée sans réponse.")
    )
    pupils_uncounted = serializers.IntegerField(
        allow_null=True,
        help_text=_(
            "Élèves inscrits moins présents, absents et manquants : ceux que les effectifs "
            "ne comptent pas (négatif : comptés en trop) ; null sans effectif."
        ),
    )
    adults_uncounted = serializers.IntegerField(
        allow_null=True,
        help_text=_("Comme pupils_uncounted, pour les adultes et l'effectif des personnels."),
    )
    groups = GroupStateSerializer(
        many=True,
        help_text=_(
            "Les groupes donnés, chacun avec sa posture, son lieu et ses effectifs (les "
            "effectifs de l'école en sont les sommes) ; vide : un seul groupe."
        ),
    )

    class Meta:
        model = SchoolStatus
        fields = [
            "school",
            "school_name",
            "state",
            "posture",
            *(name for name, _help in COUNT_FIELDS),
            "pupils_uncounted",
            "adults_uncounted",
            "location",
            "groups",
            "needs",
            "updated_at",
            "updated_by",
            "escalated_at",
        ]
        read_only_fields = fields

    def get_updated_by(self, status) -> str | None:
        return _username(status.updated_by)


class ReachSerializer(serializers.Serializer):
    """Who was told how at a school (``ppms.reach.Reach``)."""

    school = serializers.CharField(source="status.school.uai", help_text=_("Code UAI."))
    seen_at = UtcDateTimeField(
        allow_null=True, help_text=_("La page d'un·e directeur·rice a montré le déclenchement.")
    )
    push = serializers.ChoiceField(
        choices=["none", "pending", "sent", "received", "failed"],
        help_text=_(
            "Notifications poussées : aucun appareil abonné, en cours, envoyée (acceptée par "
            "le service de push), reçue (par l'appareil), non remise."
        ),
    )
    devices = serializers.IntegerField(help_text=_("Appareils abonnés notifiés."))
    sms = serializers.ChoiceField(
        choices=[
            "none",
            "not_needed",
            "no_number",
            "withheld",
            "pending",
            "sent",
            "delivered",
            "failed",
        ],
        help_text=_(
            "SMS aux numéros de crise : pas encore, inutile (l'école a répondu), aucun "
            "numéro, non (intrusion), en cours, envoyé, remis, non remis."
        ),
    )
    call_asked_at = UtcDateTimeField(source="status.call_asked_at", allow_null=True)
    escalated_at = UtcDateTimeField(source="status.escalated_at", allow_null=True)
    first_sign_at = UtcDateTimeField(
        allow_null=True, help_text=_("Premier signe de vie : page vue ou première réponse.")
    )
    phones = serializers.ListField(child=serializers.CharField(), help_text=_("Numéros de crise."))


class SeenSerializer(serializers.Serializer):
    school = serializers.CharField()
    seen_at = UtcDateTimeField()


class StateCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    safe = serializers.IntegerField()
    needs_help = serializers.IntegerField()
    evacuated = serializers.IntegerField()


class ShelterRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()


class ArrivalSerializer(serializers.Serializer):
    commune = CommuneRefSerializer(help_text=_("La commune d'origine."))
    count = serializers.IntegerField()


class ShelterReportSerializer(serializers.Serializer):
    """A centre's record during an activation: arrivals by home commune, staff, supplies,
    who and when; ``warning`` when the arrivals exceed the capacity (recorded all the same)."""

    id = serializers.IntegerField()
    shelter = ShelterRefSerializer()
    capacity = serializers.IntegerField(source="shelter.capacity")
    at = UtcDateTimeField()
    by = serializers.SerializerMethodField(help_text=_("Qui : l'identifiant de l'utilisateur."))
    arrivals = ArrivalSerializer(source="arrival_rows", many=True)
    total = serializers.IntegerField(help_text=_("Personnes arrivées, toutes communes."))
    over_capacity = serializers.BooleanField()
    warning = serializers.CharField(help_text=_("Capacité dépassée ; sinon vide."))
    staff = serializers.IntegerField(allow_null=True)
    supplies = serializers.CharField()

    def get_by(self, report) -> str | None:
        return _username(report.by)


class ActivationSerializer(serializers.ModelSerializer):
    """An activation: the keys of ``summaries.activation_summary``, who, and the counts.

    The counts and ``schools_count`` are of the schools the caller sees.
    """

    silent = serializers.SerializerMethodField(
        help_text=_("Vrai pour une intrusion : aucun son ni vibration sur les téléphones.")
    )
    started_at = UtcDateTimeField()
    started_by = serializers.SerializerMethodField()
    ended_at = UtcDateTimeField(allow_null=True)
    ended_by = serializers.SerializerMethodField()
    alert = serializers.IntegerField(
        source="alert_id", allow_null=True, help_text=_("L'alerte qui l'a déclenché.")
    )
    zones = ZoneRefSerializer(many=True)
    schools_count = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    shelter = ShelterRefSerializer(
        allow_null=True, help_text=_("Évacuation : le centre d'accueil où aller.")
    )
    family_message = serializers.CharField(
        source="family_text",
        help_text=_("Le message prêt pour les familles (celui de la commune, ou par défaut)."),
    )
    vigicrues_colour = serializers.CharField(
        allow_null=True,
        source="vigicrues_colour_or_none",
        help_text=_("Crue : la vigilance Vigicrues donnée (vert, jaune, orange, rouge) ; null."),
    )
    vigicrues_set_at = UtcDateTimeField(allow_null=True)
    vigicrues_set_by = serializers.SerializerMethodField()

    class Meta:
        model = Activation
        fields = [
            "id",
            "scenario",
            "title",
            "source",
            "drill",
            "silent",
            "started_at",
            "started_by",
            "ended_at",
            "ended_by",
            "cancelled",
            "automatic",
            "alert",
            "zones",
            "shelter",
            "family_message",
            "vigicrues_colour",
            "vigicrues_set_at",
            "vigicrues_set_by",
            "schools_count",
            "counts",
        ]
        read_only_fields = fields

    def get_vigicrues_set_by(self, activation) -> str | None:
        return _username(activation.vigicrues_set_by)

    def get_silent(self, activation) -> bool:
        return activation.scenario == Scenario.INTRUSION

    def get_started_by(self, activation) -> str | None:
        return _username(activation.started_by)

    def get_ended_by(self, activation) -> str | None:
        return _username(activation.ended_by)

    def get_schools_count(self, activation) -> int:
        return len(activation.visible_statuses)

    @extend_schema_field(StateCountsSerializer)
    def get_counts(self, activation) -> dict:
        counts = dict.fromkeys(SchoolState.values, 0)
        for status in activation.visible_statuses:
            counts[status.state] += 1
        return counts


class TimelineEntrySerializer(serializers.Serializer):
    """One line of an activation's timeline: a change of the activation or a school's report."""

    at = UtcDateTimeField()
    kind = serializers.ChoiceField(
        choices=[*ActivationEventKind.choices, ("status", _("Situation d'une école"))]
    )
    by = serializers.CharField(
        allow_null=True, help_text=_("Qui : l'identifiant de l'utilisateur ; null pour le système.")
    )
    schools = serializers.ListField(
        child=serializers.CharField(), help_text=_("Les écoles concernées (UAI).")
    )
    state = serializers.ChoiceField(
        choices=SchoolState.choices, allow_null=True, help_text=_("Pour une situation d'école.")
    )
    text = serializers.CharField(help_text=_("Le message d'une alarme d'école."))
    data = serializers.DictField(
        allow_null=True,
        help_text=_("Pour une situation d'école : posture, effectifs, lieu et besoins donnés."),
    )


class ActivationDetailSerializer(ActivationSerializer):
    statuses = SchoolStatusSerializer(source="visible_statuses", many=True)
    timeline = TimelineEntrySerializer(many=True)
    shelter_report = serializers.SerializerMethodField(
        help_text=_("Évacuation vers un centre : son dernier relevé (arrivées…) ; null.")
    )

    class Meta(ActivationSerializer.Meta):
        fields = [*ActivationSerializer.Meta.fields, "statuses", "timeline", "shelter_report"]
        read_only_fields = fields

    @extend_schema_field(ShelterReportSerializer(allow_null=True))
    def get_shelter_report(self, activation) -> dict | None:
        report = activation.last_shelter_report
        return ShelterReportSerializer(report).data if report else None


class ActivationCreateSerializer(serializers.Serializer):
    """Start an activation; ``zones`` and ``schools`` must be within the caller's perimeter.

    Context: ``zones`` and ``schools``, the querysets the caller may choose from.
    """

    scenario = ChoiceParam(choices=Scenario.choices)
    title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Par défaut, le nom de la posture."),
    )
    zones = serializers.ListField(
        child=IdParam(),
        required=False,
        default=list,
        max_length=500,
        help_text=_("Identifiants des zones : leurs écoles sont concernées."),
    )
    schools = serializers.ListField(
        child=serializers.CharField(max_length=8),
        required=False,
        default=list,
        max_length=2000,
        help_text=_("Codes UAI d'écoles concernées en plus de celles des zones."),
    )
    drill = serializers.BooleanField(required=False, default=False, help_text=_("Un exercice."))
    shelter = IdParam(
        required=False,
        allow_null=True,
        default=None,
        help_text=_(
            "Évacuation : le centre d'accueil où aller (identifiant) ; sans, le point de "
            "rassemblement du plan de chaque école."
        ),
    )

    def validate_shelter(self, pk):
        if pk is None:
            return None
        shelter = self.context["shelters"].filter(pk=pk).first()
        if shelter is None:
            raise serializers.ValidationError(
                _("Centre d'accueil inconnu ou hors de votre périmètre : %(id)s.") % {"id": pk}
            )
        return shelter

    def validate_zones(self, ids):
        found = {zone.pk: zone for zone in self.context["zones"].filter(pk__in=ids)}
        unknown = sorted({pk for pk in ids if pk not in found})
        if unknown:
            raise serializers.ValidationError(
                _("Zone inconnue ou hors de votre périmètre : %(ids)s.")
                % {"ids": ", ".join(map(str, unknown))}
            )
        return list(found.values())

    def validate_schools(self, uais):
        found = {school.uai: school for school in self.context["schools"].filter(uai__in=uais)}
        unknown = sorted({uai for uai in uais if uai not in found})
        if unknown:
            raise serializers.ValidationError(
                _("École inconnue ou hors de votre périmètre : %(uais)s.")
                % {"uais": ", ".join(unknown)}
            )
        return list(found.values())

    def validate(self, attrs):
        if not attrs["zones"] and not attrs["schools"]:
            raise serializers.ValidationError(
                {"schools": _("Indiquez les écoles concernées, ou des zones.")}
            )
        if not attrs["schools"] and not School.objects.filter(zones__in=attrs["zones"]).exists():
            raise serializers.ValidationError({"zones": _("Aucune école dans ces zones.")})
        if not attrs["title"]:
            # Stored: in the site's language, whatever the caller's.
            with translation.override(settings.LANGUAGE_CODE):
                attrs["title"] = str(Scenario(attrs["scenario"]).label)
        return attrs


def count_fields() -> dict[str, serializers.IntegerField]:
    """The eight headcounts, each optional, a whole number from 0 to MAX_COUNT."""
    return {
        name: serializers.IntegerField(
            min_value=0, max_value=MAX_COUNT, required=False, allow_null=True, help_text=help_text
        )
        for name, help_text in COUNT_FIELDS
    }


class GroupSerializer(serializers.Serializer):
    """One group of pupils in one place: its posture, the place and its headcounts."""

    posture = ChoiceParam(
        choices=Scenario.choices,
        required=False,
        help_text=_("La posture du groupe ; par défaut celle du déclenchement."),
    )
    location = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Où est le groupe. ") + NO_NAMES,
    )

    def get_fields(self):
        return {**super().get_fields(), **count_fields()}


# A school splits into a few groups (a gymnasium, a floor, a class outside), not more.
MAX_GROUPS = 20


class ReportSerializer(serializers.Serializer):
    """A school's situation, given by its director or an operator on their behalf.

    Either one group (the posture, location and counts at the top level) or ``groups``,
    each with its posture, place and counts: the school's counts are then their sums.
    Context: ``school``, to judge the counts against its roll.
    """

    state = ChoiceParam(choices=REPORTED_STATES)
    posture = ChoiceParam(
        choices=Scenario.choices,
        required=False,
        help_text=_("La posture appliquée ; par défaut celle du déclenchement."),
    )
    location = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text=_("Où l'école est mise en sûreté. ") + NO_NAMES,
    )
    groups = GroupSerializer(
        many=True,
        required=False,
        max_length=MAX_GROUPS,
        help_text=_(
            "Plusieurs groupes d'élèves en des lieux différents, chacun avec sa posture, son "
            "lieu et ses effectifs (au plus 20) ; sans, un seul groupe : les champs ci-dessus."
        ),
    )
    needs = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text=_("Besoins. ") + NO_NAMES
    )
    client_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text=_(
            "Identifiant créé par le téléphone : un envoi rejoué avec le même identifiant "
            "n'est compté qu'une fois."
        ),
    )

    def get_fields(self):
        return {**super().get_fields(), **count_fields()}

    def validate(self, attrs):
        groups = attrs.get("groups")
        if not groups:
            attrs.pop("groups", None)
            return attrs
        doubled = [name for name in ("posture", "location", *COUNT_NAMES) if name in attrs]
        if doubled:
            raise serializers.ValidationError(
                dict.fromkeys(
                    doubled, _("Avec des groupes, donnez-le dans chaque groupe, pas à côté.")
                )
            )
        school = self.context.get("school")
        if school is not None:
            errors = group_problems(school, groups)
            if any(errors):
                raise serializers.ValidationError({"groups": errors})
        return attrs


COUNT_NAMES = tuple(name for name, _help in COUNT_FIELDS)


def group_problems(school, groups: list[dict]) -> list[dict]:
    """For each group, its counts that cannot be true for ``school`` (``count_problems``);
    a sum over the groups beyond the roll is told next to the last group's field."""
    errors = [
        {field: [message] for field, message in count_problems(school, group).items()}
        for group in groups
    ]
    for field, message in count_problems(school, group_totals(groups)).items():
        total = _("Au total des groupes : %(problem)s") % {"problem": message}
        errors[-1].setdefault(field, [total])
    return errors


class AlarmSerializer(serializers.Serializer):
    scenario = ChoiceParam(choices=Scenario.choices)
    message = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Ce qui se passe, en quelques mots (500 caractères au plus). ") + NO_NAMES,
    )


# --- Drills ---------------------------------------------------------------------------


class DrillSerializer(serializers.ModelSerializer):
    """A drill held by a school; on creation, the school must be one the user supervises.

    Context: ``schools``, the queryset the caller may choose from.
    """

    school = serializers.SlugRelatedField(
        slug_field="uai", queryset=School.objects.none(), help_text=_("Code UAI de l'école.")
    )
    kind = ChoiceParam(
        choices=DrillKind.choices,
        required=False,
        default=DrillKind.PPMS,
        help_text=_("ppms (par défaut) ou fire : un exercice incendie ne compte pas au PPMS."),
    )
    scenario = ChoiceParam(
        choices=Scenario.choices,
        required=False,
        help_text=_("La posture exercée : obligatoire pour un exercice PPMS."),
    )
    activation = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text=_("Le déclenchement d'exercice qui l'a enregistré.")
    )

    class Meta:
        model = Drill
        fields = ["id", "school", "kind", "scenario", "held_on", "notes", "activation"]
        extra_kwargs = {"notes": {"max_length": 2000, "help_text": NO_NAMES}}

    def get_fields(self):
        fields = super().get_fields()
        if "schools" in self.context:
            fields["school"].queryset = self.context["schools"]
        return fields

    def validate_held_on(self, day):
        if day > timezone.localdate():
            raise serializers.ValidationError(_("Un exercice déjà tenu : pas de date future."))
        return day

    def validate(self, attrs):
        if attrs.get("kind", DrillKind.PPMS) == DrillKind.PPMS and not attrs.get("scenario"):
            raise serializers.ValidationError(
                {"scenario": _("Un exercice PPMS exerce une posture.")}
            )
        return attrs


class DrillRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=DrillKind.choices)
    scenario = serializers.CharField(help_text=_("La posture exercée ; vide pour un incendie."))
    held_on = serializers.DateField()
    activation = serializers.IntegerField(source="activation_id", allow_null=True)


class DrillCheckSerializer(serializers.Serializer):
    label = serializers.CharField()
    deadline = serializers.DateField()
    met = serializers.BooleanField()
    overdue = serializers.BooleanField()


class SchoolYearSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class SchoolDrillsSerializer(serializers.Serializer):
    """A school's drills this school year, judged against the regulation's requirements."""

    school = serializers.CharField(source="uai", help_text=_("Code UAI de l'école."))
    school_name = serializers.CharField(source="name")
    commune = CommuneRefSerializer()
    school_year = SchoolYearSerializer()
    drills = DrillRefSerializer(source="year_drills", many=True)
    requirements = DrillCheckSerializer(many=True)
    overdue = serializers.BooleanField(
        help_text=_("Vrai si une échéance est passée sans les exercices demandés.")
    )


class DrillFilterSerializer(serializers.Serializer):
    commune = InseeParam(required=False)
    overdue = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("true : les écoles en retard d'exercices ; false : les autres."),
    )


# --- Proposals, cancellation, end of alert ------------------------------------------------


class ProposalAlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    sensor = serializers.CharField()
    metric = serializers.CharField()
    last_value = serializers.FloatField(allow_null=True)
    last_value_at = serializers.CharField(allow_null=True)


class ProposalSchoolSerializer(serializers.Serializer):
    school = serializers.CharField(help_text=_("Code UAI."))
    school_name = serializers.CharField()
    commune = CommuneRefSerializer()
    open = serializers.BooleanField(
        help_text=_("Vrai si des élèves y sont maintenant (jours, horaires, vacances).")
    )


class ProposalSerializer(serializers.Serializer):
    """A proposal: the keys of ``summaries.proposal_summary`` (the live ``proposal`` events)."""

    id = serializers.IntegerField()
    scenario = serializers.ChoiceField(choices=Scenario.choices)
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=ProposalState.choices)
    rule = RuleRefSerializer(help_text=_("La règle qui propose."))
    created_at = serializers.CharField()
    auto_activate_at = serializers.CharField(
        allow_null=True,
        help_text=_("Déclenché automatiquement à cette heure sans réponse ; null : jamais."),
    )
    decided_at = serializers.CharField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    activation = serializers.IntegerField(allow_null=True)
    silent = serializers.BooleanField()
    alerts = ProposalAlertSerializer(many=True)
    schools = ProposalSchoolSerializer(many=True)
    schools_open = serializers.IntegerField(
        help_text=_("Combien de ces écoles ont des élèves maintenant ; 0 : écoles fermées.")
    )
    may_decide = serializers.BooleanField(
        help_text=_("Vrai si vous pouvez valider, écarter ou annuler cette proposition.")
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=1000, help_text=_("Pourquoi : il est enregistré avec votre nom.")
    )


class EndSerializer(serializers.Serializer):
    ordered_by = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("L'autorité qui a ordonné la fin d'alerte (obligatoire sauf exercice)."),
    )
    confirmed_schools = serializers.ListField(
        child=serializers.CharField(max_length=8),
        required=False,
        default=list,
        max_length=10_000,
        help_text=_(
            "Les codes UAI des écoles sans réponse ou ayant besoin d'aide : chacune doit être "
            "confirmée pour donner la fin d'alerte."
        ),
    )


# --- Centres d'accueil during an activation, Vigicrues, the crisis directory ---------------


class ArrivalInputSerializer(serializers.Serializer):
    commune = IdParam(help_text=_("La commune d'origine des personnes (identifiant)."))
    count = serializers.IntegerField(
        min_value=0, max_value=MAX_COUNT, help_text=_("Personnes arrivées de cette commune.")
    )


class ShelterReportInputSerializer(serializers.Serializer):
    """What a centre's staff record; ``shelter`` defaults to the activation's destination."""

    shelter = IdParam(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Le centre d'accueil (identifiant) ; par défaut celui du déclenchement."),
    )
    arrivals = ArrivalInputSerializer(
        many=True,
        max_length=200,
        help_text=_(
            "Les personnes arrivées, par commune d'origine (le total de chaque commune à "
            "ce moment, pas un ajout)."
        ),
    )
    staff = serializers.IntegerField(
        min_value=0,
        max_value=10_000,
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Personnel présent au centre."),
    )
    supplies = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Ravitaillement et matériel : ce qu'il y a, ce qui manque. ") + NO_NAMES,
    )

    def validate_arrivals(self, arrivals):
        codes = [arrival["commune"] for arrival in arrivals]
        doubled = sorted({code for code in codes if codes.count(code) > 1})
        if doubled:
            raise serializers.ValidationError(
                _("Une ligne par commune : %(codes)s en a plusieurs.")
                % {"codes": ", ".join(map(str, doubled))}
            )
        found = Commune.objects.in_bulk(codes)
        unknown = [str(code) for code in codes if code not in found]
        if unknown:
            raise serializers.ValidationError(
                _("Commune inconnue : %(codes)s.") % {"codes": ", ".join(unknown)}
            )
        return [(found[arrival["commune"]], arrival["count"]) for arrival in arrivals]


class VigicruesSerializer(serializers.Serializer):
    colour = ChoiceParam(
        choices=[("", _("Non renseignée")), *VigicruesColour.choices],
        help_text=_(
            "La couleur de vigilance Vigicrues lue sur vigicrues.gouv.fr : vert, jaune, "
            "orange, rouge ; vide pour l'effacer."
        ),
    )


class DirectoryEntrySerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=DirectoryRole.choices)
    label = serializers.CharField(source="get_role_display")
    phone = serializers.CharField(help_text=_("Le numéro du rôle, en E.164."))
    note = serializers.CharField()


class SchoolDirectorySerializer(serializers.Serializer):
    """A school's crisis directory: the roles to reach and their numbers, no names."""

    school = serializers.CharField(source="uai", help_text=_("Code UAI."))
    school_name = serializers.CharField(source="name")
    entries = DirectoryEntrySerializer(many=True)
