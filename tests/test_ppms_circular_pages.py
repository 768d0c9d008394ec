"""The PPMS pages for the circular's details: the after-action report (every reminder,
who ordered the end, each school's times to a first sign of life, to safety and to
evacuation, the centre's arrivals by commune, the groups), the crisis directory and
the Vigicrues colour on the board and the director's page, each within its perimeter."""

import re
from datetime import timedelta

import pytest

from ppms.ladder import climb
from ppms.models import DirectoryEntry, SchoolStatus
from ppms.services import (
    ppms_activate,
    ppms_report,
    ppms_seen,
    ppms_shelter_report,
    ppms_vigicrues,
)
from tests.conftest import make_school, make_shelter, sign_in
from tests.ppms_helpers import end_of_alert
from tests.test_ppms_pages import T0

pytestmark = pytest.mark.django_db


def report(activation, school, *, minutes, state="safe", by=None, **fields):
    status = SchoolStatus.objects.get(activation=activation, school=school)
    return ppms_report(
        status=status,
        report={"state": state, **fields},
        by=by,
        now=activation.started_at + timedelta(minutes=minutes),
    )


@pytest.fixture
def gymnasium(commune):
    return make_shelter(commune, capacity=100)


@pytest.fixture
def evacuated(operator, director, school, commune, other_commune, gymnasium):
    """Two schools sent to the gymnasium: one seen at 1 min, safe at 3, evacuated at 6 in
    two groups; one silent past every step of the ladder, evacuated at 14; ended at 30."""
    second = make_school(commune, "0370002B", name="École du Morier", pupils=120)
    activation = ppms_activate(
        scenario="evacuation",
        title="Crue du Cher",
        source="operator",
        schools=[school, second],
        shelter=gymnasium,
        by=operator,
        now=T0,
    )
    ppms_seen(status=activation.statuses.get(school=school), now=T0 + timedelta(minutes=1))
    report(activation, school, minutes=3, by=director, pupils_present=190)
    report(
        activation,
        school,
        minutes=6,
        state="evacuated",
        by=director,
        groups=[
            {"posture": "evacuation", "location": "Bus 1", "pupils_present": 100},
            {"posture": "evacuation", "location": "Bus 2", "pupils_present": 90},
        ],
    )
    climb(now=T0 + timedelta(minutes=11))  # the second: SMS, call, services
    report(activation, second, minutes=14, state="evacuated", pupils_present=118)
    ppms_shelter_report(
        activation=activation,
        shelter=gymnasium,
        arrivals=[(commune, 80), (other_commune, 35)],
        staff=4,
        supplies="Eau, couvertures",
        by=operator,
        now=T0 + timedelta(minutes=20),
    )
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=30))
    return activation


