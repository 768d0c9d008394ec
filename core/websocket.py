"""The websocket's origin check: a page of this very site, nothing else.

Channels' ``AllowedHostsOriginValidator`` compares the Origin's host with
``ALLOWED_HOSTS`` only: a page served over plain HTTP, or on another port of an allowed
host, could open an operator's websocket with their cookie. Here the Origin must be the
site the browser is talking to — same scheme, host and port as the connection itself
(behind a proxy, the scheme uvicorn takes from the trusted proxy) — or one of
``CSRF_TRUSTED_ORIGINS``, and the host one of ``ALLOWED_HOSTS``.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": "80", "https": "443"}


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


class SameOriginValidator:
    """Open the websocket only for a page of this site (``same_origin``)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if same_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
