"""The audit trail: every write of an operator, a director or an admin, kept for admins."""

import html
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from core import roles
from core.models import AuditEntry
from core.tasks import purge_audit_entries
from ppms.services import ppms_activate
from tests.alerting import feed, make_rule
from tests.conftest import make_user, sign_in

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def alert(sensor):
    make_rule()
    [opened] = feed(sensor, [85])
    return opened


@pytest.fixture
def activation(school, operator):
    return ppms_activate(
        scenario="confinement",
        title="Nuage toxique",
        source="operator",
        schools=[school],
        by=operator,
        now=NOW,
    )


@pytest.fixture
def csu_admin(django_user_model):
    """A staff member of the admins group, not a superuser."""
    return make_user(django_user_model, "admin-csu", role=roles.ADMINS, is_staff=True)


def test_an_operators_acknowledgement_is_recorded_with_who_when_and_what(api, operator, alert):
    sign_in(api, operator)

    with time_machine.travel(NOW, tick=False):
        response = api.post(
            f"/api/v1/alerts/{alert.pk}/acknowledge/",
            {"comment": "Équipe envoyée"},
            format="json",
            REMOTE_ADDR="10.0.0.7",
        )

    assert response.status_code == 200
    [entry] = AuditEntry.objects.all()
    assert entry.user == operator
    assert entry.username == "operateur"
    assert entry.at == NOW
    assert entry.action == "alert-acknowledge"
    assert entry.target == f"pk={alert.pk}"
    assert (entry.method, entry.status) == ("POST", 200)
    assert entry.data == {"comment": "Équipe envoyée"}
    assert entry.ip == "10.0.0.7"


def test_a_refused_attempt_is_recorded_with_its_answer(api, other_operator, alert):
    sign_in(api, other_operator)

    response = api.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"comment": "x"}, format="json")

    assert response.status_code == 404
    [entry] = AuditEntry.objects.all()
    assert (entry.username, entry.action, entry.status) == (
        "operateur-ballan",
        "alert-resolve",
        404,
    )
    assert entry.refused


def test_a_directors_report_is_recorded(api, director, activation, school):
    sign_in(api, director)

    response = api.post(
        f"/api/v1/ppms/activations/{activation.pk}/statuses/{school.uai}/",
        {"state": "safe", "pupils_present": 180},
        format="json",
    )

    assert response.status_code == 201
    [entry] = AuditEntry.objects.all()
    assert (entry.username, entry.action) == ("directeur", "ppms-activation-report")
    assert entry.target == f"pk={activation.pk} uai={school.uai}"
    assert entry.data == {"state": "safe", "pupils_present": 180}


def test_signing_in_and_out_are_recorded_and_the_password_never_is(client, operator):
    client.post("/accounts/login/", {"username": "operateur", "password": "pw"})
    client.post("/accounts/logout/")

    login, logout = AuditEntry.objects.order_by("pk")
    assert (login.action, login.username, login.status) == ("login", "operateur", 302)
    assert login.data == {"username": "operateur"}
    assert (logout.action, logout.username) == ("logout", "operateur")


def test_reads_and_anonymous_requests_leave_no_line(api, operator, alert):
    sign_in(api, operator)
    api.get("/api/v1/alerts/")
    APIClient().post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"comment": "x"}, format="json")

    assert not AuditEntry.objects.exists()  # a failed sign-in does: tests/test_signin_throttle.py


def test_long_free_text_is_cut_and_secrets_are_dropped(api, operator, alert):
    sign_in(api, operator)

    api.post(
        f"/api/v1/alerts/{alert.pk}/comments/",
        {"text": "a" * 500, "api_token": "s3cret"},
        format="json",
    )

    [entry] = AuditEntry.objects.all()
    assert entry.data == {"text": "a" * 200 + "…"}


