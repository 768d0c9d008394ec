#!/usr/bin/env python
"""Ingest benchmark: MQTT QoS 1 → one ingest process → PostgreSQL.

    python bench/ingest.py            (uses DATABASE_URL's server, database <name>_bench)

Phase 1, sustained throughput: publishers send air-station messages (7 readings each)
as fast as the broker takes them; the figure is stored readings per second while the
stream flows. Phase 2, latency: 5,000 readings/s at a steady pace, each stamped with
its publish time; a poller sees each row appear: publish → committed row. Phase 3, the
naive path for comparison: one ORM create per reading, acknowledged at once.

The demo's air rules are on: the technical ones on raw readings are evaluated on the
flow by a Celery worker; the episode ones on means cost ingest nothing, and are judged
once after phase 2 as beat does (roll-ups, then ``evaluate_aggregates``), timed.

A Mosquitto with our configuration (deploy/mosquitto/mosquitto.conf) is started on a
free port: the machine's default broker keeps 20 messages in flight and would measure
its own limits, not ours.
"""

import argparse
import json
import multiprocessing
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

from common import (
    METRICS,
    Broker,
    air_stations,
    bench_database_url,
    percentile,
    prepare_database,
    print_result,
    publisher,
    rss_mb,
    setup_django,
    start_celery,
    start_ingest,
    wait_until,
)


def count_readings(cursor) -> int:
    cursor.execute("SELECT count(*) FROM sensors_reading")
    return cursor.fetchone()[0]


def reset(stations: int) -> list[str]:
    from django.db import connection

    refs = [f"bench-air-{n:03d}" for n in range(stations)]
    air_stations(refs)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sensors_reading, sensors_latestreading, sensors_rejectedmessage, "
            "sensors_readinghourly, sensors_rollupdirtyhour, sensors_rollupprogress, "
            "alerts_alert, alerts_alertevent, alerts_rulestate, alerts_pendingevaluation CASCADE"
        )
    return refs


def demo_air_rules() -> dict:
    """The demo town's air rules, active on the bench stations (the demo's former
    raw-reading episode rules, left by older runs, switched off): the technical ones on
    raw readings are evaluated on the flow, the episode ones on means are judged from
    the roll-ups (``judge_means``)."""
    from alerts.models import Rule
    from dashboard.management.commands.seed_demo import DEMO_RULES, FORMER_DEMO_RULES

    names = []
    for name, fields in DEMO_RULES:
        if fields.get("sensor_kind") == "air" and fields.get("kind", "threshold") != "atmo":
            Rule.objects.update_or_create(name=name, defaults={**fields, "active": True})
            names.append(name)
    Rule.objects.filter(name__in=FORMER_DEMO_RULES).update(active=False)
    on_means = Rule.objects.filter(name__in=names).exclude(aggregate="").count()
    return {"rules_on_flow": len(names) - on_means, "rules_on_means": on_means}


def judge_means() -> dict:
    """What beat does every few minutes, once, over the hours just ingested: roll them up,
    then judge the rules on means (the episode thresholds)."""
    from alerts.aggregates import evaluate_aggregates
    from sensors.rollups import rollup_recent

    started = time.monotonic()
    report = rollup_recent()
    rolled = time.monotonic()
    opened = evaluate_aggregates()
    judged = time.monotonic()
    print(
        f"means: {report.hours} hours rolled up ({report.rows:,} rows) in "
        f"{rolled - started:.2f} s; rules on means judged in {judged - rolled:.2f} s, "
        f"{opened} alerts opened"
    )
    return {
        "rollup_s": round(rolled - started, 2),
        "means_judged_s": round(judged - rolled, 2),
        "means_alerts_opened": opened,
    }


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queue_length(redis_url: str, queue: str) -> int:
    import redis

    return redis.Redis.from_url(redis_url).llen(queue)


def evaluations_waiting(cursor) -> int:
    """Batches the rules have not evaluated yet (the queue only holds wake-ups)."""
    cursor.execute("SELECT count(*) FROM alerts_pendingevaluation")
    return cursor.fetchone()[0]


