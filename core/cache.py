"""Configuration read on hot paths, kept by each process for a few seconds.

Ingest looks up a sensor for every message, the rules evaluation the rules of every
sensor of a batch, the live push the commune of every sensor: asking the database each
time would cost more than the work itself. A ``ProcessCache`` keeps what its loader
returned, per key, for ``CONFIG_CACHE_S`` seconds at most.

One invalidation for all of them: ``forget_all`` empties every cache of this process;
``csu/apps.py`` calls it whenever a sensor, a zone, a rule or what hangs on them
changes (admin, API, import), so the process that made the change sees it at once, and
every other process (ingest, Celery workers, the other web workers) within the TTL.
"""

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_caches: "weakref.WeakSet[ProcessCache]" = weakref.WeakSet()


class ProcessCache(Generic[K, V]):
    """``load(key)``'s answers, kept by this process for ``CONFIG_CACHE_S`` seconds."""

    def __init__(self, load: Callable[[K], V], *, clock: Callable[[], float] = time.monotonic):
        self.load = load
        self.clock = clock
        self._values: dict[K, V] = {}
        self._since = clock()
        self._lock = threading.Lock()
        _caches.add(self)

    def get(self, key: K) -> V:
        with self._lock:
            if self.clock() - self._since >= settings.CONFIG_CACHE_S:
                self._values = {}
                self._since = self.clock()
            values = self._values
        try:
            return values[key]
        except KeyError:
            value = values[key] = self.load(key)
            return value

    def forget(self) -> None:
        with self._lock:
            self._values = {}
            self._since = self.clock()


def forget_all(**kwargs) -> None:
    """Empty every cache of this process (a signal receiver: it takes any arguments)."""
    for cache in list(_caches):
        cache.forget()
