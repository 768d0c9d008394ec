"""Stable MQTT client ids for ingest workers sharing a subscription.

Mosquitto hands a shared subscription's messages to every member *session* in turn,
connected or not. A worker that comes back under a new client id leaves its old
persistent session behind, still taking (and queueing) its share. So workers take
numbered slots, ``<prefix>-1``, ``<prefix>-2``…, each held by a PostgreSQL advisory
lock for the life of the process: a replacement for a crashed worker takes the freed
slot and resumes its session, queued messages included.
"""

import logging

import psycopg
from django.db import connection

log = logging.getLogger(__name__)

MAX_SLOTS = 64


class SlotsTaken(RuntimeError):
    pass


def claim_client_id(prefix: str) -> tuple[str, "psycopg.Connection | None"]:
    """Return ``<prefix>-<n>`` for the first free slot, and the connection holding it."""
    if connection.vendor != "postgresql":
        return f"{prefix}-1", None  # the embedded default runs one worker
    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    for slot in range(1, MAX_SLOTS + 1):
        taken = holder.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s), %s)", [prefix, slot]
        ).fetchone()[0]
        if taken:
            log.info("ingest slot %d of %s claimed", slot, prefix)
            return f"{prefix}-{slot}", holder
    holder.close()
    raise SlotsTaken(f"all {MAX_SLOTS} slots of {prefix} are taken")
