from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PpmsConfig(AppConfig):
    name = "ppms"
    verbose_name = _("Écoles et PPMS")
