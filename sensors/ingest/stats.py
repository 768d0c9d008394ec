"""Ingest counters, shared with the web process through the cache.

Each worker keeps its counters in memory and publishes a snapshot to the cache (Redis
in production) every few seconds under its client id. The web process renders every
live worker's snapshot at ``/metrics`` for Prometheus and summarises the ingest lag on
``/healthz``, so one scrape sees all workers, wherever they run.
"""

import logging
import threading
import time
from collections import Counter

from django.core.cache import cache

log = logging.getLogger(__name__)

WORKERS_KEY = "csu:ingest:workers"
SNAPSHOT_TTL_S = 60
PUBLISH_EVERY_S = 2.0
# Upper bounds of the commit-latency histogram, in seconds.
COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestStats:
    def __init__(self):
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS) + 1)
        self.commit_sum = 0.0
        self.queue_depth = 0
        self.last_commit = None  # wall-clock time of the last committed batch
        self.oldest_pending = None  # reception time of the oldest message not yet written
        self.connected = False
        self.ever_connected = False
        self.started = time.time()
        self._published_at = 0.0

    def received(self, n: int = 1) -> None:
        with self._lock:
            self.counters["received"] += n

    def rejected_for(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.rejected[reason] += count

    def database_error(self) -> None:
        with self._lock:
            self.counters["db_errors"] += 1

    def batch(self, *, messages: int, stored: int, duplicates: int, seconds: float) -> None:
        with self._lock:
            self.counters["batches"] += 1
            self.counters["messages_written"] += messages
            self.counters["stored"] += stored
            self.counters["duplicates"] += duplicates
            self.commit_sum += seconds
            index = next(
                (i for i, bound in enumerate(COMMIT_BUCKETS) if seconds <= bound),
                len(COMMIT_BUCKETS),
            )
            self.commit_buckets[index] += 1
            self.last_commit = time.time()

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "counters": dict(self.counters),
                "rejected": dict(self.rejected),
                "commit_buckets": list(self.commit_buckets),
                "commit_sum": self.commit_sum,
                "queue_depth": self.queue_depth,
                "last_commit": self.last_commit,
                "oldest_pending": self.oldest_pending,
                "connected": self.connected,
                "ever_connected": self.ever_connected,
                "started": self.started,
                "at": time.time(),
            }

    def publish(self, worker_id: str, *, force: bool = False) -> None:
        """Share the snapshot with the web process (at most every PUBLISH_EVERY_S).

        Counters are observability: with the cache (Redis) away, ingest goes on storing
        and shares them again once it is back.
        """
        now = time.monotonic()
        if not force and now - self._published_at < PUBLISH_EVERY_S:
            return
        self._published_at = now
        try:
            cache.set(f"csu:ingest:{worker_id}", self.snapshot(), SNAPSHOT_TTL_S)
            workers = set(cache.get(WORKERS_KEY) or ())
            if worker_id not in workers:
                cache.set(WORKERS_KEY, sorted(workers | {worker_id}), None)
        except Exception as exc:  # noqa: BLE001 (any cache backend's connection error)
            log.warning("ingest counters not shared, the cache is unavailable: %s", exc)


def live_snapshots() -> dict[str, dict]:
    """Return the snapshot of each worker that published within the TTL."""
    workers = cache.get(WORKERS_KEY) or ()
    found = cache.get_many([f"csu:ingest:{w}" for w in workers])
    return {key.removeprefix("csu:ingest:"): value for key, value in found.items()}


def lag_seconds(snapshot: dict, now: float | None = None) -> float:
    """How long the oldest message waiting in a worker has waited."""
    if not snapshot.get("oldest_pending"):
        return 0.0
    return max(0.0, (now or time.time()) - snapshot["oldest_pending"])
