"""How the PPMS app listens: a rule naming a scenario proposes the PPMS; a push or a text
to a school changing state goes to the board."""

import logging

from . import notify
from .proposals import ppms_propose_for_alert

log = logging.getLogger(__name__)


def on_alert_opened(sender, alert, **kwargs) -> None:
    for joined in ppms_propose_for_alert(alert):
        log.warning("alert %s: PPMS %s %s", alert.pk, type(joined).__name__.lower(), joined.pk)


def on_delivery_changed(sender, abouts: list[str], **kwargs) -> None:
    """Pushes or texts of an activation to schools changed state: the board hears it."""
    notify.tell_reach(abouts)
