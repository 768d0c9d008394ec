"""CSV import and export of sensors (django-import-export), used by the admin.

A row names its commune by INSEE code and its zones by name within that commune,
separated by ``|``. Each row is validated with the model's ``full_clean`` so that a bad
value is reported on its own line, and nothing is written while any line is wrong.
"""

import tablib
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets
from import_export.formats import base_formats

from core.exports import FORMULA_STARTS, neutralised

from .models import Commune, Sensor, Zone


class CSV(base_formats.CSV):
    """CSV separated by commas or, as French spreadsheets save it, by semicolons.

    A text cell that a spreadsheet would run as a formula (CSV injection) is exported
    with a quote before it (``core.exports.neutralised``; numbers, negative ones too, are
    left as they are), and the import takes that quote off: an export re-imports as is.
    """

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes) and self.encoding:
            in_stream = in_stream.decode(self.encoding)
        header = in_stream.lstrip("\ufeff").split("\n", 1)[0]
        if "delimiter" not in kwargs and header.count(";") > header.count(","):
            kwargs["delimiter"] = ";"
        return _map_cells(super().create_dataset(in_stream, **kwargs), _unquoted)

    def export_data(self, dataset, **kwargs):
        return super().export_data(_map_cells(dataset, _quoted), **kwargs)


def _map_cells(dataset: tablib.Dataset, change) -> tablib.Dataset:
    mapped = tablib.Dataset(headers=dataset.headers)
    for row in dataset:
        mapped.append([change(cell) for cell in row])
    return mapped


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _quoted(cell):
    if not isinstance(cell, str) or _is_number(cell):
        return cell
    return neutralised(cell)


def _unquoted(cell):
    if isinstance(cell, str) and cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def normalize_insee_code(value) -> str:
    """Restore the leading zero a spreadsheet drops from an INSEE code (01001 -> 1001)."""
    code = str(value if value is not None else "").strip()
    return code.zfill(5) if code.isdigit() else code.upper()


class CommuneWidget(widgets.ForeignKeyWidget):
    """A commune given by its INSEE code; an unknown code is an error of its line."""

    def __init__(self, **kwargs):
        super().__init__(Commune, "insee_code", **kwargs)

    def clean(self, value, row=None, **kwargs):
        code = normalize_insee_code(value)
        if not code:
            return None
        try:
            return super().clean(code, row, **kwargs)
        except Commune.DoesNotExist:
            raise ValueError(
                _("Commune inconnue : aucune commune n'a le code INSEE « %(code)s ».")
                % {"code": code}
            ) from None


class ZoneNamesWidget(widgets.ManyToManyWidget):
    """Zones given by name, separated by ``|``, looked up within the row's commune.

    An unknown name raises instead of being dropped: a sensor silently left out of a
    flood zone would miss that zone's alerts.
    """

    def __init__(self, commune_column: str = "commune", **kwargs):
        super().__init__(Zone, separator="|", field="name", **kwargs)
        self.commune_column = commune_column

    def clean(self, value, row=None, **kwargs):
        names = [name.strip() for name in str(value or "").split(self.separator)]
        names = [name for name in names if name]
        if not names:
            return Zone.objects.none()
        code = normalize_insee_code((row or {}).get(self.commune_column))
        zones = {
            zone.name.casefold(): zone for zone in Zone.objects.filter(commune__insee_code=code)
        }
        unknown = [name for name in names if name.casefold() not in zones]
        if unknown:
            raise ValueError(
                _("Zone(s) inconnue(s) dans la commune %(code)s : %(names)s.")
                % {"code": code, "names": ", ".join(unknown)}
            )
        return Zone.objects.filter(pk__in=[zones[name.casefold()].pk for name in names])


class YesNoWidget(widgets.BooleanWidget):
    """A boolean that refuses what it does not understand instead of reading it as False."""

    TRUE_WORDS = frozenset({"1", "true", "vrai", "oui", "yes", "o", "y"})
    FALSE_WORDS = frozenset({"0", "false", "faux", "non", "no", "n"})

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        word = str(value if value is not None else "").strip().casefold()
        if word == "":
            return None
        if word in self.TRUE_WORDS:
            return True
        if word in self.FALSE_WORDS:
            return False
        raise ValueError(
            _("Valeur booléenne attendue (1/0, oui/non, true/false), pas « %(value)s ».")
            % {"value": value}
        )


class CommuneZonesResource(resources.ModelResource):
    """Base of the resources whose rows carry a ``commune`` and its ``zones``."""

    commune = fields.Field(attribute="commune", column_name="commune", widget=CommuneWidget())
    zones = fields.Field(attribute="zones", column_name="zones", widget=ZoneNamesWidget())

    def import_instance(self, instance, row, **kwargs):
        # import-export reads many-to-many columns only after the instance is validated
        # and saved, so an unknown zone would be reported as an unexpected failure, apart
        # from the line's other errors. Check them here, with the other fields.
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        if "commune" not in errors:
            for field in self.get_import_fields():
                if not isinstance(field.widget, widgets.ManyToManyWidget):
                    continue
                if field.readonly or field.column_name not in row:
                    continue
                try:
                    field.clean(row, **kwargs)
                except ValueError as e:
                    errors[field.attribute] = [ValidationError(str(e), code="invalid")]
        if errors:
            raise ValidationError(errors)

    def filter_export(self, queryset, **kwargs):
        queryset = super().filter_export(queryset, **kwargs)
        if isinstance(queryset, QuerySet):
            queryset = queryset.select_related("commune").prefetch_related("zones")
        return queryset


class SensorResource(CommuneZonesResource):
    active = fields.Field(
        attribute="active", column_name="active", widget=YesNoWidget(), default=True
    )
    # An empty cell is a period not known, not the model's default of 60 s.
    expected_interval = fields.Field(
        attribute="expected_interval",
        column_name="expected_interval",
        widget=widgets.IntegerWidget(coerce_to_string=False),
    )

    class Meta:
        model = Sensor
        name = _("Capteurs")
        fields = (
            "ref",
            "name",
            "kind",
            "commune",
            "zones",
            "latitude",
            "longitude",
            "building",
            "expected_interval",
            "active",
        )
        import_id_fields = ("ref",)
        clean_model_instances = True
        # Coordinates keep a dot whatever the language, so an export re-imports as is.
        widgets = {
            "latitude": {"coerce_to_string": False},
            "longitude": {"coerce_to_string": False},
        }
