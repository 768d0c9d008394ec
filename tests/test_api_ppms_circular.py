"""The PPMS API for what the circular of 8 June 2023 asks beyond one posture per school:
groups of pupils in several places, the centre d'accueil opened with the evacuation and
its arrivals by home commune, the Vigicrues colour of a flood, the crisis directory."""

import pytest
from rest_framework.test import APIClient

from ppms.models import (
    DirectoryEntry,
    SchoolStatus,
    Shelter,
    ShelterReport,
    StatusUpdate,
    directory_of,
)
from ppms.services import ppms_activate
from tests.conftest import make_school, make_shelter, sign_in

pytestmark = pytest.mark.django_db
ACTIVATIONS = "/api/v1/ppms/activations/"


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    sign_in(api, user)
    return api


def url(activation, tail=""):
    return f"{ACTIVATIONS}{activation.pk}/{tail}"


@pytest.fixture
def activation(school, operator):
    return ppms_activate(
        scenario="confinement", title="Nuage toxique", source="operator", schools=[school]
    )


def group(**fields):
    return {"posture": "confinement", "location": "Gymnase", **fields}


# --- Part 1: several groups -------------------------------------------------------------


def test_a_report_in_two_groups_records_each_and_sums_the_counts(api, director, activation):
    body = {
        "state": "safe",
        "groups": [
            group(pupils_present=120, adults_present=6, pupils_absent=10),
            group(posture="shelter", location="Cour, préau", pupils_present=65, adults_present=3),
        ],
        "needs": "Eau",
    }
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["pupils_present"] == 185
    assert data["adults_present"] == 9
    assert data["pupils_absent"] == 10
    assert data["pupils_missing"] is None
    assert data["pupils_uncounted"] == 5  # a roll of 200 less 185 present, 10 absent
    assert data["posture"] == "confinement"
    assert data["location"] == "Gymnase ; Cour, préau"
    assert [g["location"] for g in data["groups"]] == ["Gymnase", "Cour, préau"]
    assert data["groups"][1]["posture"] == "shelter"
    assert data["groups"][1]["pupils_absent"] is None
    update = StatusUpdate.objects.get()
    assert update.by == director and len(update.data["groups"]) == 2


def test_a_group_without_a_posture_takes_the_activations(api, director, activation):
    body = {"state": "safe", "groups": [{"pupils_present": 100}, {"pupils_present": 50}]}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 201
    assert [g["posture"] for g in answer.json()["groups"]] == ["confinement", "confinement"]


def test_the_single_group_shape_still_works_and_clears_earlier_groups(api, director, activation):
    client = as_user(api, director)
    client.post(
        url(activation, "statuses/0370001A/"),
        {"state": "safe", "groups": [group(pupils_present=100), group(pupils_present=90)]},
        format="json",
    )

    answer = client.post(
        url(activation, "statuses/0370001A/"),
        {"state": "safe", "pupils_present": 195, "location": "Salle polyvalente"},
        format="json",
    )

    assert answer.status_code == 201
    assert answer.json()["groups"] == []
    assert answer.json()["pupils_present"] == 195
    assert answer.json()["location"] == "Salle polyvalente"


def test_an_absurd_count_in_a_group_is_refused_next_to_that_groups_field(api, director, activation):
    body = {"state": "safe", "groups": [group(pupils_present=100), group(pupils_present=900)]}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 400
    errors = answer.json()["groups"]
    assert errors[0] == {}
    assert errors[1]["pupils_present"] == ["900, pour un effectif de 200 : vérifiez le nombre."]
    assert SchoolStatus.objects.get().state == "pending"


def test_groups_each_possible_but_too_many_together_are_told_on_the_last_group(
    api, director, activation
):
    body = {"state": "safe", "groups": [group(pupils_present=200), group(pupils_present=100)]}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 400
    assert answer.json()["groups"][1]["pupils_present"] == [
        "Au total des groupes : 300, pour un effectif de 200 : vérifiez le nombre."
    ]


def test_a_negative_count_in_a_group_is_refused_next_to_it(api, director, activation):
    body = {"state": "safe", "groups": [group(adults_injured=-1)]}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 400
    assert "adults_injured" in str(answer.json()["groups"])


def test_counts_beside_groups_are_refused(api, director, activation):
    body = {"state": "safe", "pupils_present": 10, "groups": [group(pupils_present=100)]}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 400
    assert "pupils_present" in answer.json()


