"""The PPMS API: activations, the schools' statuses and reports, a school's alarm, the end
of alert, CAP documents and feed entries, and the drills register — per role."""

import io
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
import xmlschema
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from core.cap import CAP_SCHEMA
from ppms.cap import activation_cap
from ppms.ladder import climb
from ppms.models import Activation, ActivationEvent, Drill, SchoolStatus, StatusUpdate
from ppms.services import ppms_activate
from sensors.models import Zone
from tests.conftest import make_school, make_user, sign_in
from tests.ppms_helpers import end_body, end_of_alert
from tests.test_live import connect_as

ACTIVATIONS = "/api/v1/ppms/activations/"
DRILLS = "/api/v1/ppms/drills/"
FEED = "/api/v1/cap/feed/"
ATOM = "{http://www.w3.org/2005/Atom}"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def activation_url(activation, tail=""):
    return f"{ACTIVATIONS}{activation.pk}/{tail}"


def report_url(activation, uai="0370001A"):
    return activation_url(activation, f"statuses/{uai}/")


def alarm_url(uai="0370001A"):
    return f"/api/v1/schools/{uai}/alarm/"


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    sign_in(api, user)
    return api


@pytest.fixture
def other_school(commune):
    """A second school of Joué-lès-Tours, with a director of its own."""
    return make_school(commune, uai="0370002B", name="École du Morier")


@pytest.fixture
def other_director(django_user_model, other_school):
    user = make_user(django_user_model, "directrice-morier", role="directors")
    other_school.directors.add(user)
    return user


@pytest.fixture
def ballan_school(other_commune):
    return make_school(other_commune, uai="0370003C", name="École de Ballan")


@pytest.fixture
def activation(school, other_school, operator):
    return ppms_activate(
        scenario="confinement",
        title="Nuage toxique",
        source="operator",
        schools=[school, other_school],
        by=operator,
        now=T0,
    )


def report(**fields):
    return {"state": "safe", "pupils_present": 180, "pupils_absent": 20, **fields}


# --- Anonymous ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", ACTIVATIONS),
        ("post", ACTIVATIONS),
        ("get", "{activation}"),
        ("post", "{activation}end/"),
        ("get", "{activation}statuses/"),
        ("post", "{activation}statuses/0370001A/"),
        ("get", "{activation}cap/"),
        ("post", "/api/v1/schools/0370001A/alarm/"),
        ("get", DRILLS),
        ("post", DRILLS),
    ],
)
def test_anonymous_gets_401_on_every_ppms_endpoint(api, activation, method, url):
    response = getattr(api, method)(url.format(activation=activation_url(activation)))

    assert response.status_code == 401


# --- Starting an activation -------------------------------------------------------------------


