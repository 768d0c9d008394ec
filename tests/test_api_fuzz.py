"""Fuzz the REST API from its OpenAPI schema with schemathesis.

Every operation of ``/api/schema/`` is called with generated input, valid and invalid,
as an admin (sees everything, may write) and as a school director (one school, few
rights), against a small cast: two communes, sensors with readings, a rule and its alert,
schools, an active PPMS activation, a shelter, a silence, a drill. Path parameters are
either generated or the cast's, so the actions and their bodies reach real objects too.

What must hold for every call: no 5xx; the status code, content type and body are those
the schema documents; invalid input is refused with a 4xx; an anonymous call is refused;
every 400 is a JSON object of messages under the names of the request's fields (or
``detail``). When the schema is what is wrong, the schema is fixed (``core.openapi``).

The admin runs schemathesis' coverage phase (boundary values, wrong types, missing
fields, unexpected methods and content types) and its fuzzing phase; the director, whose
calls mostly stop at a 403, the fuzzing phase only. Examples are derandomized, so a run
is repeatable.

The schema is generated in-process by drf-spectacular at collection time, when the
database is out of reach; a test checks that ``/api/schema/`` serves this very document.
"""

import json
import os
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from alerts.models import Silence
from ppms.models import Drill, Shelter
from ppms.services import ppms_activate
from sensors.models import LatestReading, Reading, RejectedMessage, Zone
from tests.alerting import feed, make_rule
from tests.conftest import make_school, make_sensor, make_user


def generated_schema() -> dict:
    """The document ``/api/schema/`` serves, as plain JSON."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


SCHEMA_DOCUMENT = generated_schema()
WSGI_APP = get_wsgi_application()

# The cast of the running test's path parameters, by path prefix (see ``cast``).
CAST_PATHS: dict[str, dict[str, str]] = {}


def cast_path_parameters(path: str) -> dict[str, str]:
    """The path parameters of ``path`` that name an object of the current cast."""
    for prefix, parameters in CAST_PATHS.items():
        if path.startswith(prefix):
            return parameters
    return {}


def on_the_cast(context, case):
    """One case in two takes the cast's path parameters instead of generated ones.

    Generated identifiers almost never exist: without this, the actions and their bodies
    would only ever meet a 404.
    """
    cast = cast_path_parameters(context.operation.path)
    if not cast or not case.path_parameters:
        return st.just(case)
    generated = case.path_parameters.items()

    def choose(chosen: bool):
        if chosen:
            # Assigned, not updated in place: schemathesis then judges the case anew (the
            # parameters as the strings they are on the wire).
            case.path_parameters = {name: cast.get(name, value) for name, value in generated}
        return case

    return st.booleans().map(choose)


def fuzzed_schema(**config):
    """The API's schema, called in-process through WSGI, the cast's objects mixed in."""
    schema = schemathesis.openapi.from_dict(
        SCHEMA_DOCUMENT, config=schemathesis.Config.from_dict(config)
    )
    schema.app = WSGI_APP
    schema.hook("flatmap_case")(on_the_cast)
    return schema


admin_schema = fuzzed_schema()
director_schema = fuzzed_schema(phases={"coverage": {"enabled": False}})


# --- Checks -----------------------------------------------------------------------------


def bad_input_names_its_fields(ctx, response, case):
    """A 400 is a JSON object of messages, each under the field it is about (or detail)."""
    if response.status_code != 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]  # wire form: lower-case
    assert content_type == "application/json", f"400 in {content_type!r}: {response.text[:200]}"
    body = response.json()
    assert isinstance(body, dict) and body, f"400 without a message per field: {body!r}"
    fields = request_fields(case.operation.path, case.method) | {"detail", "non_field_errors"}
    for name, messages in body.items():
        assert name in fields, f"400 names {name!r}, not a field of the request: {body!r}"
        assert_messages(messages, body)
    return True


def request_fields(path: str, method: str) -> set[str]:
    """The names of an operation's parameters and of its body's properties."""
    operation = SCHEMA_DOCUMENT["paths"][path][method.lower()]
    names = {parameter["name"] for parameter in operation.get("parameters", [])}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = media["schema"]
        if "$ref" in body:
            body = SCHEMA_DOCUMENT["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        names |= set(body.get("properties", {}))
    return names


def assert_messages(messages, body):
    if isinstance(messages, str):
        assert messages.strip(), f"an empty message: {body!r}"
    elif isinstance(messages, list):
        assert messages, f"an empty list of messages: {body!r}"
        for message in messages:
            assert_messages(message, body)
    elif isinstance(messages, dict):  # a nested field, or a list's items by index
        assert messages, f"an empty object of messages: {body!r}"
        for message in messages.values():
            assert_messages(message, body)
    else:
        raise AssertionError(f"a message that is not text: {messages!r} in {body!r}")


# positive_data_acceptance is left out: input valid by the schema is rightly refused when
# the object is unknown (404), out of scope (403) or inconsistent (400: from after to).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
    bad_input_names_its_fields,
]


def trimmed(value):
    """``value`` with the surrounding whitespace of its strings removed, as DRF reads it."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [trimmed(item) for item in value]
    if isinstance(value, dict):
        return {key: trimmed(item) for key, item in value.items()}
    return value


