"""The PPMS as the circular of 8 June 2023 words it and as a director uses it: the four
postures' wording everywhere, headcounts that add up, the drills register."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from django.utils import translation
from lxml import etree

from core.cap import CAP_NS, CAP_SCHEMA
from ppms.cap import activation_cap
from ppms.models import Scenario
from ppms.notify import ladder_texts, reminder_devices
from ppms.services import ppms_activate
from tests.conftest import sign_in

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