def test_an_operator_starts_an_activation_for_a_zone_and_chosen_schools(
    api, operator, school, other_school, flood_zone
):
    school.zones.add(flood_zone)

    response = as_user(api, operator).post(
        ACTIVATIONS,
        {
            "scenario": "evacuation",
            "title": "Crue du Cher",
            "zones": [flood_zone.pk],
            "schools": ["0370002B"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["scenario"], body["title"], body["source"], body["drill"]) == (
        "evacuation",
        "Crue du Cher",
        "operator",
        False,
    )
    assert body["started_by"] == "operateur" and body["ended_at"] is None
    assert body["silent"] is False
    assert body["zones"] == [
        {"id": flood_zone.pk, "name": "Zone inondable du Cher", "type": "flood"}
    ]
    assert [status["school"] for status in body["statuses"]] == ["0370001A", "0370002B"]
    assert {status["state"] for status in body["statuses"]} == {"pending"}
    assert body["counts"] == {"pending": 2, "safe": 0, "needs_help": 0, "evacuated": 0}
    [started] = body["timeline"]
    assert (started["kind"], started["by"], started["schools"]) == (
        "started",
        "operateur",
        ["0370001A", "0370002B"],
    )


def test_an_activation_without_title_is_named_after_its_posture_and_a_drill_is_flagged(
    api, operator, school
):
    response = as_user(api, operator).post(
        ACTIVATIONS,
        {"scenario": "shelter", "schools": ["0370001A"], "drill": True},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["title"] == "Se mettre à l'abri"
    assert Activation.objects.get().drill is True


def test_a_director_cannot_start_an_activation(api, director, school):
    response = as_user(api, director).post(
        ACTIVATIONS, {"scenario": "shelter", "schools": ["0370001A"]}, format="json"
    )

    assert response.status_code == 403
    assert not Activation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": "tsunami", "schools": ["0370001A"]}, "scenario"),
        ({"schools": ["0370001A"]}, "scenario"),
        ({"scenario": "shelter", "schools": ["0370001A"], "title": "x" * 201}, "title"),
        ({"scenario": "shelter"}, "schools"),
        ({"scenario": "shelter", "schools": [], "zones": []}, "schools"),
        ({"scenario": "shelter", "schools": ["9999999Z"]}, "schools"),
        ({"scenario": "shelter", "zones": [999]}, "zones"),
        ({"scenario": "shelter", "zones": ["quartier"]}, "zones"),
    ],
)
def test_a_bad_start_is_refused_with_a_message_per_field(api, operator, school, body, field):
    response = as_user(api, operator).post(ACTIVATIONS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Activation.objects.exists()


def test_a_zone_without_schools_concerns_nobody(api, operator, flood_zone):
    response = as_user(api, operator).post(
        ACTIVATIONS, {"scenario": "evacuation", "zones": [flood_zone.pk]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["zones"] == ["Aucune école dans ces zones."]


def test_an_operator_cannot_activate_the_zones_or_schools_of_another_commune(
    api, operator, other_commune, ballan_school
):
    ballan_zone = Zone.objects.create(commune=other_commune, name="Bourg de Ballan")
    ballan_school.zones.add(ballan_zone)
    api = as_user(api, operator)

    by_zone = api.post(
        ACTIVATIONS, {"scenario": "shelter", "zones": [ballan_zone.pk]}, format="json"
    )
    by_school = api.post(
        ACTIVATIONS, {"scenario": "shelter", "schools": ["0370003C"]}, format="json"
    )

    assert by_zone.status_code == by_school.status_code == 400
    assert str(ballan_zone.pk) in by_zone.json()["zones"][0]
    assert "0370003C" in by_school.json()["schools"][0]
    assert not Activation.objects.exists()


def test_a_metropole_operator_activates_schools_of_several_communes(
    api, metropole_operator, school, ballan_school
):
    response = as_user(api, metropole_operator).post(
        ACTIVATIONS,
        {"scenario": "confinement", "schools": ["0370001A", "0370003C"]},
        format="json",
    )

    assert response.status_code == 201
    assert len(response.json()["statuses"]) == 2


# --- Seeing activations ---------------------------------------------------------------------


def test_each_user_lists_the_activations_of_the_schools_they_see(
    api,
    operator,
    other_operator,
    metropole_operator,
    director,
    other_director,
    school,
    other_school,
    ballan_school,
):
    mine = ppms_activate(scenario="shelter", title="Joué", source="operator", schools=[school])
    morier = ppms_activate(
        scenario="shelter", title="Morier", source="operator", schools=[other_school]
    )
    ballan = ppms_activate(
        scenario="shelter", title="Ballan", source="operator", schools=[ballan_school]
    )

    def titles(user, query=""):
        response = as_user(APIClient(), user).get(ACTIVATIONS + query)
        assert response.status_code == 200
        return {item["title"] for item in response.json()["results"]}

    assert titles(operator) == {mine.title, morier.title}
    assert titles(other_operator) == {ballan.title}
    assert titles(metropole_operator) == {mine.title, morier.title, ballan.title}
    assert titles(director) == {mine.title}
    assert titles(other_director) == {morier.title}


def test_the_list_filters_active_activations(api, operator, school):
    ongoing = ppms_activate(
        scenario="shelter", title="En cours", source="operator", schools=[school]
    )
    over = ppms_activate(scenario="shelter", title="Finie", source="operator", schools=[school])
    end_of_alert(activation=over, by=operator)
    api = as_user(api, operator)

    active = api.get(ACTIVATIONS, {"active": "true"}).json()["results"]
    ended = api.get(ACTIVATIONS, {"active": "false"}).json()["results"]

    assert [item["id"] for item in active] == [ongoing.pk]
    assert [item["id"] for item in ended] == [over.pk]
    assert api.get(ACTIVATIONS, {"active": "peut-être"}).status_code == 400


def test_a_director_sees_only_their_own_schools_status_and_counts(
    api, director, activation, other_director
):
    api = as_user(api, director)

    detail = api.get(activation_url(activation)).json()
    statuses = api.get(activation_url(activation, "statuses/")).json()
    listed = api.get(ACTIVATIONS).json()["results"][0]

    assert [status["school"] for status in detail["statuses"]] == ["0370001A"]
    assert [status["school"] for status in statuses] == ["0370001A"]
    assert detail["schools_count"] == listed["schools_count"] == 1
    assert listed["counts"]["pending"] == 1
    assert detail["timeline"][0]["schools"] == ["0370001A"]


def test_the_timeline_of_a_director_leaves_out_the_other_schools_reports(
    api, director, other_director, activation
):
    as_user(APIClient(), other_director).post(
        report_url(activation, "0370002B"), report(needs="Un blessé léger"), format="json"
    )
    climb(T0 + timedelta(minutes=10))

    timeline = as_user(api, director).get(activation_url(activation)).json()["timeline"]

    assert [(line["kind"], line["schools"]) for line in timeline] == [
        ("started", ["0370001A"]),
        ("ladder", ["0370001A"]),
        ("ladder", ["0370001A"]),
        ("escalated", ["0370001A"]),
    ]


def test_an_operator_of_another_commune_gets_404_for_the_activation(
    api, other_operator, activation
):
    api = as_user(api, other_operator)

    assert api.get(activation_url(activation)).status_code == 404
    assert api.get(activation_url(activation, "statuses/")).status_code == 404
    assert api.post(activation_url(activation, "end/")).status_code == 404
    assert api.post(report_url(activation), report(), format="json").status_code == 404


def test_the_timeline_has_the_start_every_report_the_escalations_and_the_end(
    api, operator, director, school, other_school
):
    with time_machine.travel(T0, tick=False):
        activation = ppms_activate(
            scenario="shelter",
            title="Tempête",
            source="operator",
            schools=[school, other_school],
            by=operator,
        )
    api = as_user(api, director)
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        api.post(report_url(activation), report(), format="json")
    climb(T0 + timedelta(minutes=10))
    with time_machine.travel(T0 + timedelta(minutes=12), tick=False):
        api.post(report_url(activation), report(state="needs_help"), format="json")
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=40))

    timeline = as_user(APIClient(), operator).get(activation_url(activation)).json()["timeline"]

    assert [(line["at"], line["kind"], line["by"], line["schools"]) for line in timeline] == [
        ("2026-11-23T09:00:00Z", "started", "operateur", ["0370001A", "0370002B"]),
        ("2026-11-23T09:03:00Z", "status", "directeur", ["0370001A"]),
        # The ladder's steps fallen due meanwhile, taken at once: text, call, services.
        ("2026-11-23T09:10:00Z", "ladder", None, ["0370002B"]),
        ("2026-11-23T09:10:00Z", "ladder", None, ["0370002B"]),
        ("2026-11-23T09:10:00Z", "escalated", None, ["0370002B"]),
        ("2026-11-23T09:12:00Z", "status", "directeur", ["0370001A"]),
        ("2026-11-23T09:40:00Z", "ended", "operateur", ["0370001A", "0370002B"]),
    ]
    assert timeline[1]["state"] == "safe"
    assert timeline[1]["data"]["pupils_present"] == 180


def test_listing_activations_takes_the_same_queries_for_one_or_many(
    api, operator, school, other_school, commune
):
    api = as_user(api, operator)
    ppms_activate(scenario="shelter", title="1", source="operator", schools=[school], by=operator)
    api.get(ACTIVATIONS)  # warm the session and the roles
    with CaptureQueriesContext(connection) as one:
        assert api.get(ACTIVATIONS).status_code == 200
    for n in range(4):
        extra = make_school(commune, uai=f"037010{n}X")
        ppms_activate(
            scenario="intrusion",
            title=f"n{n}",
            source="operator",
            schools=[extra, other_school],
            by=operator,
        )
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(ACTIVATIONS).json()["results"]) == 5

    assert len(many) == len(one)


def test_the_detail_and_statuses_take_the_same_queries_however_many_schools(
    api, operator, director, commune, school
):
    api = as_user(api, operator)
    few = ppms_activate(scenario="shelter", title="few", source="operator", schools=[school])
    api.get(activation_url(few))
    with CaptureQueriesContext(connection) as one:
        api.get(activation_url(few))
    with CaptureQueriesContext(connection) as one_list:
        api.get(activation_url(few, "statuses/"))
    schools = [make_school(commune, uai=f"037020{n}Y") for n in range(6)]
    lots = ppms_activate(
        scenario="shelter", title="lots", source="operator", schools=schools, by=operator
    )
    for extra in schools[:3]:
        extra.directors.add(director)
        as_user(APIClient(), director).post(report_url(lots, extra.uai), report(), format="json")
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(activation_url(lots)).json()["statuses"]) == 6
    with CaptureQueriesContext(connection) as many_list:
        assert len(api.get(activation_url(lots, "statuses/")).json()) == 6

    assert len(many) == len(one)
    assert len(many_list) == len(one_list)


