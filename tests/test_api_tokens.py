"""API tokens: stored hashed, shown once, expiring, revoked with the password or the
account, listed to admins without their secret, and kept in the audit trail."""

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core import roles
from core.models import ApiToken, AuditEntry
from tests.conftest import api_token, make_user, sign_in

SENSORS = "/api/v1/sensors/"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CHANGELIST = "/admin/core/apitoken/"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def admin_user(django_user_model):
    return make_user(django_user_model, "admin-ville", role=roles.ADMINS, is_staff=True)


@pytest.fixture
def admin_web(client, admin_user):
    sign_in(client, admin_user)
    return client


def call(api, secret):
    return api.get(SENSORS, HTTP_AUTHORIZATION=f"Token {secret}")


def test_a_token_keeps_only_the_hash_of_its_secret(operator):
    token, secret = ApiToken.issue(user=operator, name="SIG")

    token.refresh_from_db()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:8]
    stored = [str(getattr(token, field.attname)) for field in ApiToken._meta.concrete_fields]
    assert not any(secret in value for value in stored)


def test_a_token_expires_after_90_days_by_default(operator):
    with time_machine.travel(NOW, tick=False):
        token, _secret = ApiToken.issue(user=operator)

    assert token.expires == NOW + timedelta(days=90)


def test_the_lifetime_of_a_token_is_a_setting(operator, settings):
    settings.API_TOKEN_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        token, _secret = ApiToken.issue(user=operator)

    assert token.expires == NOW + timedelta(days=7)


