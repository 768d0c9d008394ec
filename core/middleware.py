from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _


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
