"""How the PPMS app listens to alerts: a rule naming a scenario starts an activation."""

import logging

from .services import ppms_activate_for_alert

log = logging.getLogger(__name__)


def on_alert_opened(sender, alert, **kwargs) -> None:
    activation = ppms_activate_for_alert(alert)
    if activation is not None:
        log.warning("PPMS %s activated by alert %s", activation.pk, alert.pk)
