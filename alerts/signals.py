"""What the alerts app announces, for the apps that build on it (ppms).

``alert_opened`` is sent, after the commit, with ``alert`` for every new alert: the
PPMS app starts an activation when the alert's rule names a PPMS scenario.
"""

import logging

from django.dispatch import Signal

from .models import Alert

log = logging.getLogger(__name__)

alert_opened = Signal()


def announce_opened(alert: Alert) -> None:
    """Send ``alert_opened``; a failing receiver is logged, never raised."""
    for receiver, error in alert_opened.send_robust(sender=Alert, alert=alert):
        if isinstance(error, Exception):
            log.error("alert_opened receiver %s failed: %r", receiver, error)
