"""Django's error answers (csu/urls.py's handlers), in JSON under /api/.

A path under /api/ that no route matches (``/api/v1/alerts/abc/``: an alert's id is a
number) was answered with Django's HTML 404 page, where every other API answer is JSON.
"""

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

from .middleware import is_api


def not_found(request, exception):
    if is_api(request):
        return JsonResponse({"detail": _("Adresse inconnue.")}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception):
    if is_api(request):
        return JsonResponse({"detail": _("Requête invalide.")}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api(request):
        return JsonResponse({"detail": _("Accès refusé.")}, status=403)
    return defaults.permission_denied(request, exception)


def server_error(request):
    if is_api(request):
        return JsonResponse({"detail": _("Erreur du serveur.")}, status=500)
    return defaults.server_error(request)
