"""The alert page (/alerts/<id>/) and the activation's address (/ppms/activations/<id>/):
where CAP messages' ``<web>`` and the alert e-mails send their readers."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.cap import alert_cap
from alerts.models import EventKind
from alerts.notify import email_text
from core.cap import CAP_NS
from ppms.cap import activation_cap
from ppms.services import ppms_activate
from tests.conftest import sign_in
from tests.ppms_helpers import end_of_alert
from tests.test_atmo import add_readings
from tests.test_cap import make_alert

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Paris
PUBLIC = "http://localhost:8000"


def web_of(document: bytes) -> str:
    url = ET.fromstring(document).findtext(f"{{{CAP_NS}}}info/{{{CAP_NS}}}web")
    assert url.startswith(PUBLIC)
    return url.removeprefix(PUBLIC)


def activate(school, **fields):
    fields = {"scenario": "confinement", "title": "Nuage toxique", "source": "operator", **fields}
    return ppms_activate(schools=[school], drill=False, now=T0, **fields)


# --- Where the links lead ---------------------------------------------------------------


def test_the_cap_web_of_an_alert_opens_its_page_for_an_operator_of_its_commune(
    client, sensor, operator
):
    alert = make_alert(sensor)
    sign_in(client, operator)

    response = client.get(web_of(alert_cap(alert)))

    assert response.status_code == 200
    assert alert.title in response.content.decode()


def test_the_cap_web_of_an_alert_is_404_to_an_operator_of_another_commune(
    client, sensor, other_operator
):
    alert = make_alert(sensor)
    sign_in(client, other_operator)

    assert client.get(web_of(alert_cap(alert))).status_code == 404


def test_the_alert_e_mail_links_to_the_page(client, sensor, operator, other_operator):
    alert = make_alert(sensor)
    _subject, body = email_text(alert.events.get(kind=EventKind.OPENED))
    link = body.splitlines()[-1]
    assert link == f"{PUBLIC}/alerts/{alert.pk}/"

    mine = sign_in(client, operator).get(link.removeprefix(PUBLIC))
    client.logout()
    theirs = sign_in(client, other_operator).get(link.removeprefix(PUBLIC))

    assert mine.status_code == 200
    assert theirs.status_code == 404


def test_the_alert_page_is_404_to_a_director(client, sensor, director):
    alert = make_alert(sensor)
    sign_in(client, director)

    assert client.get(f"/alerts/{alert.pk}/").status_code == 404


@pytest.mark.parametrize("ended", [False, True])
def test_the_cap_web_of_an_activation_opens_for_an_operator_of_its_commune(
    client, school, operator, ended
):
    activation = activate(school)
    if ended:
        end_of_alert(activation=activation, by=operator, now=T0 + timedelta(hours=1))
    sign_in(client, operator)
    url = web_of(activation_cap(activation))

    assert url == f"/ppms/activations/{activation.pk}/"
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        board = client.get(url)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        later = client.get(url)

    assert board.status_code == 200
    assert f'data-activation="{activation.pk}"' in board.content.decode()
    assert later.status_code == 200
    assert "Nuage toxique" in later.content.decode()


def test_the_cap_web_of_an_activation_is_404_to_an_operator_of_another_commune(
    client, school, other_operator
):
    activation = activate(school)
    sign_in(client, other_operator)

    assert client.get(web_of(activation_cap(activation))).status_code == 404


# --- What the alert page shows ----------------------------------------------------------


def test_the_page_shows_the_timeline_with_who_and_when(client, sensor, operator):
    alert = make_alert(sensor)
    alert.acknowledge(by=operator, now=T0 + timedelta(minutes=20))
    alert.comment(by=operator, text="Équipe envoyée sur place.")
    alert.resolve(by=operator, now=T0 + timedelta(hours=1))
    sign_in(client, operator)

    page = client.get(f"/alerts/{alert.pk}/").content.decode()

    timeline = page[page.index('data-testid="alert-timeline"') :]
    for kind in ("opened", "acknowledged", "commented", "resolved"):
        assert f'data-event="{kind}"' in timeline
    assert "23/11/2026 08:20:00" in timeline
    assert "Équipe envoyée sur place." in timeline
    assert "operateur" in timeline
    # A resolved alert offers only a comment.
    assert 'data-action="comment"' in page
    assert 'data-action="resolve"' not in page


def test_the_page_shows_the_readings_around_the_alert(client, sensor, operator):
    alert = make_alert(sensor)
    add_readings(
        sensor,
        "pm10",
        (T0 - timedelta(hours=2), 10.0),  # before the window
        (T0 - timedelta(minutes=30), 40.0),
        (T0 + timedelta(minutes=10), 92.5),
    )
    sign_in(client, operator)

    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        page = client.get(f"/alerts/{alert.pk}/").content.decode()

    readings = page[page.index('data-testid="alert-readings"') :]
    assert "92,5" in readings or "92.5" in readings
    assert "40" in readings
    assert ">10 " not in readings
    assert 'data-action="acknowledge"' in page
    assert f'data-alert-url="/api/v1/alerts/{alert.pk}/"' in page
