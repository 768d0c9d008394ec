"""Webhooks: signed JSON, retried with backoff until delivered, every attempt logged."""

import hashlib
import hmac
import http.server
import json
import threading

import pytest

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
