"""The permissions matrix: every route, each of seven roles, the expected answer.

The tables below are the document (issue #7): every page, API call and websocket needs
a login; directors see only their own schools, operators only their communes, a
métropole operator every commune, admins everything (the roles of the README), in the API
and on the websocket. The roles, in the order of each row:

    anonymous · operator A (commune A) · operator B (commune B) · métropole (every
    commune) · director X (school X, commune A) · director Y (school Y, commune B) ·
    admin (staff, in the admins group, not a superuser: the group's rights are tested)

The cast: in commune A, sensor A, alert A, silence A, shelter A (closed), schools X and W
(W has no director: X's director must not see it though it is in the same commune); in
commune B, sensor B, alert B, silence B, shelter B (closed), shelter "B open", school Y.
The rule PM10 by kind (every commune; alerts A and B are its) with its silence "rule",
the rule NO2 with no alert, a rejected MQTT message R. PPMS activations A (schools X and
W), B (school Y) and AB (schools X and Y).

The rules the project follows, as asserted here:
- pages: anonymous → the login page; a role that has no business there → 403; an
  object outside the user's perimeter → 404, like an unknown one; a school's own page
  is its directors' only (404 for everyone else, admins included);
- API: anonymous → 401; a role that may not act → 403, before any lookup (a director
  gets 403 on any alert action); an object outside the perimeter → 404; one named in a
  request body → 400 on that field;
- lists show only what is in scope: each list row asserts the objects listed, not only
  the status; a write refused changes nothing in the database, a write allowed does.

Each role signs in as the sign-in pages let them: operators and admins with their
second factor (tests.conftest.sign_in). Signed in with the password alone, operators,
authorities and admins reach no page but the sign-in steps and no API call; directors,
for whom the second factor is optional, reach theirs
(``test_without_a_second_factor_only_directors_reach_pages_and_the_api``).

A route added without its row makes ``test_every_route_has_its_row_in_the_matrix`` fail;
a model added to the admin without its row, ``test_the_admin_role_opens_…``.
"""

import asyncio
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import incidents
from alerts.models import Alert, EventKind, Silence
from core import live, roles
from core.models import PushSubscription
from csu.asgi import application
from dashboard.consumers import CLOSE_UNAUTHENTICATED
from ppms.models import Proposal, School, Shelter
from ppms.services import ppms_activate, ppms_report
from sensors.live import ReadingsCoalescer
from sensors.models import LatestReading, Operator, RejectedMessage
from sensors.signals import StoredReading
from tests.alerting import make_rule
from tests.conftest import make_school, make_sensor, make_user, sign_in

OPERATOR_A_DEVICE = "https://fcm.googleapis.com/fcm/send/operator-a"
ROLES = ("anonymous", "operator A", "operator B", "métropole", "director X", "director Y", "admin")


# --- The cast -----------------------------------------------------------------------------


@dataclass
class Cast:
    """The objects of the matrix, and how to recognise each in an answer."""

    values: dict = field(default_factory=dict)  # what a path or body names: "{alert_a}"…
    # kind → {key in an answer (ref, uai, id): label in the matrix}
    keys: dict = field(default_factory=lambda: defaultdict(dict))
    # kind → {label: text that shows it in a page}
    texts: dict = field(default_factory=lambda: defaultdict(dict))

    def add(self, kind: str, label: str, obj, *, key=None, text: str = "", name: str = ""):
        self.keys[kind][str(key if key is not None else obj.pk)] = label
        if text:
            self.texts[kind][label] = text
        if name:
            self.values[name] = obj.pk
        return obj

    def labels(self, kind: str, keys) -> set[str]:
        """The labels of the objects an answer lists; "?<key>" for one not in the cast."""
        return {self.keys[kind].get(str(key), f"?{key}") for key in keys}


@pytest.fixture
def users(django_user_model, operator, other_operator, metropole_operator, director, other_commune):
    school_y = make_school(other_commune, "0370003C", name="École de Ballan")
    director_y = make_user(django_user_model, "directrice-ballan", role=roles.DIRECTORS)
    school_y.directors.add(director_y)
    admin_user = make_user(django_user_model, "admin-csu", role=roles.ADMINS, is_staff=True)
    return dict(
        zip(
            ROLES,
            [None, operator, other_operator, metropole_operator, director, director_y, admin_user],
            strict=True,
        )
    )


@pytest.fixture
def clients(users):
    """One client per role, logged in; a server error is an answer, not an exception."""
    logged_in = {}
    for role, user in users.items():
        client = APIClient()
        client.raise_request_exception = False
        if user is not None:
            sign_in(client, user)
        logged_in[role] = client
    return logged_in


def open_alert(sensor, rule):
    alert = Alert.objects.create(
        rule=rule,
        sensor=sensor,
        metric=rule.metric,
        severity="warning",
        title=f"{rule.name} — {sensor.ref}",
        opened_at=timezone.now() - timedelta(minutes=5),
        first_value=85,
        last_value=85,
        last_value_at=timezone.now(),
        peak_value=85,
    )
    alert.record(EventKind.OPENED, at=alert.opened_at, value=85, text=alert.title)
    return alert


