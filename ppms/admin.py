from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from sensors.admin import CsvImportExportAdmin, ZonesInCommuneForm

from .models import School, Shelter
from .resources import SchoolResource


@admin.register(School)
class SchoolAdmin(CsvImportExportAdmin):
    resource_classes = [SchoolResource]
    form = ZonesInCommuneForm
    list_display = ("uai", "name", "commune", "pupils", "staff")
    list_filter = ("commune", "zones")
    search_fields = ("uai", "name", "address")
    list_select_related = ("commune",)
    filter_horizontal = ("zones", "directors")
    fieldsets = (
        (None, {"fields": ("uai", "name", "pupils", "staff", "directors")}),
        (_("Emplacement"), {"fields": ("address", "commune", "zones", "latitude", "longitude")}),
    )


@admin.register(Shelter)
class ShelterAdmin(admin.ModelAdmin):
    list_display = ("name", "commune", "capacity", "occupancy", "is_open")
    list_filter = ("commune", "is_open")
    search_fields = ("name", "address")
    list_select_related = ("commune",)
