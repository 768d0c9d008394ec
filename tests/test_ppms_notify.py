"""What the safety services hear of a PPMS activation: CAP 1.2 messages (start, escalation,
end, drills), signed webhooks with retries, and escalation e-mails — each sent once."""

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import xmlschema
from django.core import mail
from django.test import override_settings

from core.cap import CAP_NS, CAP_SCHEMA, cap_sender
from core.models import Notification, Webhook, WebhookDelivery
from core.outbox import dispatch_pending as dispatch_pending_events
from core.webhooks import SIGNATURE_HEADER, sign
from ppms.cap import activation_cap, cap_identifier, for_cap
from ppms.ladder import climb
from ppms.models import Activation, ActivationEvent, PpmsWebhook
from ppms.services import ppms_activate, ppms_alarm, ppms_report
from ppms.tasks import escalate_pending_schools
from tests.conftest import make_school, make_user, sign_in
from tests.ppms_helpers import end_of_alert
from tests.test_webhooks import Receiver

NS = {"cap": CAP_NS}
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Paris
SAFETY = ["codis37@sdis37.example", "pc-crise@indre-et-loire.gouv.example"]


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(CAP_SCHEMA)


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(statuses=()):
        receivers.append(Receiver(statuses))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()


@pytest.fixture
def morier(commune):
    return make_school(commune, uai="0370002B", name="École du Morier")


def activate(*schools, scenario="evacuation", drill=False, **fields):
    fields.setdefault("title", "Crue du Cher")
    fields.setdefault("source", "operator")
    return ppms_activate(scenario=scenario, schools=list(schools), drill=drill, now=T0, **fields)


def valid_cap(schema, activation, **kwargs) -> ET.Element:
    document = activation_cap(activation, **kwargs)
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    schema.validate(io.BytesIO(document))
    return ET.fromstring(document)


def cap(root, path):
    return root.findtext(path, namespaces=NS)


def caps(root, path):
    return [element.text for element in root.findall(path, namespaces=NS)]


def link_webhook(receiver, name="SDIS 37", communes=(), **fields):
    hook = Webhook.objects.create(name=name, url=receiver.url, secret="s3cret", **fields)
    link = PpmsWebhook.objects.create(webhook=hook)
    link.communes.set(communes)
    return hook


# --- CAP ----------------------------------------------------------------------------------


def test_an_activation_is_a_valid_cap_alert_message(schema, school, morier, operator):
    activation = activate(school, morier, by=operator)

    root = valid_cap(schema, activation)

    assert cap(root, "cap:identifier") == f"urn:csu:localhost:ppms:{activation.pk}:1"
    assert cap(root, "cap:identifier") == cap_identifier(activation)
    assert cap(root, "cap:sender") == cap_sender()
    assert cap(root, "cap:sent") == "2026-11-23T10:00:00+01:00"
    assert cap(root, "cap:status") == "Actual"
    assert cap(root, "cap:msgType") == "Alert"
    assert cap(root, "cap:scope") == "Public"
    assert cap(root, "cap:references") is None
    assert caps(root, "cap:info/cap:category") == ["Safety"]
    assert cap(root, "cap:info/cap:event") == "PPMS : Évacuer"
    assert cap(root, "cap:info/cap:responseType") == "Evacuate"
    assert cap(root, "cap:info/cap:urgency") == "Immediate"
    assert cap(root, "cap:info/cap:severity") == "Severe"
    assert cap(root, "cap:info/cap:headline") == "Crue du Cher"
    assert "N'allez pas chercher vos enfants" in cap(root, "cap:info/cap:instruction")
    description = cap(root, "cap:info/cap:description")
    assert "le 23/11/2026 à 10:00, par un opérateur du CSU" in description
    assert "2 école(s) concernée(s) : 2 en attente" in description
    assert caps(root, "cap:info/cap:area/cap:circle") == ["47.35,0.66 0.1"] * 2
    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "École 0370001A, École du Morier"


