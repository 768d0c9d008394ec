"""Alert titles, e-mails and CAP texts read in French: Paris time, said so, and decimal
commas with their units."""

import xml.etree.ElementTree as ET

from alerts.cap import alert_cap
from alerts.models import Alert
from alerts.notify import email_text
from tests.alerting import T0, feed, make_rule
from tests.conftest import make_sensor

CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


def flood_alert(commune) -> Alert:
    river = make_sensor(commune, "jlt-river-01", "water", name="Niveau du Cher")
    make_rule(name="Cher : crue", sensor_kind="water", metric="level", threshold=4.5)
    feed(river, [4.6, 4.65], metric="level", start=T0)  # 10:00 UTC: 11:00 in Paris
    return Alert.objects.get()


def test_an_alert_title_has_a_decimal_comma_and_the_unit(commune):
    assert flood_alert(commune).title == "Cher : crue — Niveau du Cher\u202f: 4,6\xa0m"


def test_an_alert_email_gives_paris_time_and_french_decimals(commune):
    alert = flood_alert(commune)

    subject, body = email_text(alert.events.get(kind="opened"))

    assert "ouverte : 23/11/2026 à 11:00 (heure de Paris)" in body
    assert "Valeur : 4,65\xa0m (extrême : 4,65\xa0m)" in body
    assert subject.endswith("Cher : crue — Niveau du Cher\u202f: 4,6\xa0m")


def test_the_cap_text_gives_paris_time_said_so(commune):
    alert = flood_alert(commune)

    root = ET.fromstring(alert_cap(alert))

    description = root.find("cap:info/cap:description", CAP).text
    assert "Niveau : 4,65\xa0m le 23/11/2026 à 11:01 (heure de Paris)" in description
    assert "Ouverte le 23/11/2026 à 11:00 (heure de Paris)." in description
