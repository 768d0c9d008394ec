"""The escalation ladder and who was told how: a school that does not answer gets, step
after step, a reminder, a text to its crisis numbers (through a real HTTP gateway on
loopback, with its delivery receipts), a call from the operators and the safety services;
each step is on the timeline; the board and the report show every channel."""

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from core.models import DevicePush, Notification, SmsMessage
from core.outbox import dispatch_pending
from ppms.ladder import climb
from ppms.models import ActivationEvent, EscalationStep, SchoolStatus
from ppms.services import ppms_activate, ppms_cancel, ppms_report
from tests.conftest import make_school, sign_in

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris
RECEIPTS = "/api/v1/sms/receipts/"
TOKEN = "gateway-s3cret"


class Gateway:
    """An SMS gateway on loopback: takes each message (or answers the given statuses in
    turn), and says its id."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.messages: list[dict] = []
        self.headers: list = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = gateway.statuses.pop(0) if gateway.statuses else 202
                answer = b""
                if status < 300:
                    gateway.messages.append(body)
                    gateway.headers.append(self.headers)
                    answer = json.dumps({"id": f"gw-{len(gateway.messages)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def gateway(settings):
    gateways = []

    def make(statuses=()):
        gateways.append(Gateway(statuses))
        settings.SMS_BACKEND = "core.texting.HttpGatewayBackend"
        settings.SMS_GATEWAY_URL = gateways[-1].url
        settings.SMS_GATEWAY_TOKEN = TOKEN
        settings.CSU_PUBLIC_URL = "https://csu.joue-les-tours.example"
        return gateways[-1]

    yield make
    for made in gateways:
        made.close()


@pytest.fixture
def school(commune):
    return make_school(commune, "0370001A", crisis_phones="02 61 91 01 00, 0261910101")


@pytest.fixture
def morier(commune):
    return make_school(commune, "0370002B", name="École du Morier")  # no crisis number


def activate(*schools, scenario="evacuation", **fields):
    fields.setdefault("title", "Crue du Cher")
    return ppms_activate(
        scenario=scenario, source="operator", schools=list(schools), now=T0, **fields
    )


def lines(activation) -> list[tuple[str, int, list[str], str]]:
    """The ladder's lines of the timeline: (kind, minutes, schools, text)."""
    return [
        (event.kind, int((event.at - T0).total_seconds() // 60), event.schools, event.text)
        for event in ActivationEvent.objects.filter(activation=activation)
        .exclude(kind="started")
        .order_by("at", "pk")
    ]


def test_a_silent_school_climbs_the_default_ladder_step_by_step(school, morier, gateway):
    phone = gateway()
    activation = activate(school, morier)

    assert climb(T0 + timedelta(minutes=1, seconds=59)) == []
    assert len(climb(T0 + timedelta(minutes=2))) == 2
    dispatch_pending()
    assert [message["to"] for message in phone.messages] == ["+33261910100", "+33261910101"]
    assert len(climb(T0 + timedelta(minutes=5))) == 2
    assert len(climb(T0 + timedelta(minutes=10))) == 2
    assert climb(T0 + timedelta(hours=1)) == []

    assert lines(activation) == [
        (
            "ladder",
            2,
            ["0370001A", "0370002B"],
            "SMS aux numéros de crise de l'école (2 min) — SMS : École 0370001A ; sans numéro "
            "de crise : École du Morier",
        ),
        (
            "ladder",
            5,
            ["0370001A", "0370002B"],
            "Appel de l'école par l'opérateur (5 min)",
        ),
        (
            "escalated",
            10,
            ["0370001A", "0370002B"],
            "Signalement aux services de secours (10 min)",
        ),
    ]
    status = SchoolStatus.objects.get(school=school)
    assert status.call_asked_at == T0 + timedelta(minutes=5)
    assert status.escalated_at == T0 + timedelta(minutes=10)
    assert (status.ladder_step, status.escalate_at) == (4, None)


def test_the_text_says_what_to_do_and_where_with_the_gateways_documented_shape(school, gateway):
    phone = gateway()
    activate(school)
    climb(T0 + timedelta(minutes=2))

    dispatch_pending()

    first = phone.messages[0]
    assert set(first) == {"to", "from", "text", "reference", "status_callback"}
    assert first["from"] == "CSU"
    assert first["text"] == (
        "CSU Joué-lès-Tours : PPMS «\u202fÉvacuer\u202f» déclenché à 10:00 pour École 0370001A. "
        "Appliquez le PPMS et indiquez la situation de l'école : "
        "https://csu.joue-les-tours.example/ppms/school/0370001A/"
    )
    assert first["status_callback"] == f"https://csu.joue-les-tours.example{RECEIPTS}"
    assert phone.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    sms = SmsMessage.objects.get(pk=int(first["reference"]))
    assert (sms.status, sms.gateway_id, sms.attempts) == ("sent", "gw-1", 1)


def test_a_report_stops_the_schools_ladder(school, morier, gateway):
    gateway()
    activation = activate(school, morier)
    ppms_report(
        status=activation.statuses.get(school=school),
        report={"state": "safe"},
        by=None,
        now=T0 + timedelta(minutes=1),
    )

    climbed = climb(T0 + timedelta(minutes=30))

    assert {status.school for status in climbed} == {morier}
    assert SchoolStatus.objects.get(school=school).call_asked_at is None
    assert [schools for _kind, _min, schools, _text in lines(activation)] == [["0370002B"]] * 3


def test_no_text_during_an_intrusion_unless_the_schools_plan_allows_it(commune, school, gateway):
    phone = gateway()
    allowed = make_school(commune, "0370003C", name="École Rabière", crisis_phones="02 61 91 03 00")
    allowed.sms_during_intrusion = True
    allowed.save()
    activation = activate(school, allowed, scenario="intrusion", title="Intrusion")

    climb(T0 + timedelta(minutes=2))
    dispatch_pending()

    assert [message["to"] for message in phone.messages] == ["+33261910300"]
    [(_kind, _minutes, _schools, text)] = lines(activation)
    assert text.endswith(
        "SMS : École Rabière ; pas de SMS en intrusion (plan de l'école) : École 0370001A"
    )


def test_a_town_sets_its_own_ladder(school, gateway):
    phone = gateway()
    EscalationStep.objects.all().delete()
    EscalationStep.objects.create(after_minutes=0, action="sms")
    EscalationStep.objects.create(after_minutes=3, action="services")

    activation = activate(school)
    dispatch_pending()

    assert len(phone.messages) == 2  # texted with the activation itself
    assert SchoolStatus.objects.get().escalate_at == T0 + timedelta(minutes=3)
    climb(T0 + timedelta(minutes=3))
    assert [kind for kind, *_rest in lines(activation)] == ["ladder", "escalated"]


def test_the_end_and_a_cancellation_are_texted_to_the_schools_that_were(
    school, morier, operator, gateway
):
    phone = gateway()
    activation = activate(school, morier)
    climb(T0 + timedelta(minutes=2))
    ppms_cancel(activation=activation, by=operator, reason="Mauvais capteur")

    dispatch_pending()

    assert [message["text"][:60] for message in phone.messages[2:]] == [
        "CSU Joué-lès-Tours : déclenchement PPMS «\u202fÉvacuer\u202f» annulé ("
    ] * 2


def test_a_gateway_down_is_retried_then_the_board_says_sms_not_delivered(
    school, operator, gateway, client
):
    phone = gateway([503] * 14)  # for each of its two numbers, the first try and six retries
    activation = activate(school)
    climb(T0 + timedelta(minutes=2))

    dispatch_pending()

    assert phone.messages == []
    messages = SmsMessage.objects.all()
    assert {(sms.status, sms.attempts) for sms in messages} == {("failed", 7)}
    assert "503" in messages[0].last_error
    sign_in(client, operator)
    board = client.get("/ppms/").content.decode()
    assert "SMS non remis" in board
    reach = APIClient()
    reach.force_authenticate(operator)
    [row] = reach.get(f"/api/v1/ppms/activations/{activation.pk}/reach/").json()
    assert row["sms"] == "failed"


def test_a_gateway_unreachable_never_blocks_the_activation(school, settings):
    settings.SMS_BACKEND = "core.texting.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/messages"  # nobody there

    activation = activate(school)
    climb(T0 + timedelta(minutes=5))
    dispatch_pending()

    assert SchoolStatus.objects.get(activation=activation).call_asked_at is not None
    assert set(SmsMessage.objects.values_list("status", flat=True)) == {"failed"}


def test_the_gateways_receipts_mark_each_text_delivered_or_not(school, operator, gateway):
    phone = gateway()
    activation = activate(school)
    climb(T0 + timedelta(minutes=2))
    dispatch_pending()
    first, _second = phone.messages
    api = APIClient()

    wrong = api.post(
        RECEIPTS,
        {"reference": first["reference"], "status": "delivered"},
        format="json",
        HTTP_AUTHORIZATION="Bearer nope",
    )
    delivered = api.post(
        RECEIPTS,
        {"reference": first["reference"], "status": "delivered"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    failed = api.post(
        RECEIPTS,
        {"id": "gw-2", "status": "failed", "error": "absent subscriber"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    unknown = api.post(
        RECEIPTS,
        {"reference": "999999", "status": "delivered"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    bad = api.post(
        RECEIPTS, {"status": "read"}, format="json", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )

    assert [r.status_code for r in (wrong, delivered, failed, unknown, bad)] == [
        403,
        204,
        204,
        404,
        400,
    ]
    assert set(bad.json()) == {"status"}
    states = dict(SmsMessage.objects.values_list("to", "status"))
    assert states == {"+33261910100": "delivered", "+33261910101": "failed"}
    api.force_authenticate(operator)
    [row] = api.get(f"/api/v1/ppms/activations/{activation.pk}/reach/").json()
    assert row["sms"] == "delivered"  # one number of the school got it
    # The board heard each receipt at once.
    assert Notification.objects.filter(event="reach").count() >= 2


def test_crisis_numbers_are_checked_and_kept_in_international_form(commune):
    school = make_school(commune, "0370004D", crisis_phones="02 61 91 04 00 ,+33 2 61 91 04 01")
    assert school.crisis_phones == "+33261910400, +33261910401"
    school.crisis_phones = "02 61 91 04 00, 12"
    with pytest.raises(ValidationError) as error:
        school.full_clean()
    assert error.value.message_dict["crisis_phones"] == ["Pas un numéro de téléphone : 12."]


def test_the_director_page_seen_is_the_first_sign_of_life(school, director, operator):
    activation = activate(school)
    api = APIClient()
    url = f"/api/v1/ppms/activations/{activation.pk}/statuses/{school.uai}/seen/"

    api.force_authenticate(operator)
    assert api.post(url).status_code == 403  # an operator is not the school
    api.force_authenticate(director)
    first = api.post(url)
    again = api.post(url)

    assert first.status_code == again.status_code == 200
    assert first.json()["seen_at"] == again.json()["seen_at"]
    api.force_authenticate(operator)
    [row] = api.get(f"/api/v1/ppms/activations/{activation.pk}/reach/").json()
    assert row["seen_at"] == row["first_sign_at"] == first.json()["seen_at"]
    assert Notification.objects.filter(event="seen").count() == 1


def test_a_push_received_by_the_device_shows_on_the_board(school, director, operator):
    activation = activate(school)
    push = DevicePush.objects.create(
        notification=Notification.objects.first(),
        user=director,
        about=f"ppms:{activation.pk}:{school.uai}",
        payload={},
        status="delivered",
    )
    api = APIClient()

    forged = api.post("/api/v1/push/received/", {"id": push.pk, "token": "guess"}, format="json")
    received = api.post(
        "/api/v1/push/received/", {"id": push.pk, "token": push.token}, format="json"
    )

    assert (forged.status_code, received.status_code) == (404, 204)
    api.force_authenticate(operator)
    [row] = api.get(f"/api/v1/ppms/activations/{activation.pk}/reach/").json()
    assert (row["push"], row["devices"]) == ("received", 1)


def test_the_board_asks_to_call_a_silent_school_with_its_numbers(school, morier, operator, client):
    activate(school, morier)
    climb(T0 + timedelta(minutes=5))
    sign_in(client, operator)

    board = client.get("/ppms/").content.decode()

    assert board.count('data-testid="call"') == 2
    assert '<a href="tel:+33261910100">02 61 91 01 00</a>' in board
    assert "aucun numéro de crise" in board  # the Morier has none: say so