# --- A school's situation -----------------------------------------------------------------


def test_a_director_gives_their_schools_situation(api, director, activation):
    response = as_user(api, director).post(
        report_url(activation),
        report(
            state="needs_help",
            pupils_missing=1,
            pupils_injured=2,
            adults_present=12,
            adults_missing=0,
            adults_injured=1,
            location="Salle polyvalente",
            needs="Une trousse de secours",
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["school"], body["state"], body["posture"]) == (
        "0370001A",
        "needs_help",
        "confinement",
    )
    assert (body["pupils_present"], body["pupils_missing"], body["pupils_injured"]) == (180, 1, 2)
    assert (body["adults_present"], body["adults_injured"]) == (12, 1)
    assert body["updated_by"] == "directeur"
    [update] = StatusUpdate.objects.all()
    assert (update.by, update.state) == (director, "needs_help")
    assert update.data["location"] == "Salle polyvalente"


def test_a_director_may_report_another_posture_than_the_activations(api, director, activation):
    response = as_user(api, director).post(
        report_url(activation), report(state="evacuated", posture="evacuation"), format="json"
    )

    assert response.json()["posture"] == "evacuation"


def test_an_operator_gives_a_schools_situation_on_its_directors_behalf(
    api, operator, director, activation
):
    response = as_user(api, operator).post(report_url(activation), report(), format="json")

    assert response.status_code == 201
    assert response.json()["updated_by"] == "operateur"
    assert StatusUpdate.objects.get().by == operator


def test_a_director_cannot_give_another_schools_situation(api, director, activation, other_school):
    response = as_user(api, director).post(
        report_url(activation, "0370002B"), report(), format="json"
    )

    assert response.status_code == 404
    assert SchoolStatus.objects.get(school=other_school).state == "pending"


def test_a_school_not_concerned_by_the_activation_gets_404(api, operator, activation, commune):
    make_school(commune, uai="0370099X")

    response = as_user(api, operator).post(
        report_url(activation, "0370099X"), report(), format="json"
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "state"),
        ({"state": "pending"}, "state"),
        ({"state": "en sûreté"}, "state"),
        (report(pupils_present=-1), "pupils_present"),
        (report(pupils_absent="vingt"), "pupils_absent"),
        (report(pupils_missing=1.5), "pupils_missing"),
        (report(adults_injured=-3), "adults_injured"),
        (report(adults_present=10**9), "adults_present"),
        (report(pupils_present=400), "pupils_present"),  # 200 pupils enrolled
        (report(posture="fuite"), "posture"),
        (report(location="x" * 256), "location"),
        (report(needs="x" * 2001), "needs"),
        (report(client_id="pas-un-uuid"), "client_id"),
    ],
)
def test_a_situation_that_does_not_add_up_is_refused_with_a_message_per_field(
    api, director, activation, body, field
):
    response = as_user(api, director).post(report_url(activation), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not StatusUpdate.objects.exists()
    assert SchoolStatus.objects.get(school__uai="0370001A").state == "pending"


def test_a_situation_replayed_with_the_same_client_id_counts_once(api, director, activation):
    api = as_user(api, director)
    client_id = str(uuid.uuid4())

    first = api.post(report_url(activation), report(client_id=client_id), format="json")
    replay = api.post(
        report_url(activation), report(client_id=client_id, pupils_present=1), format="json"
    )
    other = api.post(
        report_url(activation),
        report(client_id=str(uuid.uuid4()), pupils_present=170),
        format="json",
    )

    assert (first.status_code, replay.status_code, other.status_code) == (201, 200, 201)
    assert replay.json()["pupils_present"] == 180  # the replay changed nothing
    assert StatusUpdate.objects.count() == 2
    assert StatusUpdate.objects.first().data["client_id"] == client_id


def test_a_replay_after_the_end_of_alert_is_acknowledged_not_refused(
    api, operator, director, activation
):
    api = as_user(api, director)
    client_id = str(uuid.uuid4())
    api.post(report_url(activation), report(client_id=client_id), format="json")
    end_of_alert(activation=activation, by=operator)

    replay = api.post(report_url(activation), report(client_id=client_id), format="json")
    late = api.post(report_url(activation), report(), format="json")

    assert replay.status_code == 200
    assert late.status_code == 400 and "state" in late.json()
    assert StatusUpdate.objects.count() == 1


def test_the_same_client_id_for_another_school_is_another_report(
    api, director, activation, other_school
):
    other_school.directors.add(director)
    api = as_user(api, director)
    client_id = str(uuid.uuid4())

    api.post(report_url(activation), report(client_id=client_id), format="json")
    response = api.post(
        report_url(activation, "0370002B"), report(client_id=client_id), format="json"
    )

    assert response.status_code == 201
    assert StatusUpdate.objects.count() == 2


# --- End of alert -------------------------------------------------------------------------


def test_an_operator_gives_the_end_of_alert_once(api, operator, activation):
    api = as_user(api, operator)

    response = api.post(activation_url(activation, "end/"), end_body(activation), format="json")
    again = api.post(activation_url(activation, "end/"), end_body(activation), format="json")

    assert response.status_code == 200
    assert response.json()["ended_by"] == "operateur"
    assert response.json()["ended_at"] is not None
    assert response.json()["timeline"][-1]["kind"] == "ended"
    assert again.status_code == 400
    assert again.json() == {"detail": "La fin d'alerte a déjà été donnée."}


def test_a_director_cannot_give_the_end_of_alert(api, director, activation):
    response = as_user(api, director).post(activation_url(activation, "end/"))

    assert response.status_code == 403
    activation.refresh_from_db()
    assert activation.ended_at is None


def test_the_end_of_a_drill_records_a_drill_for_each_school(api, operator, school, other_school):
    with time_machine.travel(T0, tick=False):
        response = as_user(api, operator).post(
            ACTIVATIONS,
            {"scenario": "intrusion", "schools": ["0370001A", "0370002B"], "drill": True},
            format="json",
        )
        drill = Activation.objects.get(pk=response.json()["id"])
        api.post(f"{ACTIVATIONS}{drill.pk}/end/", end_body(drill), format="json")

    drills = Drill.objects.order_by("school__uai")
    assert [(d.school.uai, d.scenario, d.held_on) for d in drills] == [
        ("0370001A", "intrusion", date(2026, 11, 23)),
        ("0370002B", "intrusion", date(2026, 11, 23)),
    ]
    assert {d.activation_id for d in drills} == {response.json()["id"]}


def test_the_end_of_a_real_activation_records_no_drill(api, operator, activation):
    as_user(api, operator).post(
        activation_url(activation, "end/"), end_body(activation), format="json"
    )

    assert not Drill.objects.exists()


# --- A school's alarm -----------------------------------------------------------------------


def test_a_director_raises_the_alarm_and_starts_an_activation_for_their_school(
    api, director, school, other_school
):
    response = as_user(api, director).post(
        alarm_url(), {"scenario": "intrusion", "message": "Individu armé vu près du portail"}
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["source"], body["scenario"], body["started_by"]) == (
        "school",
        "intrusion",
        "directeur",
    )
    assert body["silent"] is True
    assert (
        body["title"] == "Alarme de l'école École 0370001A : S'échapper ou s'enfermer et se cacher"
    )
    assert [status["school"] for status in body["statuses"]] == ["0370001A"]
    assert body["timeline"][0]["text"] == "Individu armé vu près du portail"
    assert SchoolStatus.objects.filter(school=other_school).count() == 0


def test_an_alarm_joins_the_active_activation_of_the_same_posture(
    api, director, operator, activation
):
    response = as_user(api, director).post(
        alarm_url(), {"scenario": "confinement", "message": "Odeur de gaz dans la cour"}
    )

    assert response.status_code == 200
    assert response.json()["id"] == activation.pk
    assert Activation.objects.count() == 1
    alarm = ActivationEvent.objects.get(kind="alarm")
    assert (alarm.by, alarm.schools, alarm.text) == (
        director,
        ["0370001A"],
        "Odeur de gaz dans la cour",
    )
    operator_view = as_user(APIClient(), operator).get(activation_url(activation)).json()
    assert [line["kind"] for line in operator_view["timeline"]] == ["started", "alarm"]


def test_an_alarm_never_joins_a_drill_nor_another_posture(api, director, school):
    ppms_activate(
        scenario="intrusion", title="Exercice", source="operator", schools=[school], drill=True
    )
    ppms_activate(scenario="shelter", title="Tempête", source="operator", schools=[school])

    response = as_user(api, director).post(alarm_url(), {"scenario": "intrusion"})

    assert response.status_code == 201
    assert Activation.objects.get(pk=response.json()["id"]).drill is False
    assert Activation.objects.count() == 3


def test_an_alarm_after_the_end_of_alert_starts_a_new_activation(
    api, director, operator, activation
):
    end_of_alert(activation=activation, by=operator)

    response = as_user(api, director).post(alarm_url(), {"scenario": "confinement"})

    assert response.status_code == 201
    assert response.json()["id"] != activation.pk


def test_only_a_director_of_the_school_raises_its_alarm(
    api, operator, other_director, school, other_school
):
    assert as_user(api, operator).post(alarm_url(), {"scenario": "shelter"}).status_code == 403
    by_other = as_user(APIClient(), other_director).post(alarm_url(), {"scenario": "shelter"})
    assert by_other.status_code == 404
    assert not Activation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": "shelter", "message": "x" * 501}, "message"),
        ({"scenario": "incendie"}, "scenario"),
        ({"message": "Au secours"}, "scenario"),
    ],
)
def test_a_bad_alarm_is_refused_with_a_message_per_field(api, director, school, body, field):
    response = as_user(api, director).post(alarm_url(), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Activation.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_the_operators_hear_a_schools_alarm_at_once(client, operator, director, school):
    activation = await sync_to_async(ppms_activate)(
        scenario="shelter", title="Tempête", source="operator", schools=[school]
    )
    board = await connect_as(client, "operateur")

    api = APIClient()
    await sync_to_async(sign_in)(api, director)
    response = await sync_to_async(api.post)(alarm_url(), {"scenario": "shelter"})

    assert response.status_code == 200
    event = await board.receive_json_from(timeout=3)
    assert (event["type"], event["event"]) == ("ppms", "activated")
    assert event["activation"]["id"] == activation.pk
    assert event["status"]["school"] == "0370001A"
    await board.disconnect()


# --- CAP ----------------------------------------------------------------------------------


def test_an_operator_gets_the_activations_cap_document(api, operator, activation):
    response = as_user(api, operator).get(activation_url(activation, "cap/"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/cap+xml; charset=utf-8"
    assert response.content == activation_cap(activation, restricted=True)
    xmlschema.XMLSchema(CAP_SCHEMA).validate(io.BytesIO(response.content))


def test_the_cap_document_is_for_operators_only(api, director, other_operator, activation):
    assert as_user(api, director).get(activation_url(activation, "cap/")).status_code == 403
    denied = as_user(APIClient(), other_operator).get(activation_url(activation, "cap/"))
    assert denied.status_code == 404
    assert denied["Content-Type"] == "application/json"


def test_the_feed_lists_the_activations_an_operator_supervises_the_ended_one_with_its_end(
    api, operator, other_operator, director, activation, school
):
    over = ppms_activate(scenario="shelter", title="Finie", source="operator", schools=[school])
    end_of_alert(activation=over, by=operator)

    def ids(user):
        response = as_user(APIClient(), user).get(FEED)
        assert response.status_code == 200
        root = ET.fromstring(response.content)
        return [
            (entry.findtext(f"{ATOM}id"), entry.find(f"{ATOM}link").get("href"))
            for entry in root.findall(f"{ATOM}entry")
        ]

    # The ended one stays CAP_FEED_KEEP_HOURS with its AllClear (tests/test_cap_feed.py).
    assert ids(operator) == [
        (
            f"urn:csu:localhost:ppms:{over.pk}:2",
            f"http://localhost:8000/api/v1/ppms/activations/{over.pk}/cap/",
        ),
        (
            f"urn:csu:localhost:ppms:{activation.pk}:1",
            f"http://localhost:8000/api/v1/ppms/activations/{activation.pk}/cap/",
        ),
    ]
    assert ids(other_operator) == []
    assert ids(director) == []


# --- Drills -------------------------------------------------------------------------------


def drill(school, held_on, scenario="intrusion"):
    return Drill.objects.create(school=school, scenario=scenario, held_on=held_on)


def register(api, user, **query):
    response = as_user(api, user).get(DRILLS, query)
    assert response.status_code == 200, response.json()
    return {entry["school"]: entry for entry in response.json()["results"]}


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 11, 5, 12, 0, tzinfo=UTC), tick=False)
def test_a_school_without_a_drill_in_september_or_october_is_overdue_in_november(
    api, operator, school, other_school
):
    drill(school, date(2026, 9, 18))
    drill(school, date(2026, 6, 12))  # last school year
    drill(other_school, date(2026, 11, 2))  # too late for the first one

    entries = register(api, operator)

    mine = entries["0370001A"]
    assert mine["school_year"] == {"start": "2026-09-01", "end": "2027-08-31"}
    assert [d["held_on"] for d in mine["drills"]] == ["2026-09-18"]
    assert [(r["deadline"], r["met"], r["overdue"]) for r in mine["requirements"]] == [
        ("2026-10-31", True, False),
        ("2027-02-19", False, False),  # zone B: the winter holidays begin on 20 February
        ("2027-07-02", True, False),
    ]
    assert mine["overdue"] is False
    assert entries["0370002B"]["overdue"] is True
    assert list(register(api, operator, overdue="true")) == ["0370002B"]
    assert list(register(api, operator, overdue="false")) == ["0370001A"]


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2027, 2, 22, 12, 0, tzinfo=UTC), tick=False)
def test_two_drills_are_due_before_the_winter_holidays(api, operator, school, other_school):
    drill(school, date(2026, 10, 1))
    drill(school, date(2027, 2, 20))  # the winter holidays (zone B) have begun
    drill(other_school, date(2026, 9, 10))
    drill(other_school, date(2027, 2, 18), scenario="shelter")

    entries = register(api, operator)

    assert entries["0370001A"]["overdue"] is True
    assert [r["met"] for r in entries["0370001A"]["requirements"]] == [True, False, True]
    assert entries["0370002B"]["overdue"] is False


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 9, 20, 12, 0, tzinfo=UTC), tick=False)
def test_nothing_is_overdue_before_the_first_deadline(api, operator, school):
    assert register(api, operator)["0370001A"]["overdue"] is False


