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

Then what schemathesis leaves alone: hostile path parameters (huge, negative and
non-numeric ids, unicode, NUL and percent-encoded bytes, 10,000 characters, path
traversal) in every route that has one — the API's from its schema, the pages' from the
URL resolver — and hostile headers (Authorization, Content-Type, Content-Length, Accept,
Accept-Language, If-None-Match, X-Forwarded-*, Origin, cookies, a header of a megabyte)
on every API operation, by token and by session with CSRF checks, and on every page,
CAP document and feed: never a 5xx, and under /api/ every 4xx in JSON.
"""

import json
import os
import re
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
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
from ppms.models import Activation, Drill, School, Shelter
from ppms.services import ppms_activate
from sensors.models import LatestReading, Reading, RejectedMessage, Sensor, Zone
from tests.alerting import feed, make_rule
from tests.conftest import api_token, make_school, make_sensor, make_user, sign_in


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


def typed(name: str, value: str) -> str | int:
    return int(value) if name == "id" else value


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
            # Assigned, not updated in place: schemathesis then judges the case anew, so
            # the cast's values take the schema's types (an ``id`` is an integer).
            case.path_parameters = {
                name: typed(name, cast[name]) if name in cast else value
                for name, value in generated
            }
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


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def checks_for(case) -> list:
    """CHECKS, less the refusal of invalid input when only trimming makes the input valid,
    or when the body is sent as a form.

    DRF strips the whitespace around a string before checking its length: a string one
    character over ``maxLength`` with a space around it is rightly taken, which the
    schema (JSON Schema has no "after trimming") cannot say.
    """
    body = case.body
    if (case.media_type or "").startswith(FORM_TYPES):
        # A form carries strings only, no array nor boolean: schemathesis' ``{"open": 3}``
        # arrives as the valid ``open=3``, ``[]`` as an empty form, ``true`` as a
        # multipart part without a header, which Django reads as no field. Invalid data
        # is judged on JSON bodies, where types are kept.
        return [check for check in CHECKS if check is not negative_data_rejection]
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
    # The fuzzer calls like the runaway script the rate limits stop: lifted, so that every
    # case reaches the view (tests/test_api_throttling.py tests the limits).
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
        "admin": {"Authorization": f"Token {api_token(admin)}"},
        "director": {"Authorization": f"Token {api_token(director)}"},
    }
    CAST_PATHS.clear()


# --- Tests ------------------------------------------------------------------------------


def test_the_fuzzed_schema_is_the_one_the_api_serves(db, django_user_model):
    api = APIClient()
    sign_in(api, make_user(django_user_model, "integrateur"))

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


# --- Path parameters and headers ----------------------------------------------------------
#
# schemathesis generates path parameters that match their schema, and sends the headers
# it needs. Here every route with a path parameter — the API's from its schema, the
# pages' from the URL resolver — is called with hostile values in each parameter (the
# others the cast's, so that the value reaches the lookup), and every API operation, page,
# CAP document and feed with hostile headers. Nothing may answer 5xx; the API answers
# 4xx in JSON.

PATH_VALUES = [
    "9" * 30,  # beyond any integer column
    str(2**63),  # one past PostgreSQL's bigint
    "-1",
    "-" + "9" * 25,
    "0",
    "abc",
    "1.5",
    "1e3",
    "été",
    "%C3%A9t%C3%A9",
    "%F0%9F%98%80",
    "%FF%FE",  # bytes that are not UTF-8
    "%00",
    "ab%00cd",
    "%0D%0A",
    "x" * 10_000,
    "9" * 10_000,
    "..",
    "%2e%2e",
    "..%2F..%2Fetc%2Fpasswd",
    "%2F",
    "%5C..%5C",
    "%",
    "%zz",
    "%20",
    "%3Cscript%3E",
    "'%22",
    "{id}",
]


def latin1(text: str) -> str:
    """``text`` as a WSGI server hands over a header it received in UTF-8."""
    return text.encode().decode("latin-1")


# name → (headers as WSGI environ keys, content type, body). None: the request's own.
HEADERS = {
    "authorization-non-ascii": ({"HTTP_AUTHORIZATION": latin1("Token jéton-😀")}, None, None),
    "authorization-token-alone": ({"HTTP_AUTHORIZATION": "Token"}, None, None),
    "authorization-token-three-words": ({"HTTP_AUTHORIZATION": "Token a b"}, None, None),
    "authorization-bearer": ({"HTTP_AUTHORIZATION": "Bearer abc.def.ghi"}, None, None),
    "authorization-basic-garbage": ({"HTTP_AUTHORIZATION": "Basic %%%==="}, None, None),
    "authorization-control-characters": ({"HTTP_AUTHORIZATION": "Token \x01\x7f"}, None, None),
    "authorization-huge": ({"HTTP_AUTHORIZATION": "Token " + "x" * 100_000}, None, None),
    "huge-header": ({"HTTP_X_PADDING": "a" * 1_000_000}, None, None),
    "cookie-garbage": (
        {"HTTP_COOKIE": latin1('sessionid="é\\"; csrftoken=') + "x" * 5_000},
        None,
        None,
    ),
    "content-type-unknown-charset": ({}, "application/json; charset=klingon", "{}"),
    "content-type-multipart-without-boundary": ({}, "multipart/form-data", "x"),
    "content-type-multipart-huge-boundary": (
        {},
        "multipart/form-data; boundary=" + "-" * 5_000,
        "garbage",
    ),
    "content-type-text": ({}, "text/plain", "hello"),
    "content-type-garbage": ({}, latin1("é/ü; ;;="), "{}"),
    "content-type-empty": ({}, "", "{}"),
    "json-not-utf8": ({}, "application/json", b"\xff\xfe\xfd"),
    "json-utf16-declared": ({}, "application/json; charset=utf-16", "{}"),
    "form-garbage": ({}, "application/x-www-form-urlencoded", "%zz=%%&a=%FF"),
    "content-length-garbage": ({"CONTENT_LENGTH": "abc"}, None, None),
    "content-length-negative": ({"CONTENT_LENGTH": "-1"}, None, None),
    "accept-html": ({"HTTP_ACCEPT": "text/html"}, None, None),
    "accept-xml": ({"HTTP_ACCEPT": "application/xml"}, None, None),
    "accept-garbage": ({"HTTP_ACCEPT": "*/*;q=abc, text/html;q=, ;;"}, None, None),
    "accept-non-ascii": ({"HTTP_ACCEPT": latin1("é/é")}, None, None),
    "accept-language-garbage": (
        {"HTTP_ACCEPT_LANGUAGE": latin1("xx-ÿÿ;q=2, *;q=abc, ,,;;q==")},
        None,
        None,
    ),
    "accept-language-huge": ({"HTTP_ACCEPT_LANGUAGE": "fr," * 5_000}, None, None),
    "if-none-match-garbage": ({"HTTP_IF_NONE_MATCH": '"abc", W/", *, ' + "x" * 5_000}, None, None),
    "if-modified-since-garbage": (
        {"HTTP_IF_MODIFIED_SINCE": "Mon, 99 Foo 99999 99:99:99 GMT"},
        None,
        None,
    ),
    "x-forwarded-for-garbage": (
        {"HTTP_X_FORWARDED_FOR": latin1("999.999.999.999, ::::, é, ") + "1," * 1_000},
        None,
        None,
    ),
    "x-forwarded-proto-and-host-garbage": (
        {"HTTP_X_FORWARDED_PROTO": "javascript", "HTTP_X_FORWARDED_HOST": "evil:99999"},
        None,
        None,
    ),
    "origin-null": ({"HTTP_ORIGIN": "null"}, None, None),
    "origin-garbage": ({"HTTP_ORIGIN": latin1("http://[::1"), "HTTP_REFERER": "é://"}, None, None),
    "origin-huge": ({"HTTP_ORIGIN": "https://" + "x" * 10_000}, None, None),
}


def api_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation of the API's schema."""
    return [
        (method.upper(), path)
        for path, operations in SCHEMA_DOCUMENT["paths"].items()
        for method in operations
    ]


