"""The director's PPMS page on a phone (390 x 844, Debian's chromium driven by Playwright):
counts first, then the situation and one send under them; an inconsistent roll warned in
amber but sent; an absurd count refused next to its field, in view; a drill that looks
like a drill. Screenshots of the phone and the board go to the test's tmp_path."""

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from ppms.models import SchoolStatus
from ppms.services import ppms_activate, ppms_report
from tests.conftest import CHROMIUM, make_shelter, sign_in
from tests.test_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def enrolled(school):
    school.pupils, school.staff = 200, 12
    school.save()
    return school


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def page_of(browser, live_server, user, **context):
    session = sign_in(Client(), user).cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **context)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    return context.new_page()


def phone_of(browser, live_server, director):
    page = page_of(browser, live_server, director, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(f"{live_server.url}/ppms/ecole/")
    page.get_by_test_id("ppms-banner").wait_for(state="visible")
    return page


def activate(school, **fields):
    fields = {"scenario": "confinement", "title": "Nuage toxique", "drill": False, **fields}
    return ppms_activate(source="operator", schools=[school], **fields)


def luminance(rgb: str) -> float:
    channels = [int(part) / 255 for part in rgb[rgb.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(page, selector: str, background_of: str | None = None) -> float:
    """The WCAG contrast ratio of an element's text on its (or an ancestor's) background."""
    colour = page.eval_on_selector(selector, "node => getComputedStyle(node).color")
    background = page.eval_on_selector(
        background_of or selector, "node => getComputedStyle(node).backgroundColor"
    )
    lighter, darker = sorted((luminance(colour), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_a_director_fills_the_counts_then_sends_from_the_bottom_with_the_roll_warned(
    browser, live_server, enrolled, director, tmp_path
):
    activate(enrolled)
    phone = phone_of(browser, live_server, director)
    send = phone.get_by_test_id("btn-send")
    assert send.inner_text() == "Envoyer"
    last_count = phone.get_by_test_id("field-adults_injured").bounding_box()
    for testid in ("btn-safe", "btn-help", "btn-evacuated"):
        assert phone.get_by_test_id(testid).bounding_box()["y"] > last_count["y"]
    assert send.bounding_box()["y"] > phone.get_by_test_id("btn-evacuated").bounding_box()["y"]

    phone.get_by_test_id("field-pupils_present").fill("180")
    phone.get_by_test_id("field-pupils_absent").fill("10")
    warning = phone.get_by_test_id("pupils-uncounted")
    assert warning.inner_text() == "10 élèves non comptés"
    assert contrast(phone, '[data-testid="pupils-uncounted"]') >= 4.5
    phone.get_by_test_id("btn-safe").click()
    send.click()
    phone.get_by_test_id("status-result").filter(has_text="Envoyé au CSU").wait_for()
    phone.screenshot(path=tmp_path / "director-phone.png", full_page=True)

    status = SchoolStatus.objects.get()
    assert (status.state, status.pupils_present, status.pupils_absent) == ("safe", 180, 10)
    assert send.inner_text() == "Renvoyer avec ces effectifs"
    assert warning.is_visible()


def test_an_absurd_count_is_refused_next_to_its_field_in_view(
    browser, live_server, enrolled, director
):
    activate(enrolled)
    phone = phone_of(browser, live_server, director)

    phone.get_by_test_id("field-pupils_present").fill("999")
    phone.get_by_test_id("btn-safe").click()
    phone.get_by_test_id("btn-send").click()

    error = phone.get_by_test_id("error-pupils_present")
    error.wait_for(state="visible")
    assert "vérifiez le nombre" in error.inner_text()
    box, view = error.bounding_box(), phone.viewport_size
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"]  # scrolled into view
    assert SchoolStatus.objects.get().state == "pending"


def test_sending_without_a_situation_says_so_next_to_the_situation(
    browser, live_server, enrolled, director
):
    activate(enrolled)
    phone = phone_of(browser, live_server, director)

    phone.get_by_test_id("btn-send").click()

    error = phone.get_by_test_id("error-state")
    error.wait_for(state="visible")
    box = error.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= phone.viewport_size["height"]


def test_a_drill_looks_like_a_drill_never_like_a_real_alarm(
    browser, live_server, enrolled, director, tmp_path
):
    activate(enrolled, title="Exercice de confinement", drill=True)
    phone = phone_of(browser, live_server, director)
    banner = '[data-testid="ppms-banner"]'

    drill_colour = phone.eval_on_selector(banner, "n => getComputedStyle(n).backgroundColor")
    mark = phone.get_by_test_id("drill-mark")
    phone.screenshot(path=tmp_path / "director-drill.png", full_page=True)

    assert mark.is_visible() and mark.inner_text() == "EXERCICE"
    assert contrast(phone, '[data-testid="drill-mark"]') >= 4.5
    assert contrast(phone, f"{banner} h2", background_of=banner) >= 4.5
    SchoolStatus.objects.all().delete()
    activate(enrolled, title="Nuage toxique")
    phone.reload()
    phone.get_by_test_id("ppms-banner").wait_for(state="visible")
    real_colour = phone.eval_on_selector(banner, "n => getComputedStyle(n).backgroundColor")
    assert not phone.get_by_test_id("drill-mark").is_visible()
    assert drill_colour != real_colour
    assert contrast(phone, f"{banner} h2", background_of=banner) >= 4.5


def test_the_board_shows_the_pupils_not_counted_in_amber(
    browser, live_server, enrolled, operator, tmp_path
):
    activation = activate(enrolled, scenario="evacuation", title="Crue du Cher")
    ppms_report(
        status=activation.statuses.get(),
        report={"state": "evacuated", "pupils_present": 180, "pupils_absent": 10},
        by=operator,
    )
    board = page_of(browser, live_server, operator, viewport={"width": 1400, "height": 900})

    board.goto(f"{live_server.url}/ppms/")
    warning = board.locator('tr[data-school] [data-testid="pupils-uncounted"]')
    board.screenshot(path=tmp_path / "board.png", full_page=True)

    assert warning.inner_text() == "10 élèves non comptés"
    assert contrast(board, 'tr[data-school] [data-testid="pupils-uncounted"]') >= 4.5
    assert board.locator('[data-total="schools_evacuated"]').inner_text() == "1"


def test_an_evacuation_shows_where_to_go_and_the_numbers_to_call(
    browser, live_server, enrolled, director, commune, tmp_path
):
    gymnasium = make_shelter(commune, address="rue Jean Bigot", capacity=300)
    activate(enrolled, scenario="evacuation", title="Crue du Cher", shelter=gymnasium)
    phone = phone_of(browser, live_server, director)

    destination = phone.get_by_test_id("destination")
    phone.screenshot(path=tmp_path / "director-evacuation.png", full_page=True)

    assert destination.is_visible()
    assert "Gymnase Jean Bigot, rue Jean Bigot" in destination.inner_text()
    assert contrast(phone, '[data-testid="destination"]') >= 4.5
    numbers = phone.get_by_test_id("numbers").locator("a")
    assert numbers.evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        "tel:18",
        "tel:15",
        "tel:17",
        "tel:112",
        "sms:114",
    ]
    assert contrast(phone, '[data-testid="numbers"] a') >= 4.5