def checks_for(case) -> list:
    """CHECKS, less the refusal of invalid input when only trimming makes the input valid.

    DRF strips the whitespace around a string before checking its length: a string one
    character over ``maxLength`` with a space around it is rightly taken, which the
    schema (JSON Schema has no "after trimming") cannot say.
    """
    body = case.body
    if not isinstance(body, dict | list) or trimmed(body) == body or case.meta is None:
        return CHECKS
    case.body = trimmed(body)  # schemathesis judges a changed case anew
    valid_once_trimmed = case.meta.generation.mode.is_positive
    case.body = body
    if valid_once_trimmed:
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


FUZZ = settings(
    # 20 keeps the file under 2 minutes on 2 cores; CSU_FUZZ_EXAMPLES=200 digs deeper.
    max_examples=int(os.environ.get("CSU_FUZZ_EXAMPLES", "20")),
    deadline=None,
    derandomize=True,
    database=None,  # leave no .hypothesis/ directory in the tree
    suppress_health_check=list(HealthCheck),
)


# --- The cast ---------------------------------------------------------------------------


@pytest.fixture
def wsgi_in_test_transaction(db):
    """Keep the test's database connection across the app's requests.

    At the end of each request Django's handler closes a connection that is not in
    autocommit, which the test's transaction is not; its test client unhooks that closing
    in the same way.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def cast(
    wsgi_in_test_transaction,
    settings,
    django_user_model,
    commune,
    other_commune,
    flood_zone,
    operator,
):
    """A commune with something behind every endpoint; the callers' token headers."""
    # The fuzzer calls like the runaway script the rate limits stop (tests/
    # test_api_throttling.py): lifted, so that every case reaches the view.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"write": None, "export": None},
    }
    now = timezone.now()
    sensor = make_sensor(commune)
    sensor.zones.add(flood_zone)
    make_sensor(other_commune, ref="bal-eau-01", kind="water")
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, metric="pm25", ts=start + timedelta(minutes=i), value=10 + i)
        for i in range(30)
    )
    LatestReading.objects.create(sensor=sensor, metric="pm25", ts=start, value=12.5)
    RejectedMessage.objects.create(
        topic="csu/ghost/readings", sensor_ref="ghost", reason="unknown_sensor"
    )
    rule = make_rule()
    [alert] = feed(sensor, [85])
    school = make_school(commune)
    school.zones.add(flood_zone)
    make_school(other_commune, uai="0370003C", name="École de Ballan")
    director = make_user(django_user_model, "directeur", role="directors")
    school.directors.add(director)
    activation = ppms_activate(
        scenario="confinement", title="Nuage toxique", source="operator", schools=[school]
    )
    shelter = Shelter.objects.create(
        name="Gymnase", commune=commune, latitude=47.34, longitude=0.67, capacity=120
    )
    silence = Silence.objects.create(
        sensor=sensor,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        reason="Maintenance",
        created_by=operator,
    )
    Drill.objects.create(school=school, scenario="intrusion", held_on=now.date())
    Zone.objects.create(commune=other_commune, name="Centre")
    admin = make_user(django_user_model, "admin-csu", is_staff=True)

    CAST_PATHS.update(
        {
            "/api/v1/alerts/{id}": {"id": str(alert.pk)},
            "/api/v1/ppms/activations/{id}": {"id": str(activation.pk), "uai": school.uai},
            "/api/v1/rules/{id}": {"id": str(rule.pk)},
            "/api/v1/schools/{uai}": {"uai": school.uai},
            "/api/v1/sensors/{ref}": {"ref": sensor.ref},
            "/api/v1/shelters/{id}": {"id": str(shelter.pk)},
            "/api/v1/silences/{id}": {"id": str(silence.pk)},
        }
    )
    yield {
        "admin": {"Authorization": f"Token {Token.objects.create(user=admin).key}"},
        "director": {"Authorization": f"Token {Token.objects.create(user=director).key}"},
    }
    CAST_PATHS.clear()


# --- Tests ------------------------------------------------------------------------------


def test_the_fuzzed_schema_is_the_one_the_api_serves(db, django_user_model):
    api = APIClient()
    api.force_login(make_user(django_user_model, "integrateur"))

    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert json.loads(response.content) == SCHEMA_DOCUMENT


# The role is a pytest parameter, not a constant: it also gives each operation's test its
# own id ("…[POST /api/v1/rules/][admin]"), which schemathesis' items lack otherwise.
@pytest.mark.parametrize("role", ["admin"])
@FUZZ
@admin_schema.parametrize()
def test_no_input_breaks_the_api_for_an_admin(case, cast, role):
    case.call_and_validate(headers=cast[role], checks=checks_for(case))


@pytest.mark.parametrize("role", ["director"])
@FUZZ
@director_schema.parametrize()
def test_no_input_breaks_the_api_for_a_director(case, cast, role):
    case.call_and_validate(headers=cast[role], checks=checks_for(case))