@pytest.fixture
def cast(users, commune, other_commune, sensor, school):
    c = Cast()
    now = timezone.now()
    c.values |= {
        "in_an_hour": (now + timedelta(hours=1)).isoformat(),
        "today": timezone.localdate().isoformat(),
    }
    sensor_b = make_sensor(other_commune, "bal-air-01")
    c.add("sensor", "A", sensor, key=sensor.ref, text=sensor.ref)
    c.add("sensor", "B", sensor_b, key=sensor_b.ref, text=sensor_b.ref)
    for ref in (sensor, sensor_b):
        LatestReading.objects.create(sensor=ref, metric="pm25", ts=now, value=12.0)

    school_w = make_school(commune, "0370002B", name="École du Morier")
    school_y = School.objects.get(uai="0370003C")
    for label, each in (("X", school), ("W", school_w), ("Y", school_y)):
        c.add("school", label, each, key=each.uai, text=each.name)

    rule = c.add("rule", "PM10", make_rule(), name="rule")  # by kind: every commune
    spare = make_rule(name="NO2 seuil", metric="no2", threshold=200)  # no alert: deletable
    c.add("rule", "NO2", spare, name="rule_spare")
    for label, each in (("A", sensor), ("B", sensor_b)):
        alert = open_alert(each, rule)
        c.add("alert", label, alert, text=alert.title, name=f"alert_{label.lower()}")
        incident = incidents.refresh(incidents.join(alert).pk)  # as where alerts open
        c.add("incident", label, incident, name=f"incident_{label.lower()}")
        c.values[f"incident_{label.lower()}_version"] = incident.version

    for label, kwargs in (
        ("A", {"sensor": sensor}),
        ("B", {"sensor": sensor_b}),
        ("rule", {"rule": rule}),
    ):
        silence = Silence.objects.create(
            ends_at=now + timedelta(hours=1),
            reason="maintenance",
            created_by=users["métropole"],
            **kwargs,
        )
        c.add("silence", label, silence, name=f"silence_{label.lower()}")

    for label, where, is_open in (
        ("A", commune, False),
        ("B", other_commune, False),
        ("B open", other_commune, True),
    ):
        shelter = Shelter.objects.create(
            name=f"Gymnase {label}",
            commune=where,
            latitude=47.35,
            longitude=0.66,
            capacity=100,
            is_open=is_open,
        )
        c.add("shelter", label, shelter, name="shelter_" + label.lower().replace(" ", "_"))

    for label, title, schools, by in (
        ("A", "Nuage toxique à Joué", [school, school_w], "operator A"),
        ("B", "Crue à Ballan", [school_y], "operator B"),
        ("AB", "Inondation du Cher", [school, school_y], "métropole"),
    ):
        activation = ppms_activate(
            scenario="confinement", title=title, source="operator", schools=schools, by=users[by]
        )
        c.add("activation", label, activation, text=title, name=f"activation_{label.lower()}")

    for label, where, schools in (("A", commune, [school]), ("B", other_commune, [school_y])):
        proposal = Proposal.objects.create(
            rule=rule, scenario="confinement", title=f"Proposition {label}"
        )
        proposal.schools.set(schools)
        proposal.communes.set([where])
        c.add("proposal", label, proposal, text=proposal.title, name=f"proposal_{label.lower()}")

    PushSubscription.objects.create(
        user=users["operator A"], endpoint=OPERATOR_A_DEVICE, p256dh="k", auth="a"
    )

    rejected = RejectedMessage.objects.create(
        topic="csu/v1/inconnu-01/readings", sensor_ref="inconnu-01", reason="unknown_sensor"
    )
    c.add("rejection", "R", rejected, key=rejected.sensor_ref)
    return c


# --- What an answer shows -----------------------------------------------------------------


def results(response) -> list:
    return response.json()["results"]


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def listed(kind: str, key: str, items=results) -> Callable:
    """The labels of the objects a JSON answer lists, by their ``key``."""
    return lambda response, cast: cast.labels(kind, [item[key] for item in items(response)])


def shown(kind: str) -> Callable:
    """The labels of the objects of ``kind`` a page (or file) names."""

    def read(response, cast):
        text = body_of(response).decode()
        return {label for label, name in cast.texts[kind].items() if name in text}

    return read


def in_feed(response, cast) -> set[str]:
    """The Atom feed's entries: alerts and activations, by title."""
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.fromstring(body_of(response))
    titles = {entry.findtext(f"{atom}title") for entry in feed.iter(f"{atom}entry")}
    return {
        f"{kind} {label}"
        for kind in ("alert", "activation")
        for label, title in cast.texts[kind].items()
        if title in titles
    }


def feed_school_counts(response, cast) -> set[str]:
    """Each activation entry of the Atom feed with the number of schools it counts."""
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.fromstring(body_of(response))
    counts = {}
    for entry in feed.iter(f"{atom}entry"):
        summary = entry.findtext(f"{atom}summary") or ""
        counts[entry.findtext(f"{atom}title")] = summary.split(" école(s)")[0].split()[-1]
    return {
        f"activation {label}: {counts[title]}"
        for label, title in cast.texts["activation"].items()
        if title in counts
    }


def cap_school_count(response, cast) -> set[str]:
    """The number of schools a CAP document's parameter ``schools`` gives."""
    cap = "{urn:oasis:names:tc:emergency:cap:1.2}"
    document = ET.fromstring(body_of(response))
    return {
        parameter.findtext(f"{cap}value")
        for parameter in document.iter(f"{cap}parameter")
        if parameter.findtext(f"{cap}valueName") == "schools"
    }


def in_kpis(response, cast) -> set[str]:
    return cast.labels("sensor", response.json()["sensors"])


sensors = listed("sensor", "ref")
latest = listed("sensor", "sensor", items=lambda response: response.json()["items"])
alerts = listed("alert", "id")
incident_list = listed("incident", "id")
exported_alerts = listed("alert", "id", items=lambda response: json.loads(body_of(response)))
schools = listed("school", "uai")
drill_register = listed("school", "school")
statuses = listed("school", "school", items=lambda response: response.json())
detail_statuses = listed("school", "school", items=lambda response: response.json()["statuses"])


def detail_schools(response, cast) -> set[str]:
    """The schools an activation's detail names: in its statuses and on its timeline."""
    detail = response.json()
    named = [status["school"] for status in detail["statuses"]]
    named += [uai for line in detail["timeline"] for uai in line["schools"]]
    return cast.labels("school", named)


def directors_shown(response, cast) -> set[str]:
    """Who directs the school, for those who may know it."""
    return set(response.json().get("directors", ["(hidden)"]))


activations = listed("activation", "id")
proposals = listed("proposal", "id")
shelters = listed("shelter", "id")
silences = listed("silence", "id")
rules = listed("rule", "id")
rejections = listed("rejection", "sensor_ref")


def report_csv_schools(response, cast) -> set[str]:
    rows = csv.reader(io.StringIO(body_of(response).decode("utf-8-sig")), delimiter=";")
    cells = {cell for line in rows for cell in line}
    return {label for label, name in cast.texts["school"].items() if name in cells}


# --- The matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    to: str

    def __repr__(self):
        return f"→ {self.to}"


LOGIN = Redirect("/accounts/login/")
HOME = Redirect("/")
DASHBOARD = Redirect("/dashboard/")
SCHOOL_PAGE = Redirect("/ppms/ecole/")
HEALTHZ = Redirect("/healthz")
NONE: frozenset = frozenset()
ALL_SENSORS = {"A", "B"}
ALL_SCHOOLS = {"X", "W", "Y"}