def test_admins_read_the_trail_in_the_admin_and_cannot_change_it(
    client, operator, csu_admin, alert
):
    call_command("migrate", "csu", verbosity=0)  # post_migrate gives the admins group its rights
    AuditEntry.objects.create(
        user=operator,
        username="operateur",
        action="alert-acknowledge",
        method="POST",
        path=f"/api/v1/alerts/{alert.pk}/acknowledge/",
        target=f"pk={alert.pk}",
        status=200,
    )
    sign_in(client, csu_admin)

    listing = client.get("/admin/core/auditentry/")
    entry = AuditEntry.objects.get()
    change = client.post(f"/admin/core/auditentry/{entry.pk}/change/", {"username": "x"})
    delete = client.post(f"/admin/core/auditentry/{entry.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    page = html.unescape(listing.content.decode())
    assert "Acquittement d'une alerte" in page
    assert "operateur" in page
    assert change.status_code == 403
    assert delete.status_code == 403
    entry.refresh_from_db()
    assert entry.username == "operateur"


def test_operators_and_directors_cannot_read_the_trail(client, operator, director):
    for user in (operator, director):
        sign_in(client, user)
        response = client.get("/admin/core/auditentry/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_admin_changes_are_recorded_too(client, csu_admin, commune):
    call_command("migrate", "csu", verbosity=0)
    sign_in(client, csu_admin)

    response = client.post(
        "/admin/ppms/school/add/",
        {"uai": "0370009Z", "name": "École Rabelais", "commune": commune.pk, "pupils": 120},
    )

    entry = AuditEntry.objects.get(username="admin-csu")
    assert entry.action == "admin"
    assert entry.path == "/admin/ppms/school/add/"
    assert entry.data["name"] == "École Rabelais"
    assert response.status_code in (200, 302)


def test_entries_past_the_retention_are_purged(operator, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    with time_machine.travel(NOW - timedelta(days=366)):
        old = AuditEntry.objects.create(
            username="operateur", action="login", method="POST", path="/", status=302
        )
    recent = AuditEntry.objects.create(
        username="operateur", action="login", method="POST", path="/", status=302
    )

    with time_machine.travel(NOW, tick=False):
        assert purge_audit_entries() == 1

    assert list(AuditEntry.objects.all()) == [recent]
    assert not AuditEntry.objects.filter(pk=old.pk).exists()


def test_an_entry_survives_its_user_being_deleted(client, django_user_model):
    user = make_user(django_user_model, "partant", role=roles.OPERATORS)
    client.post("/accounts/login/", {"username": "partant", "password": "pw"})

    user.delete()

    [entry] = AuditEntry.objects.all()
    assert (entry.user, entry.username, entry.action) == (None, "partant", "login")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"comment=x"),  # no boundary
        ("application/x-www-form-urlencoded", "&".join(["a=1"] * 1001).encode()),
    ],
)
def test_an_unreadable_form_keeps_the_views_json_answer_and_its_line(
    api, operator, alert, content_type, body
):
    # Found by the API fuzzer: reading the form again for the trail raised, and Django's
    # HTML "Bad Request" page replaced the view's JSON 400.
    sign_in(api, operator)

    response = api.generic(
        "POST", f"/api/v1/alerts/{alert.pk}/comments/", body, content_type=content_type
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == ["detail"]
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.status) == ("alert-comments", 400)


def test_a_nul_character_or_a_nan_in_the_data_does_not_lose_the_line(api, operator, alert):
    # Found by the API fuzzer: PostgreSQL refuses both in a JSON value (and a NUL in a
    # text), so the refused attempt went unrecorded and the failed insert broke the
    # surrounding transaction.
    sign_in(api, operator)
    body = b'{"text": "a\\u0000b", "\\u0000level": NaN}'

    response = api.generic(
        "POST",
        f"/api/v1/alerts/{alert.pk}/comments/%00/",
        body,
        content_type="application/json",
    )
    api.post(f"/api/v1/alerts/{alert.pk}/comments/", body, content_type="application/json")

    assert response.status_code == 404
    first, second = AuditEntry.objects.order_by("pk")
    assert "\x00" not in first.path
    assert second.data == {"text": "ab", "level": "nan"}
    assert second.status == 400
