"""Keyboard only, in a real browser (Debian's chromium, Playwright): the console's alert
actions on the dashboard (acknowledge, comment, resolve), the director's PPMS form on a
phone, the wall's sound button — with Tab, Enter and Space, the focus always visible; the
sound button's state said (aria-pressed) and its text readable (4.5:1) both ways. And the
scripts' words of the director's page and the PPMS board in English once English is
chosen (the JavaScript catalogue, locale/en/LC_MESSAGES/djangojs.po)."""

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client

from alerts import incidents
from alerts.models import AlertState
from ppms.models import SchoolStatus
from ppms.services import ppms_activate
from tests.conftest import CHROMIUM, make_sensor, sign_in
from tests.test_browser import CHROMIUM_ARGS
from tests.test_cap import make_alert
from tests.test_screens_browser import TEXTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The focused element, and whether one sees it: an outline or a ring (box-shadow).
FOCUS = """() => {
  const node = document.activeElement;
  const style = getComputedStyle(node);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {
    tag: node.tagName.toLowerCase(),
    text: (node.textContent || node.name || "").trim().slice(0, 40),
    visible: outline || style.boxShadow !== "none",
  };
}"""


@pytest.fixture
def open_page(monkeypatch, live_server):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as tests/test_browser.py
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def open_page(user, path, *, width=1600, height=1000, language="fr", **context):
            session = sign_in(Client(), user).cookies[settings.SESSION_COOKIE_NAME].value
            context = browser.new_context(
                viewport={"width": width, "height": height},
                locale=f"{language}-FR",
                timezone_id="Europe/Paris",
                **context,
            )
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session,
                        "url": live_server.url,
                    },
                    {
                        "name": settings.LANGUAGE_COOKIE_NAME,
                        "value": language,
                        "url": live_server.url,
                    },
                ]
            )
            page = context.new_page()
            page.goto(f"{live_server.url}{path}")
            return page

        yield open_page
        browser.close()
        connections.close_all()  # see tests/test_browser.py: else the test database stays