def test_an_escalation_is_an_update_naming_the_silent_schools(schema, school, morier, director):
    activation = activate(school, morier)
    ppms_report(
        status=activation.statuses.get(school=school),
        report={"state": "safe", "pupils_present": 180},
        by=director,
        now=T0 + timedelta(minutes=4),
    )
    climb(T0 + timedelta(minutes=10))

    root = valid_cap(schema, activation, restricted=True)  # the safety services' copy

    assert cap(root, "cap:identifier").endswith(":2")
    assert cap(root, "cap:msgType") == "Update"
    assert cap(root, "cap:sent") == "2026-11-23T10:10:00+01:00"
    assert cap(root, "cap:references") == (
        f"{cap_sender()},urn:csu:localhost:ppms:{activation.pk}:1,2026-11-23T10:00:00+01:00"
    )
    assert cap(root, "cap:info/cap:responseType") == "Evacuate"
    description = cap(root, "cap:info/cap:description")
    assert "Sans réponse après 10 min : École du Morier (0370002B)." in description
    assert "2 école(s) concernée(s) : 1 en attente, 1 en sûreté." in description


def test_an_operators_copy_of_an_escalation_names_only_the_schools_of_their_communes(
    schema, school, other_commune, operator
):
    # The pen test's finding: an operator of one commune read another's schools in the CAP.
    ballan = make_school(other_commune, "0370003C", name="École de Ballan")
    activation = activate(school, ballan)
    climb(T0 + timedelta(minutes=10))

    mine = valid_cap(
        schema,
        for_cap(Activation.objects.filter(pk=activation.pk), operator).get(),
        restricted=True,
    )
    whole = valid_cap(
        schema, for_cap(Activation.objects.filter(pk=activation.pk)).get(), restricted=True
    )

    assert "0370003C" not in ET.tostring(mine, encoding="unicode")
    assert "Ballan" not in ET.tostring(mine, encoding="unicode")
    assert "Sans réponse après 10 min : École 0370001A (0370001A)." in cap(
        mine, "cap:info/cap:description"
    )
    assert len(caps(mine, "cap:info/cap:area/cap:circle")) == 1
    # The safety services' copy (webhooks) is whole.
    assert "École de Ballan (0370003C)" in cap(whole, "cap:info/cap:description")
    assert len(caps(whole, "cap:info/cap:area/cap:circle")) == 2


def test_an_escalation_of_only_schools_the_reader_cannot_see_names_none(
    schema, school, other_commune, operator, director
):
    ballan = make_school(other_commune, "0370003C", name="École de Ballan")
    activation = activate(school, ballan)
    ppms_report(
        status=activation.statuses.get(school=school),
        report={"state": "safe", "pupils_present": 180},
        by=director,
        now=T0 + timedelta(minutes=4),
    )
    climb(T0 + timedelta(minutes=10))

    mine = valid_cap(schema, for_cap(Activation.objects.filter(pk=activation.pk), operator).get())

    assert "Sans réponse" not in cap(mine, "cap:info/cap:description")
    assert cap(mine, "cap:msgType") == "Update"


def test_the_end_of_alert_is_an_update_saying_all_clear(schema, school, operator):
    activation = activate(school)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(hours=2))

    root = valid_cap(schema, activation)

    assert cap(root, "cap:msgType") == "Update"
    assert cap(root, "cap:identifier").endswith(":2")
    assert cap(root, "cap:info/cap:responseType") == "AllClear"
    assert cap(root, "cap:info/cap:urgency") == "Past"
    assert cap(root, "cap:info/cap:instruction").startswith("Fin d'alerte")
    assert "Fin d'alerte le 23/11/2026 à 12:00." in cap(root, "cap:info/cap:description")


def test_a_drill_is_an_exercise_from_its_first_message_to_its_last(schema, school, operator):
    activation = activate(school, scenario="shelter", drill=True, title="Exercice tempête")
    first = valid_cap(schema, activation)
    climb(T0 + timedelta(minutes=10))
    escalated = valid_cap(schema, activation)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=30))
    ended = valid_cap(schema, activation)

    assert [cap(root, "cap:status") for root in (first, escalated, ended)] == ["Exercise"] * 3
    assert [cap(root, "cap:msgType") for root in (first, escalated, ended)] == [
        "Alert",
        "Update",
        "Update",
    ]
    assert cap(first, "cap:info/cap:headline") == "EXERCICE — Exercice tempête"
    assert cap(ended, "cap:info/cap:responseType") == "AllClear"


def test_an_intrusion_is_restricted_to_the_safety_services(schema, school):
    activation = activate(school, scenario="intrusion", title="Intrusion")

    root = valid_cap(schema, activation)

    assert cap(root, "cap:scope") == "Restricted"
    assert "ne pas diffuser au public" in cap(root, "cap:restriction")
    assert caps(root, "cap:info/cap:category") == ["Safety", "Security"]
    assert cap(root, "cap:info/cap:responseType") == "Avoid"
    assert cap(root, "cap:info/cap:severity") == "Extreme"
    assert "Appelez le 17" in cap(root, "cap:info/cap:instruction")


