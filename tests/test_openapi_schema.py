"""The OpenAPI document integrators build on: valid, every refusal with its body, one type
per identifier."""

import json
from collections import defaultdict

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_spec_validator import validate

REFUSALS = ("400", "401", "403", "404", "409")


def schema() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_is_a_valid_openapi_document():
    validate(schema())  # raises on the first error


def test_every_refusal_documents_its_json_body():
    document = schema()
    components = document["components"]["schemas"]

    bare = []
    for name, operation in operations(document):
        for code in REFUSALS:
            response = operation["responses"].get(code)
            if response is None:
                continue
            body = response.get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                bare.append(f"{name} {code}")
            elif "$ref" in body:
                assert body["$ref"].rsplit("/", 1)[1] in components

    assert bare == []
    assert components["Error"]["required"] == ["detail"]


def test_a_refusal_without_a_field_is_an_error_and_a_bad_input_names_its_fields():
    document = schema()
    responses = document["paths"]["/api/v1/rules/{id}/"]["delete"]["responses"]
    rule_in_use = responses["409"]["content"]["application/json"]["schema"]
    assert rule_in_use == {"$ref": "#/components/schemas/Error"}
    for code in ("401", "403", "404"):
        body = responses[code]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Error"}
    bad = document["paths"]["/api/v1/rules/"]["post"]["responses"]["400"]
    assert bad["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationError"
    }


def test_a_path_parameter_has_one_type_wherever_it_names_the_same_identifier():
    types = defaultdict(set)
    for _name, operation in operations(schema()):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                key = json.dumps(parameter["schema"], sort_keys=True)
                types[parameter["name"]].add(key)

    assert {name: len(found) for name, found in types.items()} == {"id": 1, "ref": 1, "uai": 1}
    assert json.loads(next(iter(types["id"])))["type"] == "integer"


# What refers to another object has one shape wherever the API names it. In an answer
# (REST, and the websocket and webhooks, which reuse its representations) a commune, a
# rule or a zone is its reference object, with its integer id; a sensor is its ref and
# a school its UAI (also inside a list of schools with more about each). In a request,
# a commune, a rule or a zone is its integer id, a school its UAI.
REF = "#/components/schemas/"
ANSWERED = {
    "commune": {"$ref": f"{REF}CommuneRef"},
    "communes": {"type": "array", "items": {"$ref": f"{REF}CommuneRef"}},
    "rule": {"$ref": f"{REF}RuleRef"},
    "zones": {"type": "array", "items": {"$ref": f"{REF}ZoneRef"}},
    "sensor": {"type": "string"},
    "school": {"type": "string"},
}
REQUESTED = {
    "commune": {"type": "integer"},
    "communes": {"type": "array", "items": {"type": "integer"}},
    "rule": {"type": "integer"},
    "zones": {"type": "array", "items": {"type": "integer"}},
    "sensor": {"type": "string"},
    "school": {"type": "string"},
    "schools": {"type": "array", "items": {"type": "string"}},
}
SHAPE = ("$ref", "type", "items")


def shape(prop: dict) -> dict:
    if "allOf" in prop:  # a nullable reference
        prop = prop["allOf"][0]
    found = {key: prop[key] for key in SHAPE if key in prop}
    if "items" in found:
        found["items"] = shape(found["items"])
    return found


def test_a_reference_has_one_shape_in_every_answer_and_one_in_every_request():
    components = schema()["components"]["schemas"]
    wrong = []
    for name, component in components.items():
        expected = REQUESTED if name.endswith("Request") else ANSWERED
        for field, prop in component.get("properties", {}).items():
            if field in expected and shape(prop) != expected[field]:
                wrong.append((name, field, shape(prop)))
            if field == "id" and prop.get("type") != "integer" and name != "SmsReceiptRequest":
                wrong.append((name, field, shape(prop)))

    assert wrong == []
    assert set(components["CommuneRef"]["properties"]) == {"id", "insee_code", "name"}
    assert set(components["RuleRef"]["properties"]) == {"id", "name", "kind"}
    assert set(components["ZoneRef"]["properties"]) == {"id", "name", "type"}
