"""The one way CSU tells the world: what a change must tell is written with the change,
and sent once it commits.

A change that others must hear of (an alert opened, a PPMS activation, a director's
report, a shelter filling up) writes a ``Notification`` in its own transaction with
``tell()``: the live pushes (a channel-layer group and its payload), the e-mails, and the
webhooks with the body they receive. Once the transaction commits, a worker claims the
unsent notifications — rows locked ``SKIP LOCKED`` and marked sent in the claim's own
transaction, so two workers never take the same one — and fans each out: the live
pushes at once, then one Celery task per e-mail, per webhook delivery (signed,
retried with backoff, every attempt logged on its ``WebhookDelivery``), per device push
batch (``DevicePush``, ``webpush.BATCH`` at once) and per text message (``SmsMessage``). Each
notification goes out once, whoever dispatches it: the task enqueued at the commit, or
beat's periodic check, which sends what a lost task left behind.

While Redis is away, each attempt to enqueue costs the caller over half a second of the
broker client's retries: after a failure, this process does not try again for
``PAUSE_S`` seconds (the rows wait meanwhile), so ingest keeps its pace in an outage.
"""

import logging
import time
from collections.abc import Iterable
from typing import TypedDict

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from . import live, texting, webpush
from .models import (
    DevicePush,
    Notification,
    PushSubscription,
    SmsMessage,
    Webhook,
    WebhookDelivery,
)
from .webhooks import attempt_delivery

log = logging.getLogger(__name__)

BATCH = 200
PAUSE_S = 5.0
_paused_until = 0.0


class Push(TypedDict):
    """One live push: ``payload`` to every browser in ``group``.

    ``only_schools``: for a directors' group, the schools the event is about (each page
    keeps only its own schools' events).
    """

    group: str
    payload: dict
    only_schools: list[int] | None


class Email(TypedDict):
    subject: str
    body: str
    to: list[str]


class DeviceMessage(TypedDict):
    """A Web Push to every device of ``users``; ``about`` says what it is about (a school's
    UAI), for those who follow who was told how."""

    users: list[int]
    about: str
    payload: dict


class TextMessage(TypedDict):
    """A text message (SMS) to each number of ``to``; ``about`` as for a device message."""

    to: list[str]
    about: str
    text: str


def push(group: str, payload: dict, only_schools: Iterable[int] | None = None) -> Push:
    schools = None if only_schools is None else sorted(only_schools)
    return Push(group=group, payload=payload, only_schools=schools)


def tell(
    *,
    topic: str,
    event: str,
    pushes: Iterable[Push] = (),
    emails: Iterable[Email] = (),
    webhook_payload: dict | None = None,
    webhooks: Iterable[Webhook] = (),
    devices: Iterable[DeviceMessage] = (),
    texts: Iterable[TextMessage] = (),
) -> Notification:
    """Record what to tell of a change, in its transaction; it is sent once committed.

    ``webhooks`` receive ``webhook_payload`` (with the time it was sent added).
    """
    notification = Notification.objects.create(
        topic=topic,
        event=event,
        live=list(pushes),
        emails=[email for email in emails if email["to"]],
        webhook_payload=webhook_payload,
        devices=[message for message in devices if message["users"]],
        texts=[message for message in texts if message["to"]],
    )
    webhooks = list(webhooks) if webhook_payload is not None else []
    if webhooks:
        notification.webhooks.set(webhooks)
    after_commit(dispatch)
    return notification


# --- Sending ---------------------------------------------------------------------------


def claim(now=None, *, locked=None) -> list[Notification]:
    """Take the unsent notifications (at most BATCH); each is returned to one caller only.

    Their webhook deliveries, device pushes and text messages are written in the same
    transaction: ``delivery_ids``, ``push_ids`` and ``sms_ids`` on each notification
    returned. ``locked(notifications)`` is called as soon as they are taken, before those
    writes (a thousand device pushes take a while): a failure after it leaves them unsent,
    to be sent again whole.
    """
    now = now or timezone.now()
    with transaction.atomic():
        notifications = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(notified_at__isnull=True)
            .prefetch_related("webhooks")
            .order_by("pk")[:BATCH]
        )
        if locked is not None and notifications:
            locked(notifications)
        deliveries = []
        for notification in notifications:
            notification.notified_at = now
            if notification.webhook_payload is None:
                continue
            payload = notification.webhook_payload | {"sent_at": now.isoformat()}
            deliveries += [
                WebhookDelivery(webhook=hook, notification=notification, payload=payload)
                for hook in notification.webhooks.all()
                if hook.active
            ]
        pushes = _device_pushes(notifications) if webpush.enabled() else []
        texts = [
            SmsMessage(notification=notification, to=to, about=message["about"][:40], text=text)
            for notification in notifications
            for message in notification.texts
            for to in message["to"]
            if (text := message["text"])
        ]
        Notification.objects.bulk_update(notifications, ["notified_at"])
        WebhookDelivery.objects.bulk_create(deliveries)
        DevicePush.objects.bulk_create(pushes)
        SmsMessage.objects.bulk_create(texts)
    for notification in notifications:
        notification.delivery_ids = _ids_of(deliveries, notification)
        notification.push_ids = _ids_of(pushes, notification)
        notification.sms_ids = _ids_of(texts, notification)
    return notifications