@dataclass(frozen=True)
class Row:
    request: str  # "METHOD /path?query", naming the cast's objects as {alert_a}…
    expect: tuple  # one answer per role, in ROLES order
    sees: Callable | None = None  # for a 200, what the answer shows instead of "200"
    body: dict | None = None

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request.split(" ", 1)[1]

    @property
    def writes(self) -> bool:
        """Whether the row checks the database: changed if allowed, untouched if refused.

        The pages write through the API (ppms/views.py); their own forms (sign in and
        out, the language) change no CSU data.
        """
        return self.method != "GET" and self.path.startswith("/api/")


def row(request: str, expect: tuple, *, sees=None, body=None) -> Row:
    assert len(expect) == len(ROLES), request
    return Row(request, expect, sees, body)


# Each row: the request, then (anonymous, operator A, operator B, métropole, director X,
# director Y, admin). A set means 200 and exactly those objects shown; LOGIN a redirect
# to the login page. Keep the rows in the order of csu/urls.py.
# fmt: off
MATRIX = [
    # --- Pages -------------------------------------------------------------------------
    # Each role's start page.
    row("GET /",
        (LOGIN, DASHBOARD, DASHBOARD, DASHBOARD, SCHOOL_PAGE, SCHOOL_PAGE, DASHBOARD)),
    # The dashboards: operators and admins, the sensors of their communes.
    row("GET /dashboard/", sees=shown("sensor"), expect=(
        LOGIN, {"A"}, {"B"}, ALL_SENSORS, 403, 403, ALL_SENSORS)),
    row("GET /dashboard/?commune=37018", sees=shown("sensor"), expect=(
        LOGIN, 404, {"B"}, {"B"}, 403, 403, {"B"})),
    row("GET /dashboard/wall/", sees=shown("sensor"), expect=(
        LOGIN, {"A"}, {"B"}, ALL_SENSORS, 403, 403, ALL_SENSORS)),
    row("GET /dashboard/kpis.json", sees=in_kpis, expect=(
        LOGIN, {"A"}, {"B"}, ALL_SENSORS, 403, 403, ALL_SENSORS)),
    row("GET /dashboard/kpis.json?commune=37122", sees=in_kpis, expect=(
        LOGIN, {"A"}, 404, {"A"}, 403, 403, {"A"})),
    # A sensor's page: 404 outside the perimeter, like an unknown sensor.
    row("GET /sensors/jlt-air-01/", (LOGIN, 200, 404, 200, 404, 404, 200)),
    row("GET /sensors/bal-air-01/", (LOGIN, 404, 200, 200, 404, 404, 200)),
    # An alert's page (CAP <web>, e-mails): 404 outside the perimeter, like the API.
    row("GET /alerts/{alert_a}/", (LOGIN, 200, 404, 200, 404, 404, 200)),
    row("GET /alerts/{alert_b}/", (LOGIN, 404, 200, 200, 404, 404, 200)),
    # The PPMS board: operators and admins, the activations of their communes' schools.
    row("GET /ppms/", sees=shown("activation"), expect=(
        LOGIN, {"A", "AB"}, {"B", "AB"}, {"A", "B", "AB"}, 403, 403, {"A", "B", "AB"})),
    row("GET /ppms/sections/", sees=shown("activation"), expect=(
        LOGIN, {"A", "AB"}, {"B", "AB"}, {"A", "B", "AB"}, 403, 403, {"A", "B", "AB"})),
    # The director's pages: only the schools they direct (nobody else has a school page).
    row("GET /ppms/ecole/", sees=shown("school"), expect=(
        LOGIN, 404, 404, 404, {"X"}, {"Y"}, 404)),
    row("GET /ppms/school/0370001A/", sees=shown("school"), expect=(
        LOGIN, 404, 404, 404, {"X"}, 404, 404)),
    row("GET /ppms/school/0370003C/", sees=shown("school"), expect=(
        LOGIN, 404, 404, 404, 404, {"Y"}, 404)),
    row("GET /ppms/school/0370001A/state.json",
        (LOGIN, 404, 404, 404, 200, 404, 404)),
    # Public by design: the browser fetches the service worker and the manifest itself,
    # without a session (ppms/views.py); they hold no data.
    row("GET /ppms/sw.js", (200, 200, 200, 200, 200, 200, 200)),
    row("GET /ppms/manifest.webmanifest", (200, 200, 200, 200, 200, 200, 200)),
    # An activation's address (CAP <web>): the board, 404 to who does not see it.
    row("GET /ppms/activations/{activation_a}/", sees=shown("activation"), expect=(
        LOGIN, {"A", "AB"}, 404, {"A", "B", "AB"}, 403, 403, {"A", "B", "AB"})),
    row("GET /ppms/activations/{activation_b}/", sees=shown("activation"), expect=(
        LOGIN, 404, {"B", "AB"}, {"A", "B", "AB"}, 403, 403, {"A", "B", "AB"})),
    # The after-action report: only the schools the reader sees.
    row("GET /ppms/activations/{activation_a}/rapport/", sees=shown("school"), expect=(
        LOGIN, {"X", "W"}, 404, {"X", "W"}, 403, 403, {"X", "W"})),
    row("GET /ppms/activations/{activation_ab}/rapport/", sees=shown("school"), expect=(
        LOGIN, {"X"}, {"Y"}, {"X", "Y"}, 403, 403, {"X", "Y"})),
    row("GET /ppms/activations/{activation_ab}/rapport.csv", sees=report_csv_schools, expect=(
        LOGIN, {"X"}, {"Y"}, {"X", "Y"}, 403, 403, {"X", "Y"})),
    # Public by design: the load balancer's probe (database only with service=web).
    row("GET /healthz?service=web", (200, 200, 200, 200, 200, 200, 200)),
    # Prometheus: its bearer token (METRICS_TOKEN, unset here) or a staff session.
    row("GET /metrics", (401, 401, 401, 401, 401, 401, 200)),
    # The login page is public; a wrong password gets the form again (Django's form view
    # answers PUT like POST); logging out lands everyone on the login page. The roles try
    # one username in turn: its fifth failure makes the next ones wait (core/signin_throttle.py).
    row("GET /accounts/login/", (200, 200, 200, 200, 200, 200, 200)),
    row("POST /accounts/login/", body={"username": "operateur", "password": "faux"}, expect=(
        200, 200, 200, 200, 429, 429, 429)),
    row("PUT /accounts/login/", body={"username": "operateur", "password": "faux"}, expect=(
        200, 200, 200, 200, 200, 200, 200)),  # no form data in a PUT: nothing is tried
    # The second factor's code step (core/signin.py): without a password accepted, back
    # to the login page; signed in with nothing left to verify, on to the start page.
    row("GET /accounts/code/", (LOGIN, HOME, HOME, HOME, HOME, HOME, HOME)),
    row("POST /accounts/code/", body={"code": "000000"}, expect=(
        LOGIN, HOME, HOME, HOME, HOME, HOME, HOME)),
    # Setting up an authenticator app, or with one renewing the recovery codes.
    row("GET /accounts/double-authentification/", (LOGIN, 200, 200, 200, 200, 200, 200)),
    row("POST /accounts/double-authentification/", body={"action": "recovery"}, expect=(
        LOGIN, 200, 200, 200, 200, 200, 200)),
    row("POST /accounts/logout/", (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN)),
    # The language switch is on every page, the login page included (templates/base.html):
    # public by design, it only sets the language cookie.
    row("POST /i18n/setlang/", body={"language": "en", "next": "/healthz"}, expect=(
        HEALTHZ, HEALTHZ, HEALTHZ, HEALTHZ, HEALTHZ, HEALTHZ, HEALTHZ)),
    # The pages' JavaScript words (static/js/i18n.js): the same for everyone, no data.
    row("GET /jsi18n/", (200, 200, 200, 200, 200, 200, 200)),
    # The API's schema and documentation: for integrators (docs/webhooks.md is theirs
    # too), operators and admins; directors use the pages, not the API's documentation.
    row("GET /api/schema/", (401, 200, 200, 200, 403, 403, 200)),
    row("GET /api/docs/", (401, 200, 200, 200, 403, 403, 200)),

    # --- Sensors API ----------------------------------------------------------------------
    row("GET /api/v1/sensors/", sees=sensors, expect=(
        401, {"A"}, {"B"}, ALL_SENSORS, NONE, NONE, ALL_SENSORS)),
    row("GET /api/v1/sensors/jlt-air-01/", (401, 200, 404, 200, 404, 404, 200)),
    row("GET /api/v1/sensors/jlt-air-01/readings/?metric=pm25",
        (401, 200, 404, 200, 404, 404, 200)),
    row("GET /api/v1/sensors/jlt-air-01/readings/export/?metric=pm25&format=csv",
        (401, 200, 404, 200, 404, 404, 200)),
    row("GET /api/v1/latest/", sees=latest, expect=(
        401, {"A"}, {"B"}, ALL_SENSORS, NONE, NONE, ALL_SENSORS)),
    row("GET /api/v1/rejections/", sees=rejections, expect=(
        401, 403, 403, 403, 403, 403, {"R"})),

    # --- Alerts API -----------------------------------------------------------------------
    row("GET /api/v1/alerts/", sees=alerts, expect=(
        401, {"A"}, {"B"}, {"A", "B"}, NONE, NONE, {"A", "B"})),
    row("GET /api/v1/alerts/export/?format=json", sees=exported_alerts, expect=(
        401, {"A"}, {"B"}, {"A", "B"}, NONE, NONE, {"A", "B"})),
    row("GET /api/v1/alerts/{alert_a}/", (401, 200, 404, 200, 404, 404, 200)),
    row("POST /api/v1/alerts/{alert_a}/acknowledge/", body={"comment": "vu"}, expect=(
        401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/alerts/{alert_a}/comments/", body={"text": "on y va"}, expect=(
        401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/alerts/{alert_a}/resolve/", body={"comment": "réparé"}, expect=(
        401, 200, 404, 200, 403, 403, 200)),
    # Silences: a commune's operators see and end their sensors' ones; a silence of a
    # rule by kind mutes every commune, so only who sees every commune ends it.
    row("GET /api/v1/silences/", sees=silences, expect=(
        401, {"A", "rule"}, {"B", "rule"}, {"A", "B", "rule"}, NONE, NONE,
        {"A", "B", "rule"})),
    row("POST /api/v1/silences/",
        body={"sensor": "jlt-air-01", "ends_at": "{in_an_hour}", "reason": "travaux"},
        expect=(401, 201, 400, 201, 403, 403, 201)),
    row("POST /api/v1/silences/",
        body={"rule": "{rule}", "ends_at": "{in_an_hour}", "reason": "travaux"},
        expect=(401, 400, 400, 201, 403, 403, 201)),
    row("DELETE /api/v1/silences/{silence_a}/", (401, 204, 404, 204, 403, 403, 204)),
    row("DELETE /api/v1/silences/{silence_rule}/", (401, 403, 403, 204, 403, 403, 204)),
    # Rules: admins only.
    row("GET /api/v1/rules/", sees=rules, expect=(
        401, 403, 403, 403, 403, 403, {"PM10", "NO2"})),
    row("POST /api/v1/rules/", body={
        "name": "O3 seuil", "kind": "threshold", "sensor_kind": "air", "metric": "o3",
        "condition": "above", "threshold": 180,
    }, expect=(401, 403, 403, 403, 403, 403, 201)),
    row("GET /api/v1/rules/{rule}/", (401, 403, 403, 403, 403, 403, 200)),
    row("PATCH /api/v1/rules/{rule}/", body={"threshold": 90}, expect=(
        401, 403, 403, 403, 403, 403, 200)),
    row("DELETE /api/v1/rules/{rule_spare}/", (401, 403, 403, 403, 403, 403, 204)),
    # CAP: one alert's document, and the feed of what each user sees.
    row("GET /api/v1/alerts/{alert_a}/cap/", (401, 200, 404, 200, 404, 404, 200)),
    # Incidents (alerts sharing a cause): seen and acted on like their alerts.
    row("GET /api/v1/incidents/", sees=incident_list, expect=(
        401, {"A"}, {"B"}, {"A", "B"}, NONE, NONE, {"A", "B"})),
    row("GET /api/v1/incidents/{incident_a}/", (401, 200, 404, 200, 404, 404, 200)),
    row("POST /api/v1/incidents/{incident_a}/acknowledge-all/",
        body={"version": "{incident_a_version}", "comment": "vu"},
        expect=(401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/incidents/{incident_a}/comments/",
        body={"version": "{incident_a_version}", "text": "on y va"},
        expect=(401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/incidents/{incident_a}/resolve-all/",
        body={"version": "{incident_a_version}", "comment": "réparé"},
        expect=(401, 200, 404, 200, 403, 403, 200)),
    # Each activation's entry counts only the schools the reader sees.
    row("GET /api/v1/cap/feed/", sees=feed_school_counts, expect=(
        401,
        {"activation A: 2", "activation AB: 1"},
        {"activation B: 1", "activation AB: 1"},
        {"activation A: 2", "activation B: 1", "activation AB: 2"},
        NONE, NONE,
        {"activation A: 2", "activation B: 1", "activation AB: 2"})),
    row("GET /api/v1/cap/feed/", sees=in_feed, expect=(
        401,
        {"alert A", "activation A", "activation AB"},
        {"alert B", "activation B", "activation AB"},
        {"alert A", "alert B", "activation A", "activation B", "activation AB"},
        NONE, NONE,
        {"alert A", "alert B", "activation A", "activation B", "activation AB"})),

    # --- PPMS API -------------------------------------------------------------------------
    row("GET /api/v1/schools/", sees=schools, expect=(
        401, {"X", "W"}, {"Y"}, ALL_SCHOOLS, {"X"}, {"Y"}, ALL_SCHOOLS)),
    # Who directs a school is for operators and admins.
    row("GET /api/v1/schools/0370001A/", sees=directors_shown, expect=(
        401, {"directeur"}, 404, {"directeur"}, {"(hidden)"}, 404, {"directeur"})),
    # Only the school's own directors raise its alarm.
    row("POST /api/v1/schools/0370001A/alarm/", body={"scenario": "intrusion"}, expect=(
        401, 403, 404, 403, 201, 404, 403)),
    # Centres d'accueil: an open one is seen by every operator, counted by its commune's.
    row("GET /api/v1/shelters/", sees=shelters, expect=(
        401, {"A", "B open"}, {"B", "B open"}, {"A", "B", "B open"}, NONE, NONE,
        {"A", "B", "B open"})),
    row("POST /api/v1/shelters/{shelter_a}/occupancy/", body={"occupancy": 12}, expect=(
        401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/shelters/{shelter_b_open}/occupancy/", body={"occupancy": 12}, expect=(
        401, 403, 200, 200, 403, 403, 200)),
    row("POST /api/v1/shelters/{shelter_a}/open/", body={"open": True}, expect=(
        401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/shelters/{shelter_b_open}/open/", body={"open": False}, expect=(
        401, 403, 200, 200, 403, 403, 200)),
    # Activations: each sees those concerning a school they see, and within them only
    # those schools; operators start and end them, within their perimeter.
    row("GET /api/v1/ppms/activations/", sees=activations, expect=(
        401, {"A", "AB"}, {"B", "AB"}, {"A", "B", "AB"}, {"A", "AB"}, {"B", "AB"},
        {"A", "B", "AB"})),
    row("POST /api/v1/ppms/activations/",
        body={"scenario": "shelter", "title": "Exercice", "schools": ["0370001A"]},
        expect=(401, 201, 400, 201, 403, 403, 201)),
    row("GET /api/v1/ppms/activations/{activation_a}/", sees=detail_statuses, expect=(
        401, {"X", "W"}, 404, {"X", "W"}, {"X"}, 404, {"X", "W"})),
    row("POST /api/v1/ppms/activations/{activation_a}/end/",
        body={"ordered_by": "Préfecture", "confirmed_schools": ["0370001A", "0370002B"]},
        expect=(401, 200, 404, 200, 403, 403, 200)),
    # The end of alert is the whole incident's (the authorities give it): an operator of
    # any commune concerned gives it, for the other communes' schools too.
    row("POST /api/v1/ppms/activations/{activation_ab}/end/",
        body={"ordered_by": "Préfecture", "confirmed_schools": ["0370001A", "0370003C"]},
        expect=(401, 200, 200, 200, 403, 403, 200)),
    # Cancelling as a mistake, like validating a proposal, is an authority's decision
    # (tests/test_ppms_proposals.py): none of these roles holds it, admins included.
    row("POST /api/v1/ppms/activations/{activation_a}/cancel/", body={"reason": "erreur"},
        expect=(401, 403, 404, 403, 403, 403, 403)),
    # Web Push: every signed-in user's own devices (a bad subscription is a 400).
    row("GET /api/v1/push/", (401, 200, 200, 200, 200, 200, 200)),
    row("POST /api/v1/push/subscriptions/", body={"endpoint": "https://10.0.0.1/"}, expect=(
        401, 400, 400, 400, 400, 400, 400)),
    # Unsubscribing names a device: only its owner's request removes it.
    row("POST /api/v1/push/unsubscribe/", body={"endpoint": OPERATOR_A_DEVICE},
        expect=(401, 204, *["204, but the database did not change"] * 5)),
    # A device's receipt needs the push's own token (a service worker has no session's
    # CSRF token); the SMS gateway's, its bearer token (none is set here: all refused).
    row("POST /api/v1/push/received/", body={"id": 1, "token": "guess"}, expect=(404,) * 7),
    row("POST /api/v1/sms/receipts/", body={"reference": "1", "status": "delivered"},
        expect=(403,) * 7),
    # Proposals: the operators of the communes concerned see them; directors never.
    row("GET /api/v1/ppms/proposals/", sees=proposals, expect=(
        401, {"A"}, {"B"}, {"A", "B"}, 403, 403, {"A", "B"})),
    row("GET /api/v1/ppms/proposals/{proposal_a}/", (401, 200, 404, 200, 403, 403, 200)),
    row("POST /api/v1/ppms/proposals/{proposal_a}/validate/", (
        401, 403, 404, 403, 403, 403, 403)),
    row("POST /api/v1/ppms/proposals/{proposal_a}/dismiss/", body={"reason": "capteur"},
        expect=(401, 403, 404, 403, 403, 403, 403)),
    row("POST /api/v1/ppms/proposals/{proposal_a}/cancel/", body={"reason": "erreur"},
        expect=(401, 403, 404, 403, 403, 403, 403)),
    row("GET /api/v1/ppms/activations/{activation_ab}/", sees=detail_schools, expect=(
        401, {"X"}, {"Y"}, {"X", "Y"}, {"X"}, {"Y"}, {"X", "Y"})),
    row("GET /api/v1/ppms/activations/{activation_ab}/statuses/", sees=statuses, expect=(
        401, {"X"}, {"Y"}, {"X", "Y"}, {"X"}, {"Y"}, {"X", "Y"})),
    # Who was told how: the schools each sees.
    row("GET /api/v1/ppms/activations/{activation_ab}/reach/", sees=statuses, expect=(
        401, {"X"}, {"Y"}, {"X", "Y"}, {"X"}, {"Y"}, {"X", "Y"})),
    # A centre d'accueil's arrivals: operators of the activation's perimeter (activation A
    # sends nobody to a centre: a 400 naming "shelter"); directors are refused first.
    row("POST /api/v1/ppms/activations/{activation_a}/shelter/", body={"arrivals": []},
        expect=(401, 400, 404, 400, 403, 403, 400)),
    # The Vigicrues colour (cleared here: activation A is no flood): operators act.
    row("POST /api/v1/ppms/activations/{activation_a}/vigicrues/", body={"colour": ""},
        expect=(401, 200, 404, 200, 403, 403, 200)),
    # A school's crisis directory: its commune's operators and its own directors.
    row("GET /api/v1/schools/0370001A/directory/", (401, 200, 404, 200, 200, 404, 200)),
    # The page seen: the school's sign of life, so its own directors only.
    row("POST /api/v1/ppms/activations/{activation_a}/statuses/0370001A/seen/", (
        401, 403, 404, 403, 200, 404, 403)),
    # A school's situation: its director, or an operator of its commune on their behalf.
    row("POST /api/v1/ppms/activations/{activation_a}/statuses/0370001A/",
        body={"state": "safe"}, expect=(401, 201, 404, 201, 201, 404, 201)),
    row("POST /api/v1/ppms/activations/{activation_a}/statuses/0370002B/",
        body={"state": "safe"}, expect=(401, 201, 404, 201, 404, 404, 201)),
    row("POST /api/v1/ppms/activations/{activation_ab}/statuses/0370003C/",
        body={"state": "needs_help"}, expect=(401, 404, 201, 201, 404, 201, 201)),
    # The CAP document names only the schools the reader sees (the safety services'
    # copy, sent by webhook, is whole).
    row("GET /api/v1/ppms/activations/{activation_a}/cap/", sees=shown("school"), expect=(
        401, {"X", "W"}, 404, {"X", "W"}, 403, 403, {"X", "W"})),
    row("GET /api/v1/ppms/activations/{activation_ab}/cap/", sees=shown("school"), expect=(
        401, {"X"}, {"Y"}, {"X", "Y"}, 403, 403, {"X", "Y"})),
    row("GET /api/v1/ppms/activations/{activation_ab}/cap/", sees=cap_school_count, expect=(
        401, {"1"}, {"1"}, {"2"}, 403, 403, {"2"})),
    # The public copy: the same readers, the same schools.
    row("GET /api/v1/ppms/activations/{activation_ab}/cap/public/", sees=shown("school"),
        expect=(401, {"X"}, {"Y"}, {"X", "Y"}, 403, 403, {"X", "Y"})),
    # The drills register: operators and admins, their communes' schools.
    row("GET /api/v1/ppms/drills/", sees=drill_register, expect=(
        401, {"X", "W"}, {"Y"}, ALL_SCHOOLS, 403, 403, ALL_SCHOOLS)),
    row("POST /api/v1/ppms/drills/",
        body={"school": "0370001A", "scenario": "shelter", "held_on": "{today}"},
        expect=(401, 201, 400, 201, 403, 403, 201)),
]
# fmt: on

# Routes the matrix does not cover, as {(route, method): why}. None today: what is public
# by design (the login page, the service worker and manifest, /healthz, the language
# switch) has its row saying so. The admin site (/admin/…) is covered by its own tests
# below, which walk every one of its routes. Static files are no route: WhiteNoise serves
# them, public, before any URL is resolved.
EXCLUDED: dict[tuple[str, str], str] = {}


# --- Running a row ------------------------------------------------------------------------

WATCHED_APPS = ("core", "sensors", "alerts", "ppms")
# Not the audit trail: it records the refused attempts too, by design.
UNWATCHED = ("core.AuditEntry",)


def database_state() -> dict:
    """Every row of the CSU apps: a write refused must leave all of them as they were."""
    return {
        model._meta.label: sorted(map(repr, model.objects.values_list()))
        for app in WATCHED_APPS
        for model in apps.get_app_config(app).get_models()
        if model._meta.label not in UNWATCHED
    }


def send(client, row: Row, cast: Cast):
    path = row.path.format(**cast.values)
    body = {
        k: v.format(**cast.values) if isinstance(v, str) else v for k, v in (row.body or {}).items()
    }
    api = urlsplit(path).path.startswith("/api/")
    call = getattr(client, row.method.lower())
    if row.method == "GET":
        return call(path)
    return call(path, body, format="json" if api else "multipart")


def outcome(response, row: Row, cast: Cast):
    if response.status_code in (301, 302, 303, 307, 308):
        return Redirect(urlsplit(response["Location"]).path)
    if row.sees is not None and response.status_code == 200:
        return row.sees(response, cast)
    return response.status_code


def answer(client, row: Row, cast: Cast, judge=outcome):
    """Send the row's request as one role, in a savepoint rolled back afterwards."""
    with transaction.atomic():
        before = database_state() if row.writes else None
        response = send(client, row, cast)
        result = judge(response, row, cast)
        if row.writes:
            changed = database_state() != before
            if changed != (200 <= response.status_code < 300):
                result = f"{response.status_code}, but the database " + (
                    "changed" if changed else "did not change"
                )
        transaction.set_rollback(True)
    return result


@pytest.mark.parametrize("row", MATRIX, ids=[r.request for r in MATRIX])
def test_each_role_gets_its_expected_answer(row, cast, clients):
    actual = {role: answer(clients[role], row, cast) for role in ROLES}

    assert actual == dict(zip(ROLES, row.expect, strict=True))


# --- Without a second factor -------------------------------------------------------------

# Operators, authorities and admins signed in with their password alone (Django's
# force_login: no device verified the session) reach no page but these, and no API call:
# pages send them to set up an authenticator app, the API answers 403 and writes nothing.
# Directors may have no second factor: they get the matrix's answers.
SETUP = Redirect("/accounts/double-authentification/")
REFUSED = "403: second factor required"
OPEN_WITHOUT_SECOND_FACTOR = {
    # Public by design (the browser fetches them without a session).
    "GET /ppms/sw.js",
    "GET /ppms/manifest.webmanifest",
    # Signing in and out, the language, and the second factor's own steps.
    "GET /accounts/login/",
    "POST /accounts/login/",
    "PUT /accounts/login/",
    "GET /accounts/code/",
    "POST /accounts/code/",
    "GET /accounts/double-authentification/",
    "POST /accounts/double-authentification/",
    "POST /accounts/logout/",
    "POST /i18n/setlang/",
    "GET /jsi18n/",
}
WITHOUT_SECOND_FACTOR = (
    "operator A",
    "métropole",
    "authority",
    "admin",
    "director X",
    "director Y",
)
LIKE = {"authority": "operator A"}  # an operator of commune A who also validates


@pytest.fixture
def authority(django_user_model, commune):
    user = make_user(django_user_model, "autorite", role=roles.OPERATORS)
    user.groups.add(Group.objects.get_or_create(name=roles.AUTHORITIES)[0])
    Operator.objects.create(user=user).communes.add(commune)
    return user


@pytest.fixture
def password_only(users, authority):
    """One client per role, signed in with the password alone (no device)."""
    clients = {}
    for role in WITHOUT_SECOND_FACTOR:
        client = APIClient()
        client.raise_request_exception = False
        client.force_login(authority if role == "authority" else users[role])
        clients[role] = client
    return clients


def refused_for_second_factor(response, row: Row, cast: Cast):
    if response.status_code == 403 and row.path.startswith("/api/"):
        refusal = response.json().get("code")
        return REFUSED if refusal == "second_factor_required" else 403
    return outcome(response, row, cast)


def expected_without_second_factor(row: Row, role: str):
    expected = row.expect[ROLES.index(LIKE.get(role, role))]
    if role.startswith("director") or row.request in OPEN_WITHOUT_SECOND_FACTOR:
        return expected
    return REFUSED if row.path.startswith("/api/") else SETUP


@pytest.mark.parametrize("row", MATRIX, ids=[r.request for r in MATRIX])
def test_without_a_second_factor_only_directors_reach_pages_and_the_api(row, cast, password_only):
    actual = {
        role: answer(password_only[role], row, cast, judge=refused_for_second_factor)
        for role in WITHOUT_SECOND_FACTOR
    }

    expected = {role: expected_without_second_factor(row, role) for role in actual}
    if row.request == "POST /accounts/login/":
        # One username tried by each role in turn: its fifth failure makes the next wait.
        expected = {role: 200 if n < 4 else 429 for n, role in enumerate(WITHOUT_SECOND_FACTOR)}
    assert actual == expected


def test_without_a_second_factor_no_admin_page_opens(users):
    client = APIClient()
    client.force_login(users["admin"])

    for path in ("/admin/", "/admin/auth/user/", "/admin/sensors/sensor/add/"):
        assert outcome(client.get(path), Row(f"GET {path}", ()), None) == Redirect(
            "/accounts/double-authentification/"
        ), path


# --- Every route has its row --------------------------------------------------------------


def join_route(prefix: str, route: str) -> str:
    """Join like Django's resolver does, so routes compare with ``resolve(path).route``."""
    return prefix + route.removeprefix("^") if prefix else route


def every_route(patterns=None, prefix: str = ""):
    """(route, callback) of every URL pattern of the project."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = join_route(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from every_route(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


ANY = "any method"


def methods_of(callback) -> set[str]:
    """The methods a view answers: known for DRF and class-based views, not functions."""
    if getattr(callback, "actions", None):  # a DRF viewset's route
        # HEAD answers like GET (DRF adds it to the actions on the first request).
        allowed = set(callback.cls.http_method_names) - {"head", "options"}
        return {method.upper() for method in callback.actions if method in allowed}
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        return {
            method.upper()
            for method in view_class.http_method_names
            if method not in ("head", "options") and hasattr(view_class, method)
        }
    return {ANY}  # a function view: a row of any method covers it


def route_of(path: str) -> str:
    """The route a row's request resolves to (any id will do for the cast's objects)."""
    ids = defaultdict(lambda: "1")
    return resolve(urlsplit(path.format_map(ids)).path).route


def test_every_route_has_its_row_in_the_matrix():
    routes = {
        (route, method)
        for route, callback in every_route()
        if not route.startswith("admin/")
        for method in methods_of(callback)
    }
    covered = {(route_of(r.path), method) for r in MATRIX for method in (r.method, ANY)}

    assert sorted(routes - covered - EXCLUDED.keys()) == []


def test_every_exclusion_still_names_a_route():
    routes = {(route, m) for route, callback in every_route() for m in methods_of(callback)}

    assert sorted(EXCLUDED.keys() - routes) == []


# --- The admin site -----------------------------------------------------------------------

# (changelist, add form) for the admin role. Readings, latest values and rejected
# messages are read-only (core.roles); so are the alerts, their webhook deliveries and
# the PPMS records and the audit trail (failed sign-ins included), written by the
# application.
ADMIN_SCREENS = {
    "auth.group": (200, 403),  # the role groups: seen, changed only by a superuser
    "auth.user": (200, 200),
    "core.apitoken": (200, 200),  # issued and deleted, never changed (tests/test_api_tokens.py)
    "core.auditentry": (200, 403),
    "sensors.commune": (200, 200),
    "sensors.zone": (200, 200),
    "sensors.sensor": (200, 200),
    "sensors.latestreading": (200, 403),
    "sensors.rejectedmessage": (200, 403),
    "alerts.rule": (200, 200),
    "alerts.alert": (200, 403),
    "alerts.silence": (200, 200),
    "core.webhook": (200, 200),
    "core.webhookdelivery": (200, 403),
    "core.notification": (200, 403),
    "core.devicepush": (200, 403),
    "core.smsmessage": (200, 403),
    "ppms.school": (200, 200),
    "ppms.shelter": (200, 200),
    "ppms.drill": (200, 200),
    "ppms.activation": (200, 403),
    "ppms.schoolstatus": (200, 403),
    "ppms.statusupdate": (200, 403),
    "ppms.ppmswebhook": (200, 200),
    "ppms.ruletrigger": (200, 200),
    "ppms.communepolicy": (200, 200),
    "ppms.proposal": (200, 403),
    "ppms.schoolholiday": (200, 200),
    "ppms.escalationstep": (200, 200),
}


def example_path(route: str) -> str:
    """A path that resolves to an admin ``route``."""
    path = re.sub(r"\(\?P<app_label>[^)]*\)", "sensors", route)
    path = path.replace("(?P<url>.*)$", "nowhere/")
    path = re.sub(r"<(?:path:)?\w+>", "1", path)
    return "/" + path.removeprefix("^").removesuffix("$")


def test_the_admin_site_turns_away_everyone_but_staff_on_every_route(users, clients):
    """Anonymous visitors go to a login page, users who are not staff to the admin's."""
    expected, actual = {}, {}
    for route, _callback in every_route():
        if not route.startswith("admin/"):
            continue
        path = example_path(route)
        assert resolve(path).route == route, path
        for role in ROLES[:-1]:
            if route == "admin/login/":
                # The site's sign-in, with its second factor: the admin's has none.
                expect = "a login page" if role == "anonymous" else LOGIN
            elif role == "anonymous":
                expect = "a login page"
            elif route == "admin/logout/":
                expect = Redirect("/admin/")
            else:
                expect = Redirect("/admin/login/")
            response = clients[role].get(path)
            got = outcome(response, Row(f"GET {path}", ()), None)
            if got in (LOGIN, Redirect("/admin/login/")) and role == "anonymous":
                # The admin site's own views send to its login page, a model's to the site's.
                got = "a login page"
            if got != expect:
                actual[route, role], expected[route, role] = got, expect

    assert actual == expected


def test_the_admin_role_opens_the_screens_of_its_groups_permissions(users, clients, cast):
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == ADMIN_SCREENS.keys(), "a model registered in the admin needs its row"
    client = clients["admin"]
    actual = {}
    for label, model in sorted((m._meta.label_lower, m) for m in admin.site._registry):
        app, name = model._meta.app_label, model._meta.model_name
        actual[label] = (
            client.get(f"/admin/{app}/{name}/").status_code,
            client.get(f"/admin/{app}/{name}/add/").status_code,
        )

    assert actual == ADMIN_SCREENS
    assert client.get("/admin/").status_code == 200


# --- The websocket ------------------------------------------------------------------------

# Generous: a busy machine may take seconds to connect; nothing waits this long if it works.
TIMEOUT_S = 20
END = {"type": "end of the test"}


async def socket_of(user):
    """A websocket logged in like a browser: ``user``'s session cookie (None: anonymous)."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        client = APIClient()
        await sync_to_async(sign_in)(client, user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT_S)
    if user is None:  # refused: accepted, then closed at once with its code
        closed = await communicator.receive_output(timeout=TIMEOUT_S)
        assert closed["type"] == "websocket.close", closed
        return communicator, (False, closed["code"])
    return communicator, (connected, None)


def send_end(communes) -> None:
    """Mark the end of the events on every group a browser may be in.

    A channel receives in the order sent: a browser that gets the mark has got everything
    sent before it, so nothing is missed by waiting too little on a busy machine.
    """
    for commune in communes:
        live.send(live.commune_group(commune.pk), END)
        live.send(live.directors_group(commune.pk), END)


async def received(communicator) -> list[dict]:
    """The events before the end mark."""
    events = []
    while (event := await communicator.receive_json_from(timeout=TIMEOUT_S)) != END:
        events.append(event)
    return events


# What each role hears. Readings go to the commune's operators; a PPMS activation to
# its schools' communes and to those schools' directors, not to the directors of the
# other schools of the commune (school W has none); a school's situation, given in the
# activation of schools X and Y, to its commune's operators and its directors only.
EVERYTHING = {
    "reading A",
    "reading B",
    "activation X",
    "activation W",
    "activation Y",
    "activation XY",
    "status X",
}
WEBSOCKET = {
    "anonymous": f"refused, closed with {CLOSE_UNAUTHENTICATED}",
    "operator A": {"reading A", "activation X", "activation W", "activation XY", "status X"},
    "operator B": {"reading B", "activation Y", "activation XY"},
    "métropole": EVERYTHING,
    "director X": {"activation X", "activation XY", "status X"},
    "director Y": {"activation Y", "activation XY"},
    "admin": EVERYTHING,
}


@pytest.mark.django_db(transaction=True)
async def test_each_role_hears_on_the_websocket_only_what_it_may_see(
    users, commune, other_commune, school
):
    sensor_a = await sync_to_async(make_sensor)(commune, "jlt-air-01")
    sensor_b = await sync_to_async(make_sensor)(other_commune, "bal-air-01")
    school_w = await sync_to_async(make_school)(commune, "0370002B", name="École du Morier")
    school_y = await sync_to_async(School.objects.get)(uai="0370003C")
    heard, sockets, refused = {}, {}, []
    for role in ROLES:
        communicator, (connected, code) = await socket_of(users[role])
        if connected:
            sockets[role] = communicator
        else:
            heard[role] = f"refused, closed with {code}"
            refused.append(communicator)

    coalescer = ReadingsCoalescer()
    now = timezone.now()
    coalescer.add([StoredReading(sensor_a.pk, "pm25", now, 12.0)])
    coalescer.add([StoredReading(sensor_b.pk, "pm25", now, 14.0)])
    await sync_to_async(coalescer.flush)()
    for schools, title in (([school], "X"), ([school_w], "W"), ([school_y], "Y")):
        # Committed (transactional test): announced to the browsers on commit.
        await sync_to_async(ppms_activate)(
            scenario="shelter", title=title, source="operator", schools=schools
        )
    both = await sync_to_async(ppms_activate)(
        scenario="shelter", title="XY", source="operator", schools=[school, school_y]
    )
    status_x = await sync_to_async(both.statuses.get)(school=school)
    await sync_to_async(ppms_report)(status=status_x, report={"state": "safe"}, by=None)
    await sync_to_async(send_end)([commune, other_commune])

    refs = {"jlt-air-01": "A", "bal-air-01": "B", "0370001A": "X", "0370003C": "Y"}
    for role, communicator in sockets.items():
        heard[role] = set()
        for event in await received(communicator):
            if event["type"] == "readings":
                heard[role] |= {f"reading {refs[item['sensor']]}" for item in event["items"]}
            elif event["event"] == "activated":
                heard[role].add(f"activation {event['activation']['title']}")
            elif event["event"] == "status":
                heard[role].add(f"status {refs[event['status']['school']]}")
            else:  # unexpected: shown whole in the assertion
                heard[role].add(json.dumps(event, sort_keys=True))
    # All at once, not in turn: on the Redis layer a consumer sometimes stops only when
    # the timeout cancels it (redis-py's asyncio client loses its first cancellation on
    # Python 3.11, not on 3.12), and the waits added up to 40-60 s.
    await asyncio.gather(
        *(socket.disconnect(timeout=TIMEOUT_S) for socket in [*refused, *sockets.values()])
    )

    assert heard == WEBSOCKET
