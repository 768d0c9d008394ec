"""End-to-end in a real browser (Debian's chromium, driven by Playwright) on the real stack:
uvicorn serving the ASGI app, the ingest worker, a Celery worker on Redis, Mosquitto.

An operator logs in, sees a published MQTT reading change a tile and a chart without a
reload, sees the alert appear, acknowledges it and sees its state change; a director
cannot reach the operator dashboard.
"""

import contextlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from core import twofactor
from ppms.services import ppms_activate
from sensors.metrics import Kind
from sensors.models import LatestReading, Reading
from tests.alerting import make_rule
from tests.conftest import CHROMIUM, app_code, make_sensor, make_user
from tests.stack import (
    publish,
    start_celery_worker,
    start_web,
    start_worker,
    stop,
    stop_worker,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.mqtt,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("stack"),  # one stack's processes at a time (conftest.py)
]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are
    # still plain synchronous code, which Django then refuses in an event loop's thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # With Playwright's event loop running in this thread, Django gave the test's ORM
        # calls a database connection of their own (a running loop makes its connections
        # context-local). Closed here, where that context is: left open, it kept the
        # test database from being dropped at the end of the run (5 s wait, then a
        # warning and the database left behind).
        connections.close_all()


@pytest.fixture
def stack(broker, monkeypatch):
    """The whole CSU in processes of its own, on the test database."""
    from tests.brokers import free_port

    queue = f"csu-browser-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CELERY_QUEUE", queue)
    port = free_port()
    # Each process stopped however the next one's start ends (a failed start left the
    # earlier ones running).
    with contextlib.ExitStack() as running:
        running.callback(stop, start_celery_worker(queue))
        running.callback(stop_worker, start_worker(broker, "csu-ingest-browser"))
        running.callback(stop, start_web(port))
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def real_password_hasher(settings, django_user_model):
    """The web process knows the production hashers, not the fast one of the tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

    def rehash():
        for user in django_user_model.objects.all():
            user.set_password("pw")
            user.save()

    return rehash


def log_in(page, base, username):
    """Sign in as a person does: the password, then, for a role that requires it, the
    code of an authenticator app (one is set up for the user here)."""
    user = get_user_model().objects.get(username=username)
    device = None
    if twofactor.requires_second_factor(user):
        device, _ = TOTPDevice.objects.get_or_create(user=user, defaults={"name": "navigateur"})
        # A code is accepted once: a second sign-in within its 30 s may type it again.
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    if device is not None:
        page.wait_for_url(f"{base}/accounts/code/**", wait_until="domcontentloaded")
        page.fill("#id_code", app_code(device))
        page.click("button[type=submit]")


def test_an_operator_sees_a_reading_and_its_alert_live_and_acknowledges_it(
    browser, broker, stack, operator, commune, flood_zone, real_password_hasher
):
    gauge = make_sensor(
        commune, "jlt-river-01", kind="water", name="Niveau du Cher", expected_interval=300
    )
    gauge.zones.add(flood_zone)
    LatestReading.objects.create(sensor=gauge, metric="level", ts=datetime.now(UTC), value=1.4)
    make_rule(
        name="Cher : crue (4,5 m)",
        sensor_kind="water",
        metric="level",
        threshold=4.5,
        severity="critical",
    )

    # bypass_csp: Playwright's wait_for_function evaluates its predicate as a string, which
    # our CSP forbids; the pages' own compliance is test_no_page_runs_into_the_csp's.
    page = browser.new_page(locale="fr-FR", timezone_id="Europe/Paris", bypass_csp=True)
    log_in(page, stack, "operateur")
    page.wait_for_url(f"{stack}/dashboard/", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="connection"][data-state="connected"]', timeout=15_000)
    level = page.locator('[data-live="jlt-river-01:level"]')  # the tile's headline and row
    assert level.count() == 2
    assert all("1,4" in text for text in level.all_inner_texts())

    reading = json.dumps({"ts": datetime.now(UTC).isoformat(), "values": {"level": 4.8}})
    publish(broker.port, [("csu/jlt-river-01/readings", reading)])

    # The tile changes without a reload, its headline with its row...
    page.wait_for_function(
        "[...document.querySelectorAll('[data-live=\"jlt-river-01:level\"]')]"
        ".every((node) => node.textContent.includes('4,8'))",
        timeout=15_000,
    )
    # ...the chart gets the point...
    page.wait_for_function(
        """() => {
            const chart = document.querySelector('[data-testid="chart-level"]');
            return chart && chart.data && chart.data.some(t => (t.y || []).includes(4.8));
        }""",
        timeout=15_000,
    )
    # ...and the alert arrives in the console, as an incident of one alert.
    incident = page.locator('[data-testid="alert-console"] li[data-incident-id]').first
    incident.wait_for(timeout=15_000)
    assert incident.get_attribute("data-state") == "firing"
    assert "Zone inondable du Cher" in incident.inner_text()

    incident.locator('[data-action="acknowledge"]').click()
    form = incident.locator('form[data-form="acknowledge"]')
    form.locator("textarea[name=comment]").fill("Équipe d'astreinte prévenue")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(
        '[data-testid="alert-console"] li[data-incident-id][data-state="acknowledged"]',
        timeout=10_000,
    )
    page.close()


def test_a_director_cannot_reach_the_operator_dashboard(
    browser, stack, director, real_password_hasher
):
    real_password_hasher()
    page = browser.new_page(locale="fr-FR", timezone_id="Europe/Paris")
    log_in(page, stack, "directeur")
    page.wait_for_load_state()
    assert "/dashboard/" not in page.url
    response = page.goto(f"{stack}/dashboard/")
    assert response.status == 403
    page.close()


def test_a_sensor_name_in_html_stays_text_in_the_charts(
    browser, stack, operator, commune, real_password_hasher
):
    # Plotly reads a subset of HTML in trace names: a sensor named as a link became one.
    hostile = '<a href="https://evil.example/">Air mairie</a>'
    evil = make_sensor(commune, "jlt-air-evil", Kind.AIR, name=hostile)
    other = make_sensor(commune, "jlt-air-02", Kind.AIR, name="Air école")  # a legend: two
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric="pm10", ts=now - timedelta(minutes=minutes), value=20)
        for sensor in (evil, other)
        for minutes in range(1, 30, 5)
    )
    real_password_hasher()
    page = browser.new_page(locale="fr-FR", timezone_id="Europe/Paris")
    log_in(page, stack, "operateur")
    page.wait_for_load_state()
    page.goto(f"{stack}/dashboard/")
    page.wait_for_selector("#chart-pm10 .legend .legendtext", timeout=15_000)

    assert page.locator("#chart-pm10 a").count() == 0
    assert hostile in page.locator("#chart-pm10 .legend .legendtext").all_text_contents()
    page.close()


def test_the_operator_activates_and_the_director_confirms_live_in_two_browsers(
    browser, stack, operator, director, school, real_password_hasher
):
    """Two contexts: the operator's board and the director's phone, both live."""
    real_password_hasher()
    board = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    phone = browser.new_context(
        locale="fr-FR",
        timezone_id="Europe/Paris",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    ).new_page()
    log_in(phone, stack, "directeur")
    phone.wait_for_selector('[data-testid="calm-screen"]', timeout=15_000)
    log_in(board, stack, "operateur")
    board.goto(f"{stack}/ppms/")
    board.wait_for_selector('[data-testid="ppms-board"]')

    # The operator activates the PPMS for the school.
    board.select_option('[data-testid="field-scenario"]', "confinement")
    board.fill('[data-testid="field-title"]', "Nuage toxique — zone industrielle")
    board.check(f'[data-testid="school-{school.uai}"]')
    board.click('[data-testid="btn-activate"]')
    row = board.locator(f'tr[data-school="{school.uai}"]')
    row.wait_for(timeout=15_000)
    assert row.get_attribute("data-state") == "pending"

    # The director's page shows the banner live, without a reload.
    banner = phone.locator('[data-testid="ppms-banner"]')
    banner.wait_for(state="visible", timeout=15_000)
    assert banner.get_attribute("data-scenario") == "confinement"
    assert banner.get_attribute("data-silent") == "false"
    # The page shown is the school's first sign of life, on the board at once.
    board.wait_for_selector(
        f'tr[data-school="{school.uai}"] [data-testid="reach"][data-seen="true"]',
        timeout=15_000,
    )

    # The director confirms with headcounts; the board changes without a reload.
    phone.fill('[data-testid="field-pupils_present"]', "180")
    phone.fill('[data-testid="field-pupils_absent"]', "20")
    phone.click('[data-testid="btn-safe"]')
    phone.click('[data-testid="btn-send"]')
    board.wait_for_selector(f'tr[data-school="{school.uai}"][data-state="safe"]', timeout=15_000)
    assert "180" in board.locator(f'tr[data-school="{school.uai}"]').inner_text()


def csp_violations(page) -> list[str]:
    """Collect what the Content-Security-Policy blocked on ``page`` (console reports)."""
    blocked = []
    page.on(
        "console",
        lambda message: (
            blocked.append(f"{page.url}: {message.text[:90]}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return blocked


@pytest.fixture
def activation(school, operator):
    """Made before the browser starts: its live push may not run in Playwright's loop."""
    return ppms_activate(
        scenario="confinement", title="Exercice", source="operator", schools=[school], by=operator
    )