def text_of(html: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', html, re.S).group(1)


def test_the_report_counts_every_reminder_step(client, operator, evacuated):
    sign_in(client, operator)
    html = client.get(f"/ppms/activations/{evacuated.pk}/rapport/").content.decode()

    assert text_of(html, "report-reminders").strip() == "3 relances (1 école relancée)"
    row = re.search(r'data-school="0370002B".*?</tr>', html, re.S).group(0)
    assert re.search(r'data-field="reminders">3 fois<', row)


def test_the_report_says_who_ordered_the_end_and_when(client, operator, evacuated):
    sign_in(client, operator)
    html = client.get(f"/ppms/activations/{evacuated.pk}/rapport/").content.decode()

    ordered = text_of(html, "report-ordered-by")
    assert "Préfecture d'Indre-et-Loire (COD)" in ordered.replace("&#x27;", "'")
    assert "23/11/2026 10:30:00" in ordered and "operateur" in ordered


def test_the_report_gives_each_school_its_times_to_a_sign_of_life_to_safety_and_to_evacuation(
    client, operator, evacuated
):
    sign_in(client, operator)
    html = client.get(f"/ppms/activations/{evacuated.pk}/rapport/").content.decode()

    first = re.search(r'data-school="0370001A".*?</tr>', html, re.S).group(0)
    assert re.search(r'data-field="sign-delay">1 min 00 s', first)
    assert re.search(r'data-field="safe-delay">3 min 00 s', first)
    assert re.search(r'data-field="evacuated-delay">6 min 00 s', first)
    second = re.search(r'data-school="0370002B".*?</tr>', html, re.S).group(0)
    assert re.search(r'data-field="safe-delay">—', second)
    assert re.search(r'data-field="evacuated-delay">14 min 00 s', second)
    assert "Bus 1" in first and "Bus 2" in first


def test_the_report_gives_the_centres_arrivals_by_commune(client, operator, evacuated):
    sign_in(client, operator)
    html = client.get(f"/ppms/activations/{evacuated.pk}/rapport/").content.decode()

    arrivals = re.search(r'data-testid="report-arrivals".*?</table>', html, re.S).group(0)
    assert re.search(
        r'data-commune="37122"><th scope="row">Joué-lès-Tours</th><td[^>]*>80<', arrivals
    )
    assert re.search(r'data-commune="37018"><th scope="row">Ballan-Miré</th><td[^>]*>35<', arrivals)
    assert text_of(html, "report-arrivals-total") == "115"
    assert "Capacité dépassée : 115 personnes pour 100 places." in html
    assert "operateur" in text_of(html, "report-shelter-records")


# --- The crisis directory and the Vigicrues colour on the pages ---------------------------


@pytest.fixture
def directory(school):
    DirectoryEntry.objects.create(school=school, role="ien", phone="02 47 60 00 00")
    DirectoryEntry.objects.create(school=school, role="town_on_call", phone="06 12 34 56 78")
    return school


def test_the_director_page_shows_the_schools_crisis_directory(client, director, directory):
    sign_in(client, director)
    html = client.get("/ppms/ecole/").content.decode()

    box = re.search(r'data-testid="directory".*?</details>', html, re.S).group(0)
    assert "IEN de circonscription" in box and 'href="tel:+33247600000"' in box
    assert box.index("IEN") < box.index("Mairie d")


def test_the_board_shows_each_schools_directory_to_its_communes_operators(
    client, operator, directory
):
    ppms_activate(scenario="shelter", title="Tempête", source="operator", schools=[directory])
    sign_in(client, operator)
    html = client.get("/ppms/").content.decode()

    assert 'data-testid="board-directory"' in html and "tel:+33612345678" in html


def test_another_communes_operator_sees_neither_the_school_nor_its_directory(
    client, other_operator, directory
):
    ppms_activate(scenario="shelter", title="Tempête", source="operator", schools=[directory])
    sign_in(client, other_operator)
    html = client.get("/ppms/").content.decode()

    assert "+33612345678" not in html and 'data-testid="board-directory"' not in html


def test_the_vigicrues_colour_shows_on_the_board_and_the_directors_page(
    client, operator, director, school, flood_zone
):
    school.zones.add(flood_zone)
    flood = ppms_activate(scenario="shelter", title="Crue", source="operator", schools=[school])
    ppms_vigicrues(activation=flood, colour="orange", by=operator)

    sign_in(client, operator)
    board = client.get("/ppms/").content.decode()
    assert 'data-testid="board-vigicrues"' in board
    assert "Orange : risque de crue importante" in board and "par operateur" in board
    sign_in(client, director)
    page = client.get("/ppms/ecole/").content.decode()
    assert re.search(r'data-testid="vigicrues" data-colour="orange"', page)
    assert "Orange : risque de crue importante" in page


def test_the_board_offers_no_vigicrues_colour_outside_a_flood(client, operator, school):
    ppms_activate(scenario="shelter", title="Tempête", source="operator", schools=[school])
    sign_in(client, operator)

    assert 'data-testid="board-vigicrues"' not in client.get("/ppms/").content.decode()


def test_the_centres_communes_operators_get_its_form_on_the_board(
    client, operator, school, gymnasium
):
    ppms_activate(
        scenario="evacuation", title="Crue", source="operator", schools=[school], shelter=gymnasium
    )
    sign_in(client, operator)
    assert 'data-testid="shelter-form"' in client.get("/ppms/").content.decode()


# --- Retention: the new free text goes with the rest ------------------------------------


def test_the_purge_blanks_the_groups_places_and_the_centres_supplies(
    school, director, operator, gymnasium, commune, settings
):
    from datetime import UTC, datetime

    import time_machine

    from ppms.models import ShelterReport, StatusUpdate
    from ppms.services import ppms_purge

    settings.PPMS_RETENTION_DAYS, settings.PPMS_TEXT_RETENTION_DAYS = 5 * 365, 365
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(now - timedelta(days=400), tick=False):
        activation = ppms_activate(
            scenario="evacuation",
            title="Crue",
            source="operator",
            schools=[school],
            shelter=gymnasium,
        )
        groups = [
            {"location": "Bus 1", "pupils_present": 100},
            {"location": "Bus 2", "pupils_present": 90},
        ]
        report(activation, school, minutes=2, state="evacuated", by=director, groups=groups)
        ppms_shelter_report(
            activation=activation,
            shelter=gymnasium,
            arrivals=[(commune, 190)],
            staff=3,
            supplies="Eau",
            by=operator,
        )
        end_of_alert(activation=activation, by=operator)

    with time_machine.travel(now, tick=False):
        ppms_purge()

    status = SchoolStatus.objects.get(activation=activation)
    assert [g["location"] for g in status.groups] == ["", ""]
    assert [g["pupils_present"] for g in status.groups] == [100, 90]
    update = StatusUpdate.objects.get(status=status)
    assert [g["location"] for g in update.data["groups"]] == ["", ""]
    record = ShelterReport.objects.get()
    assert (record.supplies, record.total) == ("", 190)


def test_the_report_csv_has_the_centres_arrivals_by_commune(client, operator, evacuated):
    sign_in(client, operator)
    answer = client.get(f"/ppms/activations/{evacuated.pk}/rapport.csv")
    text = b"".join(answer.streaming_content).decode("utf-8-sig")

    lines = [line for line in text.splitlines() if "Centre d'accueil Gymnase Jean Bigot" in line]
    assert len(lines) == 2
    assert "arrivées de Joué-lès-Tours" in lines[0] and "80 personnes" in lines[0]
    assert "arrivées de Ballan-Miré" in lines[1] and "35 personnes" in lines[1]
