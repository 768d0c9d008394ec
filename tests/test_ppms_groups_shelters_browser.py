"""The PPMS of the 2023 circular in Chromium (Debian's, driven by Playwright): the
dashboard's banner tells evacuated schools apart; a director on a phone (390 x 844)
reports a second group; shelter staff record arrivals by home commune on the board.
Screenshots go to the test's tmp_path."""

import pytest

from ppms.services import ppms_report
from tests.conftest import make_shelter
from tests.test_ppms_director_browser import activate, browser, enrolled, page_of  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_banner_counts_evacuated_schools_apart_from_the_safe_ones(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    operator,
    tmp_path,
):
    activation = activate(enrolled, scenario="evacuation", title="Crue du Cher")
    ppms_report(status=activation.statuses.get(), report={"state": "evacuated"}, by=operator)
    dashboard = page_of(browser, live_server, operator, viewport={"width": 1600, "height": 1000})

    dashboard.goto(f"{live_server.url}/dashboard/")
    strip = dashboard.get_by_test_id("ppms-strip-activation")
    strip.wait_for(state="visible")
    dashboard.screenshot(path=tmp_path / "dashboard.png")

    assert "0 en sûreté · 1 évacuées · 0 en attente" in strip.inner_text()

    # The wall (1920 x 1080) keeps it on one screen, never a scroll.
    wall = page_of(browser, live_server, operator, viewport={"width": 1920, "height": 1080})
    wall.goto(f"{live_server.url}/dashboard/wall/")
    wall.get_by_test_id("ppms-strip-activation").wait_for(state="visible")
    wall.screenshot(path=tmp_path / "wall.png")
    heights = wall.evaluate("[document.documentElement.scrollHeight, window.innerHeight]")
    assert heights[0] <= heights[1], f"the wall scrolls: {heights}"


def test_a_director_adds_a_second_group_and_sends_both(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    director,
    tmp_path,
):
    from ppms.models import SchoolStatus
    from tests.test_ppms_director_browser import phone_of

    activate(enrolled)
    phone = phone_of(browser, live_server, director)

    phone.get_by_test_id("field-pupils_present").fill("120")
    phone.get_by_test_id("field-adults_present").fill("6")
    phone.get_by_test_id("field-location").fill("Gymnase")
    phone.get_by_test_id("btn-add-group").click()
    phone.get_by_test_id("group-2-pupils_present").fill("70")
    phone.get_by_test_id("group-2-adults_present").fill("4")
    phone.get_by_test_id("group-2-posture").select_option("shelter")
    phone.get_by_test_id("group-2-location").fill("Préau, cour du bas")
    phone.get_by_test_id("field-pupils_absent").fill("5")
    warning = phone.get_by_test_id("pupils-uncounted")
    assert warning.inner_text() == "5 élèves non comptés"  # 200 less 120 + 70 + 5
    assert phone.get_by_test_id("group-1-title").is_visible()
    phone.get_by_test_id("btn-safe").click()
    phone.get_by_test_id("btn-send").click()
    phone.get_by_test_id("status-result").filter(has_text="Envoyé au CSU").wait_for()
    phone.get_by_test_id("group-2").scroll_into_view_if_needed()
    phone.screenshot(path=tmp_path / "director-groups.png", full_page=True)

    status = SchoolStatus.objects.get()
    assert (status.pupils_present, status.adults_present, status.pupils_absent) == (190, 10, 5)
    assert [g["location"] for g in status.groups] == ["Gymnase", "Préau, cour du bas"]
    assert [g["posture"] for g in status.groups] == ["confinement", "shelter"]
    # Scrollable width: nothing wider than the phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_absurd_count_in_the_second_group_is_told_next_to_it(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    director,
):
    from tests.test_ppms_director_browser import phone_of

    activate(enrolled)
    phone = phone_of(browser, live_server, director)
    phone.get_by_test_id("field-pupils_present").fill("100")
    phone.get_by_test_id("btn-add-group").click()
    phone.get_by_test_id("group-2-pupils_present").fill("900")
    phone.get_by_test_id("btn-safe").click()
    phone.get_by_test_id("btn-send").click()

    error = phone.get_by_test_id("error-group-2-pupils_present")
    error.wait_for(state="visible")
    assert "vérifiez le nombre" in error.inner_text()