def test_a_zone_with_a_polygon_is_described_by_it(schema, school, flood_zone):
    flood_zone.geometry = {
        "type": "Polygon",
        "coordinates": [[[0.65, 47.34], [0.67, 47.34], [0.67, 47.36], [0.65, 47.34]]],
    }
    flood_zone.save()
    school.zones.add(flood_zone)
    activation = ppms_activate(
        scenario="evacuation", title="Crue", source="operator", zones=[flood_zone], now=T0
    )

    root = valid_cap(schema, activation)

    assert cap(root, "cap:info/cap:area/cap:areaDesc") == "Zone inondable du Cher"
    assert caps(root, "cap:info/cap:area/cap:polygon") == [
        "47.34,0.65 47.34,0.67 47.36,0.67 47.34,0.65"
    ]


def test_a_message_of_the_past_stays_what_it_was(schema, school, operator):
    activation = activate(school)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(hours=1))
    started = ActivationEvent.objects.get(kind="started")

    root = valid_cap(schema, activation, upto=started)

    assert cap(root, "cap:msgType") == "Alert"
    assert cap(root, "cap:info/cap:responseType") == "Evacuate"


# --- Webhooks -----------------------------------------------------------------------------


def test_an_activation_is_posted_signed_to_the_ppms_webhooks(
    schema, school, operator, receiver_factory
):
    receiver = receiver_factory()
    link_webhook(receiver)
    Webhook.objects.create(name="Alertes seulement", url=receiver.url, secret="k")
    activation = activate(school, by=operator)

    assert dispatch_pending_events() == 1

    [(headers, body)] = receiver.requests
    assert headers[SIGNATURE_HEADER] == sign("s3cret", body)
    assert headers["X-CSU-Event"] == "activated"
    payload = json.loads(body)
    assert (payload["type"], payload["event"], payload["by"]) == ("ppms", "activated", "operateur")
    assert payload["activation"]["id"] == activation.pk
    assert [school["school"] for school in payload["schools"]] == ["0370001A"]
    schema.validate(io.BytesIO(payload["cap"].encode()))
    assert f"ppms:{activation.pk}:1" in payload["cap"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.notification.event) == (
        "delivered",
        1,
        "activated",
    )


def test_each_change_is_posted_once_whoever_dispatches(school, operator, receiver_factory):
    receiver = receiver_factory()
    link_webhook(receiver)
    activation = activate(school, by=operator)
    climb(T0 + timedelta(minutes=10))
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=30))

    assert dispatch_pending_events() == 5  # and the ladder's text and call steps
    assert dispatch_pending_events() == 0
    escalate_pending_schools()  # the beat task dispatches leftovers too

    events = [json.loads(body)["event"] for _headers, body in receiver.requests]
    assert events == ["activated", "escalated", "ended"]
    ended = json.loads(receiver.requests[-1][1])
    assert "<responseType>AllClear</responseType>" in ended["cap"]
    assert ":3</identifier>" in ended["cap"]
    assert not Notification.objects.filter(notified_at__isnull=True).exists()


def test_a_failing_webhook_is_retried_until_it_answers(school, receiver_factory):
    receiver = receiver_factory([500, 503])
    link_webhook(receiver)
    activate(school)

    dispatch_pending_events()

    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_a_webhook_limited_to_other_communes_hears_nothing_of_this_one(
    school, other_commune, commune, receiver_factory
):
    ballan = receiver_factory()
    joue = receiver_factory()
    link_webhook(ballan, name="Police de Ballan", communes=[other_commune])
    link_webhook(joue, name="Police de Joué", communes=[commune])
    link_webhook(receiver_factory(), name="Inactif", active=False)
    activate(school)

    dispatch_pending_events()

    assert ballan.requests == []
    assert len(joue.requests) == 1
    assert WebhookDelivery.objects.count() == 1


def test_a_schools_alarm_is_posted_with_its_message(school, director, receiver_factory):
    receiver = receiver_factory()
    link_webhook(receiver)
    activation = activate(school, scenario="confinement")
    dispatch_pending_events()

    joined, created = ppms_alarm(
        school=school, scenario="confinement", message="Odeur de gaz", by=director
    )
    dispatch_pending_events()

    assert (joined, created) == (activation, False)
    payload = json.loads(receiver.requests[-1][1])
    assert (payload["event"], payload["message"], payload["by"]) == (
        "alarm",
        "Odeur de gaz",
        "directeur",
    )
    assert [school["school"] for school in payload["schools"]] == ["0370001A"]