def resolver_routes(patterns=None, prefix=""):
    """(route, pattern) of every URL the resolver holds, ``api/v1/^alerts/(?P<pk>…``."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from resolver_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def page_routes() -> list[str]:
    """The pages' routes as the URL resolver holds them (``<int:pk>``…), the admin aside."""
    return [
        "/" + route
        for route, pattern in resolver_routes()
        if isinstance(pattern.pattern, RoutePattern) and not route.startswith(("admin/", "api/v1/"))
    ]


def test_the_schema_holds_every_api_route_the_resolver_has():
    """So that taking the API's routes from the schema leaves none out of the fuzzing."""
    sample = {"id": "1", "uai": "0370001A", "ref": "jlt-air-01"}
    in_schema = {resolve(filled(route, sample)).url_name for _method, route in api_operations()}

    in_resolver = {
        pattern.name for route, pattern in resolver_routes() if route.startswith("api/v1/")
    }

    assert in_resolver - in_schema == set()


PARAMETER = re.compile(r"\{(\w+)\}|<(?:\w+:)?(\w+)>")


def parameters_of(route: str) -> list[str]:
    return [a or b for a, b in PARAMETER.findall(route)]


def filled(route: str, values: dict[str, str]) -> str:
    """``route`` with its parameters taken from ``values`` (1 for one not there)."""
    return PARAMETER.sub(lambda m: values.get(m.group(1) or m.group(2), "1"), route)