def test_a_valid_token_authenticates_and_is_marked_used(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        token, secret = ApiToken.issue(user=operator)
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        response = call(api, secret)

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used == NOW + timedelta(days=3)


def test_an_expired_token_gets_401_saying_jeton_expire(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        _token, secret = ApiToken.issue(user=operator)
    with time_machine.travel(NOW + timedelta(days=90, seconds=1), tick=False):
        response = call(api, secret)

    assert response.status_code == 401
    assert response.json() == {"detail": "Jeton expiré."}
    assert response["WWW-Authenticate"] == "Token"


def test_an_expired_token_says_token_expired_in_english(api, operator, sensor):
    with time_machine.travel(NOW, tick=False):
        _token, secret = ApiToken.issue(user=operator)
    with time_machine.travel(NOW + timedelta(days=91), tick=False):
        response = api.get(SENSORS, HTTP_AUTHORIZATION=f"Token {secret}", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json() == {"detail": "Token expired."}


def test_a_wrong_or_malformed_token_gets_401(api, operator, sensor):
    assert call(api, "not-a-token").status_code == 401
    assert api.get(SENSORS, HTTP_AUTHORIZATION="Token").status_code == 401
    assert api.get(SENSORS, HTTP_AUTHORIZATION="Token a b").status_code == 401
    assert api.get(SENSORS, HTTP_AUTHORIZATION=b"Token \xff\xfe").status_code == 401


def test_a_token_of_a_deactivated_account_is_refused(api, operator, sensor):
    secret = api_token(operator)
    type(operator).objects.filter(pk=operator.pk).update(is_active=False)  # no signal

    assert call(api, secret).status_code == 401


# --- Revocation -------------------------------------------------------------------------


def test_a_password_change_revokes_the_users_tokens(api, operator, other_operator, sensor):
    secret = api_token(operator)
    other = api_token(other_operator)

    operator.set_password("un autre mot de passe")
    operator.save()

    assert call(api, secret).status_code == 401
    assert not ApiToken.objects.filter(user=operator).exists()
    assert ApiToken.objects.filter(user=other_operator).exists()
    assert call(api, other).status_code == 200


def test_deactivating_an_account_revokes_its_tokens(operator):
    token, _secret = ApiToken.issue(user=operator)

    operator.is_active = False
    operator.save()

    assert not ApiToken.objects.filter(user=operator).exists()
    entry = AuditEntry.objects.get(action="api-token-revoke")
    assert entry.username == "manage.py"  # no request: a command or a shell did it
    assert entry.data == {"owner": "operateur", "prefix": token.prefix, "reason": "deactivated"}


def test_signing_in_and_other_saves_keep_the_tokens(client, operator):
    api_token(operator)

    sign_in(client, operator)  # saves last_login
    operator.first_name = "Camille"
    operator.save()

    assert ApiToken.objects.filter(user=operator).count() == 1


def test_a_revocation_is_in_the_audit_trail(admin_web, admin_user, operator):
    token, _secret = ApiToken.issue(user=operator)
    form = admin_web.get(f"/admin/auth/user/{operator.pk}/password/")
    assert form.status_code == 200

    admin_web.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {"password1": "Nouveau-mot-2-passe", "password2": "Nouveau-mot-2-passe"},
    )

    assert not ApiToken.objects.filter(user=operator).exists()
    entry = AuditEntry.objects.get(action="api-token-revoke")
    assert entry.user == admin_user
    assert entry.target == f"user={operator.pk}"
    assert entry.data == {"owner": "operateur", "prefix": token.prefix, "reason": "password"}


# --- The admin --------------------------------------------------------------------------


def test_the_admin_lists_tokens_without_their_secret(admin_web, operator):
    token, secret = ApiToken.issue(user=operator, name="SIG de la métropole")

    listing = admin_web.get(CHANGELIST).content.decode()
    page = admin_web.get(f"{CHANGELIST}{token.pk}/change/").content.decode()

    assert "SIG de la métropole" in listing and token.prefix in listing
    for body in (listing, page):
        assert secret not in body
        assert token.digest not in body


def test_the_admin_cannot_edit_a_token(admin_web, operator):
    token, _secret = ApiToken.issue(user=operator, name="SIG")

    response = admin_web.post(
        f"{CHANGELIST}{token.pk}/change/", {"user": operator.pk, "name": "autre"}
    )

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.name == "SIG"


def test_an_admin_creates_a_token_and_sees_its_secret_once(
    api, admin_web, admin_user, operator, sensor
):
    response = admin_web.post(f"{CHANGELIST}add/", {"user": operator.pk, "name": "SIG"})

    assert response.status_code == 200
    token = ApiToken.objects.get(user=operator)
    secret = re.search(r'<code id="api-token">([^<]+)</code>', response.content.decode())[1]
    assert secret.startswith(token.prefix)
    assert call(api, secret).status_code == 200
    assert secret not in admin_web.get(f"{CHANGELIST}{token.pk}/change/").content.decode()
    entry = AuditEntry.objects.get(action="api-token-create")
    assert entry.user == admin_user
    assert entry.data == {"owner": "operateur", "prefix": token.prefix, "name": "SIG"}
    assert secret not in str(AuditEntry.objects.values_list("data", flat=True))


def test_an_admin_gives_no_token_to_a_superuser(admin_web, django_user_model):
    root = make_user(django_user_model, "root", is_staff=True, is_superuser=True)

    response = admin_web.post(f"{CHANGELIST}add/", {"user": root.pk, "name": "x"})

    assert response.status_code == 200  # the form again, with its error
    assert not ApiToken.objects.exists()


def test_deleting_a_token_in_the_admin_revokes_it(api, admin_web, admin_user, operator, sensor):
    token, secret = ApiToken.issue(user=operator)

    admin_web.post(f"{CHANGELIST}{token.pk}/delete/", {"post": "yes"})

    assert call(api, secret).status_code == 401
    entry = AuditEntry.objects.get(action="api-token-revoke")
    assert entry.data == {"owner": "operateur", "prefix": token.prefix, "reason": "admin"}


def test_the_command_creates_a_token_and_prints_it_once(api, operator, sensor):
    out = io.StringIO()

    call_command("api_token", "operateur", "--name", "SIG", stdout=out)

    secret = out.getvalue().strip().splitlines()[-1]
    assert call(api, secret).status_code == 200
    token = ApiToken.objects.get(user=operator)
    assert token.name == "SIG"
    entry = AuditEntry.objects.get(action="api-token-create")
    assert entry.user is None and entry.username == "manage.py"


def test_the_command_refuses_an_unknown_or_inactive_user(django_user_model):
    make_user(django_user_model, "parti", is_active=False)

    for username in ("personne", "parti"):
        with pytest.raises(CommandError):
            call_command("api_token", username, stdout=io.StringIO())
    assert not ApiToken.objects.exists()