def test_the_commit_of_an_activation_sends_its_notices(
    school, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory()
    link_webhook(receiver)

    with django_capture_on_commit_callbacks(execute=True):
        activate(school)

    assert len(receiver.requests) == 1


# --- Escalation e-mails ---------------------------------------------------------------------


@pytest.fixture
def directors_with_email(director, django_user_model, school):
    director.email = "ce.0370001A@ac-orleans-tours.example"
    director.save()
    deputy = make_user(
        django_user_model, "adjointe", role="directors", email="adjointe@example.org"
    )
    school.directors.add(deputy)
    no_email = make_user(django_user_model, "sans-courriel", role="directors")
    school.directors.add(no_email)
    return director, deputy


@override_settings(PPMS_SAFETY_EMAILS=SAFETY)
def test_an_escalation_mails_the_safety_services_and_reminds_the_directors_once(
    school, morier, directors_with_email
):
    activate(school, morier)

    climb(T0 + timedelta(minutes=10))
    climb(T0 + timedelta(minutes=11))
    dispatch_pending_events()
    dispatch_pending_events()

    assert len(mail.outbox) == 2
    services, reminder = mail.outbox
    assert services.to == SAFETY
    assert services.subject == "[CSU] PPMS : 2 école(s) sans réponse — Crue du Cher"
    assert "- École 0370001A (0370001A), Joué-lès-Tours" in services.body
    assert "- École du Morier (0370002B), Joué-lès-Tours" in services.body
    assert reminder.to == ["ce.0370001A@ac-orleans-tours.example", "adjointe@example.org"]
    assert reminder.subject == "[CSU] PPMS : indiquez la situation de École 0370001A"


@override_settings(PPMS_SAFETY_EMAILS=SAFETY)
def test_the_escalation_mails_link_to_the_activation_and_to_the_school_page(
    client, school, directors_with_email, operator, other_operator
):
    activation = activate(school)
    climb(T0 + timedelta(minutes=10))
    dispatch_pending_events()
    services, reminder = mail.outbox
    board = services.body.splitlines()[-1]
    school_page = reminder.body.splitlines()[-1]

    assert board == f"http://localhost:8000/ppms/activations/{activation.pk}/"
    assert school_page == "http://localhost:8000/ppms/school/0370001A/"
    path = board.removeprefix("http://localhost:8000")
    assert sign_in(client, operator).get(path).status_code == 200
    client.logout()
    assert sign_in(client, other_operator).get(path).status_code == 404
    client.logout()
    director, _deputy = directors_with_email
    page = sign_in(client, director).get(school_page.removeprefix("http://localhost:8000"))
    assert page.status_code == 200


@override_settings(PPMS_SAFETY_EMAILS=SAFETY)
def test_a_school_that_answered_is_neither_escalated_nor_reminded(
    school, morier, directors_with_email
):
    activation = activate(school, morier)
    ppms_report(status=activation.statuses.get(school=school), report={"state": "safe"}, by=None)

    climb(T0 + timedelta(minutes=10))
    dispatch_pending_events()

    [services] = mail.outbox
    assert "École du Morier" in services.body and "0370001A" not in services.body


@override_settings(PPMS_SAFETY_EMAILS=SAFETY)
def test_no_mail_rings_a_directors_phone_during_an_intrusion(school, directors_with_email):
    activate(school, scenario="intrusion", title="Intrusion")

    climb(T0 + timedelta(minutes=10))
    dispatch_pending_events()

    [services] = mail.outbox
    assert services.to == SAFETY


@override_settings(PPMS_SAFETY_EMAILS=[])
def test_without_safety_addresses_only_the_directors_are_reminded(school, directors_with_email):
    activate(school, drill=True, scenario="shelter", title="Exercice")

    climb(T0 + timedelta(minutes=10))
    dispatch_pending_events()

    [reminder] = mail.outbox
    assert reminder.subject.startswith("[CSU] [EXERCICE] PPMS")


@override_settings(PPMS_SAFETY_EMAILS=SAFETY)
def test_an_ended_activation_is_not_escalated(school, operator, directors_with_email):
    activation = activate(school)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=5))

    assert climb(T0 + timedelta(minutes=10)) == []
    dispatch_pending_events()

    assert mail.outbox == []
