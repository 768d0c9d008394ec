"""Webhooks: Standard Webhooks signed JSON, retried with backoff until delivered, every
attempt logged. Receivers verify with the ``standardwebhooks`` library, as integrators do."""

import hashlib
import hmac
import http.server
import json
import threading

import pytest
import standardwebhooks

from core.models import Webhook, WebhookDelivery
from core.outbox import dispatch_pending as dispatch_pending_events
from core.webhooks import SIGNATURE_HEADER, sign
from tests.alerting import feed, make_rule
from tests.conftest import make_sensor


class Receiver:
    """A local HTTP server answering the given status codes in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))  # case-insensitive
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/csu"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(statuses=()):
        receiver = Receiver(statuses)
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.close()


def test_an_alert_is_posted_signed_to_the_rules_webhook(commune, receiver_factory):
    receiver = receiver_factory()
    hook = Webhook.objects.create(name="SDIS 37", url=receiver.url, secret="s3cret")
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()  # Celery runs eagerly here: the delivery goes at once

    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected == sign("s3cret", body)
    payload = json.loads(body)
    assert payload["event"] == "opened"
    assert payload["alert"]["sensor"] == "jlt-air-01" and payload["alert"]["last_value"] == 95
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


def test_a_receiver_verifies_a_delivery_with_the_standard_webhooks_library(
    commune, receiver_factory
):
    receiver = receiver_factory()
    hook = Webhook.objects.create(name="SDIS 37", url=receiver.url)
    assert hook.secret.startswith("whsec_")  # a new webhook gets a Standard Webhooks secret
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()

    [(headers, body)] = receiver.requests
    payload = standardwebhooks.Webhook(hook.secret).verify(body, dict(headers.items()))
    assert (payload["type"], payload["event"]) == ("alert", "opened")
    delivery = WebhookDelivery.objects.get()
    assert headers["webhook-id"] == delivery.message_id
    assert headers["webhook-signature"].startswith("v1,")


def test_a_webhook_with_a_secret_from_before_verifies_with_its_derived_whsec_secret(
    commune, receiver_factory
):
    receiver = receiver_factory()
    hook = Webhook.objects.create(name="Police", url=receiver.url, secret="s3cret")
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()

    [(headers, body)] = receiver.requests
    assert hook.standard_secret == "whsec_czNjcmV0"  # base64 of the old secret's bytes
    standardwebhooks.Webhook(hook.standard_secret).verify(body, dict(headers.items()))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_b3RoZXI=").verify(body, dict(headers.items()))
    assert headers[SIGNATURE_HEADER] == sign("s3cret", body)  # the deprecated header still


def test_a_receiver_answering_500_then_200_gets_one_retry_with_the_same_webhook_id(
    commune, receiver_factory
):
    receiver = receiver_factory([500, 200])
    hook = Webhook.objects.create(name="Préfecture", url=receiver.url)
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()

    first, second = receiver.requests  # the first try and one retry, nothing more
    assert first[0]["webhook-id"] == second[0]["webhook-id"] != ""
    for headers, body in receiver.requests:  # each attempt is signed afresh, and verifies
        standardwebhooks.Webhook(hook.secret).verify(body, dict(headers.items()))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_a_failing_webhook_is_retried_until_it_answers(commune, receiver_factory):
    receiver = receiver_factory([500, 503])
    hook = Webhook.objects.create(name="Préfecture", url=receiver.url, secret="k")
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()

    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_a_webhook_that_never_answers_is_marked_failed_with_its_error(commune, receiver_factory):
    receiver = receiver_factory([500] * 20)
    hook = Webhook.objects.create(name="Police", url=receiver.url, secret="k")
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.attempts == 9  # the first try and 8 retries
    assert delivery.last_status_code == 500 and "500" in delivery.last_error


def test_an_inactive_webhook_gets_nothing(commune, receiver_factory):
    receiver = receiver_factory()
    hook = Webhook.objects.create(name="Off", url=receiver.url, secret="k", active=False)
    make_rule().webhooks.add(hook)
    feed(make_sensor(commune), [95])
    dispatch_pending_events()
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()
