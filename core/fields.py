"""Fields and helpers every API shares: RFC 3339 times, choices that name their values,
row identifiers, and the validation of a query string.
"""

import re
from datetime import UTC, datetime

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

INSEE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
# A commune's INSEE code, wherever one is written or asked for (models, API, filters).
insee_code = RegexValidator(INSEE_RE, _("Un code INSEE : 5 chiffres, ou 2A/2B et 3 chiffres."))


def parse_rfc3339(text: str) -> datetime | str:
    """The UTC instant of an RFC 3339 date-time, or what is wrong with it."""
    # fromisoformat() alone would also take bare dates, week dates and times without
    # seconds; RFC 3339 wants a full date, a full time and an offset.
    if not (
        19 <= len(text) <= 40
        and text[4] == "-"
        and text[7] == "-"
        and text[10] in "Tt "
        and text[13] == ":"
        and text[16] == ":"
    ):
        return "is not an RFC 3339 date-time"
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case t and z
    except ValueError:
        return "is not an RFC 3339 date-time"
    if moment.tzinfo is None:
        return "has no UTC offset"
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return "is out of range"


def rfc3339(moment: datetime) -> str:
    """Format an instant as RFC 3339 in UTC, as every time of this API."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UtcDateTimeField(serializers.DateTimeField):
    """A date-time rendered in UTC ("…Z") whatever the active time zone."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Field(serializers.Field):
    """An RFC 3339 date-time with its UTC offset, read as an aware UTC datetime."""

    default_error_messages = {
        "invalid": _(
            "Date et heure RFC 3339 attendues, avec leur décalage horaire "
            "(par exemple 2026-10-25T08:00:00Z ou 2026-10-25T10:00:00%2B02:00)."
        ),
    }

    def to_internal_value(self, data):
        text = str(data).strip()
        # An unencoded "+" in a query string arrives as a space: take it back.
        if len(text) > 19 and " " in text[19:]:
            text = text[:19] + text[19:].replace(" ", "+")
        moment = parse_rfc3339(text)
        if isinstance(moment, str):
            self.fail("invalid")
        return moment

    def to_representation(self, value):
        return rfc3339(value)


class IdParam(serializers.IntegerField):
    """The identifier of a row: beyond the largest key (BigAutoField), the database could
    not even compare it, and would fail."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)


class InseeParam(serializers.CharField):
    """A commune, by its INSEE code."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", _("Code INSEE de la commune (par exemple 37122)."))
        super().__init__(validators=[insee_code], **kwargs)


class ChoiceParam(serializers.ChoiceField):
    """A choice whose error names the accepted values."""

    default_error_messages = {
        "invalid_choice": _(
            "« {input} » n'est pas une valeur possible ; valeurs possibles : {choices}."
        ),
    }

    def to_internal_value(self, data):
        if str(data) not in self.choice_strings_to_values:
            choices = ", ".join(self.choice_strings_to_values)
            self.fail("invalid_choice", input=data, choices=choices)
        return self.choice_strings_to_values[str(data)]


def query_params(serializer_class, request, **context) -> dict:
    """Validate the query string, or answer 400 with a message per field."""
    serializer = serializer_class(data=request.query_params, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class TextField(serializers.CharField):
    """A string, as its schema says: DRF's CharField turns a JSON number into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RefRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to another object: written as its integer id, read as its reference
    object (``ref``, a serializer with an ``id``), as every answer names that object.
    Its schema says both (``core.openapi.RefRelatedFieldSchema``)."""

    def __init__(self, ref: type[serializers.Serializer], **kwargs):
        self.ref = ref
        super().__init__(**kwargs)

    def use_pk_only_optimization(self):
        return False  # the reference object needs more than the id

    def to_representation(self, value):
        return self.ref(value).data