def test_no_page_runs_into_the_csp(
    activation, browser, stack, django_user_model, director, sensor, real_password_hasher
):
    """Every page works under the CSP: only our own scripts, no inline code, no CDN; the
    wall holds on one screen with a PPMS under way."""
    make_user(django_user_model, "admin-csu", is_staff=True, is_superuser=True)
    real_password_hasher()
    pages = {
        "operateur": [
            ("/dashboard/", '[data-testid="connection"][data-state="connected"]'),
            ("/dashboard/wall/", '[data-testid="connection"][data-state="connected"]'),
            (f"/sensors/{sensor.ref}/", ".chart.js-plotly-plot"),
            ("/ppms/", '[data-testid="ppms-board"]'),
            (f"/ppms/activations/{activation.pk}/rapport/", '[data-testid="report"]'),
            ("/api/docs/", ".swagger-ui .info"),
        ],
        "admin-csu": [("/admin/", "#content"), ("/admin/core/auditentry/", "#result_list")],
        "directeur": [("/ppms/ecole/", '[data-testid="ppms-banner"]')],
    }
    for username, visits in pages.items():
        page = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
        blocked = csp_violations(page)
        log_in(page, stack, username)
        page.wait_for_load_state()
        for path, ready in visits:
            response = page.goto(f"{stack}{path}")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_selector(ready, timeout=15_000)  # the page's own script ran
        assert blocked == [], f"{username}: {blocked}"
        page.close()

    # The operations room's wall: the PPMS under way on one 16:9 screen, never a scroll.
    wall = browser.new_context(
        locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1920, "height": 1080}
    ).new_page()
    log_in(wall, stack, "operateur")
    wall.wait_for_load_state()
    wall.goto(f"{stack}/dashboard/wall/")
    wall.wait_for_selector('[data-testid="ppms-strip-activation"]', timeout=15_000)
    heights = wall.evaluate("[document.documentElement.scrollHeight, window.innerHeight]")
    assert heights[0] <= heights[1], f"the wall scrolls: {heights}"
    assert wall.locator("#map").bounding_box()["height"] > 200


