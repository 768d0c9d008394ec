"""The ATMO colours and a sensor without a period, as an operator sees them in Debian's
chromium (Playwright) on the wall, a desktop and a phone: each class's chip on the
guide's colour with text of at least 4.5:1; the sensor page saying the period is not
set. Screenshots go to the test's tmp_path."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.regulations import ATMO_2021
from tests.conftest import make_sensor
from tests.test_dashboard import readings
from tests.test_ppms_director_browser import browser, contrast, page_of  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PARIS = ZoneInfo("Europe/Paris")
VIEWPORTS = {
    "wall": {"width": 1920, "height": 1080},
    "desktop": {"width": 1600, "height": 1000},
    "phone": {"width": 390, "height": 844},
}
# A PM10 daily mean in each class of ATMO_2021 (bounds 20, 40, 50, 100, 150).
PM10_OF_CLASS = {1: 10, 2: 30, 3: 45, 4: 80, 5: 120, 6: 200}


@pytest.fixture
def stations(commune):
    """Six background stations, one per class, on yesterday's full Paris day."""
    yesterday = datetime.now(PARIS).date() - timedelta(days=1)
    start = datetime.combine(yesterday, time(0), PARIS)
    end = datetime.combine(yesterday + timedelta(days=1), time(0), PARIS)
    count = int((end - start) / timedelta(minutes=1))
    made = []
    for klass, value in PM10_OF_CLASS.items():
        station = make_sensor(
            commune, f"jlt-air-0{klass}", "air", name=f"Station {klass}", station_type="background"
        )
        readings(station, "pm10", *[(start + timedelta(minutes=m), value) for m in range(count)])
        made.append(station)
    return made


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_each_atmo_class_is_on_the_guide_s_colour_in_readable_text(
    browser,  # noqa: F811
    live_server,
    operator,
    stations,
    viewport,
    tmp_path,
):
    page = page_of(browser, live_server, operator, viewport=VIEWPORTS[viewport])
    page.goto(f"{live_server.url}/dashboard/")
    page.locator("#tile-air-title").wait_for(state="visible")
    for atmo_class in ATMO_2021.classes:
        chip = f'[data-sensor="jlt-air-0{atmo_class.number}"]'
        background = page.eval_on_selector(chip, "n => getComputedStyle(n).backgroundColor")
        r, g, b = (int(atmo_class.colour[i : i + 2], 16) for i in (1, 3, 5))
        assert background == f"rgb({r}, {g}, {b})", atmo_class.label
        assert contrast(page, chip) >= 4.5, atmo_class.label
    assert page.locator(".atmo").inner_text() == "6 · extrêmement mauvais"
    assert contrast(page, ".atmo") >= 4.5
    page.locator("#tile-air-title").scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / f"atmo-{viewport}.png", full_page=viewport == "phone")


def test_the_sensor_page_says_a_sensor_has_no_period_on_a_phone(
    browser,  # noqa: F811
    live_server,
    operator,
    commune,
    tmp_path,
):
    make_sensor(commune, "jlt-air-01", "air", name="Station sans période", expected_interval=None)
    page = page_of(browser, live_server, operator, viewport=VIEWPORTS["phone"], is_mobile=True)
    page.goto(f"{live_server.url}/sensors/jlt-air-01/")
    period = page.get_by_test_id("sensor-period")
    assert period.inner_text() == "non renseigné\u202f: fraîcheur et complétude non jugées"
    assert period.is_visible()
    page.screenshot(path=tmp_path / "sensor-no-period-phone.png", full_page=True)
