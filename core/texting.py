"""Text messages (SMS) to the schools' crisis phones, through django-sms: its backend is
chosen by ``SMS_BACKEND`` as Django chooses its e-mail backend (its console backend, the
embedded default, writes each message to the standard output; Twilio and MessageBird
backends come with it).

``core.texting.HttpGatewayBackend`` is ours, for a town's own SMS gateway: it posts each
message to ``SMS_GATEWAY_URL`` as JSON,
``{"to": "+33612345678", "from": "CSU", "text": "…", "reference": "42",
"status_callback": "<url>"}``
with ``Authorization: Bearer $SMS_GATEWAY_TOKEN``; a 2xx answer is the message taken
(its JSON ``{"id": "…"}``, if any, the gateway's id). The gateway reports delivery by
posting ``{"reference": "42", "status": "delivered" | "failed", "error": "…"}`` (or
``"id"`` instead of ``"reference"``) to ``status_callback`` (``/api/v1/sms/receipts/``)
with the same bearer token.

The outbox (``core/outbox.py``) writes an ``SmsMessage`` per number of each notification
that asks for it; a Celery task sends each, retried while the gateway fails.
"""

import phonenumbers
import requests
import sms as django_sms
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from sms.backends.base import BaseSmsBackend

from .models import SmsMessage
from .signals import delivery_changed

TIMEOUT_S = 10


class NotSent(Exception):
    """The gateway did not take the message (it is tried again)."""


class HttpGatewayBackend(BaseSmsBackend):
    def send_messages(self, messages) -> int:
        callback = f"{settings.CSU_PUBLIC_URL.rstrip('/')}{reverse('sms-receipts')}"
        sent = 0
        for message in messages:
            for to in message.recipients:
                reference = getattr(message, "reference", "")
                try:
                    message.gateway_id = self._post(
                        {
                            "to": to,
                            "from": message.originator,
                            "text": message.body,
                            "reference": reference,
                            "status_callback": callback,
                        }
                    )
                except NotSent:
                    if not self.fail_silently:
                        raise
                else:
                    sent += 1
        return sent

    @staticmethod
    def _post(body: dict) -> str:
        try:
            response = requests.post(
                settings.SMS_GATEWAY_URL,
                json=body,
                headers={"Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}"},
                timeout=TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise NotSent(str(exc)) from exc
        if not 200 <= response.status_code < 300:
            raise NotSent(f"{response.status_code} {response.text[:200]}")
        try:
            return str(response.json().get("id", ""))[:100]
        except (ValueError, AttributeError):
            return ""


def normalized(number: str) -> str | None:
    """The number in E.164 (+33…), read as French unless it says its country; None if it
    is not a phone number."""
    try:
        parsed = phonenumbers.parse(number, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def readable(number: str) -> str:
    """A number as people read it: 02 61 91 01 00 in France, +44 20 … elsewhere."""
    try:
        parsed = phonenumbers.parse(number, "FR")
    except phonenumbers.NumberParseException:
        return number
    national = phonenumbers.region_code_for_number(parsed) == "FR"
    style = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(parsed, style.NATIONAL if national else style.INTERNATIONAL)


def attempt(sms_id: int, *, final: bool) -> str:
    """Send once; return "sent", "retry", "failed" (after the last try) or "gone"."""
    sms = SmsMessage.objects.filter(pk=sms_id).first()
    if sms is None or sms.status != SmsMessage.Status.PENDING:
        return "gone"
    sms.attempts += 1
    message = django_sms.Message(sms.text, recipients=[sms.to])
    message.reference = str(sms.pk)
    try:
        taken = message.send()
    except Exception as exc:  # noqa: BLE001 (whatever the chosen backend raises)
        taken, error = 0, str(exc) or type(exc).__name__
    else:
        error = "" if taken else "not taken by the SMS backend"
    if taken:
        sms.status, sms.sent_at, sms.last_error = SmsMessage.Status.SENT, timezone.now(), ""
        sms.gateway_id = getattr(message, "gateway_id", "")[:100]
        outcome = "sent"
    else:
        sms.last_error = error[:500]
        outcome = "failed" if final else "retry"
        if final:
            sms.status = SmsMessage.Status.FAILED
    sms.save()
    if outcome != "retry":
        delivery_changed.send(sender=SmsMessage, abouts=[sms.about])
    return outcome


def receipt(*, reference: str = "", gateway_id: str = "", status: str, error: str = "") -> bool:
    """Record a gateway's delivery receipt; False if no message sent matches it."""
    messages = SmsMessage.objects.exclude(status=SmsMessage.Status.PENDING)
    if reference.isdigit():
        messages = messages.filter(pk=int(reference))
    elif gateway_id:
        messages = messages.filter(gateway_id=gateway_id)
    else:
        return False
    matched = list(messages.values_list("pk", "about"))
    if status == "delivered":
        messages.update(status=SmsMessage.Status.DELIVERED, delivered_at=timezone.now())
    else:
        messages.update(status=SmsMessage.Status.FAILED, last_error=error[:500])
    if matched:
        delivery_changed.send(sender=SmsMessage, abouts=sorted({about for _pk, about in matched}))
    return bool(matched)