def tab_to(page, selector: str, *, limit: int = 120, back: bool = False) -> dict:
    """Press Tab (Shift+Tab) until ``selector`` has the focus; what the focus looks like."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            focus = page.evaluate(FOCUS)
            assert focus["visible"], f"no visible focus on {focus}"
            return focus
    raise AssertionError(f"Tab never reached {selector}")


def test_an_operator_acknowledges_comments_and_resolves_an_alert_with_the_keyboard(
    open_page, operator, commune
):
    alert = make_alert(make_sensor(commune, "jlt-air-01", "air", name="Station Mairie"))
    with transaction.atomic():  # raised as the evaluation does: the console's card
        incident = incidents.join(alert)
        incidents.refresh(incident.pk)
    page = open_page(operator, "/dashboard/")
    item = f'[data-incident-id="{incident.pk}"]'
    page.wait_for_selector(item)

    # Acknowledge: Tab to the button, Enter; the form's field has the focus; Tab to send.
    tab_to(page, f'{item} [data-action="acknowledge"]')
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.name") == "comment"
    page.keyboard.type("Vu, équipe prévenue")
    tab_to(page, f'{item} [data-form="acknowledge"] button[type="submit"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{item}[data-state="acknowledged"]')

    # Comment, sent with Space.
    tab_to(page, f'{item} [data-action="comment"]')
    page.keyboard.press(" ")
    assert page.evaluate("document.activeElement.name") == "text"
    page.keyboard.type("Capteur vérifié sur place")
    tab_to(page, f'{item} [data-form="comment"] button[type="submit"]')
    page.keyboard.press(" ")
    # The comment is on the server when the form closes.
    page.wait_for_selector(f'{item} [data-form="comment"]', state="hidden")

    # A form opened by mistake: "Annuler" with Enter gives the focus back to its button.
    tab_to(page, f'{item} [data-action="resolve"]')
    page.keyboard.press("Enter")
    tab_to(page, f'{item} [data-form="resolve"] [data-cancel]')
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.dataset.action") == "resolve"

    # Resolve.
    page.keyboard.press("Enter")
    page.keyboard.type("Pic de pollution terminé")
    tab_to(page, f'{item} [data-form="resolve"] button[type="submit"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{item} [data-form="resolve"]', state="hidden")

    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    kinds = list(alert.events.values_list("kind", "text"))
    assert ("acknowledged", "Vu, équipe prévenue") in kinds
    assert ("commented", "Capteur vérifié sur place") in kinds
    assert ("resolved", "Pic de pollution terminé") in kinds


def test_a_director_sends_the_schools_situation_with_the_keyboard_on_a_phone(
    open_page, director, school
):
    school.pupils, school.staff = 200, 12
    school.save()
    activation = ppms_activate(
        scenario="confinement", title="Nuage toxique", source="operator", schools=[school]
    )
    page = open_page(director, "/ppms/ecole/", width=390, height=844, has_touch=True)
    page.get_by_test_id("ppms-banner").wait_for(state="visible")

    tab_to(page, '[data-testid="field-pupils_present"]')
    page.keyboard.type("190")
    tab_to(page, '[data-testid="field-pupils_absent"]')
    page.keyboard.type("10")
    focus = tab_to(page, '[data-testid="btn-safe"]')
    assert focus["text"] == "Nous sommes en sûreté"
    page.keyboard.press(" ")
    assert page.get_by_test_id("btn-safe").get_attribute("aria-pressed") == "true"
    tab_to(page, '[data-testid="btn-send"]')
    page.keyboard.press("Enter")
    page.get_by_test_id("current-state").and_(page.locator('[data-state="safe"]')).wait_for()

    status = SchoolStatus.objects.get(activation=activation, school=school)
    assert (status.state, status.pupils_present, status.pupils_absent) == ("safe", 190, 10)


def button_contrast(page, text_start: str) -> float:
    texts = [t for t in page.evaluate(TEXTS) if t["text"].startswith(text_start)]
    assert texts, text_start
    return min(t["contrast"] for t in texts)


def test_the_walls_sound_button_toggles_its_state_readable_both_ways(open_page, operator):
    page = open_page(operator, "/dashboard/wall/", width=1920, height=1080)
    mute = page.get_by_test_id("mute")
    mute.wait_for()
    assert mute.get_attribute("aria-pressed") == "false"
    assert button_contrast(page, "Couper le son") >= 4.5

    mute.click()
    assert mute.get_attribute("aria-pressed") == "true"
    assert mute.inner_text().startswith("Son coupé jusqu'à")
    assert button_contrast(page, "Son coupé jusqu'à") >= 4.5

    # And back, with the keyboard.
    tab_to(page, '[data-testid="mute"]', back=True)
    page.keyboard.press("Enter")
    assert mute.get_attribute("aria-pressed") == "false"
    assert button_contrast(page, "Couper le son") >= 4.5
    page.keyboard.press(" ")
    assert mute.get_attribute("aria-pressed") == "true"
    # Kept across a reload (localStorage): the room's screen stays quiet.
    page.reload()
    mute.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-testid=mute]').getAttribute('aria-pressed') === 'true'"
    )


# --- The scripts' words in English --------------------------------------------------------


def test_the_directors_script_speaks_english_once_english_is_chosen(open_page, director, school):
    ppms_activate(
        scenario="confinement", title="Nuage toxique", source="operator", schools=[school]
    )
    page = open_page(director, "/ppms/ecole/", width=390, height=844, language="en")
    page.get_by_test_id("ppms-banner").wait_for(state="visible")

    page.get_by_test_id("btn-send").click()  # no situation chosen: the script's message

    error = page.get_by_test_id("error-state")
    error.wait_for(state="visible")
    assert error.inner_text() == "First choose: safe, needs help or evacuated."


def test_the_ppms_boards_script_speaks_english_once_english_is_chosen(open_page, operator):
    page = open_page(operator, "/ppms/", language="en")
    status = page.get_by_test_id("live-status")

    # The live connection's state (the test server has no websocket: lost), in English.
    page.wait_for_function("document.getElementById('live-status').textContent !== ''")
    assert status.inner_text() in ("Live", "Live connection lost — reconnecting…")
    french = open_page(operator, "/ppms/")
    french.wait_for_function("document.getElementById('live-status').textContent !== ''")
    assert french.get_by_test_id("live-status").inner_text() in (
        "En direct",
        "Connexion en direct perdue — reconnexion…",
    )


def test_the_walls_script_speaks_english_once_english_is_chosen(open_page, operator):
    # The wall is a page of its own (no base template): it loads the catalogue too.
    page = open_page(operator, "/dashboard/wall/", width=1920, height=1080, language="en")
    mute = page.get_by_test_id("mute")
    mute.wait_for()
    mute.click()
    page.wait_for_function(
        "document.querySelector('[data-testid=mute]').getAttribute('aria-pressed') === 'true'"
    )
    assert mute.inner_text().startswith("Muted until")
