"""Rate limits of the API, per signed-in user: writes, and exports.

A person never reaches them — an operator's clicks in a crisis, a director's reports, a
phone replaying what it queued offline — a runaway script does, and is answered 429 with
``Retry-After`` (``core.api.exception_handler`` words it). The rates are the settings'
(``API_WRITE_RATE``, ``API_EXPORT_RATE``), read at each request.

Counts live in the project's cache: Redis in production, shared by every web process.
DRF's own throttles read a list of timestamps and write it back, so two processes
answering one user at once each write their own list and forget the other's request: a
script calling in parallel went several times over the rate. Here each request
increments a counter of the current period (Redis ``INCR``, atomic), at the cost of a
fixed window: up to twice the rate across the turn of a period, never more. With the
cache out of reach (Redis down), calls go through uncounted rather than fail.

Anonymous calls are not counted: every API view refuses them (401) before the throttle,
but the SMS gateway's receipts and the phones' push acknowledgements, which check a
secret and come in bursts in a crisis from one address (the gateway, a school's network).
"""

import logging
import math

from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)


class WriteRateThrottle(UserRateThrottle):
    """Count a signed-in user's writes (POST, PUT, PATCH, DELETE)."""

    scope = "write"

    def counts(self, method: str) -> bool:
        return method not in SAFE_METHODS

    def get_rate(self):
        # Not DRF's THROTTLE_RATES, a copy taken at import: settings changed later (tests,
        # a reload) would not reach it.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not self.counts(request.method) or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        period = int(self.now // self.duration)
        self.period_ends = (period + 1) * self.duration
        try:
            return self.count(f"{key}_{period}") <= self.num_requests
        except Exception:  # the cache away (Redis down)
            # An operator's action in a crisis must not fail for want of a counter: the
            # call goes through, as it would with no limit.
            log.warning("rate limit not counted: the cache is out of reach", exc_info=True)
            return True

    def count(self, key: str) -> int:
        """Add one to ``key``'s count and return it."""
        # Kept a period longer than it lasts: a late request of the period still finds it.
        if self.cache.add(key, 1, timeout=2 * self.duration):
            return 1
        try:
            return self.cache.incr(key)
        except ValueError:  # expired between the two calls
            self.cache.add(key, 1, timeout=2 * self.duration)
            return 1

    def wait(self):
        return max(1, math.ceil(self.period_ends - self.now))


class ExportRateThrottle(WriteRateThrottle):
    """Count a signed-in user's exports (files of up to ``EXPORT_MAX_ROWS`` rows)."""

    scope = "export"

    def counts(self, method: str) -> bool:
        return True
