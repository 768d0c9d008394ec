"""The incidents API: seen like their alerts, actions on every member, 409 on a stale
version, 400 on bad input; every action on each alert's timeline, with who and when."""

import pytest
from rest_framework.test import APIClient

from alerts.incidents import incident_summary
from alerts.models import AlertEvent, Incident
from core.models import AuditEntry, Notification
from tests.conftest import sign_in
from tests.test_incidents import flood, flood_rules, gauges

INCIDENTS = "/api/v1/incidents/"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def incident(commune, flood_zone):
    flood_rules(flood_zone)
    flood(gauges(commune, flood_zone))
    return Incident.objects.get()


def url(incident, action=""):
    return f"{INCIDENTS}{incident.pk}/{action + '/' if action else ''}"


def test_an_operator_sees_the_incidents_of_their_communes_only(
    api, incident, operator, other_operator, metropole_operator, director
):
    listed = sign_in(api, operator).get(f"{INCIDENTS}?attention=true").json()
    assert [item["id"] for item in listed["results"]] == [incident.pk]
    item = listed["results"][0]
    assert item["alert_count"] == len(item["alerts"]) == 15
    assert item["severity"] == "critical"
    assert item["commune"] == {
        "id": incident.commune.pk,
        "insee_code": "37122",
        "name": "Joué-lès-Tours",
    }
    assert item["zone"]["type"] == "flood"
    assert set(item) == set(incident_summary(incident))  # the live push's keys

    assert sign_in(api, other_operator).get(INCIDENTS).json()["results"] == []
    assert api.get(url(incident)).status_code == 404
    assert sign_in(api, director).get(INCIDENTS).json()["results"] == []
    assert sign_in(api, metropole_operator).get(url(incident)).status_code == 200


def test_an_operator_of_another_commune_cannot_act(api, incident, other_operator):
    answer = sign_in(api, other_operator).post(
        url(incident, "acknowledge-all"), {"version": incident.version}, format="json"
    )
    assert answer.status_code == 404
    assert not AlertEvent.objects.filter(kind="acknowledged").exists()


def test_a_director_cannot_act(api, incident, director):
    answer = sign_in(api, director).post(
        url(incident, "acknowledge-all"), {"version": incident.version}, format="json"
    )
    assert answer.status_code in (403, 404)


def test_acknowledge_all_then_resolve_all_with_who_and_when(api, incident, operator):
    sign_in(api, operator)
    answer = api.post(
        url(incident, "acknowledge-all"),
        {"version": incident.version, "comment": "Crue en cours, pompiers prévenus"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["state"] == "acknowledged"
    assert body["version"] > incident.version
    assert {alert["acknowledged_by"] for alert in body["alerts"]} == {"operateur"}
    events = AlertEvent.objects.filter(kind="acknowledged")
    assert events.count() == 15
    assert set(events.values_list("user__username", "text")) == {
        ("operateur", "Crue en cours, pompiers prévenus")
    }
    assert AuditEntry.objects.filter(action="incident-acknowledge-all").count() == 1
    # Each alert's line is told; the incident once, as it is at the end.
    told = Notification.objects.filter(topic="incident")
    assert told.count() == 1
    [push] = told.get().live
    assert (push["payload"]["event"], push["payload"]["incident"]["version"]) == (
        "updated",
        body["version"],
    )
    assert Notification.objects.filter(topic="alert", event="acknowledged").count() == 15

    again = api.post(url(incident, "acknowledge-all"), {"version": body["version"]}, format="json")
    assert again.status_code == 400
    assert "déjà acquittées" in again.json()["detail"]

    commented = api.post(
        url(incident, "comments"),
        {"version": body["version"], "text": "Point à 14 h"},
        format="json",
    )
    assert commented.status_code == 200
    assert AlertEvent.objects.filter(kind="commented", user=operator).count() == 15

    resolved = api.post(
        url(incident, "resolve-all"), {"version": commented.json()["version"]}, format="json"
    )
    assert resolved.status_code == 200
    assert resolved.json()["state"] == "resolved"
    assert {a["resolved_by"] for a in resolved.json()["alerts"]} == {"operateur"}
    incident.refresh_from_db()
    assert incident.state == "resolved"

    nothing_left = api.post(
        url(incident, "resolve-all"), {"version": incident.version}, format="json"
    )
    assert nothing_left.status_code == 400
    assert "déjà résolues" in nothing_left.json()["detail"]


def test_an_action_on_an_incident_that_changed_meanwhile_is_a_409_with_its_state(
    api, incident, operator, commune, flood_zone
):
    seen = incident.version
    # Meanwhile, a sixth gauge joins the incident.
    flood(gauges(commune, flood_zone, 1, prefix="jlt-late"))
    answer = sign_in(api, operator).post(
        url(incident, "acknowledge-all"), {"version": seen}, format="json"
    )
    assert answer.status_code == 409
    body = answer.json()
    assert "a changé" in body["detail"]
    assert body["incident"]["alert_count"] == 18
    assert body["incident"]["version"] > seen
    assert not AlertEvent.objects.filter(kind="acknowledged").exists()

    retried = api.post(
        url(incident, "acknowledge-all"), {"version": body["incident"]["version"]}, format="json"
    )
    assert retried.status_code == 200


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("acknowledge-all", {}, "version"),
        ("acknowledge-all", {"version": "abc"}, "version"),
        ("acknowledge-all", {"version": 0}, "version"),
        ("acknowledge-all", {"version": 2, "snooze_minutes": 99999}, "snooze_minutes"),
        ("acknowledge-all", {"version": 2, "comment": "x" * 2001}, "comment"),
        ("comments", {"version": 2, "text": "   "}, "text"),
        ("comments", {"version": 2}, "text"),
        ("resolve-all", {"version": [1]}, "version"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, incident, operator, action, body, field):
    answer = sign_in(api, operator).post(url(incident, action), body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()


def test_an_unknown_incident_is_a_404(api, operator, db):
    assert sign_in(api, operator).get(f"{INCIDENTS}999999/").status_code == 404
    assert api.get(f"{INCIDENTS}abc/").status_code == 404
