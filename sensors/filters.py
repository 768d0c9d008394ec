"""The filters of the sensors API's lists (``core/filters.py``)."""

import django_filters
from django.utils.translation import gettext_lazy as _

from core.filters import ChoiceFilter, IdFilter, InseeFilter

from .metrics import Kind
from .models import RejectedMessage, Sensor


class SensorFilter(django_filters.FilterSet):
    kind = ChoiceFilter(choices=Kind.choices)
    commune = InseeFilter()
    zone = IdFilter(field_name="zones", help_text=_("Identifiant de la zone."))
    state = ChoiceFilter(choices=Sensor.State.choices)

    class Meta:
        model = Sensor
        fields = ["kind", "commune", "zone", "state"]


class RejectionFilter(django_filters.FilterSet):
    reason = ChoiceFilter(choices=RejectedMessage.Reason.choices)
    sensor = django_filters.CharFilter(
        field_name="sensor_ref", help_text=_("Référence du capteur.")
    )

    class Meta:
        model = RejectedMessage
        fields = ["reason", "sensor"]
