from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CsuConfig(AppConfig):
    name = "csu"
    verbose_name = "CSU"

    def ready(self):
        from sensors.signals import batch_committed, sensor_state_changed

        from . import live
        from .roles import ensure_role_groups

        post_migrate.connect(ensure_role_groups, sender=self)
        # The project wires the apps: ingest announces, the live layer pushes.
        batch_committed.connect(live.on_batch_committed, dispatch_uid="live-readings")
        sensor_state_changed.connect(live.on_sensor_state_changed, dispatch_uid="live-sensors")
