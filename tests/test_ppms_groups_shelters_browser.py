"""The PPMS of the 2023 circular in Chromium (Debian's, driven by Playwright): the
dashboard's banner tells evacuated schools apart; a director on a phone (390 x 844)
reports a second group; shelter staff record arrivals by home commune on the board.
Screenshots go to the test's tmp_path."""

import pytest

from ppms.services import ppms_report
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
