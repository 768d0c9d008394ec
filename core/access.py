"""A user's access follows their account (receivers connected in csu/apps.py).

- A new password or a deactivated account revokes the user's API tokens. The account
  as it was is read before each save that may change it (``remember_account``) and
  compared after (``on_account_saved``).
- A deleted API token is told to its user's websockets too: a program's socket opened
  with it checks its token again (``core.api_tokens.token_user``) and closes.
- Whatever may change what a user sees — the account (password, active, staff,
  superuser), its groups, an operator's communes, a director's schools, signing out —
  is told to the user's websockets after the commit (``core.live.send_access_changed``);
  each checks again with ``signed_in_user`` and the groups it may join, and closes if it
  must (dashboard/consumers.py).
"""

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils.crypto import constant_time_compare

from . import live
from .api_tokens import tokens_revoke
from .models import ApiToken

ACCOUNT_FIELDS = ("password", "is_active", "is_staff", "is_superuser")
BEFORE = "_csu_account_before"


def tell(user_ids, *, ended_session: str | None = None) -> None:
    """Tell the sockets of ``user_ids``, once the change is committed (a lost message is
    logged, and never undoes the change)."""
    user_ids = sorted({pk for pk in user_ids if pk is not None})
    if user_ids:

        def send_access_changed():  # a function, not a partial: Django logs its __qualname__
            live.send_access_changed(user_ids, ended_session=ended_session)

        transaction.on_commit(send_access_changed, robust=True)


def remember_account(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save of the user model: keep what the save may change (nothing for a new user,
    nor a save of other fields: signing in saves ``last_login`` alone)."""
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(ACCOUNT_FIELDS):
        return
    before = get_user_model().objects.filter(pk=instance.pk).values(*ACCOUNT_FIELDS).first()
    setattr(instance, BEFORE, before)


def on_account_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    """post_save of the user model: revoke the tokens of a changed password or of a
    deactivated account; tell the sockets of any change of the account's access."""
    before = instance.__dict__.pop(BEFORE, None)
    if raw or created or before is None:
        return
    tokens = ApiToken.objects.filter(user=instance)
    if before["password"] != instance.password:
        tokens_revoke(tokens=tokens, reason="password")
    elif before["is_active"] and not instance.is_active:
        tokens_revoke(tokens=tokens, reason="deactivated")
    if any(before[field] != getattr(instance, field) for field in ACCOUNT_FIELDS):
        tell([instance.pk])


def on_account_deleted(sender, instance, **kwargs) -> None:
    tell([instance.pk])


def on_token_deleted(sender, instance, **kwargs) -> None:
    """post_delete of an API token (revoked, or deleted by an admin): its websockets,
    told through the user's group, find it gone and close."""
    tell([instance.user_id])


def on_logged_out(sender, request, user, **kwargs) -> None:
    """user_logged_out: close the sockets of this session (the user's others stay open)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and key:
        tell([user.pk], ended_session=live.session_hash(key))


def on_scope_saved(sender, instance, **kwargs) -> None:
    """post_save, post_delete of a scope tied to one user (an operator's)."""
    tell([instance.user_id])


def on_scope_m2m_changed(sender, instance, action, model, pk_set, **kwargs) -> None:
    """m2m_changed of a relation that gives a user access: groups, an operator's
    communes, a school's directors. Either side may be the one changed."""
    if action == "pre_clear":
        pk_set = set(_related_ids(sender, instance, model))
    elif action not in ("post_add", "post_remove"):
        return
    tell(_users_of(instance) + _users_of_ids(model, pk_set or ()))


def _users_of(obj) -> list:
    if isinstance(obj, get_user_model()):
        return [obj.pk]
    return [getattr(obj, "user_id", None)]


def _users_of_ids(model, pks) -> list:
    if not pks:
        return []
    if model is get_user_model():
        return list(pks)
    if any(field.name == "user" for field in model._meta.fields):
        return list(model.objects.filter(pk__in=pks).values_list("user_id", flat=True))
    return []


def _related_ids(through, instance, model) -> list:
    """The pks of ``model`` that ``instance`` is tied to through ``through`` (before a clear)."""
    relations = {field.related_model: field for field in through._meta.fields if field.is_relation}
    source, target = relations[type(instance)], relations[model]
    return list(
        through.objects.filter(**{source.name: instance.pk}).values_list(target.attname, flat=True)
    )


def signed_in_user(user_id, session: SessionBase):
    """The active user ``user_id`` if still signed in with ``session`` (read again from the
    store), else None: signed out, session expired, password changed, deactivated."""
    if not session.session_key:
        return None
    stored = session.__class__(session.session_key)
    if str(stored.get(SESSION_KEY)) != str(user_id):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    given = stored.get(HASH_SESSION_KEY) or ""
    if user is None or not given:
        return None
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not any(constant_time_compare(given, expected) for expected in hashes):
        return None
    return user
