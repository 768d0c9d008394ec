"""Serializers of the PPMS API: schools and centres d'accueil, and their query parameters."""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from sensors.models import Zone
from sensors.serializers import INSEE_RE, CommuneRefSerializer, UtcDateTimeField

from .models import School, Shelter

# The largest value of the occupancy column (a 32-bit integer on PostgreSQL): beyond, the
# database would refuse the write with a 500 instead of a message.
MAX_OCCUPANCY = 2_147_483_647


# --- Representations ------------------------------------------------------------------


class SchoolZoneSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Zone.Type.choices)


class SchoolSerializer(serializers.ModelSerializer):
    """A school; its directors are listed to operators and admins only."""

    commune = CommuneRefSerializer()
    zones = SchoolZoneSerializer(many=True)
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


# --- Query parameters -----------------------------------------------------------------


class _CommuneFilterSerializer(serializers.Serializer):
    commune = serializers.CharField(
        required=False, help_text=_("Code INSEE de la commune (par exemple 37122).")
    )

    def validate_commune(self, value):
        if not INSEE_RE.match(value):
            raise serializers.ValidationError(
                _("Un code INSEE : 5 chiffres, ou 2A/2B et 3 chiffres.")
            )
        return value


class SchoolFilterSerializer(_CommuneFilterSerializer):
    zone = serializers.IntegerField(
        required=False, min_value=1, help_text=_("Identifiant de la zone.")
    )


class ShelterFilterSerializer(_CommuneFilterSerializer):
    # A missing boolean in a query string would read as false: default=None keeps
    # "not given" apart from "open=false".
    open = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("true : les centres ouverts ; false : les centres fermés."),
    )
