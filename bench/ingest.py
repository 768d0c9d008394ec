#!/usr/bin/env python
"""Ingest benchmark: MQTT QoS 1 → one ingest process → PostgreSQL.

    python bench/ingest.py            (uses DATABASE_URL's server, database <name>_bench)

    python bench/ingest.py --readings 4 --publishers 1    (the peers' load: 4 a message)

Phase 1, sustained throughput (the burst): publishers send air-station messages (7
readings each, or ``--readings``) as fast as the broker takes them; the figure is
stored readings per second while the stream flows. Phase 2, latency: 5,000 readings/s
at a steady pace, each stamped with its publish time; a poller sees each row appear:
publish → committed row. Phase 3, the naive path for comparison: one ORM create per
reading, acknowledged at once. Phase 4, the floor: what receiving the same messages
and storing the same rows costs at the least.

The cost: CPU µs per stored reading of the ingest process (``ingest_us_per_reading``),
of the PostgreSQL backends serving the bench database (``pg_us_per_reading``, read from
/proc; a backend that ends within the phase counts whole, from the server's children's
time) and of the rules worker (``rules_us_per_reading``, until it has evaluated every
batch), and their sum ``cpu_us_per_reading``: at the paced 5,000 readings/s, and with
the ``burst_`` prefix for phase 1. The floor, on this machine in the same run:
``floor_us_per_reading``, a bare paho subscriber's CPU per reading receiving the same
messages (QoS 1) at the same pace as phase 2, plus a bare binary COPY of the same rows
into an unlogged copy of the readings table (client and backend CPU);
``burst_floor_us_per_reading`` the same with the messages received as fast as they come.
``cost_vs_floor`` = ``cpu_us_per_reading`` / ``floor_us_per_reading`` (and
``burst_cost_vs_floor`` from the burst's two): the figure that holds from one machine to
another. How near the burst runs to the machine's limit: ``burst_machine_busy_pct``,
every core's busy share while the stream flows (/proc/stat), and
``burst_load_us_per_reading``, what the load generator (publishers and broker, on the
same machine) spends a reading.

The demo's air rules are on: the technical ones on raw readings are evaluated on the
flow by a Celery worker; the episode ones on means cost ingest nothing, and are judged
once after phase 2 as beat does (roll-ups, then ``evaluate_aggregates``), timed.

A Mosquitto with our configuration (deploy/mosquitto/mosquitto.conf) is started on a
free port: the machine's default broker keeps 20 messages in flight and would measure
its own limits, not ours.
"""

import argparse
import functools
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
    CpuMeter,
    air_stations,
    bench_database_url,
    children_cpu,
    group_pids,
    machine_cpu,
    parent_pid,
    percentile,
    prepare_database,
    print_result,
    process_cpu,
    publisher,
    rss_mb,
    setup_django,
    start_celery,
    start_ingest,
    station_payload,
    wait_for_celery,
    wait_until,
)

SAMPLE_EVERY = 0.25  # s between two CPU samples of the processes measured


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


def readings_payload(readings: int, i: int, ref: str, ts: datetime) -> bytes:
    return station_payload(i, ts, readings)


def backend_pids(cursor) -> list[int]:
    """The PostgreSQL backends serving the bench database, but the bench's own."""
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    return [row[0] for row in cursor.fetchall()]


