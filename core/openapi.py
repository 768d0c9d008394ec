"""The OpenAPI schema of the API: drf-spectacular's, with what every view may answer.

Documented here from how every view works, so that no view can forget one: 401 for an
anonymous call; 403 when the view's permissions are narrower than "signed in"; 404 when
the path names an object; 400 when there is a query string or a body to validate; 415
for a body of a type DRF does not parse (it parses JSON and forms); 429 when a rate limit
counts the call (``core.throttling``: writes, exports). An empty optional
query parameter counts as absent (``allowEmptyValue``): DRF reads a query string like an
HTML form, and so does ``core.api``'s pagination: ``?state=`` is "any state".

Every refusal documents its JSON body: ``Error`` (``{"detail": "…"}``, DRF's and
``core.errors``') or, for a 400, ``ValidationError`` (messages under each bad field's
name, or ``detail``); a view's own body (a 413's ``limit``) is kept. A path parameter
has one schema wherever it names the same identifier (``PATH_PARAMETERS``): DRF's
lookup regex made an alert's ``id`` a string in one route and an integer in the next.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular import openapi
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.plumbing import ResolvedComponent, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny, IsAuthenticated

NOT_SIGNED_IN = _("Authentification requise (session ou jeton).")
FORBIDDEN = _("Réservé à d'autres rôles, ou hors de votre périmètre.")
NOT_FOUND = _("Inconnu, ou hors de votre périmètre.")
BAD_INPUT = _("Paramètre invalide : un message par champ.")
UNSUPPORTED_BODY = _("Corps d'un type non pris en charge : JSON attendu (ou formulaire).")
THROTTLED = _("Trop de requêtes : réessayez après le délai de l'en-tête Retry-After.")
RETRY_AFTER = {
    "Retry-After": {
        "description": _("Secondes à attendre avant de réessayer."),
        "schema": {"type": "integer", "minimum": 1},
    }
}

ERROR = ResolvedComponent(
    name="Error",
    type=ResolvedComponent.SCHEMA,
    object="Error",
    schema={
        "type": "object",
        "description": _("Un refus : sa raison."),
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
)
VALIDATION_ERROR = ResolvedComponent(
    name="ValidationError",
    type=ResolvedComponent.SCHEMA,
    object="ValidationError",
    schema={
        "type": "object",
        "description": _(
            "Une entrée refusée : les messages sous le nom de chaque champ en cause "
            "(une liste, ou un objet pour un champ imbriqué), ou sous « detail »."
        ),
        "minProperties": 1,
        "additionalProperties": {
            "anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}]
        },
    },
)
# Refusals whose body is ERROR unless the view names another; 400 is VALIDATION_ERROR's.
REFUSALS = ("401", "403", "404", "409", "413", "415", "429")
# One schema per identifier in a path, wherever it appears.
PATH_PARAMETERS = {
    "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1},
    "uai": {"type": "string", "pattern": "^[0-9]{7}[A-Z]$"},
}

# The same answers, for the views that name them in their own extend_schema.
FORBIDDEN_RESPONSE = OpenApiResponse(description=FORBIDDEN)
NOT_FOUND_RESPONSE = OpenApiResponse(description=NOT_FOUND)
BAD_INPUT_RESPONSE = OpenApiResponse(description=BAD_INPUT)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        permissions = {type(permission) for permission in self.view.get_permissions()}
        parameters = operation.get("parameters", [])
        query = [parameter for parameter in parameters if parameter["in"] == "query"]
        responses = operation["responses"]

        if permissions - {AllowAny}:
            responses.setdefault("401", {"description": NOT_SIGNED_IN})
        if permissions - {AllowAny, IsAuthenticated}:
            responses.setdefault("403", {"description": FORBIDDEN})
        if any(parameter["in"] == "path" for parameter in parameters):
            responses.setdefault("404", {"description": NOT_FOUND})
        if query or "requestBody" in operation:
            responses.setdefault("400", {"description": BAD_INPUT})
        if "requestBody" in operation:
            responses.setdefault("415", {"description": UNSUPPORTED_BODY})
        if any(_counts(throttle, method) for throttle in self.view.get_throttles()):
            responses.setdefault("429", {"description": THROTTLED, "headers": RETRY_AFTER})
        registry.register_on_missing(ERROR)
        registry.register_on_missing(VALIDATION_ERROR)
        for code, response in responses.items():
            if code in REFUSALS or code == "400":
                body = VALIDATION_ERROR if code == "400" else ERROR
                response.setdefault("content", {"application/json": {"schema": body.ref}})
        operation["responses"] = dict(sorted(responses.items()))

        for parameter in parameters:
            if parameter["in"] == "path" and parameter["name"] in PATH_PARAMETERS:
                parameter["schema"] = dict(PATH_PARAMETERS[parameter["name"]])

        for parameter in query:
            if not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return operation


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The API tokens (core/api_tokens.py), under the name DRF's tokens had."""

    target_class = "core.api_tokens.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": _(
                "Jeton d'API : « Token <secret> ». Un administrateur le crée (et le voit une "
                "seule fois) ; il expire après API_TOKEN_DAYS jours (90 par défaut)."
            ),
        }


def _counts(throttle, method: str) -> bool:
    counts = getattr(throttle, "counts", None)  # core.throttling's say which methods count
    return counts(method.upper()) if counts else True


class RefRelatedFieldSchema(OpenApiSerializerFieldExtension):
    """A reference is its integer id in a request and its reference object in an answer
    (``core.fields.RefRelatedField``)."""

    target_class = "core.fields.RefRelatedField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        if direction == "request":
            return build_basic_type(OpenApiTypes.INT)
        return auto_schema.resolve_serializer(self.target.ref, direction).ref