def test_an_evacuation_to_a_centre_shows_it_and_staff_record_arrivals_over_capacity(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    operator,
    director,
    commune,
    other_commune,
    tmp_path,
):
    from ppms.models import ShelterReport
    from tests.test_ppms_director_browser import phone_of

    gymnasium = make_shelter(commune, address="rue Jean Bigot", capacity=100)
    activation = activate(enrolled, scenario="evacuation", title="Crue du Cher", shelter=gymnasium)
    ppms_report(
        status=activation.statuses.get(),
        report={"state": "evacuated", "pupils_present": 180, "adults_present": 12},
        by=director,
    )
    phone = phone_of(browser, live_server, director)
    assert "Gymnase Jean Bigot, rue Jean Bigot" in phone.get_by_test_id("destination").inner_text()
    board = page_of(browser, live_server, operator, viewport={"width": 1600, "height": 1000})
    board.goto(f"{live_server.url}/ppms/")

    panel = board.get_by_test_id("shelter-panel")
    assert "Gymnase Jean Bigot" in panel.inner_text()
    assert "Attendus d'après les écoles\u202f: 192 personnes" in panel.inner_text()
    board.get_by_test_id("arrival-37122").fill("95")
    board.get_by_test_id("arrival-other-commune").select_option(str(other_commune.pk))
    board.get_by_test_id("arrival-other-count").fill("30")
    board.get_by_test_id("field-shelter-staff").fill("5")
    board.get_by_test_id("field-shelter-supplies").fill("Eau, 60 couvertures")
    board.get_by_test_id("btn-shelter-record").click()

    warning = board.get_by_test_id("shelter-over-capacity")
    warning.wait_for(state="visible")
    board.screenshot(path=tmp_path / "board-shelter.png", full_page=True)
    assert warning.inner_text() == "Capacité dépassée : 125 personnes pour 100 places."
    rows = board.get_by_test_id("shelter-arrivals").locator("tr")
    assert rows.count() == 2
    assert "Ballan-Miré" in rows.nth(1).inner_text()
    report = ShelterReport.objects.get()
    assert (report.total, report.by, report.staff) == (125, operator, 5)
    gymnasium.refresh_from_db()
    assert gymnasium.is_open and gymnasium.occupancy == 125


def test_a_flood_evacuation_in_groups_on_the_phone_the_board_and_the_report(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    operator,
    director,
    commune,
    other_commune,
    flood_zone,
    tmp_path,
):
    """The whole picture, photographed: the director's phone (390 x 844), the board and
    the report (1600 x 1000) of a flood's evacuation to a centre, in two groups."""
    from ppms.models import DirectoryEntry
    from ppms.services import ppms_shelter_report, ppms_vigicrues
    from tests.ppms_helpers import end_of_alert
    from tests.test_ppms_director_browser import phone_of

    enrolled.zones.add(flood_zone)
    for role, phone in (("school", "02 61 91 01 00"), ("ien", "02 61 91 91 10")):
        DirectoryEntry.objects.create(school=enrolled, role=role, phone=phone)
    gymnasium = make_shelter(commune, address="rue Jean Bigot", capacity=150)
    activation = activate(enrolled, scenario="evacuation", title="Crue du Cher", shelter=gymnasium)
    ppms_vigicrues(activation=activation, colour="orange", by=operator)
    ppms_report(
        status=activation.statuses.get(),
        report={
            "state": "evacuated",
            "groups": [
                {"posture": "evacuation", "location": "Bus 1", "pupils_present": 110},
                {"posture": "evacuation", "location": "Bus 2", "pupils_present": 85},
            ],
        },
        by=director,
    )
    phone = phone_of(browser, live_server, director)
    assert phone.get_by_test_id("vigicrues").get_attribute("data-colour") == "orange"
    assert phone.get_by_test_id("group-2").is_visible()  # found again on the next visit
    assert phone.get_by_test_id("field-pupils_present").input_value() == "110"
    assert phone.get_by_test_id("group-2-pupils_present").input_value() == "85"
    phone.get_by_test_id("directory").locator("summary").click()
    phone.screenshot(path=tmp_path / "director-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    ppms_shelter_report(
        activation=activation,
        shelter=gymnasium,
        arrivals=[(commune, 140), (other_commune, 30)],
        staff=6,
        supplies="Eau, 80 couvertures, lits de camp : 40",
        by=operator,
    )
    board = page_of(browser, live_server, operator, viewport={"width": 1600, "height": 1000})
    board.goto(f"{live_server.url}/ppms/")
    assert board.get_by_test_id("board-groups").locator("li").count() == 2
    assert board.get_by_test_id("shelter-over-capacity").is_visible()
    board.screenshot(path=tmp_path / "board.png", full_page=True)

    end_of_alert(activation=activation, by=operator)
    board.goto(f"{live_server.url}/ppms/activations/{activation.pk}/rapport/")
    assert board.get_by_test_id("report-arrivals-total").inner_text() == "170"
    board.screenshot(path=tmp_path / "report.png", full_page=True)


def test_an_operator_gives_the_vigicrues_colour_on_the_board(
    browser,  # noqa: F811
    live_server,
    enrolled,  # noqa: F811
    operator,
    flood_zone,
    tmp_path,
):
    from ppms.models import Activation

    enrolled.zones.add(flood_zone)
    activation = activate(enrolled, scenario="shelter", title="Crue du Cher")
    board = page_of(browser, live_server, operator, viewport={"width": 1600, "height": 1000})
    board.goto(f"{live_server.url}/ppms/")

    board.get_by_test_id("field-vigicrues").select_option("rouge")
    board.get_by_test_id("btn-vigicrues").click()

    box = board.get_by_test_id("board-vigicrues")
    box.locator("strong", has_text="Rouge : risque de crue majeure").wait_for()
    board.screenshot(path=tmp_path / "board-vigicrues.png")
    assert "par operateur" in box.inner_text()
    activation = Activation.objects.get(pk=activation.pk)
    assert (activation.vigicrues_colour, activation.vigicrues_set_by) == ("rouge", operator)
