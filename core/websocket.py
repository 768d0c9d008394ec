"""Who may open the websocket: a program by its API token, a browser from a page of this
very site by its session (docs/websocket.md).

A program sends its token as ``Authorization: Token <secret>`` or, where it cannot set
headers (a browser's ``WebSocket``), as the two subprotocols ``csu.token`` and the
secret; it needs no Origin, and its session cookie, if any, is ignored: a token is no
ambient credential a foreign page could borrow. A browser's session is.

For a browser: Channels' ``AllowedHostsOriginValidator`` compares the Origin's host with
``ALLOWED_HOSTS`` only: a page served over plain HTTP, or on another port of an allowed
host, could open an operator's websocket with their cookie. Here the Origin must be the
site the browser is talking to — same scheme, host and port as the connection itself
(behind a proxy, the scheme uvicorn takes from the trusted proxy) — or one of
``CSRF_TRUSTED_ORIGINS``, and the host one of ``ALLOWED_HOSTS``.
"""

from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from .api_tokens import token_usable

DEFAULT_PORTS = {"http": "80", "https": "443"}
TOKEN_PROTOCOL = "csu.token"

# The close codes, each sent after the handshake is accepted (a refused handshake would
# be a bare HTTP 403, the same for every reason, and a browser's page cannot read it).
# No credentials, a token unknown, expired or revoked, a session ended (signed out, a new
# password, the account deactivated): the pages send the user to the login page.
CLOSE_UNAUTHENTICATED = 4401
# A browser's socket from a page of another site, or without an Origin; and, on an open
# socket, what the user may see changed (a commune, a school, a role): the page
# reconnects, joins what the user may see now, and fetches again.
CLOSE_FORBIDDEN = 4403
# Signed in with a password alone by a user who must type their code or set up an app.
CLOSE_SECOND_FACTOR_MISSING = 4428


def _origin(scheme: str, netloc: str) -> tuple[str, str, str] | None:
    host, port = split_domain_port(netloc)
    if not host:
        return None
    return scheme, host, port or DEFAULT_PORTS.get(scheme, "")


def same_origin(scope) -> bool:
    headers = dict(scope.get("headers", []))
    try:
        origin = urlsplit(headers.get(b"origin", b"").decode("latin1"))
        host = headers.get(b"host", b"").decode("latin1")
    except ValueError:
        return False
    given = _origin(origin.scheme, origin.netloc)
    if given is None:
        return False
    trusted = {
        _origin(urlsplit(url).scheme, urlsplit(url).netloc) for url in settings.CSRF_TRUSTED_ORIGINS
    }
    if given in trusted:
        return True
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    expected = _origin(scheme, host)
    return (
        expected is not None
        and given == expected
        and validate_host(expected[1], settings.ALLOWED_HOSTS)
    )


def token_secret(scope) -> str | None:
    """The API token a program sent (header or subprotocols), else None."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            words = value.split()
            if len(words) == 2 and words[0].lower() == b"token":
                return words[1].decode("latin1")
    protocols = list(scope.get("subprotocols") or ())
    if TOKEN_PROTOCOL in protocols:
        others = [protocol for protocol in protocols if protocol != TOKEN_PROTOCOL]
        return others[0] if others else ""
    return None


async def close_after_accept(receive, send, code: int) -> None:
    """Refuse a handshake with ``code``: accepted, then closed at once, nothing sent."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})


class LiveSocketGate:
    """Let a program in by its token, a browser by its session from a page of this site
    (``same_origin``); close anything else with CLOSE_FORBIDDEN.

    A token's socket carries ``api_token_id`` in its scope (None: no usable token), and
    its user; a browser's its session and user, as ``AuthMiddlewareStack`` sets them.
    """

    def __init__(self, application):
        self.application = application
        self.by_session = AuthMiddlewareStack(application)

    async def __call__(self, scope, receive, send):
        secret = token_secret(scope)
        if secret is not None:
            token = await database_sync_to_async(token_usable)(secret)
            scope = dict(
                scope,
                user=token.user if token else AnonymousUser(),
                api_token_id=token.pk if token else None,
                api_token_expires=token.expires if token else None,
            )
            return await self.application(scope, receive, send)
        if same_origin(scope):
            return await self.by_session(scope, receive, send)
        return await close_after_accept(receive, send, CLOSE_FORBIDDEN)
