#!/usr/bin/env python
"""Query benchmark: history and latest values through the API, over 100 M stored readings.

    uv run python bench/query.py                   (DATABASE_URL's server, database <name>_bench)
    uv run python bench/query.py --rows 2000000    (a quick run: fewer readings per series)
    uv run python bench/query.py --reload          (load again although the data is there)

Load, once: 1,000 air stations x 4 metrics x 25,000 readings (one every 103.68 s over
the last 30 days, in time order as ingest writes them) go into the daily partitions of
the readings table with binary COPY: each day is COPY'd (FREEZE, synchronous_commit off)
into a table of its own, indexed, then attached as the day's partition, and rolled up by
``sensors.rollups.rollup_hours``; days load in parallel jobs. The latest-value table is
filled from the load. The data is kept: a later run finds the ``bench_query_dataset``
marker (and the rows behind it) and skips the load. Running ``bench/ingest.py`` empties
the readings of the same database: the next run of this bench loads again.

Measure: through the API, in-process (DRF's APIClient: URL routing, middleware, session
authentication, permissions, view, serializer and JSON rendering; no socket), as a
métropole-level operator who sees every commune. Each figure is the median (and p95) of
``--requests`` requests after ``--warmups``, each request on another station:
24 h of pm25 in 5-minute buckets (raw readings), 30 days in 1-hour buckets (roll-ups, and
the raw readings for the partial hours at both ends), and ``/api/v1/latest/``.
"""

import argparse
import math
import os
import random
import shutil
import statistics
import struct
import sys
import time
from datetime import UTC, datetime, timedelta

from common import (
    bench_database_url,
    percentile,
    prepare_database,
    print_result,
    session_key_for,
    setup_django,
)

DEFAULT_ROWS = 100_000_000
METRICS = ("pm25", "pm10", "no2", "o3")
COMMUNE = ("99998", "Bench requêtes")
REF = "q-air-{:04d}"
OPERATOR = "bench-query-operator"
MARKER = "bench_query_dataset"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
# On disk: ~65 bytes a row in the heap, ~45 in the primary key index.
BYTES_PER_ROW = 110
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
# A daily profile and some noise, so values vary like a pollutant's.
DAILY = [12 * math.sin(math.pi * max(0, h - 6) / 16) for h in range(24)]
NOISE = [((i * 2654435761) % 1000) / 125 for i in range(1024)]
TARGETS = {"q24h_5m_ms": 20, "q30d_1h_ms": 100, "latest_ms": 10}


# --- The dataset -------------------------------------------------------------------------


