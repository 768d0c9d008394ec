"""Web Push reaches a director's phone with the page closed: the CSU encrypts each message
for the device (RFC 8291) and signs it (VAPID); here a push service on loopback decrypts
it with the device's keys, as the browser does, with the real library (http_ece)."""

import base64
import http.server
import json
import os
import threading

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rest_framework.test import APIClient

from core import webpush
from core.models import DevicePush, PushSubscription
from core.outbox import dispatch_pending
from ppms.services import ppms_activate, ppms_cancel

SUBSCRIPTIONS = "/api/v1/push/subscriptions/"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class PushService:
    """A push service on loopback for one device, which decrypts what it is sent.

    ``statuses``: what it answers in turn (201 once they are used up).
    """

    def __init__(self, statuses=()):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.statuses = list(statuses)
        self.messages: list[dict] = []
        self.headers: list = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = service.statuses.pop(0) if service.statuses else 201
                if status == 201:
                    clear = http_ece.decrypt(
                        body,
                        private_key=service.private_key,
                        auth_secret=service.auth,
                        version="aes128gcm",
                    )
                    service.messages.append(json.loads(clear))
                    service.headers.append(self.headers)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/push/device-1"

    def subscription(self) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64url(public), "auth": b64url(self.auth)}
        return {"endpoint": self.endpoint, "keys": keys}

    def close(self):
        self.server.shutdown()


@pytest.fixture(autouse=True)
def vapid(settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY, settings.WEBPUSH_VAPID_PUBLIC_KEY = webpush.new_keys()
    settings.WEBPUSH_CONTACT = "mailto:csu@joue-les-tours.example"
    settings.WEBPUSH_HOSTS = [*settings.WEBPUSH_HOSTS, "127.0.0.1"]


@pytest.fixture
def push_service():
    services = []

    def make(statuses=()):
        services.append(PushService(statuses))
        return services[-1]

    yield make
    for service in services:
        service.close()


def subscribe(user, service) -> None:
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(SUBSCRIPTIONS, service.subscription(), format="json")
    assert response.status_code == 201, response.content


def test_an_activation_reaches_the_directors_phone_encrypted_and_signed(
    school, director, operator, push_service
):
    phone = push_service()
    subscribe(director, phone)

    activation = ppms_activate(
        scenario="evacuation",
        title="Crue du Cher",
        source="operator",
        schools=[school],
        by=operator,
    )
    dispatch_pending()

    [message] = phone.messages
    assert message["title"] == f"PPMS : Évacuer — {school.name}"
    assert "Crue du Cher" in message["body"]
    assert (message["event"], message["school"], message["silent"]) == (
        "activated",
        school.uai,
        False,
    )
    assert message["url"] == f"/ppms/school/{school.uai}/"
    assert phone.headers[0]["Authorization"].startswith("vapid t=")
    assert phone.headers[0]["Urgency"] == "high"
    push = DevicePush.objects.get()
    about = f"ppms:{activation.pk}:{school.uai}"
    assert (push.status, push.about, push.user) == ("delivered", about, director)


def test_an_intrusion_is_pushed_silent(school, director, push_service):
    phone = push_service()
    subscribe(director, phone)

    ppms_activate(scenario="intrusion", title="Intrusion", source="operator", schools=[school])
    dispatch_pending()

    assert phone.messages[0]["silent"] is True


def test_a_cancellation_is_pushed_as_a_mistake(school, director, operator, push_service):
    phone = push_service()
    subscribe(director, phone)
    activation = ppms_activate(
        scenario="shelter", title="Tempête", source="operator", schools=[school]
    )
    ppms_cancel(activation=activation, by=operator, reason="Mauvaise école")

    dispatch_pending()

    assert [message["event"] for message in phone.messages] == ["activated", "cancelled"]
    assert "annulé" in phone.messages[1]["body"]


def test_a_device_its_push_service_says_is_gone_is_unsubscribed(school, director, push_service):
    phone = push_service([410])
    subscribe(director, phone)

    ppms_activate(scenario="shelter", title="Tempête", source="operator", schools=[school])
    dispatch_pending()

    assert not PushSubscription.objects.exists()
    assert DevicePush.objects.get().status == "gone"


def test_a_push_service_that_fails_is_retried_and_never_blocks_the_activation(
    school, director, push_service
):
    phone = push_service([503, 500])
    subscribe(director, phone)

    activation = ppms_activate(
        scenario="shelter", title="Tempête", source="operator", schools=[school]
    )
    dispatch_pending()

    assert activation.pk and len(phone.messages) == 1  # the third try got through
    push = DevicePush.objects.get()
    assert (push.status, push.attempts) == ("delivered", 3)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"endpoint": "https://10.0.0.8/admin"}, "endpoint"),  # not a push service
        ({"endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "endpoint"),  # not HTTPS
        ({"keys": {"p256dh": "abc", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys"),
    ],
)
def test_a_subscription_to_anything_but_a_browsers_push_service_is_refused(
    director, push_service, change, field
):
    api = APIClient()
    api.force_authenticate(director)

    response = api.post(SUBSCRIPTIONS, {**push_service().subscription(), **change}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not PushSubscription.objects.exists()


def test_a_device_unsubscribes(director, push_service):
    phone = push_service()
    subscribe(director, phone)
    api = APIClient()
    api.force_authenticate(director)

    response = api.post("/api/v1/push/unsubscribe/", {"endpoint": phone.endpoint}, format="json")

    assert response.status_code == 204
    assert not PushSubscription.objects.exists()