@pytest.fixture
def pages_cast(cast, commune, operator):
    """The pages' path parameters naming the cast's objects, and the operator's session."""
    sensor = Sensor.objects.get(ref="jlt-air-01")
    school = School.objects.get(uai="0370001A")
    activation = Activation.objects.get(statuses__school=school)
    client = Client()
    sign_in(client, operator)
    return client, {"ref": sensor.ref, "uai": school.uai, "pk": str(activation.pk)}


def body_for(method: str) -> dict:
    if method in ("GET", "DELETE"):
        return {}
    return {"data": "{}", "content_type": "application/json"}


def assert_clear_answer(response, method: str, path: str, what: str) -> None:
    where = f"{method} {path[:120]} ({what})"
    # /healthz answers 503 when a service is down (no broker on a developer's machine).
    down = path == "/healthz" and response.status_code == 503
    assert response.status_code < 500 or down, f"{where}: {response.status_code}"
    if not path.startswith("/api/") or response.status_code < 400:
        return
    content_type = response.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"{where}: {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and body, f"{where}: {body!r}"


@pytest.mark.parametrize("value", PATH_VALUES, ids=lambda value: value[:20])
def test_no_path_parameter_breaks_the_api(cast, value):
    api = APIClient()
    sent = 0
    for method, route in api_operations():
        cast_values = cast_path_parameters(route)
        for name in parameters_of(route):
            path = filled(route, {**cast_values, name: value})
            response = api.generic(method, path, **body_for(method), **env(cast["admin"]))
            assert_clear_answer(response, method, path, f"{name}={value[:20]}")
            sent += 1
    assert sent >= 30  # every operation with a path parameter, each of them


@pytest.mark.parametrize("value", PATH_VALUES, ids=lambda value: value[:20])
def test_no_path_parameter_breaks_the_pages(pages_cast, value):
    client, cast_values = pages_cast
    routes = [route for route in page_routes() if parameters_of(route)]
    for route in routes:
        for name in parameters_of(route):
            path = filled(route, {**cast_values, name: value})
            assert_clear_answer(client.get(path), "GET", path, f"{name}={value[:20]}")
    assert len(routes) >= 4


@pytest.mark.parametrize("case", HEADERS)
def test_no_header_breaks_the_api(cast, case):
    headers, content_type, data = HEADERS[case]
    api = APIClient()
    for method, route in api_operations():
        path = filled(route, cast_path_parameters(route))
        request = body_for(method)
        if content_type is not None:
            request = {"data": data, "content_type": content_type}
        response = api.generic(method, path, **request, **{**env(cast["admin"]), **headers})
        assert_clear_answer(response, method, path, case)


@pytest.mark.parametrize("case", HEADERS)
def test_no_header_breaks_a_session_with_csrf_checks(cast, operator, case):
    """Signed in by session, where DRF checks the CSRF token and the Origin of writes."""
    headers, content_type, data = HEADERS[case]
    api = APIClient(enforce_csrf_checks=True)
    sign_in(api, operator)
    for method, route in api_operations():
        path = filled(route, cast_path_parameters(route))
        request = body_for(method)
        if content_type is not None:
            request = {"data": data, "content_type": content_type}
        assert_clear_answer(api.generic(method, path, **request, **headers), method, path, case)


@pytest.mark.parametrize("case", HEADERS)
def test_no_header_breaks_the_pages(pages_cast, case):
    client, cast_values = pages_cast
    headers, content_type, data = HEADERS[case]
    for route in page_routes():
        path = filled(route, cast_values)
        assert_clear_answer(client.get(path, **headers), "GET", path, case)
        request = {"data": data or "", "content_type": content_type or "text/plain"}
        assert_clear_answer(client.generic("POST", path, **request, **headers), "POST", path, case)


def env(headers: dict[str, str]) -> dict[str, str]:
    """Headers as WSGI environ keys: Authorization → HTTP_AUTHORIZATION."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
