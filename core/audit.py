"""Record every write of a signed-in user, and every failed sign-in, in the audit trail
(``core.models.AuditEntry``).

One middleware sees every unsafe request — API calls, the pages' forms, the Django
admin, sign-in and sign-out — so no action can be added without its trail. Refused
attempts are kept too (their status says so): an operator trying another commune's
activation is worth knowing, and so is a failed sign-in (kept under the username it
tried, with no user). Views may add what only they know (a previous value)
with ``annotate``. Secrets are never stored; free text is cut short.

What happens beside a request's own action (the tokens a password change revokes) or
outside any request (a management command) is written by ``record``, one entry each.
"""

import json
import logging
import math
from contextvars import ContextVar

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import transaction
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Harmless preferences, not actions on the town.
IGNORED_ACTIONS = frozenset({"set_language"})
SECRET_MARKERS = ("password", "token", "secret", "csrf")
MAX_TEXT = 200
MAX_FIELDS = 40

# URL names → what an admin reads in the trail.
ACTION_LABELS = {
    "login": _("Connexion"),
    "logout": _("Déconnexion"),
    "alert-acknowledge": _("Acquittement d'une alerte"),
    "alert-resolve": _("Résolution d'une alerte"),
    "alert-comments": _("Commentaire sur une alerte"),
    "incident-acknowledge-all": _("Acquittement des alertes d'un incident"),
    "incident-resolve-all": _("Résolution des alertes d'un incident"),
    "incident-comments": _("Commentaire sur un incident"),
    "silence-list": _("Mise en sourdine"),
    "silence-detail": _("Fin d'une mise en sourdine"),
    "rule-list": _("Création d'une règle"),
    "rule-detail": _("Modification d'une règle"),
    "school-alarm": _("Alarme PPMS d'une école"),
    "shelter-occupancy": _("Occupation d'un centre d'accueil"),
    "shelter-open": _("Ouverture ou fermeture d'un centre d'accueil"),
    "ppms-activation-list": _("Déclenchement du PPMS"),
    "ppms-activation-end": _("Fin d'alerte PPMS"),
    "ppms-activation-report": _("Point de situation d'une école"),
    "ppms-drill-list": _("Exercice PPMS enregistré"),
    "admin": _("Administration"),
    "api-token-create": _("Création d'un jeton d'API"),
    "api-token-revoke": _("Révocation d'un jeton d'API"),
}

AUDIT_ATTRIBUTE = "_csu_audit"
# Outside any request (a management command, a shell), ``record`` names this as the user.
NO_REQUEST_USERNAME = "manage.py"
# The write request under way, for ``record``.
_request: ContextVar = ContextVar("csu_audit_request", default=None)


def annotate(request, **details) -> None:
    """Add ``details`` to the trail entry of ``request`` (a DRF or a Django request)."""
    request = getattr(request, "_request", request)
    entry = getattr(request, AUDIT_ATTRIBUTE, None)
    if entry is not None:  # None: a safe method, or a view called without the middleware
        entry.update(details)


def record(*, action: str, target: str = "", data: dict | None = None) -> None:
    """Write an entry for ``action``, done now (status 200), by the user of the write request
    under way, or by NO_REQUEST_USERNAME outside any. In the caller's transaction: an action
    rolled back leaves no entry."""
    from .models import AuditEntry

    request = _request.get()
    user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else NO_REQUEST_USERNAME,
        action=action,
        method=request.method if request else "",
        path=_storable(request.path)[:300] if request else "",
        target=_storable(target)[:200],
        status=200,
        data=_sanitised(data or {}),
        ip=(request.META.get("REMOTE_ADDR") or None) if request else None,
    )


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in UNSAFE_METHODS:
            return self.get_response(request)
        setattr(request, AUDIT_ATTRIBUTE, {})
        # Taken before the view: signing out leaves an anonymous user on the request.
        user_before = request.user
        # Read now: the view's parser consumes the stream, and only a read body is kept.
        try:
            body = request.body if request.content_type == "application/json" else None
        except RequestDataTooBig:
            body = None  # the view answers it (the API: a JSON 400), and the line is kept
        except ValueError:
            body = None  # a Content-Length that is not a number: core.middleware answers it

        current = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(current)
        user = request.user if request.user.is_authenticated else user_before
        if user.is_authenticated:
            self.record(request, response, user, body)
        elif _action_of(request.resolver_match) == "login":
            self.record(request, response, None, body)  # a failed or slowed-down sign-in
        return response

    def record(self, request, response, user, body) -> None:
        """Keep one line; ``user`` None for a sign-in that failed (the name it tried)."""
        from .models import AuditEntry

        match = request.resolver_match
        action = _action_of(match)
        if action in IGNORED_ACTIONS:
            return
        data = _sanitised(_submitted(request, body))
        data.update(getattr(request, AUDIT_ATTRIBUTE))
        try:
            # Atomic (a savepoint within a transaction): a failed insert must not break a
            # transaction around the request.
            with transaction.atomic():
                AuditEntry.objects.create(
                    user=user,
                    username=user.get_username() if user else _claimed_username(request),
                    action=action,
                    method=request.method,
                    path=_storable(request.path)[:300],
                    target=_storable(_target_of(match))[:200],
                    status=response.status_code,
                    data=data,
                    ip=request.META.get("REMOTE_ADDR") or None,
                )
        except Exception:  # the action is done: losing its line must not turn it into a 500
            log.exception("audit entry lost: %s %s by %s", request.method, request.path, user)


def _claimed_username(request) -> str:
    try:
        claimed = request.POST.get("username", "")
    except (RequestDataTooBig, SuspiciousOperation, MultiPartParserError):
        claimed = ""
    return _storable(str(claimed))[:150]


def _action_of(match) -> str:
    if match is None:
        return "unknown"
    if match.namespace == "admin" or match.app_name == "admin":
        return "admin"
    return match.url_name or match.view_name or "unknown"


def _target_of(match) -> str:
    if match is None:
        return ""
    return " ".join(f"{key}={value}" for key, value in sorted(match.kwargs.items()))


def _submitted(request, body) -> dict:
    if body is not None:
        try:
            data = json.loads(body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return {"body": "(JSON invalide)"}
        return data if isinstance(data, dict) else {"body": data}
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            fields = {key: vals if len(vals) > 1 else vals[0] for key, vals in request.POST.lists()}
        except (MultiPartParserError, SuspiciousOperation):
            # The view refused it already; raising here would replace its answer.
            return {"body": "(formulaire illisible)"}
        fields.update({key: f"(fichier {upload.name})" for key, upload in request.FILES.items()})
        return fields
    return {}


def _storable(text: str) -> str:
    # PostgreSQL stores no NUL character, in a text or a JSON value.
    return text.replace("\x00", "")


def _sanitised(data: dict) -> dict:
    clean = {}
    for key, value in list(data.items())[:MAX_FIELDS]:
        key = _storable(str(key))[:MAX_TEXT]
        if any(marker in key.lower() for marker in SECRET_MARKERS):
            continue
        clean[key] = _shortened(value)
    return clean


def _shortened(value):
    if isinstance(value, str):
        value = _storable(value)
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN nor Infinity (Python's parser takes them)
    if isinstance(value, list):
        return [_shortened(item) for item in value[:MAX_FIELDS]]
    if isinstance(value, dict):
        return _sanitised(value)
    return value
