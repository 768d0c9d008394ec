"""The OpenAPI schema of the API: drf-spectacular's, with what every view may answer.

Documented here from how every view works, so that no view can forget one: 401 for an
anonymous call; 403 when the view's permissions are narrower than "signed in"; 404 when
the path names an object; 400 when there is a query string or a body to validate; 415
for a body of a type DRF does not parse (it parses JSON and forms); 429 when a rate limit
counts the call (``core.throttling``: writes, exports). An empty optional
query parameter counts as absent (``allowEmptyValue``): DRF reads a query string like an
HTML form, and so does ``core.api``'s pagination: ``?state=`` is "any state".
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
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
        operation["responses"] = dict(sorted(responses.items()))

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
