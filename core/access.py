"""A user's access follows their account (receivers connected in csu/apps.py).

When a password changes or an account is deactivated, the user's API tokens are
revoked. The account as it was is read before each save that may change it
(``remember_account``), and compared after (``on_account_saved``).
"""

from django.contrib.auth import get_user_model

from .api_tokens import tokens_revoke
from .models import ApiToken

ACCOUNT_FIELDS = ("password", "is_active", "is_staff", "is_superuser")
BEFORE = "_csu_account_before"


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
    deactivated account."""
    before = instance.__dict__.pop(BEFORE, None)
    if raw or created or before is None:
        return
    tokens = ApiToken.objects.filter(user=instance)
    if before["password"] != instance.password:
        tokens_revoke(tokens=tokens, reason="password")
    elif before["is_active"] and not instance.is_active:
        tokens_revoke(tokens=tokens, reason="deactivated")