class Costs:
    """The CPU of the ingest process, of PostgreSQL's backends and of the rules worker
    over one phase, per stored reading."""

    def __init__(self, ingest, celery, cursor):
        # Backends that end within the phase (a connection per task, say) are counted
        # whole from the server's children's time: any database's, and autovacuum's.
        cursor.execute("SELECT pg_backend_pid()")
        postmaster = parent_pid(cursor.fetchone()[0])
        self.meters = {
            "ingest": CpuMeter(lambda: [ingest.pid]),
            "pg": CpuMeter(lambda: backend_pids(cursor), reaped=lambda: children_cpu(postmaster)),
            "rules": CpuMeter(lambda: group_pids(celery.pid)),
        }
        self.sampled = 0.0

    def start(self) -> None:
        for meter in self.meters.values():
            meter.start()
        self.sampled = time.monotonic()

    def sample(self) -> None:
        """Sample now and then (a backend that ends counts up to its last sample)."""
        if time.monotonic() - self.sampled >= SAMPLE_EVERY:
            for meter in self.meters.values():
                meter.sample()
            self.sampled = time.monotonic()

    def figures(self, readings: int, prefix: str = "") -> dict:
        seconds = {name: meter.seconds() for name, meter in self.meters.items()}
        per = {name: cpu * 1e6 / max(readings, 1) for name, cpu in seconds.items()}
        figures = {f"{prefix}{name}_us_per_reading": round(us, 1) for name, us in per.items()}
        figures[f"{prefix}cpu_us_per_reading"] = round(sum(per.values()), 1)
        print(
            f"  CPU per stored reading ({readings:,} readings): ingest {per['ingest']:.1f} µs, "
            f"PostgreSQL {per['pg']:.1f} µs, rules {per['rules']:.1f} µs = "
            f"{sum(per.values()):.1f} µs"
        )
        return figures


def queue_length(redis_url: str, queue: str) -> int:
    import redis

    return redis.Redis.from_url(redis_url).llen(queue)


def evaluations_waiting(cursor) -> int:
    """Batches the rules have not evaluated yet (the queue only holds wake-ups)."""
    cursor.execute("SELECT count(*) FROM alerts_pendingevaluation")
    return cursor.fetchone()[0]


def sustained(args, broker, refs, ingest, cursor, costs, drained):
    per = args.messages // args.publishers
    base = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    payload = functools.partial(readings_payload, args.readings)
    procs = [
        multiprocessing.Process(
            target=publisher,
            args=(broker.port, refs, per, None, base + n * 3600 / args.publishers, payload),
        )
        for n in range(args.publishers)
    ]
    expected = per * args.publishers * args.readings
    samples = []  # (time, stored)
    rss = []
    costs.start()
    # The load generator's share of the machine: the publishers (children of this
    # process, counted once they end) and the broker.
    load_meter = CpuMeter(lambda: [broker.process.pid], reaped=lambda: children_cpu(os.getpid()))
    load_meter.start()
    machine_start = machine_cpu()
    started = time.monotonic()
    for proc in procs:
        proc.start()
    while True:
        stored = count_readings(cursor)
        now = time.monotonic()
        samples.append((now, stored))
        rss.append(rss_mb(ingest.pid))
        costs.sample()
        if stored >= expected or now - started > args.timeout:
            break
        time.sleep(0.25)
    machine_end = machine_cpu()  # the stream is stored: past it the machine idles
    for proc in procs:
        proc.join()
    load_seconds = load_meter.seconds()
    stored_at = time.monotonic()
    caught_up = drained(costs)
    evaluation_lag = time.monotonic() - stored_at
    # The sustained rate: between 10 % and 90 % of the stream, past start-up and tail.
    low = next(s for s in samples if s[1] >= 0.1 * expected)
    high = next((s for s in samples if s[1] >= 0.9 * expected), samples[-1])
    rate = (high[1] - low[1]) / max(high[0] - low[0], 1e-9)
    elapsed = samples[-1][0] - started
    print(
        f"sustained: {samples[-1][1]:,} of {expected:,} readings stored in {elapsed:.1f} s; "
        f"{rate:,.0f} readings/s between 10 % and 90 % ({args.publishers} publishers, "
        f"{len(refs)} stations, {args.readings} readings per message)"
    )
    figures = {
        "readings_per_s": round(rate),
        "stored": samples[-1][1],
        "expected": expected,
        "rss_mb": round(max(rss), 1),
        "evaluation_caught_up_s": round(evaluation_lag, 2) if caught_up else None,
    }
    print(f"  rules: evaluation queue empty {evaluation_lag:.2f} s after the last row")
    figures |= costs.figures(samples[-1][1], prefix="burst_")
    # How near the burst ran to the machine's limit: every core's busy share while the
    # stream flowed, and what generating it (publishers + broker) cost a reading.
    busy = (machine_end[0] - machine_start[0]) / max(machine_end[1] - machine_start[1], 1e-9)
    load_us = load_seconds * 1e6 / max(samples[-1][1], 1)
    figures["burst_machine_busy_pct"] = round(100 * busy, 1)
    figures["burst_load_us_per_reading"] = round(load_us, 1)
    print(
        f"  the machine: {100 * busy:.0f} % busy (all {os.cpu_count()} cores); the load "
        f"generator (publishers and broker) {load_us:.1f} µs a reading"
    )
    return figures


