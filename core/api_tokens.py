"""The REST API's tokens: ``Authorization: Token <secret>``, checked against the hash
``core.models.ApiToken`` keeps.

A token is refused once expired (401 "Jeton expiré."), or when its user is no longer
active; it is deleted — and the deletion kept in the audit trail — when its user's
password changes or the account is deactivated (``core.access``), or when an admin
deletes it.
"""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from . import audit
from .models import ApiToken, token_digest

INVALID = _("Jeton invalide.")
EXPIRED = _("Jeton expiré.")
INACTIVE = _("Compte désactivé.")
# ``last_used`` is written at most this often: an integrator's calls are not each a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # another scheme, or none: the session may authenticate
        if len(words) != 2:
            raise AuthenticationFailed(INVALID)
        try:
            secret = words[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID) from None
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
        now = timezone.now()
        if token is None:
            raise AuthenticationFailed(INVALID)
        if token.is_expired(now):
            raise AuthenticationFailed(EXPIRED)
        if not token.user.is_active:
            raise AuthenticationFailed(INACTIVE)
        _mark_used(token, now)
        return token.user, token

    def authenticate_header(self, request):
        # A 401, not a 403, for a call without credentials.
        return self.keyword


def _mark_used(token: ApiToken, now) -> None:
    if token.last_used is None or now - token.last_used >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)


def token_usable(secret: str) -> ApiToken | None:
    """The token of ``secret`` (its user with it) if it may be used now, else None: the
    websocket's check, where a refusal says no more than "unauthenticated"."""
    now = timezone.now()
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
    if token is None or token.is_expired(now) or not token.user.is_active:
        return None
    _mark_used(token, now)
    return token


def token_user(token_id: int):
    """The user of token ``token_id`` if it is still usable (not revoked, not expired, its
    user active), else None: an open websocket's check again."""
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None or token.is_expired(timezone.now()) or not token.user.is_active:
        return None
    return token.user


def token_issue(*, user, name: str = "") -> tuple[ApiToken, str]:
    """Issue a token to ``user`` and record it; return it with its secret, shown once."""
    token, secret = ApiToken.issue(user=user, name=name)
    audit.record(
        action="api-token-create",
        target=f"user={user.pk}",
        data={"owner": user.get_username(), "prefix": token.prefix, "name": name},
    )
    return token, secret


def tokens_revoke(*, tokens, reason: str) -> int:
    """Delete ``tokens`` (a queryset), each recorded with ``reason``; return how many."""
    revoked = list(tokens.select_related("user"))
    for token in revoked:
        audit.record(
            action="api-token-revoke",
            target=f"user={token.user_id}",
            data={"owner": token.user.get_username(), "prefix": token.prefix, "reason": reason},
        )
    ApiToken.objects.filter(pk__in=[token.pk for token in revoked]).delete()
    return len(revoked)