def test_more_than_twenty_groups_is_a_400(api, director, activation):
    body = {"state": "safe", "groups": [group(pupils_present=1)] * 21}
    answer = as_user(api, director).post(url(activation, "statuses/0370001A/"), body, format="json")

    assert answer.status_code == 400
    assert "groups" in answer.json()


# --- Part 2: the centre d'accueil -------------------------------------------------------


@pytest.fixture
def gymnasium(commune):
    return make_shelter(commune, capacity=100)


@pytest.fixture
def evacuation(school, gymnasium, operator):
    return ppms_activate(
        scenario="evacuation",
        title="Crue du Cher",
        source="operator",
        schools=[school],
        shelter=gymnasium,
        by=operator,
    )


def test_an_evacuation_to_a_centre_opens_it(evacuation, gymnasium):
    gymnasium.refresh_from_db()
    assert gymnasium.is_open


def test_staff_record_arrivals_by_home_commune_with_who_and_when(
    api, operator, evacuation, gymnasium, commune, other_commune
):
    body = {
        "arrivals": [
            {"commune": commune.pk, "count": 60},
            {"commune": other_commune.pk, "count": 25},
        ],
        "staff": 4,
        "supplies": "Eau pour 200, couvertures : 40",
    }
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["total"] == 85 and data["over_capacity"] is False and data["warning"] == ""
    assert data["arrivals"][1] == {
        "commune": {"id": other_commune.pk, "insee_code": "37018", "name": "Ballan-Miré"},
        "count": 25,
    }
    assert data["by"] == "operateur" and data["at"]
    assert data["staff"] == 4
    gymnasium.refresh_from_db()
    assert gymnasium.occupancy == 85
    detail = api.get(url(evacuation)).json()
    assert detail["shelter_report"]["total"] == 85


def test_over_capacity_is_recorded_with_a_warning_never_refused(
    api, operator, evacuation, gymnasium, commune
):
    body = {"arrivals": [{"commune": commune.pk, "count": 130}]}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 201
    assert answer.json()["over_capacity"] is True
    assert answer.json()["warning"] == "Capacité dépassée : 130 personnes pour 100 places."
    assert ShelterReport.objects.get().total == 130


def test_an_unknown_shelter_is_a_400_naming_it(api, operator, evacuation):
    body = {"shelter": 9999, "arrivals": []}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 400
    assert "9999" in answer.json()["shelter"][0]


def test_an_unknown_shelter_in_the_activation_is_a_400_naming_it(api, operator, school):
    body = {"scenario": "evacuation", "schools": [school.uai], "shelter": 4242}
    answer = as_user(api, operator).post(ACTIVATIONS, body, format="json")

    assert answer.status_code == 400
    assert "4242" in answer.json()["shelter"][0]


def test_another_centre_than_the_destination_is_a_400_naming_it(api, operator, evacuation, commune):
    hall = Shelter.objects.create(
        name="Salle des fêtes", commune=commune, latitude=47.3, longitude=0.6, capacity=50
    )
    body = {"shelter": hall.pk, "arrivals": []}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 400
    assert "Salle des fêtes" in answer.json()["shelter"][0]


def test_an_unknown_commune_is_a_400_naming_it(api, operator, evacuation):
    body = {"arrivals": [{"commune": 99999, "count": 3}]}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 400
    assert "99999" in str(answer.json()["arrivals"])


def test_a_commune_given_twice_is_a_400(api, operator, evacuation, commune):
    twice = [{"commune": commune.pk, "count": 3}, {"commune": commune.pk, "count": 4}]
    body = {"arrivals": twice}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 400


def test_a_director_may_not_record_a_centre(api, director, evacuation):
    body = {"arrivals": []}
    answer = as_user(api, director).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 403


