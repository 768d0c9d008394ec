"""No reading starts a PPMS by itself: a rule's alerts propose it, someone who may
validate decides (or, if the rule says so, nobody answered in time), and a mistake is
cancelled as such."""

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
import xmlschema
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from alerts.models import Alert
from core import roles
from core.cap import CAP_NS, CAP_SCHEMA
from core.models import Webhook
from core.outbox import dispatch_pending
from ppms.cap import activation_cap
from ppms.models import (
    Activation,
    CommunePolicy,
    PpmsWebhook,
    Proposal,
    RuleTrigger,
)
from ppms.proposals import (
    AlreadyDecided,
    ppms_activate_unanswered,
    ppms_dismiss,
    ppms_validate,
)
from ppms.services import ppms_activate, ppms_cancel
from tests.alerting import feed, make_rule
from tests.conftest import make_school, make_sensor, make_user, sign_in
from tests.test_webhooks import Receiver

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PROPOSALS = "/api/v1/ppms/proposals/"
NS = {"cap": CAP_NS}


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin", is_staff=True, is_superuser=True)


@pytest.fixture
def fed(django_capture_on_commit_callbacks):
    """``feed``, each value's transaction committed (alerts announce themselves then)."""

    def feed_committed(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return feed(*args, **kwargs)

    return feed_committed


@pytest.fixture
def flood_schools(commune, flood_zone):
    schools = [make_school(commune, uai) for uai in ("0370001A", "0370002B")]
    for school in schools:
        school.zones.add(flood_zone)
    return schools


@pytest.fixture
def gauges(commune, flood_zone):
    gauges = [make_sensor(commune, f"jlt-river-0{n}", kind="water") for n in (1, 2)]
    for gauge in gauges:
        gauge.zones.add(flood_zone)
    return gauges


def flood_rule(flood_zone, **fields):
    fields.setdefault("duration", timedelta(minutes=2))
    rule = make_rule(
        name="Cher : évacuation des écoles (4,5 m)",
        sensor_kind="water",
        metric="level",
        threshold=4.5,
        severity="critical",
        ppms_scenario="evacuation",
        **fields,
    )
    rule.zones.add(flood_zone)
    return rule


@pytest.fixture
def authority(django_user_model, commune):
    from sensors.models import Operator

    user = make_user(django_user_model, "maire", role=roles.OPERATORS)
    user.groups.add(user.groups.model.objects.get_or_create(name=roles.AUTHORITIES)[0])
    roles.ensure_role_groups()
    Operator.objects.create(user=user).communes.add(commune)
    return django_user_model.objects.get(pk=user.pk)  # permissions read afresh


def propose(fed, flood_zone, gauges, **rule_fields):
    flood_rule(flood_zone, **rule_fields)
    fed(gauges[0], [3.0, 4.6, 4.7, 4.8], metric="level")
    return Proposal.objects.get()


# --- No single reading decides --------------------------------------------------------------


def test_a_glitch_proposes_nothing(commune, fed, flood_zone, gauges, flood_schools):
    flood_rule(flood_zone)

    fed(gauges[0], [3.0, 4.9, 3.1, 3.0], metric="level")  # one reading above 4.5 m

    assert not Alert.objects.exists()
    assert not Proposal.objects.exists() and not Activation.objects.exists()


def test_a_sustained_crossing_makes_one_proposal_not_one_per_reading(
    commune, fed, flood_zone, gauges, flood_schools
):
    flood_rule(flood_zone)

    fed(gauges[0], [3.0, 4.6, 4.7, 4.8, 4.9, 5.0], metric="level")
    fed(gauges[1], [4.6, 4.7, 4.8, 4.9], metric="level", start=T0 + timedelta(minutes=10))

    [proposal] = Proposal.objects.all()
    assert proposal.state == "pending" and proposal.scenario == "evacuation"
    assert proposal.alerts.count() == 2  # both gauges' alerts, one proposal
    assert set(proposal.schools.values_list("uai", flat=True)) == {"0370001A", "0370002B"}
    assert not Activation.objects.exists()


def test_a_rule_confirmed_by_two_sensors_waits_for_the_second(
    commune, fed, flood_zone, gauges, flood_schools
):
    rule = flood_rule(flood_zone, duration=timedelta(0))
    RuleTrigger.objects.filter(rule=rule).update(confirmations=2)

    fed(gauges[0], [3.0, 4.6], metric="level")
    assert not Proposal.objects.exists()

    fed(gauges[1], [4.7], metric="level", start=T0 + timedelta(minutes=3))
    assert Proposal.objects.count() == 1


@pytest.mark.parametrize(
    "duration, confirmations, refused",
    [
        (timedelta(0), 1, True),
        (timedelta(minutes=1), 1, True),
        (timedelta(minutes=2), 1, False),
        (timedelta(0), 2, False),
    ],
)
def test_a_ppms_rule_holds_two_minutes_or_is_confirmed_by_two_sensors(
    flood_zone, duration, confirmations, refused
):
    rule = flood_rule(flood_zone, duration=duration)
    trigger = RuleTrigger.objects.get(rule=rule)
    trigger.confirmations = confirmations

    if refused:
        with pytest.raises(ValidationError) as error:
            trigger.full_clean()
        assert "Aucune mesure isolée ne décide d'un PPMS" in str(error.value)
    else:
        trigger.full_clean()


def test_the_rules_api_refuses_a_ppms_rule_that_one_reading_could_set_off(api, staff, commune):
    api.force_authenticate(staff)

    response = api.post(
        "/api/v1/rules/",
        {
            "name": "Cher : évacuation",
            "sensor_kind": "water",
            "metric": "level",
            "threshold": 4.5,
            "duration_s": 0,
            "ppms_scenario": "evacuation",
        },
        format="json",
    )

    assert response.status_code == 400
    [message] = response.json()["ppms_scenario"]
    assert "au moins 2 minutes" in message


# --- Deciding ---------------------------------------------------------------------------------


def test_validation_starts_the_activation_recording_who_proposed_and_who_validated(
    commune, fed, flood_zone, gauges, flood_schools, authority
):
    proposal = propose(fed, flood_zone, gauges)

    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        activation = ppms_validate(proposal=proposal, by=authority)

    proposal.refresh_from_db()
    assert (proposal.state, proposal.decided_by, proposal.activation) == (
        "validated",
        authority,
        activation,
    )
    assert proposal.decided_at == T0 + timedelta(minutes=6)
    assert (activation.source, activation.started_by, activation.automatic) == (
        "alert",
        authority,
        False,
    )
    assert activation.alert == proposal.alerts.get()
    assert set(activation.statuses.values_list("school__uai", flat=True)) == {
        "0370001A",
        "0370002B",
    }
    with pytest.raises(AlreadyDecided):
        ppms_validate(proposal=proposal, by=authority)
    assert Activation.objects.count() == 1


def test_a_dismissal_is_recorded_with_its_reason(
    commune, fed, flood_zone, gauges, flood_schools, authority
):
    proposal = propose(fed, flood_zone, gauges)

    with pytest.raises(ValidationError):
        ppms_dismiss(proposal=proposal, by=authority, reason="  ")
    ppms_dismiss(proposal=proposal, by=authority, reason="Capteur noyé par un embâcle")

    proposal.refresh_from_db()
    assert (proposal.state, proposal.decided_by, proposal.reason) == (
        "dismissed",
        authority,
        "Capteur noyé par un embâcle",
    )
    assert not Activation.objects.exists()


def test_a_rule_may_activate_by_itself_when_nobody_answers_in_time(
    commune, fed, flood_zone, gauges, flood_schools
):
    with time_machine.travel(T0, tick=False):
        proposal = propose(fed, flood_zone, gauges, duration=timedelta(minutes=2))
    RuleTrigger.objects.update(auto_activate_after=timedelta(minutes=5))
    proposal.auto_activate_at = proposal.created_at + timedelta(minutes=5)
    proposal.save()

    assert ppms_activate_unanswered(proposal.created_at + timedelta(minutes=4)) == []
    [activation] = ppms_activate_unanswered(proposal.created_at + timedelta(minutes=5))

    assert activation.automatic and activation.started_by is None
    proposal.refresh_from_db()
    assert proposal.state == "validated" and "automatiquement" in proposal.reason


def test_without_auto_activation_a_proposal_waits_for_a_human(
    commune, fed, flood_zone, gauges, flood_schools
):
    proposal = propose(fed, flood_zone, gauges)

    assert proposal.auto_activate_at is None
    assert ppms_activate_unanswered(T0 + timedelta(days=1)) == []


# --- Who may decide, through the API ---------------------------------------------------------


def test_an_operator_without_the_permission_gets_403_with_the_reason(
    api, operator, commune, fed, flood_zone, gauges, flood_schools
):
    proposal = propose(fed, flood_zone, gauges)
    api.force_authenticate(operator)

    listed = api.get(PROPOSALS).json()["results"]
    response = api.post(f"{PROPOSALS}{proposal.pk}/validate/")

    assert [(item["id"], item["may_decide"]) for item in listed] == [(proposal.pk, False)]
    assert response.status_code == 403
    assert "autorité" in response.json()["detail"]
    assert not Activation.objects.exists()


def test_operators_validate_where_their_commune_grants_it(
    api, operator, commune, fed, flood_zone, gauges, flood_schools
):
    CommunePolicy.objects.create(commune=commune, operators_validate=True)
    proposal = propose(fed, flood_zone, gauges)
    api.force_authenticate(operator)

    response = api.post(f"{PROPOSALS}{proposal.pk}/validate/")

    assert response.status_code == 200
    assert response.json()["state"] == "validated"
    assert Activation.objects.get().started_by == operator


def test_a_second_validation_gets_409_and_changes_nothing(
    api, authority, commune, fed, flood_zone, gauges, flood_schools
):
    proposal = propose(fed, flood_zone, gauges)
    api.force_authenticate(authority)

    first = api.post(f"{PROPOSALS}{proposal.pk}/validate/")
    second = api.post(f"{PROPOSALS}{proposal.pk}/validate/")
    dismissed = api.post(f"{PROPOSALS}{proposal.pk}/dismiss/", {"reason": "x"}, format="json")

    assert first.status_code == 200
    assert (second.status_code, dismissed.status_code) == (409, 409)
    assert "Validée" in second.json()["detail"]
    assert Activation.objects.count() == 1


def test_a_dismissal_without_a_reason_is_a_400(
    api, authority, commune, fed, flood_zone, gauges, flood_schools
):
    proposal = propose(fed, flood_zone, gauges)
    api.force_authenticate(authority)

    response = api.post(f"{PROPOSALS}{proposal.pk}/dismiss/", {}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert Proposal.objects.get().state == "pending"


# --- Cancelling a mistake ---------------------------------------------------------------------


@pytest.fixture
def mistaken(school, operator):
    return ppms_activate(
        scenario="evacuation",
        title="Crue du Cher",
        source="operator",
        schools=[school],
        by=operator,
    )


def test_a_cancellation_is_a_cap_cancel_referencing_every_message_sent(mistaken, authority):
    ppms_cancel(activation=mistaken, by=authority, reason="Mauvaise école sélectionnée")

    document = activation_cap(mistaken)
    xmlschema.XMLSchema(CAP_SCHEMA).validate(io.BytesIO(document))
    root = ET.fromstring(document)
    assert root.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert root.findtext("cap:references", namespaces=NS).count("urn:csu:") == 1
    assert "annulé" in root.findtext("cap:info/cap:instruction", namespaces=NS)
    mistaken.refresh_from_db()
    assert (mistaken.cancelled, mistaken.ended_by, mistaken.cancel_reason) == (
        True,
        authority,
        "Mauvaise école sélectionnée",
    )


def test_the_safety_services_hear_of_a_cancellation(mistaken, authority):
    receiver = Receiver([])
    try:
        hook = Webhook.objects.create(name="SDIS 37", url=receiver.url, secret="s")
        PpmsWebhook.objects.create(webhook=hook)
        ppms_cancel(activation=mistaken, by=authority, reason="Erreur de saisie")
        dispatch_pending()
    finally:
        receiver.close()

    payload = json.loads(receiver.requests[-1][1])
    assert (payload["event"], payload["message"]) == ("cancelled", "Erreur de saisie")
    assert "<msgType>Cancel</msgType>" in payload["cap"]


def test_only_who_may_validate_cancels_through_the_api(api, operator, authority, mistaken):
    url = f"/api/v1/ppms/activations/{mistaken.pk}/cancel/"

    api.force_authenticate(operator)
    refused = api.post(url, {"reason": "erreur"}, format="json")
    api.force_authenticate(authority)
    done = api.post(url, {"reason": "erreur"}, format="json")

    assert refused.status_code == 403
    assert done.status_code == 200 and done.json()["cancelled"] is True
    assert done.json()["timeline"][-1]["kind"] == "cancelled"


# --- The end of alert ------------------------------------------------------------------------


def test_the_end_of_alert_names_the_authority_and_every_silent_school(api, operator, school):
    morier = make_school(school.commune, "0370002B", name="École du Morier")
    activation = ppms_activate(
        scenario="shelter", title="Tempête", source="operator", schools=[school, morier]
    )
    api.force_authenticate(operator)
    url = f"/api/v1/ppms/activations/{activation.pk}/end/"

    refused = api.post(url, {}, format="json")
    partial = api.post(
        url, {"ordered_by": "Préfet", "confirmed_schools": ["0370001A"]}, format="json"
    )
    ended = api.post(
        url,
        {"ordered_by": "Préfet", "confirmed_schools": ["0370001A", "0370002B"]},
        format="json",
    )

    assert refused.status_code == 400
    assert set(refused.json()) == {"ordered_by", "confirmed_schools"}
    assert "École du Morier (0370002B)" in refused.json()["confirmed_schools"][0]
    assert partial.status_code == 400 and list(partial.json()) == ["confirmed_schools"]
    assert "0370001A" not in partial.json()["confirmed_schools"][0]
    assert ended.status_code == 200
    activation.refresh_from_db()
    assert activation.ended_on_order_of == "Préfet"


def test_each_commune_gets_its_own_proposal_for_its_authority_to_decide(
    fed, commune, other_commune, flood_zone, gauges, flood_schools, authority
):
    from sensors.models import Zone

    ballan_zone = Zone.objects.create(commune=other_commune, name="Zone inondable (Ballan)")
    make_school(other_commune, "0370077K").zones.add(ballan_zone)
    rule = flood_rule(flood_zone)
    rule.zones.add(ballan_zone)

    fed(gauges[0], [3.0, 4.6, 4.7, 4.8], metric="level")

    joue, ballan = Proposal.objects.order_by("pk")
    assert set(joue.communes.all()) == {commune} and set(ballan.communes.all()) == {other_commune}
    assert set(ballan.schools.values_list("uai", flat=True)) == {"0370077K"}
    ppms_validate(proposal=joue, by=authority)
    assert Proposal.objects.get(pk=ballan.pk).state == "pending"  # Ballan's to decide


def test_a_proposal_at_night_says_the_schools_are_closed(
    api, operator, fed, flood_zone, gauges, flood_schools, client
):
    proposal = propose(fed, flood_zone, gauges)
    api.force_authenticate(operator)
    sign_in(client, operator)
    sunday_night = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 03:00 in Paris

    with time_machine.travel(sunday_night, tick=False):
        item = api.get(f"{PROPOSALS}{proposal.pk}/").json()
        board = client.get("/ppms/").content.decode()

    assert item["schools_open"] == 0
    assert {school["open"] for school in item["schools"]} == {False}
    assert 'data-testid="schools-closed"' in board


def test_the_board_names_the_rule_that_proposes(
    api, operator, fed, flood_zone, gauges, flood_schools, client
):
    # The proposal names its rule by its reference ({id, name, kind}): the board writes
    # the name, not the object.
    proposal = propose(fed, flood_zone, gauges)
    sign_in(client, operator)

    board = client.get("/ppms/").content.decode()

    assert f"par la règle « {proposal.rule.name} »" in board
    assert "&#x27;kind&#x27;" not in board and "'kind'" not in board


def test_the_alerts_of_one_proposal_become_one_incident(
    commune, fed, flood_zone, gauges, flood_schools
):
    from alerts.models import Incident
    from core.models import Notification
    from sensors.models import Zone

    upstream = Zone.objects.create(commune=commune, name="Amont", type="flood")
    flood_rule(flood_zone, duration=timedelta(0)).zones.add(upstream)
    gauges[1].zones.set([upstream])
    fed(gauges[1], [3.0, 4.6], metric="level")  # its own zone: an incident of its own
    assert Incident.objects.get().zone == upstream
    fed(gauges[0], [3.0, 4.6], metric="level")

    proposal = Proposal.objects.get()
    assert proposal.alerts.count() == 2
    [incident] = Incident.objects.all()  # one proposal, one incident
    assert set(incident.alerts.all()) == set(proposal.alerts.all())
    merged = [
        push["payload"]
        for notification in Notification.objects.filter(topic="incident")
        for push in notification.live
        if push["payload"]["event"] == "merged"
    ]
    assert [message["merged_into"] for message in merged] == [incident.pk]