def latency(args, broker, refs, ingest, cursor, costs, drained) -> dict:
    """Publish → committed row, for every message.

    Every 10 ms the poller reads each station's latest row (the latest-value table is
    written in the same transaction as the readings, and small: polling it does not
    load the database as scanning the readings would). A station's messages commit in
    order, so a message became visible at the first poll that saw its station's latest
    timestamp reach it; afterwards each message's publish time (its ``ts``) is read
    back through the primary key and matched with that poll.
    """
    import bisect

    rate_msgs = args.latency_rate / args.readings
    messages = int(rate_msgs * args.latency_seconds)
    query = "SELECT sensor_id, ts FROM sensors_latestreading WHERE metric = 'pm25'"
    polls: dict[int, tuple[list, list]] = {}  # sensor → (latest ts seen, poll times)
    started = datetime.now(UTC)
    stored_before = count_readings(cursor)
    payload = functools.partial(readings_payload, args.readings)
    proc = multiprocessing.Process(
        target=publisher, args=(broker.port, refs, messages, rate_msgs, 0.0, payload)
    )
    costs.start()
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
        costs.sample()
        if ends is None and not proc.is_alive():
            ends = time.monotonic() + 2
        time.sleep(0.01)
    proc.join()
    drained(costs)
    paced_readings = count_readings(cursor) - stored_before
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
    return figures | costs.figures(paced_readings)


def naive(args, broker, refs, cursor) -> dict:
    """One ORM create per reading, acknowledged by paho at once: the path we avoid."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sensors.models import Reading, Sensor

    ids = dict(Sensor.objects.filter(ref__in=refs).values_list("ref", "pk"))
    done = threading.Event()
    stored = [0]
    expected = args.naive_messages * args.readings

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
    payload = functools.partial(readings_payload, args.readings)
    pub = multiprocessing.Process(
        target=publisher, args=(broker.port, refs, args.naive_messages, None, base, payload)
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


def bare_subscriber(port: int, expected: int, timeout: float, results) -> None:
    """Receive ``expected`` QoS 1 messages and count them: nothing else. Puts "ready"
    once subscribed, then (messages received, CPU seconds of this process meanwhile)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    received = [0]
    subscribed, done = threading.Event(), threading.Event()

    def on_message(client, userdata, msg):
        received[0] += 1
        if received[0] >= expected:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor", clean_session=True)
    client.username_pw_set("bench-floor")
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("csu/+/readings", qos=1)
    subscribed.wait(30)
    started = time.process_time()  # every thread of this process: paho's loop too
    results.put("ready")
    done.wait(timeout)
    cpu = time.process_time() - started
    client.disconnect()
    client.loop_stop()
    results.put((received[0], cpu))


def floor_receive(args, broker, refs, *, paced: bool) -> float:
    """CPU µs per reading of a bare paho subscriber receiving the same kind of messages:
    as fast as they come (the burst's floor), or ``paced`` as phase 2 sends them (as many,
    at the same rate: one at a time, each message costs more to receive than in a burst)."""
    rate = args.latency_rate / args.readings if paced else None
    messages = round(rate * args.latency_seconds) if paced else args.floor_messages
    results = multiprocessing.Queue()
    subscriber = multiprocessing.Process(
        target=bare_subscriber, args=(broker.port, messages, args.timeout, results)
    )
    subscriber.start()
    assert results.get(timeout=60) == "ready"
    base = (datetime.now(UTC) - timedelta(hours=4)).timestamp()
    payload = functools.partial(readings_payload, args.readings)
    pub = multiprocessing.Process(
        target=publisher, args=(broker.port, refs, messages, rate, base, payload)
    )
    pub.start()
    received, cpu = results.get(timeout=args.timeout + 60)
    pub.join()
    subscriber.join(30)
    us = cpu * 1e6 / max(received * args.readings, 1)
    pace = f"at {args.latency_rate:,} readings/s" if paced else "as fast as they come"
    print(
        f"  floor, receiving: a bare paho subscriber, {received:,} messages {pace}, "
        f"{us:.1f} µs a reading"
    )
    return us