def test_a_sustained_reading_is_proposed_validated_by_the_authority_and_cancelled_live(
    browser,
    broker,
    stack,
    django_user_model,
    operator,
    director,
    school,
    commune,
    flood_zone,
    real_password_hasher,
):
    """Three contexts: the operator's dashboard rings with the proposal, the authority
    validates it on the board, the director's phone shows the activation, then its
    cancellation as a mistake."""
    from datetime import timedelta

    from core import roles
    from sensors.models import Operator

    school.zones.add(flood_zone)
    gauge = make_sensor(commune, "jlt-river-01", kind="water", name="Niveau du Cher")
    gauge.zones.add(flood_zone)
    make_rule(
        name="Cher : évacuation des écoles (4,5 m)",
        sensor_kind="water",
        metric="level",
        threshold=4.5,
        severity="critical",
        duration=timedelta(minutes=2),
        ppms_scenario="evacuation",
    ).zones.add(flood_zone)
    mayor = make_user(django_user_model, "maire", role=roles.OPERATORS)
    roles.ensure_role_groups()
    mayor.groups.add(mayor.groups.model.objects.get(name=roles.AUTHORITIES))
    Operator.objects.create(user=mayor).communes.add(commune)
    real_password_hasher()

    def context(**options):
        return browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **options)

    dashboard = context().new_page()
    log_in(dashboard, stack, "operateur")
    dashboard.wait_for_url(f"{stack}/dashboard/", wait_until="domcontentloaded")
    dashboard.wait_for_selector('[data-testid="connection"][data-state="connected"]')
    phone = context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    log_in(phone, stack, "directeur")
    phone.wait_for_selector('[data-testid="calm-screen"]', timeout=15_000)
    board = context().new_page()
    board.on("dialog", lambda dialog: dialog.accept("Capteur déréglé : pas de crue"))
    log_in(board, stack, "maire")
    board.goto(f"{stack}/ppms/")
    board.wait_for_selector('[data-testid="ppms-board"]')

    # The level holds above 4.5 m for 3 minutes: the rule proposes, it does not activate.
    now = datetime.now(UTC)
    for minutes, level in ((3, 4.7), (0, 4.9)):
        reading = {"ts": (now - timedelta(minutes=minutes)).isoformat(), "values": {"level": level}}
        publish(broker.port, [("csu/jlt-river-01/readings", json.dumps(reading))])

    dashboard.wait_for_selector('[data-testid="ppms-strip-proposal"]', timeout=20_000)
    assert dashboard.locator('[data-testid="ppms-badge"]').is_visible()
    assert phone.locator('[data-testid="calm-screen"]').is_visible()  # nothing decided yet

    # The authority validates: the board shows the activation, the phone its banner.
    board.click('[data-testid="proposal"] [data-testid="btn-validate"]', timeout=20_000)
    board.wait_for_selector(f'tr[data-school="{school.uai}"][data-state="pending"]', timeout=15_000)
    banner = phone.locator('[data-testid="ppms-banner"]')
    banner.wait_for(state="visible", timeout=15_000)
    assert banner.get_attribute("data-scenario") == "evacuation"
    dashboard.wait_for_selector('[data-testid="ppms-strip-activation"]', timeout=15_000)

    # It was a mistake: the authority cancels it; the phone says so.
    board.click('[data-testid="activation"] [data-testid="btn-cancel"]')
    ended = phone.locator('[data-testid="ended-banner"]')
    ended.wait_for(state="visible", timeout=15_000)
    assert ended.get_attribute("data-cancelled") == "true"
    assert "erreur" in ended.inner_text()


