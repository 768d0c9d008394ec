from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The top of the house: the operators' screens and the live websocket."""

    name = "dashboard"
    verbose_name = _("Tableau de bord")
