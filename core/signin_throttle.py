"""The sign-in throttle: a delay that grows with the failures, never a lock.

Each failed sign-in (a wrong password, or a wrong second-factor code: anything that
sends Django's ``user_login_failed``) counts against three subjects:

- the **address** it came from, across usernames (password spraying from one place);
  IPv6 addresses count by their /64, which one subscriber usually holds whole;
- the **username**, across addresses (guessing one account from many places);
- the **browser**, for a browser where that username signed in before (see below).

A subject may fail ``SIGNIN_FREE_FAILURES`` times (a username, a browser) or
``SIGNIN_FREE_FAILURES_PER_ADDRESS`` times (an address: a school or a town hall puts many
people behind one) without delay. From the last of those on, each failure makes the
subject wait before its next attempt is even checked: ``SIGNIN_FIRST_DELAY_S``, then
twice as long after each further failure, up to ``SIGNIN_MAX_DELAY_S``. Attempts made
while waiting are refused without being counted, so they do not lengthen the wait. A
subject's failures are forgotten ``SIGNIN_MEMORY_S`` after its last one; a successful
sign-in forgets its username's and browser's.

django-axes, used before, locked a username from an address for a fixed time once it
had five failures, and every failure renewed the lock: behind one NAT, anyone could keep
a director out through a whole crisis, while spraying usernames went unchecked.

The **browser** subject is what keeps an attacker from turning the throttle against a
user. A successful sign-in leaves a signed cookie naming the username on that browser.
When that browser signs in again as that username, the username's and the address's
delays do not apply to it — only its own, kept under the cookie's random id. A director
on their usual phone is therefore never kept out by someone guessing their password
elsewhere, or by a neighbour on the same network spraying other names.

The address is ``REMOTE_ADDR`` and nothing else: behind a reverse proxy, uvicorn sets it
from ``X-Forwarded-For`` only when the connection comes from an address listed in
``FORWARDED_ALLOW_IPS`` (docs/operations.md). An ``X-Forwarded-For`` sent by anyone else
is ignored, so a client cannot pick a fresh address for each attempt.
"""

import functools
import ipaddress
import logging
import math
import secrets
import time

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

log = logging.getLogger(__name__)

COOKIE = "csu_signin"
COOKIE_SALT = "core.signin_throttle.known-browser"
COOKIE_MAX_AGE = 180 * 24 * 3600
KEY = "signin"


def address_of(request) -> str:
    """The client's address as the throttle counts it (IPv6 by its /64)."""
    raw = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def normalised(username) -> str:
    return str(username or "").strip().lower()[:150]


def known_browser(request, username: str) -> str | None:
    """The browser's id when a sign-in as ``username`` succeeded on it before."""
    try:
        known = signing.loads(
            request.COOKIES.get(COOKIE, ""), salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE
        )
    except signing.BadSignature:
        return None
    if isinstance(known, dict) and username in known.get("users", []):
        return str(known.get("id"))
    return None


def subjects(request, username) -> list[tuple[str, int]]:
    """The cache keys a sign-in attempt counts against, each with its free failures."""
    username = normalised(username)
    browser = known_browser(request, username)
    if browser:
        return [(f"{KEY}:browser:{browser}:{username}", settings.SIGNIN_FREE_FAILURES)]
    return [
        (f"{KEY}:address:{address_of(request)}", settings.SIGNIN_FREE_FAILURES_PER_ADDRESS),
        (f"{KEY}:username:{username}", settings.SIGNIN_FREE_FAILURES),
    ]


def delay_after(failures: int, free: int) -> float:
    """Seconds to wait after ``failures`` failures, ``free`` of them without delay."""
    if failures < free:
        return 0.0
    doublings = min(failures - free, 30)
    return float(min(settings.SIGNIN_FIRST_DELAY_S * 2**doublings, settings.SIGNIN_MAX_DELAY_S))


def unless_the_cache_is_away(default):
    """Answer ``default`` when the cache cannot be reached (Redis down): signing in in a
    crisis must not fail for want of a counter, as if there were no throttle."""

    def decorate(function):
        @functools.wraps(function)
        def tolerant(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except Exception:
                log.warning("sign-in throttle skipped: the cache is out of reach", exc_info=True)
                return default

        return tolerant

    return decorate


@unless_the_cache_is_away(0)
def wait_for(request, username) -> int:
    """Whole seconds before an attempt to sign in as ``username`` from ``request`` is
    checked (0: now)."""
    keys = dict(subjects(request, username))
    found = cache.get_many([f"{key}:{part}" for key in keys for part in ("n", "last")])
    now = time.time()
    longest = 0.0
    for key, free in keys.items():
        failures, last = found.get(f"{key}:n", 0), found.get(f"{key}:last", now)
        longest = max(longest, last + delay_after(failures, free) - now)
    return math.ceil(longest) if longest > 0 else 0


@unless_the_cache_is_away(None)
def count_failure(request, username) -> None:
    memory = settings.SIGNIN_MEMORY_S
    for key, _ in subjects(request, username):
        # incr is atomic (Redis): concurrent failures are all counted.
        cache.add(f"{key}:n", 0, memory)
        cache.incr(f"{key}:n")
        cache.touch(f"{key}:n", memory)
        cache.set(f"{key}:last", time.time(), memory)
    request.signin_wait = wait_for(request, username)


@unless_the_cache_is_away(None)
def forget(request, username) -> None:
    """Forget the failures of ``username`` (and of this browser for it): it signed in."""
    cache.delete_many(
        [
            f"{key}:{part}"
            for key, _ in subjects(request, username)
            if not key.startswith(f"{KEY}:address:")
            for part in ("n", "last")
        ]
    )


class ThrottleBackend:
    """First of the authentication backends: refuses, unchecked, an attempt that must wait.

    Django then sends ``user_login_failed``, which ``on_login_failed`` does not count.
    """

    def authenticate(self, request, username=None, **credentials):
        if request is None:
            return None
        wait = wait_for(request, username)
        if wait:
            request.signin_wait = wait
            request.signin_refused = True
            raise PermissionDenied
        # No get_user: sessions (and the test client's force_login) must name the backend
        # that really authenticated.
        return None


def on_login_failed(sender, credentials, request=None, **kwargs):
    if request is None or getattr(request, "signin_refused", False):
        return
    count_failure(request, credentials.get("username"))


def on_logged_in(sender, request, user, **kwargs):
    if request is None:
        return
    username = normalised(user.get_username())
    forget(request, username)
    request.signin_remember = username


def refused_page(request, wait: int):
    minutes = max(1, math.ceil(wait / 60)) if wait >= 60 else 0
    response = render(
        request,
        "registration/lockout.html",
        {"wait_seconds": wait, "wait_minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


class SigninThrottleMiddleware:
    """Answers a sign-in that must wait with 429 and the wait; remembers the browser of a
    successful one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        wait = getattr(request, "signin_wait", 0)
        if wait and request.method == "POST":
            return refused_page(request, wait)
        username = getattr(request, "signin_remember", None)
        if username:
            self.remember(request, response, username)
        return response

    @staticmethod
    def remember(request, response, username: str) -> None:
        try:
            known = signing.loads(
                request.COOKIES.get(COOKIE, ""), salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE
            )
        except signing.BadSignature:
            known = {}
        if not isinstance(known, dict):
            known = {}
        users = [*[u for u in known.get("users", []) if u != username][-9:], username]
        value = {"id": known.get("id") or secrets.token_urlsafe(12), "users": users}
        response.set_cookie(
            COOKIE,
            signing.dumps(value, salt=COOKIE_SALT),
            max_age=COOKIE_MAX_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