def _ids_of(rows, notification: Notification) -> list[int]:
    return [row.pk for row in rows if row.notification_id == notification.pk]


def _device_pushes(notifications: list[Notification]) -> list[DevicePush]:
    """A push per device of each user a notification's device messages name."""
    users = {user for n in notifications for message in n.devices for user in message["users"]}
    devices: dict[int, list[PushSubscription]] = {}
    for subscription in PushSubscription.objects.filter(user_id__in=users).order_by("pk"):
        devices.setdefault(subscription.user_id, []).append(subscription)
    return [
        DevicePush(
            notification=notification,
            subscription=subscription,
            user_id=user,
            about=message["about"][:40],
            payload=message["payload"],
        )
        for notification in notifications
        for message in notification.devices
        for user in message["users"]
        for subscription in devices.get(user, [])
    ]


def dispatch_pending() -> int:
    """Claim and send every unsent notification; return how many were handled."""
    handled = 0
    while notifications := claim(locked=send_live):
        for notification in notifications:
            for email in notification.emails:
                send_email.delay(email["subject"], email["body"], email["to"])
            for delivery_id in notification.delivery_ids:
                deliver_webhook.delay(delivery_id)
            for start in range(0, len(notification.push_ids), webpush.BATCH):
                push_to_devices.delay(notification.push_ids[start : start + webpush.BATCH])
            for sms_id in notification.sms_ids:
                send_sms.delay(sms_id)
        handled += len(notifications)
    return handled


def send_live(notifications: list[Notification]) -> None:
    """The live pushes of the notifications, first: the browsers hear at once."""
    items = [
        (item["group"], item["payload"], item["only_schools"])
        for notification in notifications
        for item in notification.live
    ]
    try:
        live.send_many(items)
    except Exception:
        log.exception("live pushes of notifications %s failed", [n.pk for n in notifications])


class WebhookNotDelivered(Exception):
    pass


@shared_task
def dispatch() -> int:
    """Send the notifications waiting (enqueued by each commit that wrote some; on beat)."""
    return dispatch_pending()


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_email(subject: str, body: str, recipients: list[str]) -> None:
    # The text was written with the change: a retry sends the same e-mail.
    send_mail(subject, body, None, recipients)


@shared_task(
    bind=True,
    autoretry_for=(WebhookNotDelivered,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=8,
)
def deliver_webhook(self, delivery_id: int) -> str:
    outcome = attempt_delivery(delivery_id, final=self.request.retries >= self.max_retries)
    if outcome == "retry":
        raise WebhookNotDelivered(delivery_id)
    return outcome


# A push or a text message is retried 6 times, 2 s then doubling up to a minute: a phone
# in a crisis is reached within minutes or the escalation ladder takes over.
DEVICE_RETRIES = {
    "bind": True,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "max_retries": 6,
}


class NotPushed(Exception):
    pass


@shared_task(autoretry_for=(NotPushed,), **DEVICE_RETRIES)
def push_to_devices(self, push_ids: list[int]) -> dict[int, str]:
    """Push a batch; retried for those their push service did not take (the others are
    no longer pending, and a retry leaves them be)."""
    outcomes = webpush.attempt(push_ids, final=self.request.retries >= self.max_retries)
    retry = [push_id for push_id, outcome in outcomes.items() if outcome == "retry"]
    if retry:
        raise NotPushed(retry)
    return outcomes


class NotTexted(Exception):
    pass


@shared_task(autoretry_for=(NotTexted,), **DEVICE_RETRIES)
def send_sms(self, sms_id: int) -> str:
    outcome = texting.attempt(sms_id, final=self.request.retries >= self.max_retries)
    if outcome == "retry":
        raise NotTexted(sms_id)
    return outcome


# --- Enqueueing after the commit --------------------------------------------------------


def enqueue(task, *args) -> bool:
    """Send the Celery ``task`` now; False if the broker is away (or was, less than
    PAUSE_S ago)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return False
    try:
        task.delay(*args)
    except Exception as exc:  # noqa: BLE001 (whatever the broker's client raises)
        _paused_until = time.monotonic() + PAUSE_S
        log.warning(
            "could not enqueue %s (%s); not trying again for %g s, beat catches up",
            task.name,
            exc,
            PAUSE_S,
        )
        return False
    return True


def resume() -> None:
    """Try the broker again at the next enqueue, paused or not."""
    global _paused_until
    _paused_until = 0.0


_senders: dict[str, object] = {}


def after_commit(task) -> None:
    """Enqueue the Celery ``task`` (no arguments) when the current transaction commits,
    once however many times it is asked; not enqueued, the rows wait for beat."""
    sender = _senders.get(task.name)
    if sender is None:
        sender = _senders[task.name] = lambda: enqueue(task)
    # Looked up in the connection's own list, not a flag of ours: a rolled-back
    # transaction drops its callbacks, and a flag would stay set and silence the next.
    if any(entry[1] is sender for entry in transaction.get_connection().run_on_commit):
        return
    transaction.on_commit(sender)