def test_an_operator_of_another_commune_does_not_see_the_activation(
    api, other_operator, evacuation
):
    body = {"arrivals": []}
    answer = as_user(api, other_operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 404


def test_an_activation_without_a_centre_has_nothing_to_record(api, operator, activation):
    answer = as_user(api, operator).post(
        url(activation, "shelter/"), {"arrivals": []}, format="json"
    )

    assert answer.status_code == 400
    assert "shelter" in answer.json()


# --- Part 5: Vigicrues ------------------------------------------------------------------


def test_an_operator_gives_the_vigicrues_colour_of_a_flood(api, operator, school, flood_zone):
    school.zones.add(flood_zone)
    flood = ppms_activate(
        scenario="shelter", title="Crue", source="operator", zones=[flood_zone], by=operator
    )

    answer = as_user(api, operator).post(url(flood, "vigicrues/"), {"colour": "orange"})

    assert answer.status_code == 200, answer.json()
    assert answer.json()["vigicrues_colour"] == "orange"
    assert answer.json()["vigicrues_set_by"] == "operateur"
    assert answer.json()["vigicrues_set_at"]
    assert api.post(url(flood, "vigicrues/"), {"colour": ""}).json()["vigicrues_colour"] is None


def test_a_colour_outside_the_four_is_a_400(api, operator, school, flood_zone):
    school.zones.add(flood_zone)
    flood = ppms_activate(scenario="shelter", title="Crue", source="operator", schools=[school])

    answer = as_user(api, operator).post(url(flood, "vigicrues/"), {"colour": "violet"})

    assert answer.status_code == 400
    assert "vert, jaune, orange, rouge" in answer.json()["colour"][0]


def test_no_vigicrues_colour_for_an_activation_that_is_not_a_flood(api, operator, activation):
    answer = as_user(api, operator).post(url(activation, "vigicrues/"), {"colour": "rouge"})

    assert answer.status_code == 400
    assert "crues" in answer.json()["colour"][0]


def test_a_director_may_not_give_the_vigicrues_colour(api, director, school, flood_zone):
    school.zones.add(flood_zone)
    flood = ppms_activate(scenario="shelter", title="Crue", source="operator", schools=[school])

    assert (
        as_user(api, director).post(url(flood, "vigicrues/"), {"colour": "rouge"}).status_code
        == 403
    )


# --- Part 3: the crisis directory -------------------------------------------------------


@pytest.fixture
def directory(school):
    DirectoryEntry.objects.create(school=school, role="town_on_call", phone="06 12 34 56 78")
    DirectoryEntry.objects.create(school=school, role="school", phone="02 47 00 00 01")
    return school


def test_the_directory_lists_roles_and_numbers_in_the_circulars_order(api, operator, directory):
    answer = as_user(api, operator).get("/api/v1/schools/0370001A/directory/")

    assert answer.status_code == 200
    assert answer.json()["entries"] == [
        {"role": "school", "label": "École", "phone": "+33247000001", "note": ""},
        {
            "role": "town_on_call",
            "label": "Mairie d'astreinte",
            "phone": "+33612345678",
            "note": "",
        },
    ]


def test_the_school_director_sees_the_directory(api, director, directory):
    assert as_user(api, director).get("/api/v1/schools/0370001A/directory/").status_code == 200


def test_another_communes_operator_does_not_see_the_directory(api, other_operator, directory):
    answer = as_user(api, other_operator).get("/api/v1/schools/0370001A/directory/")

    assert answer.status_code == 404


def test_another_schools_director_does_not_see_the_directory(
    api, django_user_model, commune, directory
):
    from tests.conftest import make_user

    other = make_school(commune, uai="0370002B")
    user = make_user(django_user_model, "directrice-morier", role="directors")
    other.directors.add(user)

    assert as_user(api, user).get("/api/v1/schools/0370001A/directory/").status_code == 404


def test_the_demo_schools_have_their_crisis_directory(db):
    from django.core.management import call_command

    from ppms.models import DirectoryRole, School

    call_command("seed_demo", password="demo-password-1234")
    school = School.objects.order_by("uai").first()

    assert [entry.role for entry in directory_of(school)] == list(DirectoryRole.values)
    phones = [entry.phone for entry in directory_of(school)]
    assert all(phone.startswith("+33261919") or phone.startswith("+332619101") for phone in phones)


def test_after_the_end_of_alert_a_centre_is_no_longer_recorded(api, operator, evacuation, commune):
    from tests.ppms_helpers import end_of_alert

    end_of_alert(activation=evacuation, by=operator)
    body = {"arrivals": [{"commune": commune.pk, "count": 3}]}
    answer = as_user(api, operator).post(url(evacuation, "shelter/"), body, format="json")

    assert answer.status_code == 400
    assert "fin d'alerte" in answer.json()["detail"]
    assert not ShelterReport.objects.exists()


def test_after_the_end_of_alert_the_vigicrues_colour_stays_as_it_was(
    api, operator, school, flood_zone
):
    from tests.ppms_helpers import end_of_alert

    school.zones.add(flood_zone)
    flood = ppms_activate(scenario="shelter", title="Crue", source="operator", schools=[school])
    end_of_alert(activation=flood, by=operator)

    answer = as_user(api, operator).post(url(flood, "vigicrues/"), {"colour": "jaune"})

    assert answer.status_code == 400
    flood.refresh_from_db()
    assert flood.vigicrues_colour == ""
