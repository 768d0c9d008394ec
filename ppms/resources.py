"""CSV import and export of schools (django-import-export), used by the admin."""

from django.utils.translation import gettext_lazy as _

from sensors.resources import CommuneZonesResource

from .models import School


class SchoolResource(CommuneZonesResource):
    class Meta:
        model = School
        name = _("Écoles")
        fields = (
            "uai",
            "name",
            "address",
            "commune",
            "zones",
            "latitude",
            "longitude",
            "pupils",
            "staff",
            "crisis_phones",
            "sms_during_intrusion",
        )
        import_id_fields = ("uai",)
        clean_model_instances = True
        # Coordinates keep a dot whatever the language, so an export re-imports as is.
        widgets = {
            "latitude": {"coerce_to_string": False},
            "longitude": {"coerce_to_string": False},
        }