def sustained(args, broker, refs, ingest, cursor, celery=None, redis_url=None, queue=None):
    per = args.messages // args.publishers
    base = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    procs = [
        multiprocessing.Process(
            target=publisher, args=(broker.port, refs, per, None, base + n * 3600 / args.publishers)
        )
        for n in range(args.publishers)
    ]
    expected = per * args.publishers * len(METRICS)
    samples = []  # (time, stored)
    rss = []
    cpu_before = {p.pid: cpu_seconds(p.pid) for p in (ingest, celery) if p}
    started = time.monotonic()
    for proc in procs:
        proc.start()
    while True:
        stored = count_readings(cursor)
        now = time.monotonic()
        samples.append((now, stored))
        rss.append(rss_mb(ingest.pid))
        if stored >= expected or now - started > args.timeout:
            break
        time.sleep(0.25)
    for proc in procs:
        proc.join()
    stored_at = time.monotonic()
    drained = celery is None or wait_until(
        lambda: queue_length(redis_url, queue) == 0 and evaluations_waiting(cursor) == 0,
        timeout=args.timeout,
    )
    evaluation_lag = time.monotonic() - stored_at
    cpu = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
    # The sustained rate: between 10 % and 90 % of the stream, past start-up and tail.
    low = next(s for s in samples if s[1] >= 0.1 * expected)
    high = next((s for s in samples if s[1] >= 0.9 * expected), samples[-1])
    rate = (high[1] - low[1]) / max(high[0] - low[0], 1e-9)
    elapsed = samples[-1][0] - started
    print(
        f"sustained: {samples[-1][1]:,} of {expected:,} readings stored in {elapsed:.1f} s; "
        f"{rate:,.0f} readings/s between 10 % and 90 % ({args.publishers} publishers, "
        f"{len(refs)} stations, {len(METRICS)} readings per message)"
    )
    figures = {
        "readings_per_s": round(rate),
        "stored": samples[-1][1],
        "expected": expected,
        "rss_mb": round(max(rss), 1),
    }
    if celery is not None:
        ingest_cpu, rules_cpu = cpu[ingest.pid], cpu[celery.pid]
        figures |= {
            "ingest_cpu_s": round(ingest_cpu, 1),
            "evaluation_cpu_s": round(rules_cpu, 1),
            "evaluation_cpu_share": round(rules_cpu / (ingest_cpu + rules_cpu), 3),
            "evaluation_caught_up_s": round(evaluation_lag, 2) if drained else None,
        }
        print(
            f"rules evaluated on the same flow by a Celery worker: {rules_cpu:.1f} s CPU "
            f"against ingest's {ingest_cpu:.1f} s ({figures['evaluation_cpu_share']:.0%} of "
            f"the two); evaluation queue empty {evaluation_lag:.2f} s after the last row"
        )
    return figures


def latency(args, broker, refs, ingest, cursor) -> dict:
    """Publish → committed row, for every message.

    Every 10 ms the poller reads each station's latest row (the latest-value table is
    written in the same transaction as the readings, and small: polling it does not
    load the database as scanning the readings would). A station's messages commit in
    order, so a message became visible at the first poll that saw its station's latest
    timestamp reach it; afterwards each message's publish time (its ``ts``) is read
    back through the primary key and matched with that poll.
    """
    import bisect

    rate_msgs = args.latency_rate / len(METRICS)
    messages = int(rate_msgs * args.latency_seconds)
    query = "SELECT sensor_id, ts FROM sensors_latestreading WHERE metric = 'pm25'"
    polls: dict[int, tuple[list, list]] = {}  # sensor → (latest ts seen, poll times)
    started = datetime.now(UTC)
    proc = multiprocessing.Process(
        target=publisher, args=(broker.port, refs, messages, rate_msgs, 0.0)
    )
    proc.start()
    rss = []
    ends = None
    while ends is None or time.monotonic() < ends:
        cursor.execute(query)
        now = time.time()
        for sensor_id, ts in cursor.fetchall():
            seen_ts, times = polls.setdefault(sensor_id, ([], []))
            if not seen_ts or ts.timestamp() > seen_ts[-1]:
                seen_ts.append(ts.timestamp())
                times.append(now)
        rss.append(rss_mb(ingest.pid))
        if ends is None and not proc.is_alive():
            ends = time.monotonic() + 2
        time.sleep(0.01)
    proc.join()
    cursor.execute(
        "SELECT sensor_id, ts FROM sensors_reading WHERE metric = 'pm25' AND ts >= %s "
        "AND sensor_id = ANY(%s)",
        [started, list(polls)],
    )
    latencies = []
    for sensor_id, ts in cursor.fetchall():
        seen_ts, times = polls[sensor_id]
        index = bisect.bisect_left(seen_ts, ts.timestamp())
        if index < len(times):
            latencies.append((times[index] - ts.timestamp()) * 1000)
    seen = len(latencies)
    figures = {
        "commit_p50_ms": round(percentile(latencies, 50), 1),
        "commit_p95_ms": round(percentile(latencies, 95), 1),
        "commit_p99_ms": round(percentile(latencies, 99), 1),
        "latency_messages": seen,
        "rss_latency_mb": round(max(rss), 1) if rss else None,
    }
    print(
        f"latency at {args.latency_rate:,} readings/s for {args.latency_seconds} s: "
        f"publish → committed row p50 {figures['commit_p50_ms']} ms, "
        f"p95 {figures['commit_p95_ms']} ms, p99 {figures['commit_p99_ms']} ms "
        f"({seen} of {messages} messages matched)"
    )
    return figures


