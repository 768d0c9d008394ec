"""The websocket opens only for a page of this site: same scheme, host and port as the
connection (Channels' validator compared the host alone), or a trusted origin."""

import pytest

from core.websocket import same_origin


def scope(origin: str | None, host: str = "csu.example.fr", scheme: str = "wss") -> dict:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.fixture(autouse=True)
def site(settings):
    settings.ALLOWED_HOSTS = ["csu.example.fr", "127.0.0.1"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://supervision.example.fr"]


@pytest.mark.parametrize(
    "origin, host, scheme, opens",
    [
        ("https://csu.example.fr", "csu.example.fr", "wss", True),
        ("https://csu.example.fr:443", "csu.example.fr", "wss", True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws", True),
        ("https://supervision.example.fr", "csu.example.fr", "wss", True),  # trusted
        ("http://csu.example.fr", "csu.example.fr", "wss", False),  # another scheme
        ("https://csu.example.fr:8443", "csu.example.fr", "wss", False),  # another port
        ("http://127.0.0.1:9000", "127.0.0.1:8000", "ws", False),
        ("https://evil.example", "csu.example.fr", "wss", False),
        ("https://evil.example", "evil.example", "wss", False),  # a host not allowed
        ("null", "csu.example.fr", "wss", False),
        (None, "csu.example.fr", "wss", False),  # a program must send its Origin
    ],
)
def test_the_origin_must_be_the_site_itself(origin, host, scheme, opens):
    assert same_origin(scope(origin, host, scheme)) is opens