def test_the_drills_register_is_for_operators_within_their_communes(
    api, director, other_operator, metropole_operator, school, ballan_school
):
    assert as_user(api, director).get(DRILLS).status_code == 403
    assert list(register(APIClient(), other_operator)) == ["0370003C"]
    assert set(register(APIClient(), metropole_operator)) == {"0370001A", "0370003C"}
    assert list(register(APIClient(), metropole_operator, commune="37018")) == ["0370003C"]


def test_the_drills_register_takes_the_same_queries_however_many_schools(
    api, operator, commune, school
):
    drill(school, date.today())
    api = as_user(api, operator)
    api.get(DRILLS)
    with CaptureQueriesContext(connection) as one:
        api.get(DRILLS)
    for n in range(5):
        drill(make_school(commune, uai=f"037030{n}Z"), date.today())
    with CaptureQueriesContext(connection) as many:
        assert api.get(DRILLS).json()["count"] == 6

    assert len(many) == len(one)


@time_machine.travel(datetime(2026, 11, 5, 12, 0, tzinfo=UTC), tick=False)
def test_an_operator_records_a_drill(api, operator, school):
    response = as_user(api, operator).post(
        DRILLS,
        {"school": "0370001A", "scenario": "confinement", "held_on": "2026-10-15", "notes": "RAS"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json() == {
        "id": Drill.objects.get().pk,
        "school": "0370001A",
        "kind": "ppms",
        "scenario": "confinement",
        "held_on": "2026-10-15",
        "notes": "RAS",
        "activation": None,
    }


@time_machine.travel(datetime(2026, 11, 5, 12, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"school": "0370003C", "scenario": "shelter", "held_on": "2026-10-15"}, "school"),
        ({"school": "0370001A", "scenario": "shelter", "held_on": "2026-11-06"}, "held_on"),
        ({"school": "0370001A", "scenario": "shelter", "held_on": "15/10/2026"}, "held_on"),
        ({"school": "0370001A", "scenario": "incendie", "held_on": "2026-10-15"}, "scenario"),
    ],
)
def test_a_bad_drill_is_refused_with_a_message_per_field(
    api, operator, school, ballan_school, body, field
):
    response = as_user(api, operator).post(DRILLS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Drill.objects.exists()


def test_a_director_cannot_record_a_drill(api, director, school):
    response = as_user(api, director).post(
        DRILLS, {"school": "0370001A", "scenario": "shelter", "held_on": "2026-10-15"}
    )

    assert response.status_code == 403


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_schema_documents_the_ppms_workflow_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("ppms.api_urls"))])

    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned about the PPMS API"
    assert {
        "/api/v1/ppms/activations/",
        "/api/v1/ppms/activations/{id}/",
        "/api/v1/ppms/activations/{id}/end/",
        "/api/v1/ppms/activations/{id}/statuses/",
        "/api/v1/ppms/activations/{id}/statuses/{uai}/",
        "/api/v1/ppms/activations/{id}/cap/",
        "/api/v1/schools/{uai}/alarm/",
        "/api/v1/ppms/drills/",
    } <= set(schema["paths"])
    report = schema["components"]["schemas"]["ReportRequest"]["properties"]
    assert report["state"]["$ref"].endswith("/ReportedStateEnum")
    assert "client_id" in report and "adults_injured" in report


def test_a_zone_beyond_any_identifier_is_refused_on_the_field(api, operator, school):
    # Found by the API fuzzer: the number overflowed the database's integer into a 500.
    body = {"scenario": "intrusion", "zones": [1, 10**20]}

    response = as_user(api, operator).post(ACTIVATIONS, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["zones"]
    assert not Activation.objects.exists()
