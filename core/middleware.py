from urllib.parse import urlencode

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from . import twofactor


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Require a login for every page; the API and /metrics answer 401 themselves.

    /i18n/ (the language switch) is open: it only sets the language cookie, and the login
    page offers it before anyone is signed in.
    """

    open_prefixes = ("/api/", "/healthz", "/metrics", "/static/", "/i18n/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class SecondFactorMiddleware:
    """Keep a user signed in with a password alone off every page and API call until they
    type their code (they have a device) or set up an app (their role requires one).

    Pages send them to that step; the API answers 403 in JSON. After django-otp's
    ``OTPMiddleware``, which tells whether the session was verified. Token-authenticated
    API calls carry no session: DRF signs them in later, and they pass.
    """

    # The steps themselves and signing out; pages open to anonymous visitors (Django's
    # ``login_not_required``) are open here too.
    open_names = frozenset({"logout", "second-factor-code", "second-factor", "set_language"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        step = twofactor.missing_step(user, verified=False)
        request.csu_second_factor_missing = step
        if step is None or request.resolver_match.url_name in self.open_names:
            return None
        api = request.path_info.startswith("/api/")
        # DRF marks every API view login_not_required: it authenticates them itself.
        if not api and not getattr(view_func, "login_required", True):
            return None
        if api:
            message = (
                _("Double authentification requise : saisissez le code de votre application.")
                if step == twofactor.CODE
                else _(
                    "Double authentification requise : configurez une application "
                    "d'authentification avant d'utiliser l'API."
                )
            )
            return JsonResponse({"detail": message, "code": "second_factor_required"}, status=403)
        target = reverse("second-factor-code" if step == twofactor.CODE else "second-factor")
        return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")


class NulByteMiddleware:
    """A NUL byte in the path or the query string is answered at once: no object's key
    holds one, and PostgreSQL refuses it in a query (a 500 before: a sensor looked up by
    a ref with %00). The path: 404; the query string: 400; JSON under /api/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            return _refusal(request, 404, _("Adresse inconnue."))
        if any("\x00" in key + "".join(values) for key, values in request.GET.lists()):
            return _refusal(request, 400, _("Paramètre invalide : caractère nul."))
        return self.get_response(request)


class ContentLengthMiddleware:
    """A Content-Length that is not a number is a 400: Django reads the body by it and
    raised a ValueError (a 500). uvicorn refuses such a request itself; this answers it
    behind any other server, and after the audit middleware, which keeps the attempt."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not (length.strip().isascii() and length.strip().isdigit()):
            return _refusal(request, 400, _("En-tête Content-Length invalide."))
        return self.get_response(request)


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def _refusal(request, status: int, message: str) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
