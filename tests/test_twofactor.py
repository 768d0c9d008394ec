"""Two-factor sign-in: the code step, its throttle, setting an app up, recovery codes,
the admin's reset. Who reaches what without a second factor: the permissions matrix."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import roles, twofactor
from core.models import AuditEntry
from csu.asgi import application
from dashboard.consumers import CLOSE_SECOND_FACTOR_MISSING
from tests.conftest import api_token, make_user, sign_in

LOGIN = "/accounts/login/"
CODE = "/accounts/code/"
SETUP = "/accounts/double-authentification/"
DASHBOARD = "/dashboard/"


def app_of(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="téléphone")


def code_of(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def wrong_code(device: TOTPDevice) -> str:
    right = {code_of(device, steps_ahead=step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in right)


def password(client, username="operateur", secret="pw", next_url=""):
    return client.post(LOGIN, {"username": username, "password": secret, "next": next_url})


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Signing in with an app ------------------------------------------------------------


def test_a_right_password_leads_to_the_code_step_and_signs_nobody_in(client, operator):
    app_of(operator)

    response = password(client, next_url=DASHBOARD)

    assert response.status_code == 302
    assert response["Location"] == f"{CODE}?next=%2Fdashboard%2F"
    assert not is_signed_in(client)
    assert client.get(DASHBOARD)["Location"].startswith(LOGIN)


def test_the_code_of_the_app_signs_in_and_opens_the_pages(client, operator):
    device = app_of(operator)
    password(client, next_url=DASHBOARD)

    page = client.get(f"{CODE}?next=/dashboard/").content.decode()
    response = client.post(CODE, {"code": code_of(device), "next": DASHBOARD})

    assert "Code de connexion" in page
    assert response["Location"] == DASHBOARD
    assert is_signed_in(client)
    assert client.get(DASHBOARD).status_code == 200


def test_a_code_is_not_accepted_twice(client, operator):
    device = app_of(operator)
    password(client)
    code = code_of(device)
    client.post(CODE, {"code": code})
    client.post("/accounts/logout/")
    password(client)

    response = client.post(CODE, {"code": code})

    assert response.status_code == 200
    assert "Code incorrect" in response.content.decode()
    assert not is_signed_in(client)


def test_the_code_step_sends_nowhere_but_this_site(client, operator):
    device = app_of(operator)
    password(client)

    response = client.post(CODE, {"code": code_of(device), "next": "https://evil.example/"})

    assert response["Location"] == "/"


def test_without_a_password_accepted_the_code_step_sends_to_the_login_page(client, operator):
    app_of(operator)

    assert client.get(CODE)["Location"] == LOGIN
    assert client.post(CODE, {"code": "123456"})["Location"] == LOGIN


def test_a_password_accepted_long_ago_must_be_typed_again(client, operator, time_machine):
    device = app_of(operator)
    password(client)
    time_machine.move_to(time.time() + twofactor.PENDING_MAX_AGE_S + 1)

    response = client.post(CODE, {"code": code_of(device)})

    assert response["Location"] == LOGIN
    assert not is_signed_in(client)


def test_a_user_with_an_app_signed_in_without_its_code_is_asked_for_it(client, operator):
    app_of(operator)
    client.force_login(operator)  # e.g. a session opened before the app was set up

    page = client.get(DASHBOARD)
    api = client.post("/api/v1/ppms/drills/", {}, content_type="application/json")

    assert page["Location"] == f"{CODE}?next=%2Fdashboard%2F"
    assert api.status_code == 403
    assert api.json()["code"] == "second_factor_required"


def test_a_program_with_an_api_token_is_not_asked_for_a_second_factor(operator, sensor):
    """Tokens are created by an admin for programs: the second factor guards sessions."""
    secret = api_token(operator)

    response = Client().get("/api/v1/sensors/", HTTP_AUTHORIZATION=f"Token {secret}")

    assert response.status_code == 200


# --- The throttle: a wrong code is a failed sign-in ---------------------------------------


def test_wrong_codes_get_the_same_answers_as_wrong_passwords(client, operator, django_user_model):
    """The sign-in throttle counts a wrong code like a wrong password: the same answers,
    attempt after attempt, under the current SIGNIN_* settings."""
    other = make_user(django_user_model, "operatrice")
    device = app_of(other)
    attempts = settings.SIGNIN_FREE_FAILURES + 1

    by_password = [password(client, "operateur", "faux").status_code for _ in range(attempts)]
    password(client, "operatrice")
    by_code = [client.post(CODE, {"code": wrong_code(device)}).status_code for _ in range(attempts)]

    assert by_code == by_password
    assert by_code[-1] == 429


def test_a_user_throttled_for_wrong_codes_cannot_keep_guessing(client, django_user_model):
    user = make_user(django_user_model, "operatrice")
    device = app_of(user)
    password(client, "operatrice")
    for _ in range(settings.SIGNIN_FREE_FAILURES):
        response = client.post(CODE, {"code": wrong_code(device)})
    assert response.status_code == 429
    assert "Connexion ralentie" in response.content.decode()

    # The right code is refused, and so is the right password: the same lockout.
    device.throttle_reset()
    assert client.post(CODE, {"code": code_of(device)}).status_code == 429
    assert password(client, "operatrice").status_code == 429
    assert not is_signed_in(client)


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(client, django_user_model):
    """Signing in again with the password would otherwise give a fresh set of guesses."""
    user = make_user(django_user_model, "operatrice")
    device = app_of(user)
    password(client, "operatrice")
    for _ in range(settings.SIGNIN_FREE_FAILURES - 1):
        client.post(CODE, {"code": wrong_code(device)})

    assert password(client, "operatrice").status_code == 302  # the code step again
    assert client.post(CODE, {"code": wrong_code(device)}).status_code == 429


def test_the_app_keeps_its_own_throttle(client, operator):
    device = app_of(operator)
    password(client)
    client.post(CODE, {"code": wrong_code(device)})

    # Straight after a wrong code, even the right one waits (OTP_TOTP_THROTTLE_FACTOR).
    response = client.post(CODE, {"code": code_of(device)})

    assert response.status_code == 200
    assert not is_signed_in(client)


# --- Setting an app up --------------------------------------------------------------------


def set_up(client) -> tuple[TOTPDevice, str]:
    """Open the setup page; return the device its QR code configures, and the page."""
    page = client.get(SETUP).content.decode()
    key = client.session[twofactor.SETUP_KEY_SESSION_KEY]
    return TOTPDevice(key=key), page


def test_an_operator_without_an_app_is_sent_to_set_one_up(client, operator):
    client.force_login(operator)

    response = client.get(DASHBOARD)

    assert response["Location"] == f"{SETUP}?next=%2Fdashboard%2F"


def test_the_setup_page_shows_the_qr_code_inline_and_the_secret(client, operator):
    client.force_login(operator)

    device, page = set_up(client)

    assert re.search(r"<svg[^>]*>", page)  # inline: no image to fetch, no other site
    secret = re.search(r'data-testid="secret"><code>([A-Z2-7 ]+)</code>', page).group(1)
    assert secret.replace(" ", "") == twofactor.readable_secret(device).replace(" ", "")
    assert "Votre rôle exige un second facteur" in page


def test_the_qr_code_scales_to_the_width_the_page_gives_it(client, operator):
    """With a fixed size and no viewBox, CSS cut the code instead (seen on a phone)."""
    client.force_login(operator)

    _, page = set_up(client)

    svg = re.search(r"<svg[^>]*>", page).group(0)
    assert "viewBox=" in svg
    assert "width=" not in svg


def test_the_app_set_up_gives_recovery_codes_once(client, operator):
    client.force_login(operator)
    device, _ = set_up(client)

    wrong = client.post(SETUP, {"code": wrong_code(device)})
    done = client.post(SETUP, {"code": code_of(device), "next": DASHBOARD})

    assert "Code incorrect" in wrong.content.decode()
    assert done.status_code == 200
    assert TOTPDevice.objects.filter(user=operator, confirmed=True).count() == 1
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.content.decode())
    assert len(codes) == twofactor.RECOVERY_CODES
    assert done["Cache-Control"].startswith("max-age=0")
    assert client.get(DASHBOARD).status_code == 200  # this session is verified
    again = client.get(SETUP).content.decode()
    assert "Il vous reste 10 codes de secours" in again
    assert not any(code in again for code in codes)


def test_a_recovery_code_signs_in_once(client, operator):
    client.force_login(operator)
    device, _ = set_up(client)
    codes = re.findall(
        r"<li><code>([a-z2-7]+)</code></li>",
        client.post(SETUP, {"code": code_of(device)}).content.decode(),
    )
    client.post("/accounts/logout/")

    password(client)
    first = client.post(CODE, {"code": codes[0].upper()})
    client.post("/accounts/logout/")
    password(client)
    second = client.post(CODE, {"code": codes[0]})

    assert first.status_code == 302
    assert "Code incorrect" in second.content.decode()
    assert StaticDevice.objects.get(user=operator).token_set.count() == 9


def test_an_unverified_session_cannot_add_an_app_beside_the_existing_one(client, operator):
    app_of(operator)
    client.force_login(operator)

    response = client.get(SETUP)

    assert response["Location"].startswith(CODE)
    assert TOTPDevice.objects.filter(user=operator).count() == 1


# --- Directors: optional -----------------------------------------------------------------


def test_a_director_without_an_app_signs_in_with_the_password_alone(client, director):
    response = password(client, "directeur")

    assert response.status_code == 302
    assert is_signed_in(client)
    assert client.get("/ppms/ecole/").status_code == 200


def test_a_director_may_turn_the_app_on_and_then_must_give_its_code(client, director):
    client.force_login(director)
    device, page = set_up(client)
    client.post(SETUP, {"code": code_of(device)})
    client.post("/accounts/logout/")

    response = password(client, "directeur")

    assert "Facultatif pour votre compte" in page
    assert response["Location"].startswith(CODE)
    assert not is_signed_in(client)


def test_a_director_may_turn_the_app_off(client, director):
    app_of(director)
    sign_in(client, director)

    client.post(SETUP, {"action": "disable"})

    assert not TOTPDevice.objects.filter(user=director).exists()


def test_an_operator_may_not_turn_the_app_off(client, operator):
    sign_in(client, operator)

    client.post(SETUP, {"action": "disable"})

    assert TOTPDevice.objects.filter(user=operator).exists()


# --- The admin ----------------------------------------------------------------------------


def test_the_admin_signs_in_through_the_sites_sign_in(client):
    response = client.get("/admin/login/?next=/admin/sensors/")

    assert response["Location"] == f"{LOGIN}?next=%2Fadmin%2Fsensors%2F"


def reset(client, user):
    return client.post(
        "/admin/auth/user/",
        {"action": "reset_second_factor", "_selected_action": [user.pk]},
    )


def test_the_admin_resets_a_users_second_factor_in_the_audit_trail(
    client, operator, django_user_model
):
    town_admin = make_user(django_user_model, "admin-csu", role=roles.ADMINS, is_staff=True)
    roles.ensure_role_groups()
    phone = Client()
    sign_in(phone, operator)
    sign_in(client, town_admin)

    response = reset(client, operator)

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=operator).exists()
    assert not StaticDevice.objects.filter(user=operator).exists()
    entry = AuditEntry.objects.get(username="admin-csu", action="admin")
    assert entry.data["second_factor_reset"] == ["operateur"]
    # The operator's open session lost its second factor at once.
    assert phone.get(DASHBOARD)["Location"].startswith(SETUP)


def test_only_a_superuser_resets_a_superusers_second_factor(client, django_user_model):
    roles.ensure_role_groups()
    town_admin = make_user(django_user_model, "admin-csu", role=roles.ADMINS, is_staff=True)
    root = make_user(django_user_model, "root", is_staff=True, is_superuser=True)
    app_of(root)
    sign_in(client, town_admin)

    reset(client, root)

    assert TOTPDevice.objects.filter(user=root).exists()


# --- The websocket ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_closes_for_a_session_without_its_second_factor(operator):
    client = Client()
    await sync_to_async(client.force_login)(operator)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")],
    )

    connected, _ = await communicator.connect(timeout=20)
    closed = await communicator.receive_output(timeout=20)

    assert connected  # accepted, then closed with the code a page can read
    assert (closed["type"], closed["code"]) == ("websocket.close", CLOSE_SECOND_FACTOR_MISSING)
    await communicator.disconnect()
