"""``/metrics``: the ingest counters of every live worker, for Prometheus.

Workers publish their counters to the cache (``sensors/ingest/stats.py``); one scrape
of the web process sees them all. Access: a staff session, or the bearer token
``METRICS_TOKEN`` for the Prometheus server.
"""

import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from core.roles import is_admin
from core.tokens import same_secret

from .ingest.stats import COMMIT_BUCKETS, lag_seconds, live_snapshots

COUNTERS = {
    "received": ("csu_ingest_messages_received", "MQTT messages received"),
    "messages_written": ("csu_ingest_messages_written", "MQTT messages judged and committed"),
    "stored": ("csu_ingest_readings_stored", "readings stored"),
    "duplicates": ("csu_ingest_readings_duplicate", "readings already stored, ignored"),
    "batches": ("csu_ingest_batches", "batches committed"),
    "db_errors": ("csu_ingest_database_errors", "failed batch writes (retried)"),
}


class IngestCollector:
    def collect(self):
        snapshots = live_snapshots()
        now = time.time()
        for key, (name, documentation) in COUNTERS.items():
            family = CounterMetricFamily(name, documentation, labels=["worker"])
            for worker, snap in snapshots.items():
                family.add_metric([worker], snap["counters"].get(key, 0))
            yield family
        rejected = CounterMetricFamily(
            "csu_ingest_rejected", "readings or messages rejected", labels=["worker", "reason"]
        )
        commit = HistogramMetricFamily(
            "csu_ingest_commit_seconds", "time to write one batch", labels=["worker"]
        )
        depth = GaugeMetricFamily(
            "csu_ingest_queue_depth", "messages waiting for a batch", labels=["worker"]
        )
        lag = GaugeMetricFamily(
            "csu_ingest_lag_seconds", "age of the oldest waiting message", labels=["worker"]
        )
        connected = GaugeMetricFamily(
            "csu_ingest_connected", "1 when connected to the broker", labels=["worker"]
        )
        for worker, snap in snapshots.items():
            for reason, count in snap["rejected"].items():
                rejected.add_metric([worker, reason], count)
            cumulative, buckets = 0, []
            bounds = [str(bound) for bound in COMMIT_BUCKETS] + ["+Inf"]
            for bound, count in zip(bounds, snap["commit_buckets"], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            commit.add_metric([worker], buckets, snap["commit_sum"])
            depth.add_metric([worker], snap["queue_depth"])
            lag.add_metric([worker], lag_seconds(snap, now))
            connected.add_metric([worker], 1 if snap.get("connected") else 0)
        yield from (rejected, commit, depth, lag, connected)


def may_monitor(request) -> bool:
    """An admin's session, or the monitoring system's bearer token (``METRICS_TOKEN``)."""
    if is_admin(request.user):
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and same_secret(header, f"Bearer {token}")


def metrics(request):
    if not may_monitor(request):
        return HttpResponse("authentication required\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(IngestCollector())
    return HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4")
