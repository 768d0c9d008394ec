"""The PPMS API: schools and centres d'accueil with their occupancy, per role."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from core import roles
from core.models import AuditEntry
from sensors.models import Zone
from tests.conftest import api_token, make_school, make_shelter, make_user, sign_in

SCHOOLS = "/api/v1/schools/"
SHELTERS = "/api/v1/shelters/"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def school_url(uai="0370001A"):
    return f"{SCHOOLS}{uai}/"


def occupancy_url(shelter):
    return f"{SHELTERS}{shelter.pk}/occupancy/"


def open_url(shelter):
    return f"{SHELTERS}{shelter.pk}/open/"


@pytest.fixture
def sent(monkeypatch):
    """The live events sent: (group, payload)."""
    events = []
    monkeypatch.setattr(
        "core.live.send_many",
        lambda items, **kw: events.extend((group, payload) for group, payload, _ in items),
    )
    return events


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    sign_in(api, user)
    return api


@pytest.fixture
def other_school(other_commune):
    return make_school(other_commune, uai="0370002B", name="École de Ballan")


@pytest.fixture
def gymnasium(commune):
    """A closed centre of Joué-lès-Tours."""
    return make_shelter(commune, capacity=120, occupancy=30)


@pytest.fixture
def open_hall(commune):
    """An open centre of Joué-lès-Tours."""
    return make_shelter(commune, name="Salle Jacques Brel", is_open=True, capacity=80)


@pytest.fixture
def ballan_gymnasium(other_commune):
    """A closed centre of Ballan-Miré."""
    return make_shelter(other_commune, name="Gymnase de Ballan", capacity=60)


@pytest.fixture
def ballan_hall(other_commune):
    """An open centre of Ballan-Miré."""
    return make_shelter(other_commune, name="Salle des fêtes de Ballan", is_open=True)


@pytest.fixture
def shelters(gymnasium, open_hall, ballan_gymnasium, ballan_hall):
    return gymnasium, open_hall, ballan_gymnasium, ballan_hall


def uais(response):
    return [item["uai"] for item in response.json()["results"]]


def names(response):
    return {item["name"] for item in response.json()["results"]}


# --- Authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", SCHOOLS),
        ("get", school_url()),
        ("get", SHELTERS),
        ("post", f"{SHELTERS}1/occupancy/"),
        ("post", f"{SHELTERS}1/open/"),
    ],
)
def test_an_anonymous_caller_gets_401_on_every_endpoint(api, school, method, url):
    response = getattr(api, method)(url)

    assert response.status_code == 401


def test_a_token_authenticates_a_caller(api, operator, school):
    token = api_token(operator)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api.get(SCHOOLS)

    assert response.status_code == 200
    assert uais(response) == ["0370001A"]


# --- Schools: visibility ----------------------------------------------------------------


def test_an_operator_sees_the_schools_of_their_communes_only(api, operator, school, other_school):
    response = as_user(api, operator).get(SCHOOLS)

    assert response.status_code == 200
    assert uais(response) == ["0370001A"]


def test_an_operator_of_another_commune_sees_the_schools_of_theirs(
    api, other_operator, school, other_school
):
    response = as_user(api, other_operator).get(SCHOOLS)

    assert uais(response) == ["0370002B"]


def test_a_metropole_operator_sees_every_school(api, metropole_operator, school, other_school):
    response = as_user(api, metropole_operator).get(SCHOOLS)

    # Ordered by commune name: Ballan-Miré before Joué-lès-Tours.
    assert uais(response) == ["0370002B", "0370001A"]


def test_an_admin_sees_every_school(admin_client, school, other_school):
    response = admin_client.get(SCHOOLS)

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_a_director_sees_only_their_own_school(api, director, school, commune, other_school):
    make_school(commune, uai="0370003C", name="École voisine")

    response = as_user(api, director).get(SCHOOLS)

    assert uais(response) == ["0370001A"]


def test_a_user_with_no_role_sees_no_school(api, django_user_model, school):
    nobody = make_user(django_user_model, "personne")

    response = as_user(api, nobody).get(SCHOOLS)

    assert response.json()["count"] == 0


def test_a_school_with_two_directors_is_listed_once_to_an_operator_who_directs_it(
    api, django_user_model, operator, school
):
    operator.groups.add(Group.objects.get_or_create(name=roles.DIRECTORS)[0])
    school.directors.add(operator, make_user(django_user_model, "codirectrice"))

    response = as_user(api, operator).get(SCHOOLS)

    assert uais(response) == ["0370001A"]


def test_an_operator_gets_a_school_of_their_commune(api, operator, school):
    response = as_user(api, operator).get(school_url())

    assert response.status_code == 200
    assert response.json()["uai"] == "0370001A"


def test_an_operator_of_another_commune_gets_404_for_a_school(api, other_operator, school):
    response = as_user(api, other_operator).get(school_url())

    assert response.status_code == 404


def test_a_metropole_operator_gets_any_school(api, metropole_operator, other_school):
    response = as_user(api, metropole_operator).get(school_url("0370002B"))

    assert response.status_code == 200


def test_an_admin_gets_any_school(admin_client, other_school):
    response = admin_client.get(school_url("0370002B"))

    assert response.status_code == 200
    assert response.json()["directors"] == []


def test_a_director_gets_their_school_without_its_directors(api, director, school):
    response = as_user(api, director).get(school_url())

    assert response.status_code == 200
    assert "directors" not in response.json()


def test_a_director_gets_404_for_another_school_of_their_commune(api, director, commune):
    make_school(commune, uai="0370003C", name="École voisine")

    response = as_user(api, director).get(school_url("0370003C"))

    assert response.status_code == 404


def test_an_unknown_school_is_404(api, metropole_operator):
    assert as_user(api, metropole_operator).get(school_url("0379999Z")).status_code == 404


# --- Schools: representation ------------------------------------------------------------


def test_a_school_shows_its_commune_zones_directors_and_flood_zone(
    api, operator, director, school, commune, flood_zone
):
    district = Zone.objects.create(commune=commune, name="Centre-ville", type="district")
    school.zones.add(flood_zone, district)
    school.address = "1 rue de l'École"
    school.staff = 14
    school.save()

    response = as_user(api, operator).get(school_url())

    assert response.json() == {
        "uai": "0370001A",
        "name": "École 0370001A",
        "address": "1 rue de l'École",
        "commune": {"id": commune.pk, "insee_code": "37122", "name": "Joué-lès-Tours"},
        "zones": [
            {"id": district.pk, "name": "Centre-ville", "type": "district"},
            {"id": flood_zone.pk, "name": "Zone inondable du Cher", "type": "flood"},
        ],
        "latitude": 47.35,
        "longitude": 0.66,
        "pupils": 200,
        "staff": 14,
        "directors": ["directeur"],
        "in_flood_zone": True,
    }


def test_a_school_outside_any_flood_zone_says_so(api, operator, school, commune):
    school.zones.add(Zone.objects.create(commune=commune, name="Centre-ville"))

    response = as_user(api, operator).get(school_url())

    assert response.json()["in_flood_zone"] is False


def test_a_director_sees_their_school_in_the_list_without_directors(api, director, school):
    [item] = as_user(api, director).get(SCHOOLS).json()["results"]

    assert item["uai"] == "0370001A"
    assert "directors" not in item


# --- Schools: filters and pagination ----------------------------------------------------


def test_schools_filter_by_commune_and_zone(
    api, metropole_operator, school, other_school, commune, flood_zone
):
    school.zones.add(flood_zone)
    make_school(commune, uai="0370003C", name="École voisine")
    as_user(api, metropole_operator)

    assert uais(api.get(SCHOOLS, {"commune": "37018"})) == ["0370002B"]
    assert uais(api.get(SCHOOLS, {"commune": "37122"})) == ["0370001A", "0370003C"]
    assert uais(api.get(SCHOOLS, {"zone": flood_zone.pk})) == ["0370001A"]
    assert uais(api.get(SCHOOLS, {"commune": "37018", "zone": flood_zone.pk})) == []
    assert uais(api.get(SCHOOLS, {"commune": "99999"})) == []


def test_the_school_filters_keep_to_the_callers_perimeter(api, operator, other_school):
    response = as_user(api, operator).get(SCHOOLS, {"commune": "37018"})

    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"commune": "Joué"}, "commune"),
        ({"commune": "3712"}, "commune"),
        ({"zone": "inondable"}, "zone"),
        ({"zone": "0"}, "zone"),
    ],
)
def test_a_bad_school_filter_gets_400_with_a_message_on_the_field(
    api, operator, school, params, field
):
    response = as_user(api, operator).get(SCHOOLS, params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_school_list_is_paginated(api, metropole_operator, school, other_school):
    response = as_user(api, metropole_operator).get(SCHOOLS, {"limit": 1})

    body = response.json()
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert "offset=1" in body["next"]


def test_the_school_list_takes_a_constant_number_of_queries(
    api,
    operator,
    director,
    school,
    commune,
    flood_zone,
    django_user_model,
    django_assert_max_num_queries,
):
    as_user(api, operator)
    school.zones.add(flood_zone)
    with CaptureQueriesContext(connection) as few:
        assert api.get(SCHOOLS).status_code == 200

    for number in range(2, 31):
        many = make_school(commune, uai=f"03700{number:02}A")
        many.zones.add(flood_zone)
        many.directors.add(make_user(django_user_model, f"directeur-{number}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api.get(SCHOOLS)

    assert response.json()["count"] == 30


# --- Centres d'accueil: visibility ------------------------------------------------------


def test_an_operator_sees_their_communes_shelters_and_the_open_ones_elsewhere(
    api, operator, shelters
):
    response = as_user(api, operator).get(SHELTERS)

    assert response.status_code == 200
    assert names(response) == {
        "Gymnase Jean Bigot",
        "Salle Jacques Brel",
        "Salle des fêtes de Ballan",
    }


def test_an_operator_of_another_commune_sees_only_our_open_shelters(api, other_operator, shelters):
    response = as_user(api, other_operator).get(SHELTERS)

    assert names(response) == {
        "Gymnase de Ballan",
        "Salle des fêtes de Ballan",
        "Salle Jacques Brel",
    }


def test_a_metropole_operator_sees_every_shelter(api, metropole_operator, shelters):
    response = as_user(api, metropole_operator).get(SHELTERS)

    assert response.json()["count"] == 4


def test_an_admin_sees_every_shelter(admin_client, shelters):
    response = admin_client.get(SHELTERS)

    assert response.status_code == 200
    assert response.json()["count"] == 4


def test_a_director_sees_no_shelter(api, director, shelters):
    response = as_user(api, director).get(SHELTERS)

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_a_shelter_shows_its_capacity_occupancy_and_free_places(api, operator, gymnasium):
    [item] = as_user(api, operator).get(SHELTERS).json()["results"]

    assert item == {
        "id": gymnasium.pk,
        "name": "Gymnase Jean Bigot",
        "address": "",
        "commune": {"id": gymnasium.commune_id, "insee_code": "37122", "name": "Joué-lès-Tours"},
        "latitude": 47.34,
        "longitude": 0.67,
        "capacity": 120,
        "occupancy": 30,
        "is_open": False,
        "is_full": False,
        "free_places": 90,
    }


def test_an_overfull_shelter_is_full_with_no_free_places(api, operator, commune):
    make_shelter(commune, capacity=50, occupancy=65, is_open=True)

    [item] = as_user(api, operator).get(SHELTERS).json()["results"]

    assert item["is_full"] is True
    assert item["free_places"] == 0


# --- Centres d'accueil: filters ---------------------------------------------------------


def test_shelters_filter_by_commune_and_open(api, metropole_operator, shelters):
    as_user(api, metropole_operator)

    assert names(api.get(SHELTERS, {"commune": "37018"})) == {
        "Gymnase de Ballan",
        "Salle des fêtes de Ballan",
    }
    assert names(api.get(SHELTERS, {"open": "true"})) == {
        "Salle Jacques Brel",
        "Salle des fêtes de Ballan",
    }
    assert names(api.get(SHELTERS, {"open": "false", "commune": "37122"})) == {"Gymnase Jean Bigot"}
    assert api.get(SHELTERS, {"commune": "99999"}).json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [({"commune": "Ballan"}, "commune"), ({"open": "peut-être"}, "open")],
)
def test_a_bad_shelter_filter_gets_400_with_a_message_on_the_field(api, operator, params, field):
    response = as_user(api, operator).get(SHELTERS, params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_shelter_list_takes_a_constant_number_of_queries(
    api, operator, commune, other_commune, django_assert_max_num_queries
):
    as_user(api, operator)
    make_shelter(commune, name="Centre 00")
    with CaptureQueriesContext(connection) as few:
        assert api.get(SHELTERS).status_code == 200

    for number in range(1, 15):
        make_shelter(commune, name=f"Centre {number:02}")
        make_shelter(other_commune, name=f"Centre {number:02}", is_open=True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api.get(SHELTERS)

    assert response.json()["count"] == 29


# --- Occupancy --------------------------------------------------------------------------


def test_an_operator_records_the_occupancy_of_a_shelter_of_their_commune(api, operator, gymnasium):
    as_user(api, operator)

    with time_machine.travel(NOW, tick=False):
        response = api.post(occupancy_url(gymnasium), {"occupancy": 45}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["occupancy"] == 45
    assert body["free_places"] == 75
    assert body["previous_occupancy"] == 30
    assert body["recorded_by"] == "operateur"
    assert body["recorded_at"] == "2026-11-23T10:00:00Z"
    assert body["warning"] is None
    gymnasium.refresh_from_db()
    assert gymnasium.occupancy == 45


def test_an_occupancy_change_is_in_the_audit_trail_with_who_when_and_before(
    api, operator, gymnasium
):
    as_user(api, operator)

    with time_machine.travel(NOW, tick=False):
        api.post(occupancy_url(gymnasium), {"occupancy": 45}, format="json")

    [entry] = AuditEntry.objects.all()
    assert (entry.username, entry.action, entry.status) == ("operateur", "shelter-occupancy", 200)
    assert entry.target == f"pk={gymnasium.pk}"
    assert entry.at == NOW
    assert entry.data == {"occupancy": 45, "previous": {"occupancy": 30}}


def test_an_occupancy_above_capacity_is_recorded_with_a_warning(api, operator, gymnasium):
    response = as_user(api, operator).post(
        occupancy_url(gymnasium), {"occupancy": 130}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["warning"] == "Capacité dépassée : 130 personnes pour 120 places."
    assert body["is_full"] is True
    assert body["free_places"] == 0
    gymnasium.refresh_from_db()
    assert gymnasium.occupancy == 130


def test_an_occupancy_at_capacity_fills_the_shelter_without_a_warning(api, operator, gymnasium):
    response = as_user(api, operator).post(
        occupancy_url(gymnasium), {"occupancy": 120}, format="json"
    )

    assert response.json()["warning"] is None
    assert response.json()["is_full"] is True


def test_an_occupancy_may_go_back_to_zero(api, operator, gymnasium):
    response = as_user(api, operator).post(
        occupancy_url(gymnasium), {"occupancy": 0}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["free_places"] == 120


@pytest.mark.parametrize(
    "body",
    [
        {"occupancy": -1},
        {"occupancy": "beaucoup"},
        {"occupancy": 12.5},
        {"occupancy": None},
        {"occupancy": 2**31},
        {},
    ],
    ids=["negative", "text", "decimal", "null", "beyond-the-column", "missing"],
)
def test_a_bad_occupancy_gets_400_on_the_field_and_changes_nothing(api, operator, gymnasium, body):
    response = as_user(api, operator).post(occupancy_url(gymnasium), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["occupancy"]
    gymnasium.refresh_from_db()
    assert gymnasium.occupancy == 30
    [entry] = AuditEntry.objects.all()
    assert entry.status == 400
    assert "previous" not in entry.data


def test_a_negative_occupancy_is_answered_in_french(api, operator, gymnasium):
    response = as_user(api, operator).post(
        occupancy_url(gymnasium), {"occupancy": -3}, format="json"
    )

    [message] = response.json()["occupancy"]
    assert "0" in message
    assert "Assurez-vous" in message


def test_a_director_gets_403_on_occupancy(api, director, gymnasium):
    response = as_user(api, director).post(
        occupancy_url(gymnasium), {"occupancy": 10}, format="json"
    )

    assert response.status_code == 403
    gymnasium.refresh_from_db()
    assert gymnasium.occupancy == 30


def test_an_operator_of_another_commune_gets_403_on_an_open_shelter_they_see(
    api, other_operator, open_hall
):
    response = as_user(api, other_operator).post(
        occupancy_url(open_hall), {"occupancy": 10}, format="json"
    )

    assert response.status_code == 403
    open_hall.refresh_from_db()
    assert open_hall.occupancy == 0


def test_an_operator_of_another_commune_gets_404_on_a_closed_shelter(
    api, other_operator, gymnasium
):
    response = as_user(api, other_operator).post(
        occupancy_url(gymnasium), {"occupancy": 10}, format="json"
    )

    assert response.status_code == 404


def test_a_metropole_operator_records_any_occupancy(api, metropole_operator, ballan_gymnasium):
    response = as_user(api, metropole_operator).post(
        occupancy_url(ballan_gymnasium), {"occupancy": 12}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["recorded_by"] == "operateur-metropole"


def test_an_admin_records_any_occupancy(admin_client, ballan_gymnasium):
    response = admin_client.post(
        occupancy_url(ballan_gymnasium), {"occupancy": 12}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["recorded_by"] == "admin"
    ballan_gymnasium.refresh_from_db()
    assert ballan_gymnasium.occupancy == 12


def test_an_unknown_shelter_is_404(api, metropole_operator):
    response = as_user(api, metropole_operator).post(
        f"{SHELTERS}999999/occupancy/", {"occupancy": 1}, format="json"
    )

    assert response.status_code == 404


def test_an_occupancy_change_is_pushed_live_to_the_commune_after_the_commit(
    api, operator, gymnasium, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api, operator).post(
            occupancy_url(gymnasium), {"occupancy": 130}, format="json"
        )

    assert response.status_code == 200
    [(group, payload)] = sent
    assert group == f"commune-{gymnasium.commune_id}"
    assert payload["type"] == "ppms"
    assert payload["event"] == "shelter"
    assert payload["shelter"]["id"] == gymnasium.pk
    assert payload["shelter"]["occupancy"] == 130
    assert payload["shelter"]["is_full"] is True
    assert payload["shelter"]["free_places"] == 0


def test_a_refused_occupancy_pushes_nothing(
    api, operator, gymnasium, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        as_user(api, operator).post(occupancy_url(gymnasium), {"occupancy": -1}, format="json")

    assert sent == []


# --- Opening and closing ---------------------------------------------------------------


def test_an_operator_opens_a_shelter_of_their_commune_and_it_is_pushed_live(
    api, operator, gymnasium, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api, operator).post(open_url(gymnasium), {"open": True}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == gymnasium.pk
    assert body["is_open"] is True
    assert body["occupancy"] == 30
    gymnasium.refresh_from_db()
    assert gymnasium.is_open is True
    [(group, payload)] = sent
    assert group == f"commune-{gymnasium.commune_id}"
    assert payload == {"type": "ppms", "event": "shelter", "shelter": body}
    [entry] = AuditEntry.objects.all()
    assert (entry.username, entry.action) == ("operateur", "shelter-open")
    assert entry.data == {"open": True, "previous": {"is_open": False}}


def test_an_operator_closes_an_open_shelter(api, operator, open_hall, sent):
    response = as_user(api, operator).post(open_url(open_hall), {"open": False}, format="json")

    assert response.status_code == 200
    assert response.json()["is_open"] is False
    open_hall.refresh_from_db()
    assert open_hall.is_open is False


def test_nothing_is_pushed_before_the_commit(api, operator, gymnasium, sent):
    # The test transaction never commits: the event waits for it.
    as_user(api, operator).post(open_url(gymnasium), {"open": True}, format="json")

    assert sent == []


@pytest.mark.parametrize(
    "body", [{}, {"open": None}, {"open": "peut-être"}], ids=["missing", "null", "text"]
)
def test_a_bad_open_gets_400_on_the_field_and_changes_nothing(
    api, operator, gymnasium, body, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api, operator).post(open_url(gymnasium), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["open"]
    gymnasium.refresh_from_db()
    assert gymnasium.is_open is False
    assert sent == []


def test_a_director_gets_403_on_open(api, director, gymnasium, sent):
    response = as_user(api, director).post(open_url(gymnasium), {"open": True}, format="json")

    assert response.status_code == 403
    gymnasium.refresh_from_db()
    assert gymnasium.is_open is False


def test_an_operator_of_another_commune_gets_403_closing_an_open_shelter_they_see(
    api, other_operator, open_hall, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api, other_operator).post(
            open_url(open_hall), {"open": False}, format="json"
        )

    assert response.status_code == 403
    open_hall.refresh_from_db()
    assert open_hall.is_open is True
    assert sent == []


def test_an_operator_of_another_commune_gets_404_opening_a_closed_shelter(
    api, other_operator, gymnasium
):
    response = as_user(api, other_operator).post(open_url(gymnasium), {"open": True}, format="json")

    assert response.status_code == 404
    gymnasium.refresh_from_db()
    assert gymnasium.is_open is False


def test_a_metropole_operator_opens_any_shelter(api, metropole_operator, ballan_gymnasium, sent):
    response = as_user(api, metropole_operator).post(
        open_url(ballan_gymnasium), {"open": True}, format="json"
    )

    assert response.status_code == 200
    ballan_gymnasium.refresh_from_db()
    assert ballan_gymnasium.is_open is True


def test_an_admin_opens_any_shelter(admin_client, ballan_gymnasium, sent):
    response = admin_client.post(
        open_url(ballan_gymnasium), {"open": True}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["is_open"] is True


# --- OpenAPI ----------------------------------------------------------------------------


def test_the_schema_documents_the_ppms_api_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("ppms.api_urls"))])

    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned about the PPMS API"
    assert set(schema["paths"]) >= {
        "/api/v1/schools/",
        "/api/v1/schools/{uai}/",
        "/api/v1/shelters/",
        "/api/v1/shelters/{id}/occupancy/",
        "/api/v1/shelters/{id}/open/",
    }
    opening = schema["paths"]["/api/v1/shelters/{id}/open/"]["post"]
    assert set(opening["responses"]) == {"200", "400", "401", "403", "404", "415", "429"}
    body = opening["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/ShelterOpenRequest")
    assert schema["components"]["schemas"]["ShelterOpenRequest"]["required"] == ["open"]
    school = schema["components"]["schemas"]["School"]
    assert "directors" in school["properties"]
    assert "directors" not in school["required"]


def test_the_schema_served_to_an_operator_still_documents_the_directors(api, operator):
    # One public document whoever reads it (directors do not: they get a 403).
    response = as_user(api, operator).get("/api/schema/", {"format": "json"})

    school = response.json()["components"]["schemas"]["School"]
    assert "directors" in school["properties"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"limit": "abc"}, ["limit"]),
        ({"limit": 0}, ["limit"]),
        ({"offset": "null"}, ["offset"]),
        ({"offset": -1, "limit": "1.5"}, ["limit", "offset"]),
        ({"limit": 1001}, ["limit"]),
        ({"limit": "57975834387790883192832"}, ["limit"]),  # a 500 from the database
        ({"offset": "9" * 5000}, ["offset"]),  # beyond what int() reads
    ],
)
def test_a_bad_page_is_a_400_on_the_field_not_the_first_page(api, operator, school, params, fields):
    # Found by the API fuzzer: DRF's pagination ignored them and answered the first page.
    response = as_user(api, operator).get(SCHOOLS, params)

    assert response.status_code == 400
    assert sorted(response.json()) == fields


def test_an_empty_page_parameter_counts_as_absent(api, operator, school):
    response = as_user(api, operator).get(SCHOOLS, {"limit": "", "offset": ""})

    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize("fmt", ["multipart", None], ids=["multipart", "urlencoded"])
def test_a_form_without_open_gets_400_and_does_not_close_the_shelter(api, operator, open_hall, fmt):
    # Found by the API fuzzer: DRF reads a missing box of a form as unticked, i.e. false.
    api = as_user(api, operator)
    if fmt:
        response = api.post(open_url(open_hall), {}, format=fmt)
    else:
        response = api.generic(
            "POST", open_url(open_hall), "", content_type="application/x-www-form-urlencoded"
        )

    assert response.status_code == 400
    assert list(response.json()) == ["open"]
    open_hall.refresh_from_db()
    assert open_hall.is_open is True


def test_a_zone_beyond_any_identifier_is_a_400_naming_the_field(api, operator):
    # Found by the API fuzzer: the number overflowed the database's integer into a 500.
    response = as_user(api, operator).get(SCHOOLS, {"zone": 10**20})

    assert response.status_code == 400
    assert list(response.json()) == ["zone"]
