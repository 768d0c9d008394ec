"""Incidents in a real browser (Debian's chromium) on the real stack: a flood published
over MQTT on five gauges crosses three rules; the console shows one incident card with
its fifteen alerts; "acknowledge all" after an alert changed behind the operator's back
is refused (409), the card shows it refreshed, and the second try acknowledges all."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from alerts import incidents
from alerts.models import Alert, Incident
from tests.alerting import make_rule
from tests.conftest import make_sensor, make_user
from tests.stack import publish
from tests.test_browser import CHROMIUM_ARGS, browser, log_in, real_password_hasher, stack

__all__ = ["CHROMIUM_ARGS", "browser", "real_password_hasher", "stack"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.mqtt,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("stack"),
]

GAUGES = 5


def flood_rules(zone):
    common = dict(sensor_kind="water", metric="level")
    rules = [
        make_rule(
            name="Cher : vigilance crue (3,5 m)", threshold=3.5, severity="warning", **common
        ),
        make_rule(name="Cher : crue (4,5 m)", threshold=4.5, severity="critical", **common),
        make_rule(
            name="Cher : montée rapide (+20 cm en 30 min)",
            kind="rate",
            threshold=None,
            rise=0.2,
            window=timedelta(minutes=30),
            severity="warning",
            **common,
        ),
    ]
    for rule in rules:
        rule.zones.set([zone])


def test_one_flood_is_one_incident_card_acknowledged_at_once_after_a_409(
    browser, broker, stack, operator, commune, flood_zone, django_user_model, real_password_hasher
):
    flood_rules(flood_zone)
    for i in range(1, GAUGES + 1):
        gauge = make_sensor(
            commune, f"jlt-river-0{i}", kind="water", name=f"Cher {i}", expected_interval=300
        )
        gauge.zones.add(flood_zone)
    colleague = make_user(django_user_model, "collegue")
    real_password_hasher()

    page = browser.new_page(
        locale="fr-FR",
        timezone_id="Europe/Paris",
        viewport={"width": 1600, "height": 1000},
        bypass_csp=True,  # wait_for_function's predicates are strings (see test_browser.py)
    )
    log_in(page, stack, "operateur")
    page.wait_for_url(f"{stack}/dashboard/", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="connection"][data-state="connected"]', timeout=15_000)

    now = datetime.now(UTC)
    for ts, level in ((now - timedelta(minutes=2), 1.4), (now, 4.8)):
        publish(
            broker.port,
            [
                (
                    f"csu/jlt-river-0{i}/readings",
                    json.dumps({"ts": ts.isoformat(), "values": {"level": level}}),
                )
                for i in range(1, GAUGES + 1)
            ],
        )

    # One card, not fifteen: it grows as the alerts join it.
    page.wait_for_function(
        """() => {
            const cards = document.querySelectorAll('#alert-console [data-incident-id]');
            return cards.length === 1
                && cards[0].querySelectorAll('[data-alert-id]').length === 15;
        }""",
        timeout=30_000,
    )
    card = page.locator('[data-testid="alert-console"] li[data-incident-id]')
    assert card.get_attribute("data-severity") == "critical"
    assert "15 alertes" in card.inner_text()
    assert "Zone inondable du Cher" in card.inner_text()
    # The tiles above may still grow as their figures arrive, moving the card under the
    # pointer: click until the list is open, as a person would.
    details = card.locator('[data-role="members"]')
    for _attempt in range(3):
        details.locator("summary").click()
        if details.evaluate("(node) => node.open"):
            break
        page.wait_for_timeout(300)
    members = card.locator('[data-role="member-list"] li[data-alert-id]')
    assert members.count() == 15
    assert members.first.is_visible()
    page.screenshot(path="/tmp/incidents/browser-incident.png")

    # Meanwhile a colleague acknowledges one alert, and the page is not told (a push lost).
    incident = Incident.objects.get()
    assert str(incident.version) == card.get_attribute("data-version")
    with transaction.atomic():
        alert = Alert.objects.filter(incident=incident).first()
        alert.acknowledge(by=colleague, comment="Vu au téléphone")
        incidents.refresh(incident.pk)
    changed = Incident.objects.get().version

    card.locator('[data-action="acknowledge"]').click()
    form = card.locator('form[data-form="acknowledge"]')
    form.locator("textarea[name=comment]").fill("Pompiers prévenus")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('li[data-incident-id][data-conflict="true"]', timeout=10_000)
    assert "a changé" in card.locator('[data-error-for="*"]').inner_text()
    assert card.get_attribute("data-version") == str(changed)  # the card as it is now
    assert card.locator('li[data-alert-id][data-state="acknowledged"]').count() == 1
    assert form.is_visible()  # the operator looks, and sends again
    page.screenshot(path="/tmp/incidents/browser-incident-409.png")
    assert Alert.objects.filter(acknowledged_by__username="operateur").count() == 0

    form.locator("button[type=submit]").click()
    page.wait_for_selector(
        '[data-testid="alert-console"] li[data-incident-id][data-state="acknowledged"]',
        timeout=10_000,
    )
    assert card.get_attribute("data-conflict") is None
    assert "acquittées" in card.locator('[data-role="result"]').inner_text()
    assert Alert.objects.filter(acknowledged_by__username="operateur").count() == 14
    assert not Alert.objects.filter(acknowledged_at__isnull=True).exists()
    page.close()