class Dataset:
    """Where every reading of the load is: one series per station and metric."""

    def __init__(self, rows: int, sensors: int, days: int, end: datetime):
        self.sensors = sensors
        self.series = sensors * len(METRICS)
        self.per_series = max(1, rows // self.series)
        self.rows = self.per_series * self.series
        self.days = days
        self.end = end
        self.start = end - timedelta(days=days)
        self.interval_us = days * 86_400_000_000 // self.per_series
        self.start_us = (self.start - PG_EPOCH) // US

    def phase_us(self, s: int) -> int:
        return (s * 7919) % 1000 * self.interval_us // 1000

    @staticmethod
    def level(s: int) -> float:
        return 5.0 + (s // 4 * 13 + s % 4 * 7) % 40

    @staticmethod
    def value(level: float, t_us: int, k: int, s: int) -> float:
        return level + DAILY[t_us // 3_600_000_000 % 24] + NOISE[(k * 31 + s) & 1023]

    def ts(self, s: int, k: int) -> datetime:
        return PG_EPOCH + (self.start_us + self.phase_us(s) + k * self.interval_us) * US

    def days_loaded(self) -> list[datetime]:
        day = self.start.replace(hour=0)
        days = []
        while day < self.end:
            days.append(day)
            day += timedelta(days=1)
        return days

    def copy_blocks(self, low: datetime, high: datetime, sensor_ids: list[int], block=50_000):
        """Yield the binary COPY data of the readings in [low, high), in time order."""
        low_us, high_us = (low - PG_EPOCH) // US, (high - PG_EPOCH) // US
        series = []
        for s in range(self.series):
            metric = METRICS[s % len(METRICS)].encode()
            pack = struct.Struct(f">hiqi{len(metric)}siqid").pack
            phase = self.phase_us(s)
            first = max(0, -(-(low_us - self.start_us - phase) // self.interval_us))
            stop = min(self.per_series, -(-(high_us - self.start_us - phase) // self.interval_us))
            ident = (sensor_ids[s // len(METRICS)], len(metric), metric)
            series.append((s, pack, ident, phase, first, stop, self.level(s)))
        k_first = min(item[4] for item in series)
        k_stop = max(item[5] for item in series)
        out = [COPY_SIGNATURE]
        value = self.value
        for k in range(k_first, k_stop):
            base = self.start_us + k * self.interval_us
            for s, pack, (sensor_id, size, metric), phase, first, stop, level in series:
                if first <= k < stop:
                    t = base + phase
                    out.append(pack(4, 8, sensor_id, size, metric, 8, t, 8, value(level, t, k, s)))
            if len(out) >= block:
                yield b"".join(out)
                out = []
        out.append(COPY_TRAILER)
        yield b"".join(out)


def dataset_in_place(cursor, dataset: Dataset) -> str | None:
    """Return why the data must be loaded, or None when the marker and rows are there."""
    cursor.execute("SELECT to_regclass(%s)", [MARKER])
    if cursor.fetchone()[0] is None:
        return "no dataset yet"
    cursor.execute(f"SELECT rows, sensors, days FROM {MARKER}")
    row = cursor.fetchone()
    if row != (dataset.rows, dataset.sensors, dataset.days):
        return f"the stored dataset is another one (rows, sensors, days = {row})"
    # reltuples (kept by CREATE INDEX and ANALYZE): no 100 M-row count(*) needed.
    cursor.execute(
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sensors_reading'::regclass"
    )
    estimate = cursor.fetchone()[0]
    if estimate < 0.98 * dataset.rows:
        return f"the readings table holds ~{estimate:,.0f} rows, not {dataset.rows:,}"
    cursor.execute("SELECT count(*) FROM sensors_latestreading")
    if cursor.fetchone()[0] < dataset.series:
        return "the latest-value table was emptied"
    return None


# --- Loading -------------------------------------------------------------------------------


def disk_check(args, url) -> None:
    """Lower the default size when the disk cannot hold it (with room to spare)."""
    path = "/work"
    try:
        import psycopg

        with psycopg.connect(url) as conn:
            data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        if os.path.isdir(data_dir):
            path = data_dir
    except Exception:  # noqa: BLE001 - not a superuser, or another host: /work then
        pass
    free = shutil.disk_usage(path).free
    need = args.rows * BYTES_PER_ROW
    print(
        f"disk: {free / 1e9:.0f} GB free under {path}; {args.rows:,} readings need ~"
        f"{need / 1e9:.1f} GB"
    )
    if free >= 30e9 or args.rows_given:
        if need > free * 0.8:
            sys.exit(f"not enough disk for {args.rows:,} readings: lower --rows")
        return
    args.rows = max(2_000_000, int(free * 0.3 / BYTES_PER_ROW) // 4000 * 4000)
    print(
        f"!! less than 30 GB free: loading {args.rows:,} readings instead of "
        f"{DEFAULT_ROWS:,} (pass --rows to choose)"
    )


def ensure_town(dataset: Dataset, end: datetime) -> list[int]:
    """Create the stations and the operator; return the stations' ids in series order."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core import roles
    from sensors.models import Commune, Operator, Sensor

    commune, _ = Commune.objects.get_or_create(insee_code=COMMUNE[0], defaults={"name": COMMUNE[1]})
    refs = [REF.format(n) for n in range(dataset.sensors)]
    existing = set(Sensor.objects.filter(ref__in=refs).values_list("ref", flat=True))
    Sensor.objects.bulk_create(
        Sensor(ref=ref, name=ref, kind="air", commune=commune, latitude=47.35, longitude=0.68)
        for ref in refs
        if ref not in existing
    )
    Sensor.objects.filter(ref__in=refs).update(state="online", last_seen=end)
    user, created = get_user_model().objects.get_or_create(username=OPERATOR)
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get_or_create(name=roles.OPERATORS)[0])
    Operator.objects.update_or_create(user=user, defaults={"all_communes": True})
    ids = dict(Sensor.objects.filter(ref__in=refs).values_list("ref", "pk"))
    return [ids[ref] for ref in refs]


def load(dataset: Dataset, sensor_ids: list[int], url: str, jobs: int) -> None:
    import multiprocessing

    from django.db import connection, connections

    from sensors.partitions import maintain_reading_partitions, partition_name
    from sensors.rollups import set_rollup_progress

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {MARKER}")
        cursor.execute(
            "TRUNCATE sensors_reading, sensors_latestreading, sensors_readinghourly, "
            "sensors_rollupdirtyhour, sensors_rollupprogress"
        )
    maintain_reading_partitions()
    days = dataset.days_loaded()
    with connection.cursor() as cursor:
        for day in days:
            cursor.execute(f'DROP TABLE IF EXISTS "{partition_name(day.date())}"')
    connections.close_all()  # no connection shared with the forked jobs

    print(
        f"loading {dataset.rows:,} readings ({dataset.sensors:,} stations x {len(METRICS)} "
        f"metrics x {dataset.per_series:,}, one every {dataset.interval_us / 1e6:.2f} s) "
        f"from {dataset.start:%Y-%m-%d %H:%M} to {dataset.end:%Y-%m-%d %H:%M} UTC, "
        f"{len(days)} daily partitions, {jobs} parallel jobs",
        flush=True,
    )
    done = 0
    context = multiprocessing.get_context("fork")
    tasks = [(dataset, sensor_ids, url, day) for day in days]
    with context.Pool(jobs) as pool:
        for n, (day, rows, timings) in enumerate(pool.imap_unordered(load_day, tasks), 1):
            done += rows
            elapsed = time.monotonic() - started
            print(
                f"  {day:%Y-%m-%d}: {rows:>10,} rows (COPY {timings[0]:.1f} s, index "
                f"{timings[1]:.1f} s, attach {timings[2]:.1f} s, roll-up {timings[3]:.1f} s)"
                f" — {n}/{len(days)} days, {done / 1e6:.1f} M rows, "
                f"{done / elapsed:,.0f} rows/s overall",
                flush=True,
            )

    fill_latest(dataset, sensor_ids)
    set_rollup_progress(dataset.end)
    tick = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sensors_reading")
        cursor.execute("VACUUM ANALYZE sensors_readinghourly")
        cursor.execute("VACUUM ANALYZE sensors_latestreading")
        cursor.execute(
            f"CREATE TABLE {MARKER} (rows bigint, sensors int, days int, "
            "start_ts timestamptz, end_ts timestamptz, loaded_at timestamptz DEFAULT now())"
        )
        cursor.execute(
            f"INSERT INTO {MARKER} (rows, sensors, days, start_ts, end_ts) "
            "VALUES (%s, %s, %s, %s, %s)",
            [dataset.rows, dataset.sensors, dataset.days, dataset.start, dataset.end],
        )
    print(
        f"loaded in {time.monotonic() - started:.0f} s (ANALYZE {time.monotonic() - tick:.0f} s)",
        flush=True,
    )


def load_day(task) -> tuple[datetime, int, tuple[float, ...]]:
    """Load one day: COPY into a table of its own, index it, attach it, roll it up."""
    import psycopg
    from django.db import connection

    from sensors.partitions import partition_name
    from sensors.rollups import rollup_hours

    dataset, sensor_ids, url, day = task
    name = partition_name(day.date())
    next_day = day + timedelta(days=1)
    low, high = max(day, dataset.start), min(next_day, dataset.end)
    timings = []
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        tick = time.monotonic()
        with conn.transaction():
            # Created in the COPY's transaction: FREEZE writes the rows frozen and
            # all-visible, so no VACUUM has to rewrite 10 GB afterwards.
            conn.execute(f'CREATE TABLE "{name}" (LIKE sensors_reading)')
            with conn.cursor() as cursor:
                copy_sql = (
                    f'COPY "{name}" (sensor_id, metric, ts, value) FROM STDIN '
                    "(FORMAT BINARY, FREEZE)"
                )
                with cursor.copy(copy_sql) as copy:
                    for block in dataset.copy_blocks(low, high, sensor_ids):
                        copy.write(block)
                rows = cursor.rowcount
        timings.append(time.monotonic() - tick)
        tick = time.monotonic()
        conn.execute(
            f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_pkey" PRIMARY KEY (sensor_id, metric, ts)'
        )
        timings.append(time.monotonic() - tick)
        tick = time.monotonic()
        # A CHECK matching the bounds spares ATTACH its own validating scan.
        bounds = (day.isoformat(), next_day.isoformat())
        conn.execute(
            f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bounds" '
            f"CHECK (ts >= '{bounds[0]}' AND ts < '{bounds[1]}')"
        )
        conn.execute(
            f'ALTER TABLE sensors_reading ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{bounds[0]}') TO ('{bounds[1]}')"
        )
        conn.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_bounds"')
        timings.append(time.monotonic() - tick)
    tick = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    rollup_hours(low, high)
    connection.close()
    timings.append(time.monotonic() - tick)
    return day, rows, tuple(timings)


def fill_latest(dataset: Dataset, sensor_ids: list[int]) -> None:
    from sensors.models import LatestReading

    k = dataset.per_series - 1
    latest = []
    for s in range(dataset.series):
        ts = dataset.ts(s, k)
        t_us = (ts - PG_EPOCH) // US
        latest.append(
            LatestReading(
                sensor_id=sensor_ids[s // len(METRICS)],
                metric=METRICS[s % len(METRICS)],
                ts=ts,
                value=dataset.value(dataset.level(s), t_us, k, s),
            )
        )
    LatestReading.objects.bulk_create(latest, batch_size=2000)


# --- Measuring -----------------------------------------------------------------------------


def api_client():
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    # The test client's host; a production-like environment may also redirect to HTTPS.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = APIClient()
    operator = get_user_model().objects.get(username=OPERATOR)
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key_for(operator)
    return client


def timed(client, urls: list[str], warmups: int) -> list[float]:
    times = []
    for n, url in enumerate(urls):
        tick = time.perf_counter()
        response = client.get(url, secure=True)
        elapsed = (time.perf_counter() - tick) * 1000
        if response.status_code != 200:
            sys.exit(f"GET {url}: {response.status_code} {response.content[:300]!r}")
        if n >= warmups:
            times.append(elapsed)
    return times


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def readings_urls(refs, count, start, end, bucket) -> list[str]:
    return [
        f"/api/v1/sensors/{ref}/readings/?metric=pm25&from={z(start)}&to={z(end)}&bucket={bucket}"
        for ref in refs[:count]
    ]


def check_rollups_match_raw(ref: str, start: datetime, end: datetime) -> None:
    """The roll-up answer must be the raw one: compare them on one station."""
    from sensors.history import _buckets, _postgresql_fixed, readings_bucketed
    from sensors.models import Sensor
    from sensors.rollups import HOUR

    sensor = Sensor.objects.get(ref=ref)
    tick = time.perf_counter()
    raw = _buckets(_postgresql_fixed(sensor.pk, "pm25", start, end, HOUR))
    raw_ms = (time.perf_counter() - tick) * 1000
    rolled = readings_bucketed(sensor, "pm25", start, end, "1h")
    same = [(b.t, b.count, b.min, b.max) for b in raw] == [
        (b.t, b.count, b.min, b.max) for b in rolled
    ] and all(math.isclose(a.avg, b.avg, rel_tol=1e-12) for a, b in zip(raw, rolled, strict=True))
    print(
        f"check: 30 days hourly from the roll-ups {'equals' if same else 'DIFFERS FROM'} the "
        f"raw computation ({len(rolled)} buckets, {sum(b.count for b in rolled):,} readings); "
        f"the raw SQL alone took {raw_ms:.0f} ms on {ref} (cold)"
    )
    if not same:
        sys.exit(1)


def explain(ref: str, start_24h, start_30d, end_30d, end) -> None:
    from django.db import connection

    from sensors.models import Sensor

    sensor_id = Sensor.objects.get(ref=ref).pk
    statements = {
        "24 h, 5-minute buckets (raw)": (
            "SELECT date_bin('300 seconds', ts, TIMESTAMPTZ '2000-01-01T00:00:00Z') AS t, "
            "sum(value), min(value), max(value), count(*) FROM sensors_reading "
            "WHERE sensor_id = %s AND metric = 'pm25' AND ts >= %s AND ts < %s GROUP BY t",
            [sensor_id, start_24h, end],
        ),
        "30 days, hourly roll-ups": (
            "SELECT hour, sum, min, max, count FROM sensors_readinghourly "
            "WHERE sensor_id = %s AND metric = 'pm25' AND hour >= %s AND hour < %s",
            [sensor_id, start_30d, end_30d],
        ),
        "30 days, hourly from the raw readings (without roll-ups)": (
            "SELECT date_bin('3600 seconds', ts, TIMESTAMPTZ '2000-01-01T00:00:00Z') AS t, "
            "sum(value), min(value), max(value), count(*) FROM sensors_reading "
            "WHERE sensor_id = %s AND metric = 'pm25' AND ts >= %s AND ts < %s GROUP BY t",
            [sensor_id, start_30d, end_30d],
        ),
    }
    with connection.cursor() as cursor:
        for label, (sql, params) in statements.items():
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [row[0] for row in cursor.fetchall()]
            print(f"-- EXPLAIN ANALYZE, {label} ({ref}):")
            print("\n".join("   " + line for line in plan[:12]))
            if len(plan) > 12:
                print(f"   … ({len(plan) - 12} more lines)")
                print("\n".join("   " + line for line in plan[-3:]))


def measure(args, dataset: Dataset) -> dict:
    stations = [REF.format(n) for n in range(dataset.sensors)]
    random.Random(7).shuffle(stations)
    count = args.warmups + args.requests
    refs = (stations * (count // len(stations) + 1))[:count]
    spare = stations[count % len(stations)]
    end = dataset.end
    # 30 days ending at an arbitrary minute, as "the last 30 days" asked at :53.
    end_30d = end - timedelta(minutes=7)
    start_30d = end_30d - timedelta(days=30)
    start_24h = end - timedelta(hours=24)

    client = api_client()
    from core.heap import freeze_loaded_heap

    freeze_loaded_heap()  # as the web process does once loaded (csu/asgi.py)
    print(
        "measuring through the API in-process (DRF APIClient, session-authenticated "
        f"métropole operator), {args.requests} requests after {args.warmups} warm-ups, "
        "each on another station:"
    )
    check_rollups_match_raw(spare, start_30d, end_30d)
    if args.explain:
        explain(spare, start_24h, start_30d, end_30d, end)
    runs = {
        "q24h_5m_ms": readings_urls(refs, count, start_24h, end, "5m"),
        "q30d_1h_ms": readings_urls(refs, count, start_30d, end_30d, "1h"),
        "latest_ms": ["/api/v1/latest/"] * count,
    }
    labels = {
        "q24h_5m_ms": "24 h of pm25 in 5-min buckets",
        "q30d_1h_ms": "30 days of pm25 in 1-h buckets",
        "latest_ms": "latest value of every sensor",
    }
    figures = {}
    for key, urls in runs.items():
        times = timed(client, urls, args.warmups)
        median, p95 = statistics.median(times), percentile(times, 95)
        figures[key] = round(median, 1)
        figures[key.replace("_ms", "_p95_ms")] = round(p95, 1)
        verdict = "ok" if median <= TARGETS[key] else "MISSED"
        print(
            f"  {labels[key]:<34} median {median:6.1f} ms  p95 {p95:6.1f} ms"
            f"  (target ≤ {TARGETS[key]} ms: {verdict})",
            flush=True,
        )
    items = client.get("/api/v1/latest/", secure=True).json()["items"]
    print(f"  (latest: {len(items):,} items per answer)")
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help=f"default {DEFAULT_ROWS:,}")
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2, help="days loaded in parallel")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--reload", action="store_true", help="load even if the data is there")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    args.rows_given = args.rows is not None
    args.rows = args.rows or DEFAULT_ROWS

    url = bench_database_url()
    print(f"bench database: {url.rsplit('@', 1)[-1]}")
    disk_check(args, url)
    prepare_database(url)
    setup_django(url)
    from django.db import connection

    from sensors.rollups import floor_hour

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [MARKER])
        stored_end = None
        if cursor.fetchone()[0] is not None:
            cursor.execute(f"SELECT end_ts FROM {MARKER}")
            stored_end = (cursor.fetchone() or [None])[0]
    dataset = Dataset(
        args.rows, args.sensors, args.days, stored_end or floor_hour(datetime.now(UTC))
    )
    with connection.cursor() as cursor:
        why = "--reload" if args.reload else dataset_in_place(cursor, dataset)
    if why:
        print(f"loading: {why}")
        dataset = Dataset(args.rows, args.sensors, args.days, floor_hour(datetime.now(UTC)))
        sensor_ids = ensure_town(dataset, dataset.end)
        load(dataset, sensor_ids, url, args.jobs)
    else:
        print(
            f"data in place: {dataset.rows:,} readings from {dataset.start:%Y-%m-%d %H:%M} to "
            f"{dataset.end:%Y-%m-%d %H:%M} UTC (loaded before; --reload to load again)"
        )
    figures = measure(args, dataset)
    print_result({**figures, "rows": dataset.rows})


if __name__ == "__main__":
    main()
