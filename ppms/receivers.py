"""How the PPMS app listens to alerts: a rule naming a scenario proposes the PPMS."""

import logging

from .proposals import ppms_propose_for_alert

log = logging.getLogger(__name__)


def on_alert_opened(sender, alert, **kwargs) -> None:
    for joined in ppms_propose_for_alert(alert):
        log.warning("alert %s: PPMS %s %s", alert.pk, type(joined).__name__.lower(), joined.pk)