def floor_store(database_url: str) -> float:
    """CPU µs per row of a bare binary COPY of the stored rows into an unlogged copy of
    the readings table (indexes included): the client's CPU and its backend's."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT sensor_id, metric, ts, value FROM sensors_reading").fetchall()
        types = dict(
            conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute "
                "WHERE attrelid = 'sensors_reading'::regclass AND attnum > 0"
            ).fetchall()
        )
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute("CREATE UNLOGGED TABLE bench_floor (LIKE sensors_reading INCLUDING ALL)")
        conn.commit()
        backend = conn.info.backend_pid
        before = (time.process_time(), process_cpu(backend))
        with conn.cursor() as cursor:
            sql = "COPY bench_floor (sensor_id, metric, ts, value) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(sql) as copy:
                copy.set_types([types[name] for name in ("sensor_id", "metric", "ts", "value")])
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        cpu = time.process_time() - before[0] + process_cpu(backend) - before[1]
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    us = cpu * 1e6 / max(len(rows), 1)
    print(f"  floor, storing: a bare binary COPY of {len(rows):,} rows, {us:.1f} µs a row")
    return us


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=60_000, help="phase 1 messages")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--readings",
        type=int,
        default=len(METRICS),
        choices=range(1, len(METRICS) + 1),
        help="readings per message (7: an air station's; 4: the peers' load generator)",
    )
    parser.add_argument("--floor-messages", type=int, default=20_000)
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
            wait_for_celery(queue)  # its start-up is not the rules' cost
            with connection.cursor() as cursor:
                costs = Costs(ingest, celery, cursor)

                def drained(costs) -> bool:
                    """Wait until the rules have evaluated every batch, sampling the CPU."""

                    def empty() -> bool:
                        costs.sample()
                        waiting = evaluations_waiting(cursor)
                        return queue_length(redis_url, queue) == 0 and waiting == 0

                    return wait_until(empty, timeout=args.timeout)

                figures |= sustained(args, broker, refs, ingest, cursor, costs, drained)
                figures |= latency(args, broker, refs, ingest, cursor, costs, drained)
                floor_store_us = floor_store(database_url)
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
        floor_receive_us = floor_receive(args, broker, refs, paced=True)
        burst_floor_receive_us = floor_receive(args, broker, refs, paced=False)
    figures["speedup_vs_naive"] = round(
        figures["readings_per_s"] / figures["naive_readings_per_s"], 1
    )
    floor = floor_receive_us + floor_store_us
    burst_floor = burst_floor_receive_us + floor_store_us
    figures |= {
        "readings_per_message": args.readings,
        "publishers": args.publishers,
        "floor_receive_us_per_reading": round(floor_receive_us, 1),
        "burst_floor_receive_us_per_reading": round(burst_floor_receive_us, 1),
        "floor_store_us_per_reading": round(floor_store_us, 1),
        "floor_us_per_reading": round(floor, 1),
        "burst_floor_us_per_reading": round(burst_floor, 1),
        "cost_vs_floor": round(figures["cpu_us_per_reading"] / floor, 1),
        "burst_cost_vs_floor": round(figures["burst_cpu_us_per_reading"] / burst_floor, 1),
    }
    print(
        f"cost: {figures['cpu_us_per_reading']} µs of CPU a reading at "
        f"{args.latency_rate:,} readings/s against a floor of {floor:.1f} µs at that pace: "
        f"{figures['cost_vs_floor']} times the floor; in the burst "
        f"{figures['burst_cpu_us_per_reading']} µs against {burst_floor:.1f} µs: "
        f"{figures['burst_cost_vs_floor']} times"
    )
    print(f"worker RSS (max while running): {figures['rss_mb']} MB")
    print_result(figures)


if __name__ == "__main__":
    main()
