from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alertes")

    def ready(self):
        from sensors.signals import batch_writing, sensor_state_changed

        from . import receivers
        from .models import Rule

        batch_writing.connect(receivers.on_batch_writing, dispatch_uid="alerts-batch")
        sensor_state_changed.connect(
            receivers.on_sensor_state_changed, dispatch_uid="alerts-sensor-state"
        )
        for signal in (post_save, post_delete):
            signal.connect(receivers.on_rules_changed, sender=Rule, dispatch_uid=f"rules-{signal}")
        for through in (Rule.zones.through, Rule.communes.through):
            m2m_changed.connect(
                receivers.on_rules_changed,
                sender=through,
                dispatch_uid=f"rules-m2m-{through.__name__}",
            )
