"""The one outbox (core/outbox.py): what a change tells is written with it, sent once,
and kept a while as the log of what went out."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.core import mail

from core import outbox, webpush
from core.models import DevicePush, Notification, PushSubscription, Webhook, WebhookDelivery
from core.tasks import purge_notifications
from tests.test_webhooks import Receiver

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_notification_goes_live_by_mail_and_to_its_webhooks_once(db, monkeypatch):
    pushed = []
    monkeypatch.setattr(outbox.live, "send_many", lambda items, **kw: pushed.extend(items))
    receiver = Receiver([])
    try:
        hook = Webhook.objects.create(name="SDIS 37", url=receiver.url, secret="s")
        Webhook.objects.create(name="Unused", url=receiver.url, secret="s")
        outbox.tell(
            topic="ppms",
            event="activated",
            pushes=[outbox.push("directors-3", {"type": "ppms"}, [8, 7])],
            emails=[
                outbox.Email(subject="Objet", body="Texte", to=["codis@sdis37.example"]),
                outbox.Email(subject="Personne", body="Texte", to=[]),
            ],
            webhook_payload={"type": "ppms", "event": "activated"},
            webhooks=[hook],
        )

        assert outbox.dispatch_pending() == 1
        assert outbox.dispatch_pending() == 0
    finally:
        receiver.close()

    assert pushed == [("directors-3", {"type": "ppms"}, [7, 8])]
    [email] = mail.outbox
    assert (email.subject, email.to) == ("Objet", ["codis@sdis37.example"])
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.webhook, delivery.status) == (hook, "delivered")
    assert delivery.notification == Notification.objects.get()
    assert delivery.payload["event"] == "activated" and "sent_at" in delivery.payload


def test_the_live_pushes_go_out_before_the_device_pushes_are_written(
    db, monkeypatch, settings, django_user_model
):
    # A thousand device pushes take a while to write: the browsers must not wait for them.
    settings.WEBPUSH_VAPID_PRIVATE_KEY, settings.WEBPUSH_VAPID_PUBLIC_KEY = webpush.new_keys()
    director = django_user_model.objects.create(username="director")
    PushSubscription.objects.create(
        user=director, endpoint="https://fcm.googleapis.com/fcm/send/x", p256dh="k", auth="a"
    )
    written_when_live = []
    monkeypatch.setattr(
        outbox.live,
        "send_many",
        lambda items, **kw: written_when_live.append(DevicePush.objects.count()),
    )
    monkeypatch.setattr(outbox.push_to_devices, "delay", lambda push_ids: None)
    outbox.tell(
        topic="ppms",
        event="activated",
        pushes=[outbox.push("commune-1", {"type": "ppms"})],
        devices=[outbox.DeviceMessage(users=[director.pk], about="ppms:1:0370001A", payload={})],
    )

    outbox.dispatch_pending()

    assert written_when_live == [0]
    assert DevicePush.objects.count() == 1


def test_a_webhook_switched_off_before_the_dispatch_gets_nothing(db):
    hook = Webhook.objects.create(name="Off", url="http://127.0.0.1:9/", secret="s")
    outbox.tell(topic="alert", event="opened", webhook_payload={}, webhooks=[hook])
    hook.active = False
    hook.save()

    outbox.dispatch_pending()

    assert not WebhookDelivery.objects.exists()


def test_what_was_told_is_kept_for_its_retention_then_purged(db, settings):
    settings.NOTIFICATION_RETENTION_DAYS = 90
    with time_machine.travel(NOW - timedelta(days=91), tick=False):
        old = outbox.tell(topic="alert", event="opened")
        outbox.dispatch_pending()
    with time_machine.travel(NOW - timedelta(days=91), tick=False):
        unsent = outbox.tell(topic="alert", event="resolved")  # never claimed: kept
    recent = outbox.tell(topic="alert", event="acknowledged")

    with time_machine.travel(NOW, tick=False):
        assert purge_notifications() == 1

    assert set(Notification.objects.all()) == {unsent, recent}
    assert not Notification.objects.filter(pk=old.pk).exists()
