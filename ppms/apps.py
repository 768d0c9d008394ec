from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PpmsConfig(AppConfig):
    name = "ppms"
    verbose_name = _("Écoles et PPMS")

    def ready(self):
        from alerts.feeds import register_feed_provider
        from alerts.signals import alert_opened

        from . import receivers
        from .cap import activation_feed_items

        alert_opened.connect(receivers.on_alert_opened, dispatch_uid="ppms-alert-opened")
        # Active activations are entries of the CAP feed (/api/v1/cap/feed/).
        register_feed_provider(activation_feed_items)