@pytest.mark.parametrize("scenario, silent", [("evacuation", False), ("intrusion", True)])
def test_the_service_worker_shows_a_push_silent_for_an_intrusion_and_says_it_arrived(
    browser, stack, director, operator, school, real_password_hasher, scenario, silent
):
    """A push delivered to the director's installed page in Chromium (the DevTools
    protocol's ServiceWorker.deliverPushMessage, as a push service would): its service
    worker shows the notification — without sound or vibration for an intrusion — and
    tells the CSU it arrived, which the board shows."""
    from core import webpush
    from core.models import DevicePush, Notification, PushSubscription

    real_password_hasher()
    context = browser.new_context(
        locale="fr-FR",
        timezone_id="Europe/Paris",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
    )
    context.grant_permissions(["notifications"], origin=stack)
    phone = context.new_page()
    log_in(phone, stack, "directeur")
    phone.wait_for_selector('[data-testid="calm-screen"]', timeout=15_000)
    phone.evaluate("navigator.serviceWorker.ready.then(() => true)")

    # Activated off Playwright's event loop, so the outbox's live push may run.
    with ThreadPoolExecutor(1) as pool:
        activation = pool.submit(
            ppms_activate,
            scenario=scenario,
            title="Essai de notification",
            source="operator",
            schools=[school],
        ).result()
    # The push the outbox would send this phone, byte for byte (core/webpush.py).
    message = Notification.objects.filter(event="activated").latest("pk").devices[0]
    device = PushSubscription.objects.create(
        user=director, endpoint="https://fcm.googleapis.com/fcm/send/x", p256dh="k", auth="a"
    )
    push = DevicePush.objects.create(
        notification=Notification.objects.latest("pk"),
        subscription=device,
        user=director,
        about=message["about"],
        payload=message["payload"],
        status="delivered",
    )

    cdp = context.new_cdp_session(phone)
    registrations, versions = [], []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.on("ServiceWorker.workerVersionUpdated", lambda event: versions.extend(event["versions"]))
    cdp.send("ServiceWorker.enable")

    def activated() -> list[str]:
        """The ids of the page's registrations (its scope) whose worker is activated."""
        scoped = {
            r["registrationId"]
            for r in registrations
            if not r.get("isDeleted") and r["scopeURL"].startswith(f"{stack}/ppms/")
        }
        return [v["registrationId"] for v in versions if v["registrationId"] in scoped
                and v["status"] == "activated"]  # fmt: skip

    for _ in range(300):  # up to 30 s: a loaded machine is slow to report it
        if activated():
            break
        phone.wait_for_timeout(100)
    assert activated(), f"no activated service worker: {registrations} {versions}"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": stack,
            "registrationId": activated()[-1],
            "data": webpush.body(push),
        },
    )

    shown = []
    for _ in range(300):  # up to 30 s, as above
        shown = phone.evaluate(
            """() => navigator.serviceWorker.ready
                .then((r) => r.getNotifications())
                .then((all) => all.map((n) => ({
                  title: n.title, body: n.body, tag: n.tag, silent: n.silent,
                  vibrate: Array.from(n.vibrate || []), url: n.data && n.data.url,
                })))"""
        )
        if shown:
            break
        phone.wait_for_timeout(100)
    [notification] = shown
    assert notification["title"].endswith(school.name)
    assert notification["tag"] == f"csu-ppms-{activation.pk}"
    assert notification["url"] == f"/ppms/school/{school.uai}/"
    assert notification["silent"] is silent
    assert (notification["vibrate"] == []) is silent
    for _ in range(100):
        push.refresh_from_db()
        if push.received_at:
            break
        phone.wait_for_timeout(100)
    assert push.received_at is not None, "the service worker did not say it arrived"
    context.close()
    api = APIClient()
    api.force_authenticate(operator)
    [reach] = api.get(f"/api/v1/ppms/activations/{activation.pk}/reach/").json()
    assert reach["push"] == "received"
