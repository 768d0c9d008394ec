"""Who was told how: for each school of an activation, its director's page (seen), the
pushes to the directors' phones, the texts to its crisis numbers, the operators' call,
and its first sign of life — what the board shows and the report keeps.

Device pushes and text messages name the school and activation they are about
(``notify.about``); their states come from the push services and the SMS gateway.
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import texting
from core.models import DevicePush, SmsMessage

from .models import SchoolStatus

# The best state reached by any of a school's pushes, and by any of its texts.
PUSH_ORDER = ["failed", "pending", "sent", "received"]
SMS_ORDER = ["failed", "pending", "sent", "delivered"]
PUSH_LABELS = {
    "none": gettext_lazy("aucun appareil abonné"),
    "failed": gettext_lazy("non remise"),
    "pending": gettext_lazy("en cours"),
    "sent": gettext_lazy("envoyée"),
    "received": gettext_lazy("reçue"),
}
SMS_LABELS = {
    "none": gettext_lazy("pas encore"),
    "not_needed": gettext_lazy("inutile (l'école a répondu)"),
    "no_number": gettext_lazy("aucun numéro"),
    "withheld": gettext_lazy("non (intrusion)"),
    "failed": gettext_lazy("SMS non remis"),
    "pending": gettext_lazy("en cours"),
    "sent": gettext_lazy("envoyé"),
    "delivered": gettext_lazy("remis"),
}


@dataclass
class Reach:
    status: SchoolStatus
    first_reply_at: datetime | None
    push: str = "none"
    devices: int = 0
    sms: str = "none"

    @property
    def seen_at(self) -> datetime | None:
        return self.status.seen_at

    @property
    def first_sign_at(self) -> datetime | None:
        """The first sign of life from the school: its page seen, or its first report."""
        moments = [moment for moment in (self.status.seen_at, self.first_reply_at) if moment]
        return min(moments) if moments else None

    @property
    def call(self) -> bool:
        """The operators were asked to call the school, which has not answered since, and
        the activation goes on."""
        status = self.status
        going_on = status.activation.ended_at is None
        return bool(status.call_asked_at) and status.state == "pending" and going_on

    @property
    def phones(self) -> list[str]:
        return self.status.school.phones

    @property
    def phone_links(self) -> list[tuple[str, str]]:
        """Each crisis number: (for a tel: link, as people read it)."""
        return [(phone, texting.readable(phone)) for phone in self.phones]

    @property
    def push_label(self) -> str:
        return str(PUSH_LABELS[self.push])

    @property
    def sms_label(self) -> str:
        return str(SMS_LABELS[self.sms])

    def text(self) -> str:
        """One line for the report's CSV."""
        parts = [
            _("page vue à %(time)s") % {"time": _local_time(self.seen_at)}
            if self.seen_at
            else _("page pas vue"),
            _("notification : %(state)s") % {"state": self.push_label},
            _("SMS : %(state)s") % {"state": self.sms_label},
            _("premier signe de vie à %(time)s") % {"time": _local_time(self.first_sign_at)}
            if self.first_sign_at
            else _("aucun signe de vie"),
        ]
        if asked := self.status.call_asked_at:
            parts.append(_("appel demandé à %(time)s") % {"time": _local_time(asked)})
        if escalated := self.status.escalated_at:
            parts.append(_("signalée aux services à %(time)s") % {"time": _local_time(escalated)})
        return " ; ".join(str(part) for part in parts)


def reach_of(statuses_with_first_reply) -> dict[int, Reach]:
    """The reach of each status (``first_reply_at`` annotated on each), by status id; one
    query for the pushes and one for the texts, whatever the number of schools."""
    statuses = list(statuses_with_first_reply)
    reaches = {status.pk: Reach(status, status.first_reply_at) for status in statuses}
    key = {f"ppms:{status.activation_id}:{status.school.uai}": status.pk for status in statuses}
    if not key:
        return reaches
    devices: dict[int, set] = {}
    for about, device, state, received_at in DevicePush.objects.filter(about__in=key).values_list(
        "about", "subscription_id", "status", "received_at"
    ):
        reach = reaches[key[about]]
        devices.setdefault(reach.status.pk, set()).add(device)
        reach.devices = len(devices[reach.status.pk])
        if state == DevicePush.Status.GONE:
            continue
        state = "received" if received_at else "sent" if state == "delivered" else state
        reach.push = _best(PUSH_ORDER, reach.push, state)
    for about, state in SmsMessage.objects.filter(about__in=key).values_list("about", "status"):
        reach = reaches[key[about]]
        reach.sms = _best(SMS_ORDER, reach.sms, state)
    for reach in reaches.values():
        school, activation = reach.status.school, reach.status.activation
        if reach.sms == "none" and reach.status.texted_at:
            reach.sms = "pending"  # asked, not yet handed to the gateway
        elif reach.sms == "none" and reach.status.state != "pending":
            reach.sms = "not_needed"  # the school answered before the ladder texted it
        elif reach.sms == "none" and not school.phones:
            reach.sms = "no_number"
        elif reach.sms == "none" and not school.may_text(activation.scenario):
            reach.sms = "withheld"
    return reaches


def _best(order: list[str], current: str, state: str) -> str:
    if current not in order:
        return state
    return max(current, state, key=order.index)


def _local_time(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S")
