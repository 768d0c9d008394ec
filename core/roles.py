"""The roles of CSU, as Django groups, and the communes each user supervises.

A role says what a user may do; the scope says what they see: an operator's communes
(``sensors.Operator``, reached as ``user.operator``), a director's schools
(``ppms.School.directors``). Admins are staff users: they configure everything in the
Django admin and see every commune. Every ``visible_to(user)`` of the apps starts from
``supervised_communes`` here.

An authority (the mayor, the on-call manager) is an operator who also validates the
PPMS activations that the rules propose: a user of both groups, with the communes they
answer for as their operator scope. The authorities' group holds the permission
``VALIDATE_ACTIVATION``; a commune may grant its operators the same decision
(``ppms.CommunePolicy``).
"""

from django.utils.translation import gettext_lazy as _

OPERATORS = "operators"
AUTHORITIES = "authorities"
DIRECTORS = "directors"
ADMINS = "admins"

LABELS = {
    OPERATORS: _("Opérateurs"),
    AUTHORITIES: _("Autorités (valident les déclenchements PPMS)"),
    DIRECTORS: _("Directeurs d'école"),
    ADMINS: _("Administrateurs"),
}

# "Valider un déclenchement PPMS" (ppms.Proposal's permission): the authorities' decision,
# not part of configuring the town, so not the admins' group's.
VALIDATE_ACTIVATION = "ppms.validate_activation"

# Admins may change the configuration of every CSU app; they do not edit readings.
ADMIN_APPS = ("sensors", "alerts", "ppms", "auth", "core")
ADMIN_READ_ONLY_MODELS = ("reading", "latestreading", "rejectedmessage")
# Nobody edits the trail: it is only written by the middleware and purged by retention.
ADMIN_VIEW_ONLY_MODELS = ("auditentry",)


def has_role(user, role: str) -> bool:
    if not user.is_authenticated:
        return False
    cached = getattr(user, "_csu_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._csu_roles = cached
    return role in cached


def is_operator(user) -> bool:
    return user.is_authenticated and (user.is_superuser or has_role(user, OPERATORS))


def is_director(user) -> bool:
    return has_role(user, DIRECTORS)


def is_admin(user) -> bool:
    return user.is_authenticated and (user.is_superuser or user.is_staff)


def watches_the_town(user) -> bool:
    """Operators and admins: who watch the dashboards and act on alerts and the PPMS."""
    return is_operator(user) or is_admin(user)


def sees_every_commune(user) -> bool:
    """Admins, and métropole-level operators, supervise every commune."""
    if is_admin(user):
        return True
    operator = getattr(user, "operator", None) if is_operator(user) else None
    return operator is not None and operator.all_communes


def supervised_communes(user):
    """The ids of the communes ``user`` supervises, as a queryset to filter on; None when
    they supervise every commune (nothing to filter)."""
    if sees_every_commune(user):
        return None
    operator = getattr(user, "operator", None) if is_operator(user) else None
    if operator is None:
        return user.groups.none().values("pk")  # an empty queryset of ids: no commune
    return operator.communes.values("pk")


def ensure_role_groups(**kwargs) -> None:
    """Create the role groups and give admins the permissions of the CSU apps."""
    from django.contrib.auth.models import Group, Permission

    groups = {name: Group.objects.get_or_create(name=name)[0] for name in LABELS}
    app_label, codename = VALIDATE_ACTIVATION.split(".")
    decision = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    perms = (
        Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
        .exclude(content_type__model__in=ADMIN_READ_ONLY_MODELS, codename__regex=r"^(add|change)_")
        .exclude(content_type__model__in=ADMIN_VIEW_ONLY_MODELS, codename__regex=r"^(?!view_)")
        .exclude(pk__in=decision)
    )
    groups[ADMINS].permissions.set(perms)
    groups[AUTHORITIES].permissions.set(decision)
