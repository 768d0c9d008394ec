"""The PPMS as the circular of 8 June 2023 words it and as a director uses it: the four
postures' wording everywhere, headcounts that add up, the drills register."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import translation
from lxml import etree
from rest_framework.test import APIClient

from core.cap import CAP_NS, CAP_SCHEMA
from ppms.cap import activation_cap, for_cap
from ppms.ladder import climb
from ppms.models import (
    Activation,
    CommunePolicy,
    Drill,
    PpmsPlan,
    Scenario,
    SchoolStatus,
    StatusUpdate,
)
from ppms.notify import ladder_texts, reminder_devices
from ppms.services import ppms_activate, ppms_end, ppms_report
from ppms.tasks import purge_ppms_incidents
from ppms.views import sections_for
from tests.conftest import make_school, make_shelter, sign_in

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CAP = f"{{{CAP_NS}}}"
DIRECTOR_PAGE = "/ppms/ecole/"


@pytest.fixture(scope="module")
def xsd():
    return etree.XMLSchema(etree.parse(str(CAP_SCHEMA)))


def activate(schools, scenario="confinement", **fields):
    fields.setdefault("title", "Nuage toxique")
    return ppms_activate(scenario=scenario, source="operator", schools=schools, now=T0, **fields)


def cap_of(activation, xsd) -> ET.Element:
    document = activation_cap(activation)
    xsd.assertValid(etree.fromstring(document))
    return ET.fromstring(document)


# --- The four postures, one wording ------------------------------------------------------


def test_the_four_postures_are_worded_as_the_circular_words_them():
    with translation.override("fr"):
        labels = [str(label) for label in Scenario.labels]

    assert labels == [
        "Se mettre à l'abri",
        "Se confiner",
        "Évacuer",
        "S'échapper ou s'enfermer et se cacher",
    ]


@pytest.mark.parametrize("scenario", Scenario.values)
def test_the_cap_message_names_the_posture_in_the_same_words(db, school, xsd, scenario):
    activation = activate([school], scenario=scenario)

    root = cap_of(activation, xsd)

    label = Scenario(scenario).french
    assert root.findtext(f"{CAP}info/{CAP}event") == f"PPMS : {label}"
    assert root.findtext(f"{CAP}info/{CAP}instruction").startswith(label)
    assert f"({label})" in root.findtext(f"{CAP}info/{CAP}description")


def test_confinement_tells_to_seal_doors_and_vents(db, school, xsd):
    activation = activate([school], scenario="confinement")

    instruction = cap_of(activation, xsd).findtext(f"{CAP}info/{CAP}instruction")

    assert "calfeutrez portes, fenêtres et aérations" in instruction


def test_the_directors_page_gives_the_postures_standing_instructions(client, school, director):
    activate([school], scenario="confinement")

    page = sign_in(client, director).get(DIRECTOR_PAGE).content.decode()

    assert "Se confiner" in page
    assert "Fermez et calfeutrez portes, fenêtres et aérations" in page


def test_the_sms_and_the_push_name_the_posture_in_the_same_words(db, school):
    school.crisis_phones = "06 12 34 56 78"
    school.save()
    activation = activate([school], scenario="evacuation")

    [text] = ladder_texts(activation, [school])
    [push] = reminder_devices(activation, [school])

    assert "PPMS «\u202fÉvacuer\u202f» déclenché" in text["text"]
    assert push["payload"]["title"] == f"PPMS : Évacuer — {school.name}"


# --- Headcounts that add up ----------------------------------------------------------------


def report_url(activation, uai="0370001A"):
    return f"/api/v1/ppms/activations/{activation.pk}/statuses/{uai}/"


def send(client, activation, **body):
    return client.post(report_url(activation), {"state": "safe", **body}, format="json")


@pytest.fixture
def enrolled(school):
    school.pupils, school.staff = 200, 12
    school.save()
    return school


@pytest.fixture
def phone(director):
    return sign_in(APIClient(), director)


def test_adults_are_counted_absent_as_pupils_are(phone, enrolled):
    activation = activate([enrolled])

    response = send(phone, activation, adults_present=10, adults_absent=2)

    assert response.status_code == 201, response.content
    assert response.json()["adults_absent"] == 2
    assert SchoolStatus.objects.get().adults_absent == 2


def test_the_pupils_not_counted_are_the_enrolment_less_present_absent_and_missing(phone, enrolled):
    activation = activate([enrolled])

    body = send(
        phone,
        activation,
        pupils_present=180,
        pupils_absent=10,
        pupils_missing=2,
        adults_present=10,
        adults_absent=1,
        adults_missing=0,
    ).json()

    assert (body["pupils_uncounted"], body["adults_uncounted"]) == (8, 1)


def test_an_inconsistent_count_is_sent_all_the_same(phone, enrolled):
    activation = activate([enrolled])

    response = send(phone, activation, pupils_present=150)

    assert response.status_code == 201
    assert SchoolStatus.objects.get().pupils_present == 150


def test_no_count_given_is_not_an_inconsistency(phone, enrolled):
    activation = activate([enrolled])

    body = send(phone, activation).json()

    assert (body["pupils_uncounted"], body["adults_uncounted"]) == (None, None)


@pytest.mark.parametrize("field", ["pupils_missing", "adults_absent", "adults_injured"])
def test_a_negative_count_is_refused_naming_its_field(phone, enrolled, field):
    activation = activate([enrolled])

    response = send(phone, activation, **{field: -1})

    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    "field, count, refused",
    [
        ("pupils_present", 240, False),  # 200 enrolled + 20 %
        ("pupils_present", 241, True),
        ("pupils_absent", 241, True),
        ("adults_present", 14, False),  # 12 staff + 20 %, rounded down
        ("adults_present", 15, True),
    ],
)
def test_more_than_the_enrolment_and_a_fifth_is_refused_next_to_the_field(
    phone, enrolled, field, count, refused
):
    activation = activate([enrolled])

    response = send(phone, activation, **{field: count})

    assert (response.status_code == 400) is refused
    if refused:
        [message] = response.json()[field]
        assert "vérifiez le nombre" in message


def test_evacuated_schools_are_their_own_total_not_counted_safe(client, commune, operator):
    schools = [make_school(commune, uai, pupils=100) for uai in ("0370001A", "0370002B")]
    activation = activate(schools, scenario="evacuation")
    for school, state in zip(schools, ("safe", "evacuated"), strict=True):
        ppms_report(
            status=SchoolStatus.objects.get(school=school),
            report={"state": state, "pupils_present": 90},
            by=operator,
        )

    [section] = sections_for(operator, [activation])

    totals = section.totals
    assert (totals.schools_safe, totals.schools_evacuated) == (1, 1)
    assert (totals.pupils_safe, totals.pupils_evacuated) == (90, 90)
    page = sign_in(client, operator).get("/ppms/").content.decode()
    assert 'data-total="schools_evacuated">1<' in page


def test_the_board_shows_the_pupils_not_counted_in_amber(client, enrolled, operator):
    activation = activate([enrolled])
    ppms_report(
        status=SchoolStatus.objects.get(),
        report={"state": "safe", "pupils_present": 180, "pupils_absent": 10},
        by=operator,
    )

    page = sign_in(client, operator).get("/ppms/").content.decode()

    assert re.search(r'class="[^"]*uncounted[^"]*"[^>]*>10 élèves non comptés<', page)
    del activation


def test_the_report_keeps_evacuated_apart_from_safe(client, enrolled, operator):
    activation = activate([enrolled], scenario="evacuation")
    ppms_report(
        status=SchoolStatus.objects.get(),
        report={"state": "evacuated", "pupils_present": 190},
        by=operator,
    )

    page = sign_in(client, operator).get(f"/ppms/activations/{activation.pk}/rapport/")

    text = page.content.decode()
    assert "Élèves évacués" in text
    assert re.search(r"Élèves en sûreté</dt><dd>0 /", text)


# --- What the director needs on screen ------------------------------------------------------


ACTIVATIONS = "/api/v1/ppms/activations/"


@pytest.fixture
def gymnasium(commune):
    return make_shelter(commune, address="rue Jean Bigot, Joué-lès-Tours", capacity=300)


@pytest.fixture
def desk(operator):
    return sign_in(APIClient(), operator)


def director_page(client, director) -> str:
    return sign_in(client, director).get(DIRECTOR_PAGE).content.decode()


def test_an_evacuation_to_a_shelter_tells_the_director_where_to_go(
    client, desk, school, director, gymnasium
):
    response = desk.post(
        ACTIVATIONS,
        {"scenario": "evacuation", "schools": [school.uai], "shelter": gymnasium.pk},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["shelter"]["name"] == "Gymnase Jean Bigot"
    page = director_page(client, director)
    assert re.search(r"Où aller :\s*<strong[^>]*>Gymnase Jean Bigot, rue Jean Bigot", page)


def test_an_evacuation_without_a_shelter_sends_the_school_to_its_assembly_point(
    client, school, director
):
    PpmsPlan.objects.create(school=school, scenario="evacuation", assembly_point="Parking du stade")
    activate([school], scenario="evacuation")

    page = director_page(client, director)

    assert re.search(r"Où aller :\s*<strong[^>]*>Parking du stade<", page)


def test_an_unknown_shelter_is_refused_naming_it(desk, school):
    response = desk.post(
        ACTIVATIONS,
        {"scenario": "evacuation", "schools": [school.uai], "shelter": 987654},
        format="json",
    )

    assert response.status_code == 400
    [message] = response.json()["shelter"]
    assert "987654" in message


def test_a_shelter_is_the_destination_of_an_evacuation_only(desk, school, gymnasium):
    response = desk.post(
        ACTIVATIONS,
        {"scenario": "confinement", "schools": [school.uai], "shelter": gymnasium.pk},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["shelter"]


def numbers_on(page: str) -> list[str]:
    block = re.search(r'<ul class="numbers".*?</ul>', page, re.S).group(0)
    return re.findall(r'href="(?:tel|sms):(\d+)"', block)


def test_the_director_sees_the_emergency_numbers_with_114_by_text(client, school, director):
    activate([school], scenario="confinement")

    page = director_page(client, director)

    assert numbers_on(page) == ["18", "15", "17", "112", "114"]
    assert 'href="sms:114"' in page


def test_an_intrusion_puts_114_by_text_first(client, school, director):
    activate([school], scenario="intrusion")

    page = director_page(client, director)

    assert numbers_on(page) == ["114", "17", "112", "15", "18"]


def test_the_director_sees_the_csus_phone_number(client, school, director, settings):
    settings.CSU_PHONE = "02 47 00 00 00"
    activate([school], scenario="shelter")

    page = director_page(client, director)

    assert 'href="tel:0247000000"' in page


# --- The family message; what the public copy of the CAP never carries ----------------------


def test_an_activation_carries_the_default_message_for_families(db, school):
    activation = activate([school])

    assert activation.family_text.startswith("N'allez pas chercher vos enfants")
    assert "ne téléphonez pas à l'école".capitalize()[1:] in activation.family_text
    assert "radio locale" in activation.family_text


def test_a_commune_writes_its_own_message_for_families(db, school, commune):
    CommunePolicy.objects.create(commune=commune, family_message="Écoutez France Bleu Touraine.")

    activation = activate([school])

    assert activation.family_text == "Écoutez France Bleu Touraine."


def test_operators_see_the_family_message_on_the_board(client, school, operator):
    activate([school])

    page = sign_in(client, operator).get("/ppms/").content.decode()

    assert re.search(r'data-testid="family-message".*?N&#x27;allez pas chercher vos', page, re.S)


def test_the_public_cap_gives_the_families_message_in_its_instruction(db, school, xsd):
    activation = activate([school], scenario="confinement")

    root = cap_of(activation, xsd)

    assert root.findtext(f"{CAP}scope") == "Public"
    instruction = root.findtext(f"{CAP}info/{CAP}instruction")
    assert instruction.endswith(activation.family_text)


def escalated_with_casualties(school, commune, director):
    silent = make_school(commune, "0370002B", name="École du Morier")
    activation = activate([school, silent], scenario="evacuation")
    ppms_report(
        status=activation.statuses.get(school=school),
        report={"state": "needs_help", "pupils_missing": 2, "pupils_injured": 1},
        by=director,
        now=T0 + timedelta(minutes=3),
    )
    climb(T0 + timedelta(minutes=10))
    return for_cap(Activation.objects.filter(pk=activation.pk)).get()


def test_the_public_cap_counts_no_missing_nor_injured_and_names_no_silent_school(
    db, school, commune, director, xsd
):
    activation = escalated_with_casualties(school, commune, director)

    root = cap_of(activation, xsd)

    text = ET.tostring(root, encoding="unicode")
    assert root.findtext(f"{CAP}scope") == "Public"
    assert root.findtext(f"{CAP}msgType") == "Update"
    assert "manquant" not in text and "blessé" not in text
    assert "Morier" not in root.findtext(f"{CAP}info/{CAP}description")
    assert "Sans réponse après 10 min : 1 école(s)." in text


def test_the_services_copy_is_restricted_with_the_counts_and_the_silent_schools(
    db, school, commune, director, xsd
):
    activation = escalated_with_casualties(school, commune, director)

    document = activation_cap(activation, restricted=True)
    xsd.assertValid(etree.fromstring(document))
    root = ET.fromstring(document)

    assert root.findtext(f"{CAP}scope") == "Restricted"
    assert root.findtext(f"{CAP}restriction").startswith("Réservé aux services de secours")
    description = root.findtext(f"{CAP}info/{CAP}description")
    assert "élèves 2 manquant(s), 1 blessé(s)" in description
    assert "Sans réponse après 10 min : École du Morier (0370002B)." in description
    assert "N'allez pas chercher" not in root.findtext(f"{CAP}info/{CAP}instruction")


def test_the_atom_feed_carries_the_public_copy(client, school, commune, director, operator):
    escalated_with_casualties(school, commune, director)

    feed = sign_in(client, operator).get("/api/v1/cap/feed/").content.decode()

    assert "manquant" not in feed and "blessé" not in feed
    assert "École du Morier (0370002B)" not in feed
    assert "<cap:scope>Public</cap:scope>" in feed


def test_the_cap_endpoint_gives_the_services_copy_and_the_public_one_beside(
    client, school, operator
):
    activation = activate([school])
    sign_in(client, operator)
    url = f"/api/v1/ppms/activations/{activation.pk}/cap/"

    restricted = client.get(url).content.decode()
    public = client.get(url + "public/").content.decode()

    assert "<scope>Restricted</scope>" in restricted
    assert "<scope>Public</scope>" in public


# --- The drills register, per the circular ----------------------------------------------------

DRILLS = "/api/v1/ppms/drills/"


def drill(school, held_on, scenario="shelter", kind="ppms"):
    return Drill.objects.create(school=school, scenario=scenario, held_on=held_on, kind=kind)


def register_entry(desk, uai="0370001A") -> dict:
    response = desk.get(DRILLS)
    assert response.status_code == 200, response.content
    return next(entry for entry in response.json()["results"] if entry["school"] == uai)


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False)
def test_a_school_that_drilled_in_september_and_before_the_winter_holidays_is_not_overdue(
    desk, school
):
    # Zone B, 2025-2026: the winter holidays begin on Saturday 14 February 2026.
    drill(school, date(2025, 9, 25), scenario="intrusion")
    drill(school, date(2026, 2, 5), scenario="confinement")

    entry = register_entry(desk)

    assert entry["overdue"] is False
    assert [(r["deadline"], r["met"]) for r in entry["requirements"]] == [
        ("2025-10-31", True),
        ("2026-02-13", True),
        ("2026-07-03", True),
    ]


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 2, 16, 12, 0, tzinfo=UTC), tick=False)
def test_the_second_drill_is_due_before_the_winter_holidays_of_the_schools_zone(
    desk, school, commune
):
    drill(school, date(2025, 9, 25), scenario="intrusion")
    drill(school, date(2026, 2, 12))
    zone_c = make_school(commune, "0370002B", holiday_zone="C")  # holidays from 21 February
    drill(zone_c, date(2025, 10, 2), scenario="intrusion")

    assert register_entry(desk)["overdue"] is False
    late = register_entry(desk, "0370002B")
    assert late["overdue"] is False
    assert late["requirements"][1]["deadline"] == "2026-02-20"


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 2, 16, 12, 0, tzinfo=UTC), tick=False)
def test_a_fire_drill_does_not_count_as_a_ppms_drill(desk, school):
    drill(school, date(2025, 9, 25), scenario="intrusion")
    drill(school, date(2026, 1, 20), scenario="", kind="fire")

    entry = register_entry(desk)

    assert entry["overdue"] is True
    assert [r["met"] for r in entry["requirements"]] == [True, False, True]
    assert [d["kind"] for d in entry["drills"]] == ["ppms", "fire"]


@pytest.mark.usefixtures("school_calendar")
@time_machine.travel(datetime(2026, 7, 6, 12, 0, tzinfo=UTC), tick=False)
def test_the_intrusion_scenario_is_drilled_at_least_once_a_year(desk, school):
    drill(school, date(2025, 9, 25))
    drill(school, date(2026, 2, 5), scenario="confinement")

    entry = register_entry(desk)

    assert entry["overdue"] is True
    assert entry["requirements"][2] == {
        "label": "Le scénario intrusion exercé au moins une fois dans l'année",
        "deadline": "2026-07-03",
        "met": False,
        "overdue": True,
    }


def test_a_ppms_drill_names_its_posture(desk, school):
    with time_machine.travel(datetime(2026, 11, 5, 12, 0, tzinfo=UTC), tick=False):
        response = desk.post(
            DRILLS, {"school": school.uai, "kind": "ppms", "held_on": "2026-10-15"}, format="json"
        )

    assert response.status_code == 400
    assert list(response.json()) == ["scenario"]


def test_the_board_says_where_an_evacuation_goes(client, desk, school, operator, gymnasium):
    desk.post(
        ACTIVATIONS,
        {"scenario": "evacuation", "schools": [school.uai], "shelter": gymnasium.pk},
        format="json",
    )

    page = sign_in(client, operator).get("/ppms/").content.decode()

    assert re.search(r"Évacuation vers :\s*<strong>Gymnase Jean Bigot</strong>", page)


# --- The links the town already has ------------------------------------------------------------


def test_the_board_links_the_communes_pcs_dicrim_and_vigicrues_page(
    client, commune, other_commune, operator
):
    CommunePolicy.objects.create(
        commune=commune,
        pcs_url="https://www.ville-joue-les-tours.fr/pcs.pdf",
        dicrim_url="https://www.ville-joue-les-tours.fr/dicrim.pdf",
        vigicrues_url="https://www.vigicrues.gouv.fr/niv3-station.php?CdStationHydro=K4900010",
    )
    CommunePolicy.objects.create(commune=other_commune, pcs_url="https://ballan.example/pcs")

    page = sign_in(client, operator).get("/ppms/").content.decode()

    links = re.search(r'data-testid="commune-links".*?</section>', page, re.S).group(0)
    assert re.findall(r">(PCS|DICRIM|Vigicrues)</a>", links) == ["PCS", "DICRIM", "Vigicrues"]
    assert "ballan.example" not in page  # another commune's


# --- Retention ---------------------------------------------------------------------------------


def ended_incident(school, director, operator, *, at):
    with time_machine.travel(at, tick=False):
        activation = activate([school], scenario="confinement")
        ppms_report(
            status=activation.statuses.get(),
            report={
                "state": "safe",
                "pupils_present": 180,
                "location": "Gymnase",
                "needs": "Eau",
            },
            by=director,
        )
        ppms_end(activation=activation, by=operator, ordered_by="Préfecture", confirmed_schools=[])
    return activation


def test_the_purge_blanks_free_text_after_a_year_and_deletes_incidents_after_five(
    db, school, director, operator, settings
):
    settings.PPMS_RETENTION_DAYS, settings.PPMS_TEXT_RETENTION_DAYS = 5 * 365, 365
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    old = ended_incident(school, director, operator, at=now - timedelta(days=5 * 365 + 2))
    last_year = ended_incident(school, director, operator, at=now - timedelta(days=400))
    recent = ended_incident(school, director, operator, at=now - timedelta(days=30))

    with time_machine.travel(now, tick=False):
        result = purge_ppms_incidents()

    assert result["activations"] == 1
    assert not Activation.objects.filter(pk=old.pk).exists()
    blanked = SchoolStatus.objects.get(activation=last_year)
    assert (blanked.location, blanked.needs, blanked.pupils_present) == ("", "", 180)
    [update] = StatusUpdate.objects.filter(status=blanked)
    assert (update.data["needs"], update.data["pupils_present"]) == ("", 180)
    kept = SchoolStatus.objects.get(activation=recent)
    assert (kept.location, kept.needs) == ("Gymnase", "Eau")


def test_the_purge_runs_nightly_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ppms-retention"]

    assert entry["task"] == "ppms.tasks.purge_ppms_incidents"
