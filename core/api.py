"""What every API view shares: bad input answered with a JSON 400 naming its fields
(documented in the OpenAPI schema), and who may act.

DRF's limit/offset pagination would ignore ``?limit=abc`` and hand ``?limit=10**22`` to
the database (a 500), and a request with too many form fields would get Django's HTML
error page: all are answered here instead. A page holds at most 1,000 items. An empty
value counts as absent, as DRF reads every query string like an HTML form.
"""

import math
import re

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination, parsers
from rest_framework.exceptions import APIException, ParseError, Throttled, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import is_director, watches_the_town

# Up to 19 digits: int() refuses more than 4,300, and the database's integers stop at 2**63.
INTEGER_RE = re.compile(r"\A-?[0-9]{1,19}\Z")
# A viewset's numeric id in its URLs (lookup_value_regex): longer is a 404, not a 500.
ID_REGEX = r"[0-9]{1,19}"
MAX_LIMIT = 1000


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset pagination; ``?limit=abc`` is a 400, not the first page."""

    # (parameter, smallest value, largest value, message)
    BOUNDS = (
        ("limit", 1, MAX_LIMIT, _("Nombre d'éléments par page : un entier de 1 à 1000.")),
        ("offset", 0, 2**63 - 1, _("Position du premier élément : un entier de 0 ou plus.")),
    )

    def paginate_queryset(self, queryset, request, view=None):
        errors = {}
        for name, minimum, maximum, message in self.BOUNDS:
            raw = request.query_params.get(name, "")
            if raw and not (INTEGER_RE.match(raw) and minimum <= int(raw) <= maximum):
                errors[name] = [message]
        if errors:
            raise ValidationError(errors)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {name: (minimum, maximum) for name, minimum, maximum, _message in self.BOUNDS}
        for parameter in parameters:
            minimum, maximum = bounds[parameter["name"]]
            parameter["schema"].update(minimum=minimum, maximum=maximum)
        return parameters


class JSONParser(parsers.JSONParser):
    """DRF's, with a JSON 400 for a body nested deeper than Python's decoder goes (50,000
    levels raised a RecursionError: a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON invalide : trop de niveaux d'imbrication.")) from None


class TooManyRequests(Throttled):
    """DRF's 429, in our words; DRF's exception handler adds ``Retry-After``."""

    def __init__(self, wait: float):
        wait = max(1, math.ceil(wait))
        super().__init__(detail=_("Trop de requêtes : réessayez dans %(wait)s s.") % {"wait": wait})
        self.wait = wait


class TooLarge(APIException):
    """413: what was asked (an export) is over its limit, which the answer names."""

    status_code = 413
    default_code = "too_large"

    def __init__(self, detail, *, limit: int):
        super().__init__(detail)
        self.limit = limit


def exception_handler(exc, context):
    """DRF's, with a JSON 400 for a body over Django's limits (fields, files, size), our
    429's words, and the limit of a 413 under ``limit``."""
    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework import views

    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent | RequestDataTooBig):
        exc = ParseError(_("Requête trop volumineuse : trop de champs, de fichiers ou d'octets."))
    if isinstance(exc, Throttled) and not isinstance(exc, TooManyRequests):
        exc = TooManyRequests(exc.wait or 1)
    response = views.exception_handler(exc, context)
    if isinstance(exc, TooLarge) and response is not None:
        response.data["limit"] = exc.limit
    return response


class OperatorsAct(BasePermission):
    """Everyone signed in reads (and sees their perimeter); operators and admins act."""

    message = _("Réservé aux opérateurs et aux administrateurs.")

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return watches_the_town(request.user)


class NotForDirectors(BasePermission):
    """The API's schema and documentation: integrators', operators' and admins'.

    Directors use the pages; the documentation of every call would only show them a map
    of what they may not do.
    """

    message = _("La documentation de l'API est réservée aux intégrateurs.")

    def has_permission(self, request, view):
        user = request.user
        return user.is_authenticated and (watches_the_town(user) or not is_director(user))


class OperatorsOnly(OperatorsAct):
    """Operators and admins only, reading included."""

    def has_permission(self, request, view):
        return watches_the_town(request.user)
