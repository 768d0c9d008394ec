"""The sign-in pages: the password, the code of the second factor, setting an app up.

The rules are in ``core.twofactor``; ``core.middleware.SecondFactorMiddleware`` sends a
user signed in without their second factor here.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice

from . import signin_throttle, twofactor


class SignInView(LoginView):
    """The password; then, for whoever has a device, the code step before ``login``."""

    def form_valid(self, form):
        user = form.get_user()
        twofactor.pending_clear(self.request.session)  # an earlier sign-in left unfinished
        if not user_has_device(user):
            return super().form_valid(form)
        twofactor.pending_set(self.request.session, user)
        query = urlencode({"next": self.get_success_url()})
        return redirect(f"{reverse('second-factor-code')}?{query}")


def _next_url(request) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@login_not_required  # the password accepted, the user is not signed in yet
@never_cache
@require_http_methods(["GET", "POST"])
def code_step(request):
    """The code of the app, or a recovery code. A wrong one counts in the sign-in throttle
    (core/signin_throttle.py) like a wrong password."""
    if request.user.is_authenticated:
        if request.user.is_verified() or not user_has_device(request.user):
            return redirect(_next_url(request))
        user, signing_in = request.user, False  # signed in before having a device
    else:
        user, signing_in = twofactor.pending_user(request.session), True
        if user is None:
            return redirect("login")
    credentials = {"username": user.get_username()}
    error = ""
    if request.method == "POST":
        # As a password: while the username, address or browser must wait, no code is
        # even checked (nor counted).
        wait = signin_throttle.wait_for(request, user.get_username())
        if wait:
            return signin_throttle.refused_page(request, wait)
        device = twofactor.verify_code(user, request.POST.get("code", ""))
        if device is None:
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "signin_wait", 0):
                return signin_throttle.refused_page(request, request.signin_wait)
            error = _(
                "Code incorrect. Vérifiez l'heure de votre téléphone, "
                "ou saisissez un code de secours."
            )
        else:
            if signing_in:
                twofactor.pending_clear(request.session)
                login(request, user)
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                _warn_recovery_code_used(request, user)
            return redirect(_next_url(request))
    return render(
        request,
        "registration/second_factor_code.html",
        {"next": _next_url(request), "error": error, "username": user.get_username()},
    )


def _warn_recovery_code_used(request, user) -> None:
    left = twofactor.recovery_codes_left(user)
    messages.warning(
        request,
        ngettext(
            "Code de secours utilisé : il vous en reste %(count)d. "
            "Renouvelez-les depuis la page Double authentification.",
            "Code de secours utilisé : il vous en reste %(count)d. "
            "Renouvelez-les depuis la page Double authentification.",
            left,
        )
        % {"count": left},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def second_factor(request):
    """Set up an authenticator app, or, with one, renew the recovery codes or turn it off."""
    user = request.user
    if user_has_device(user):
        if not user.is_verified():
            return redirect(f"{reverse('second-factor-code')}?{urlencode({'next': request.path})}")
        return _manage(request, user)
    key = request.session.get(twofactor.SETUP_KEY_SESSION_KEY)
    device = twofactor.new_device(user, key)
    request.session[twofactor.SETUP_KEY_SESSION_KEY] = device.key
    error = ""
    if request.method == "POST":
        if twofactor.code_matches_new_device(device, request.POST.get("code", "")):
            codes = twofactor.second_factor_enable(user=user, device=device)
            request.session.pop(twofactor.SETUP_KEY_SESSION_KEY, None)
            otp_login(request, device)
            return _recovery_codes(request, codes, _next_url(request))
        error = _("Code incorrect : saisissez le code à 6 chiffres affiché par l'application.")
    return render(
        request,
        "registration/second_factor_setup.html",
        {
            "qr_code": mark_safe(twofactor.qr_code_svg(device)),  # segno's own SVG markup
            "secret": twofactor.readable_secret(device),
            "error": error,
            "next": _next_url(request),
            "required": twofactor.requires_second_factor(user),
        },
    )


def _manage(request, user):
    required = twofactor.requires_second_factor(user)
    if request.method == "POST":
        if request.POST.get("action") == "recovery":
            return _recovery_codes(request, twofactor.recovery_codes_renew(user=user), "")
        if request.POST.get("action") == "disable" and not required:
            twofactor.second_factor_reset(user=user)
            messages.success(request, _("Double authentification désactivée."))
            return redirect("second-factor")
    return render(
        request,
        "registration/second_factor_manage.html",
        {"required": required, "codes_left": twofactor.recovery_codes_left(user)},
    )


def _recovery_codes(request, codes: list[str], next_url: str):
    """The recovery codes, shown this once: no page shows them again (never cached)."""
    return render(
        request,
        "registration/second_factor_recovery_codes.html",
        {"codes": codes, "next": next_url or resolve_url(settings.LOGIN_REDIRECT_URL)},
    )


@login_not_required
def admin_sign_in(request):
    """The admin signs in through the site's sign-in, with its second factor."""
    query = urlencode({"next": request.GET.get("next", reverse("admin:index"))})
    return redirect(f"{reverse('login')}?{query}")