def naive(args, broker, refs, cursor) -> dict:
    """One ORM create per reading, acknowledged by paho at once: the path we avoid."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sensors.models import Reading, Sensor

    ids = dict(Sensor.objects.filter(ref__in=refs).values_list("ref", "pk"))
    done = threading.Event()
    stored = [0]
    expected = args.naive_messages * len(METRICS)

    def on_message(client, userdata, msg):
        ref = msg.topic.split("/")[1]
        body = json.loads(msg.payload)
        ts = datetime.fromisoformat(body["ts"])
        for metric, value in body["values"].items():
            Reading.objects.create(sensor_id=ids[ref], metric=metric, ts=ts, value=value)
            stored[0] += 1
        if stored[0] >= expected:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", clean_session=True)
    sub.username_pw_set("bench-naive")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("csu/+/readings", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    base = (datetime.now(UTC) - timedelta(hours=3)).timestamp()
    started = time.monotonic()
    pub = multiprocessing.Process(
        target=publisher, args=(broker.port, refs, args.naive_messages, None, base)
    )
    pub.start()
    done.wait(args.timeout)
    elapsed = time.monotonic() - started
    pub.join()
    sub.disconnect()
    sub.loop_stop()
    rate = stored[0] / elapsed
    print(
        f"naive path (one ORM create per reading): {stored[0]:,} readings in {elapsed:.1f} s"
        f" = {rate:,.0f} readings/s"
    )
    return {"naive_readings_per_s": round(rate)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=60_000, help="phase 1 messages")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--latency-rate", type=int, default=5000, help="readings/s")
    parser.add_argument("--latency-seconds", type=int, default=20)
    parser.add_argument("--naive-messages", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    database_url = bench_database_url("bench_flow")
    prepare_database(database_url)
    setup_django(database_url)
    from django.db import connection

    refs = reset(args.stations)
    figures: dict = demo_air_rules()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"csu-bench-{os.getpid()}"
    with Broker() as broker:
        # Rules on: ingest hands each batch to Celery on Redis, as in production.
        celery = start_celery(database_url, redis_url, queue)
        ingest = start_ingest(database_url, broker, REDIS_URL=redis_url, CELERY_QUEUE=queue)
        try:
            with connection.cursor() as cursor:
                figures |= sustained(args, broker, refs, ingest, cursor, celery, redis_url, queue)
                figures |= latency(args, broker, refs, ingest, cursor)
            figures |= judge_means()
        finally:
            ingest.send_signal(signal.SIGTERM)
            ingest.wait(30)
            celery.terminate()
            celery.wait(30)
        figures["rss_mb"] = max(figures["rss_mb"], figures.pop("rss_latency_mb") or 0)
        print("ingest worker:", "".join(ingest.lines[-1:]).strip())
        reset(args.stations)
        with connection.cursor() as cursor:
            figures |= naive(args, broker, refs, cursor)
    figures["speedup_vs_naive"] = round(
        figures["readings_per_s"] / figures["naive_readings_per_s"], 1
    )
    print(f"worker RSS (max while running): {figures['rss_mb']} MB")
    print_result(figures)


if __name__ == "__main__":
    main()
