"""Two-factor sign-in: who needs a second factor, the code step, recovery codes.

Admins (staff), operators and authorities sign in with a password and a code from an
authenticator app (TOTP, django-otp's ``TOTPDevice``); directors may turn it on, and
whoever has a device signs in with it. Recovery codes (django-otp's ``StaticDevice``)
are shown once at setup and each works once: a director's phone lost in a crisis must
not lock them out, and an admin can reset a user's second factor.

A wrong code counts as a failed sign-in in the sign-in throttle (``core.signin_throttle``),
like a wrong password: the code step sends Django's ``user_login_failed``. Until the code
is right, the user is not signed in (``login`` is not called), so a right password does
not make the throttle forget the wrong codes.

Token-authenticated API calls have no second factor: an admin creates the token for a
program. The session is what the second factor guards (pages, session API calls, the
websocket).
"""

import time
from base64 import b32encode

import segno
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .roles import ADMINS, AUTHORITIES, OPERATORS, has_role, is_admin

# What a signed-in user still has to do before reaching a page.
CODE = "code"  # has a device: type its code
SETUP = "setup"  # must have one: set it up

PENDING_SESSION_KEY = "csu_second_factor_pending"
SETUP_KEY_SESSION_KEY = "csu_second_factor_setup_key"
# A password accepted waits this long for its code, then the sign-in starts again.
PENDING_MAX_AGE_S = 300
RECOVERY_CODES = 10
RECOVERY_DEVICE_NAME = "Codes de secours"


def requires_second_factor(user) -> bool:
    """Admins, operators and authorities must sign in with a second factor."""
    if not settings.CSU_SECOND_FACTOR_REQUIRED or not user.is_authenticated:
        return False
    return is_admin(user) or any(has_role(user, role) for role in (ADMINS, OPERATORS, AUTHORITIES))


def missing_step(user, *, verified: bool) -> str | None:
    """What ``user``, signed in with a password, must do first: CODE, SETUP or nothing."""
    if not user.is_authenticated or verified:
        return None
    if user_has_device(user):
        return CODE
    if requires_second_factor(user):
        return SETUP
    return None


def session_device(user, session) -> Device | None:
    """The device that verified this session, if it still exists and is ``user``'s."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return device


def verify_code(user, code: str) -> Device | None:
    """The device of ``user`` that accepts ``code`` (an app's code or a recovery code).

    Each device keeps django-otp's own throttle (OTP_TOTP_THROTTLE_FACTOR); a recovery
    code is deleted once used.
    """
    code = "".join(code.split()).replace("-", "").lower()
    if not code or len(code) > 16:
        return None
    # An app's code goes to the app, anything else to the recovery codes: a failure then
    # counts in the throttle of the device it was meant for only.
    model = TOTPDevice if code.isdigit() and len(code) <= 8 else StaticDevice
    with transaction.atomic():
        for device in model.objects.devices_for_user(user).select_for_update():
            if device.verify_token(code):
                return device
    return None


# --- The password accepted, the code awaited ---------------------------------------------


def pending_set(session, user) -> None:
    session[PENDING_SESSION_KEY] = {"user": user.pk, "backend": user.backend, "at": time.time()}


def pending_user(session):
    """The user whose password was accepted here and whose code is awaited, or None."""
    pending = session.get(PENDING_SESSION_KEY)
    if not pending or time.time() - pending["at"] > PENDING_MAX_AGE_S:
        return None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is not None:
        user.backend = pending["backend"]
    return user


def pending_clear(session) -> None:
    session.pop(PENDING_SESSION_KEY, None)


# --- Setting up ----------------------------------------------------------------------------


def new_device(user, key: str | None = None) -> TOTPDevice:
    """A TOTP device for ``user``, not saved yet (its key is kept in the session)."""
    device = TOTPDevice(user=user, name="CSU", confirmed=True)
    if key:
        device.key = key
    return device


def readable_secret(device: TOTPDevice) -> str:
    """The secret as an app asks for it by hand: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_code_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// address as an inline SVG QR code (no image file, no CDN)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, omitsize=True)


def code_matches_new_device(device: TOTPDevice, code: str) -> bool:
    """Whether ``code`` is the current code of a device not saved yet."""
    from django_otp.oath import TOTP

    code = "".join(code.split())
    if not code.isdigit() or len(code) != device.digits:
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if not totp.verify(int(code), tolerance=device.tolerance):
        return False
    device.last_t = totp.t()  # the same code cannot be typed again at sign-in
    return True


@transaction.atomic
def second_factor_enable(*, user, device: TOTPDevice) -> list[str]:
    """Save ``device`` as the user's only app, with new recovery codes; return the codes."""
    second_factor_reset(user=user)
    device.save()
    return recovery_codes_renew(user=user)


@transaction.atomic
def recovery_codes_renew(*, user) -> list[str]:
    """Replace the user's recovery codes with new ones; return them (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def second_factor_reset(*, user) -> int:
    """Delete every device of ``user``: their sessions lose their second factor at once.

    Return how many there were. At the next sign-in, a user whose role requires one sets
    up a new app; others sign in with their password alone.
    """
    deleted = 0
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
        deleted += 1
    return deleted
