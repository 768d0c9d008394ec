from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PpmsConfig(AppConfig):
    name = "ppms"
    verbose_name = _("Écoles et PPMS")

    def ready(self):
        from alerts.signals import alert_opened

        from . import receivers

        alert_opened.connect(receivers.on_alert_opened, dispatch_uid="ppms-alert-opened")
