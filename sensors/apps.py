from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SensorsConfig(AppConfig):
    name = "sensors"
    verbose_name = _("Capteurs et mesures")

    def ready(self):
        from . import rollups
        from .signals import batch_writing

        # Late readings make their hour's roll-ups stale: ingest marks the hour.
        batch_writing.connect(rollups.on_batch_writing, dispatch_uid="rollups-dirty-hours")
