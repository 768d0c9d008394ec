"""Admins configure the town; they cannot make themselves (or anyone) more than that.
Only a superuser changes who is superuser, staff or an admin, and a user's own
permissions; every such change is in the audit trail."""

from datetime import datetime

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from core import roles
from core.models import AuditEntry
from tests.conftest import make_user, sign_in


@pytest.fixture
def town_admin(django_user_model):
    roles.ensure_role_groups()
    return make_user(django_user_model, "admin-ville", role=roles.ADMINS, is_staff=True)


def change_form(client, user, **changes) -> dict:
    """The user's change form as the admin page fills it, with ``changes``."""
    page = client.get(reverse("admin:auth_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, "")
        if isinstance(value, datetime):  # the admin's split date and time inputs
            data[f"{name}_0"], data[f"{name}_1"] = value.strftime("%d/%m/%Y %H:%M:%S").split()
            continue
        if value is True:
            value = "on"
        elif hasattr(value, "__iter__") and not isinstance(value, str):
            value = [getattr(item, "pk", item) for item in value]
        data[name] = value if value is not None else ""
    data.update(
        {
            "operator-TOTAL_FORMS": "0",
            "operator-INITIAL_FORMS": "0",
            "operator-MIN_NUM_FORMS": "0",
            "operator-MAX_NUM_FORMS": "1",
        }
    )
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def test_an_admin_cannot_make_themselves_superuser_or_grant_themselves_rights(client, town_admin):
    sign_in(client, town_admin)
    authorities = Group.objects.get(name=roles.AUTHORITIES)

    response = client.post(
        reverse("admin:auth_user_change", args=[town_admin.pk]),
        change_form(client, town_admin, is_superuser="on", groups=[authorities.pk]),
    )

    assert response.status_code in (200, 302)
    town_admin.refresh_from_db()
    assert not town_admin.is_superuser
    assert list(town_admin.groups.values_list("name", flat=True)) == [roles.ADMINS]


def test_an_admin_cannot_make_someone_else_an_admin(client, town_admin, django_user_model):
    operator = make_user(django_user_model, "operateur", role=roles.OPERATORS)
    sign_in(client, town_admin)
    admins = Group.objects.get(name=roles.ADMINS)

    client.post(
        reverse("admin:auth_user_change", args=[operator.pk]),
        change_form(client, operator, is_staff="on", groups=[admins.pk]),
    )

    operator.refresh_from_db()
    assert not operator.is_staff
    assert not operator.groups.filter(name=roles.ADMINS).exists()


def test_an_admin_still_sets_the_role_of_a_town_user(client, town_admin, django_user_model):
    user = make_user(django_user_model, "nouveau")
    sign_in(client, town_admin)
    directors = Group.objects.get(name=roles.DIRECTORS)

    client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        change_form(client, user, groups=[directors.pk]),
    )

    assert list(user.groups.values_list("name", flat=True)) == [roles.DIRECTORS]


def test_an_admin_cannot_change_a_superuser_nor_the_groups(client, town_admin, django_user_model):
    root = make_user(django_user_model, "root", is_staff=True, is_superuser=True)
    sign_in(client, town_admin)

    change = client.post(reverse("admin:auth_user_change", args=[root.pk]), {"username": "x"})
    password = client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "Nouveau-mot-2026!", "password2": "Nouveau-mot-2026!"},
    )
    group = client.post(
        reverse("admin:auth_group_change", args=[Group.objects.get(name=roles.ADMINS).pk]),
        {"name": roles.ADMINS, "permissions": []},
    )

    assert (change.status_code, password.status_code, group.status_code) == (403, 403, 403)
    root.refresh_from_db()
    assert root.username == "root" and root.check_password("pw")


def test_a_superuser_makes_an_admin_and_it_is_in_the_audit_trail(admin_client, django_user_model):
    roles.ensure_role_groups()
    user = make_user(django_user_model, "future-admin")
    admins = Group.objects.get(name=roles.ADMINS)

    admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        change_form(admin_client, user, is_staff="on", groups=[admins.pk]),
    )

    user.refresh_from_db()
    assert user.is_staff and user.groups.filter(name=roles.ADMINS).exists()
    entry = AuditEntry.objects.filter(action="admin", method="POST").latest("pk")
    assert entry.data.get("is_staff") == "on"
    assert entry.data.get("groups") in (str(admins.pk), [str(admins.pk)])
