#!/usr/bin/env python
"""Alert latency: a threshold crossing published over MQTT → the alert on an operator's
websocket, while 5,000 readings/s of background load flow.

    python bench/alert_latency.py   (DATABASE_URL's server, database <name>_bench; REDIS_URL)

The real chain runs in separate processes: Mosquitto (our config), `manage.py ingest`,
a Celery worker on Redis, uvicorn serving the ASGI app. This script logs in an operator
over a websocket, keeps the background publisher at the set rate, and every half
second publishes one reading of 95 µg/m³ PM10 from a probe sensor (a rule fires above
80); the latency is from just before the publish to the alert's arrival.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime

from common import (
    Broker,
    air_stations,
    bench_database_url,
    percentile,
    prepare_database,
    print_result,
    publisher,
    session_key_for,
    start_celery,
    start_ingest,
    start_web,
    stop_processes,
)


def setup(database_url: str, stations: int, probes: int):
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from alerts.models import Alert, Rule
    from sensors.models import Operator

    refs = [
        f"{prefix}-{n:03d}"
        for prefix, count in (("bench-air", stations), ("bench-probe", probes))
        for n in range(count)
    ]
    air_stations(refs)
    Rule.objects.update_or_create(
        name="bench: PM10 above 80",
        defaults={
            "kind": "threshold",
            "sensor_kind": "air",
            "metric": "pm10",
            "condition": "above",
            "threshold": 80,
            "severity": "warning",
        },
    )
    Alert.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE alerts_rulestate, sensors_reading, sensors_latestreading")
    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    Operator.objects.get_or_create(user=user, defaults={"all_communes": True})
    from django.contrib.auth.models import Group

    from core.roles import OPERATORS

    user.groups.add(Group.objects.get_or_create(name=OPERATORS)[0])
    return refs[:stations], refs[stations:], session_key_for(user)


async def measure(port: int, web_port: int, session_key: str, probes: list[str], interval):
    import paho.mqtt.client as mqtt
    import websockets
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-publisher")
    client.username_pw_set("bench-probe")
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{web_port}/ws/live/",
        additional_headers={
            "Cookie": f"sessionid={session_key}",
            "Origin": f"http://127.0.0.1:{web_port}",
        },
        max_size=None,
    ) as socket:

        async def receive():
            async for raw in socket:
                message = json.loads(raw)
                if message.get("type") == "alert" and message.get("event") == "opened":
                    ref = message["alert"]["sensor"]
                    if ref in sent:
                        latencies.append((time.perf_counter() - sent.pop(ref)) * 1000)

        receiver = asyncio.create_task(receive())
        for ref in probes:
            payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "values": {"pm10": 95}})
            sent[ref] = time.perf_counter()
            client.publish(f"csu/{ref}/readings", payload, qos=1)
            await asyncio.sleep(interval)
        deadline = time.monotonic() + 10
        while sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        receiver.cancel()
    client.disconnect()
    client.loop_stop()
    return latencies, len(sent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="background readings/s")
    parser.add_argument("--crossings", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between crossings")
    parser.add_argument("--stations", type=int, default=50)
    args = parser.parse_args()

    database_url = bench_database_url("bench_flow")
    prepare_database(database_url)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"csu-bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(REDIS_URL=redis_url, CELERY_QUEUE=queue)
    stations, probes, session_key = setup(database_url, args.stations, args.crossings)
    web_port = 18000 + os.getpid() % 1000
    processes = []
    with Broker() as broker:
        try:
            processes.append(
                start_ingest(database_url, broker, REDIS_URL=redis_url, CELERY_QUEUE=queue)
            )
            processes.append(start_celery(database_url, redis_url, queue))
            processes.append(
                start_web(database_url, web_port, REDIS_URL=redis_url, CELERY_QUEUE=queue)
            )
            time.sleep(2)  # the Celery worker connects
            per_message = 7
            duration = args.crossings * args.interval + 15
            background = multiprocessing.Process(
                target=publisher,
                args=(
                    broker.port,
                    stations,
                    int(args.rate / per_message * duration),
                    args.rate / per_message,
                    0.0,
                ),
            )
            background.start()
            time.sleep(3)  # let the background load settle
            latencies, missing = asyncio.run(
                measure(broker.port, web_port, session_key, probes, args.interval)
            )
            background.terminate()
        finally:
            stop_processes(processes)
    figures = {
        "alert_p50_ms": round(percentile(latencies, 50), 1),
        "alert_p95_ms": round(percentile(latencies, 95), 1),
        "alert_p99_ms": round(percentile(latencies, 99), 1),
        "alert_max_ms": round(max(latencies), 1) if latencies else None,
        "crossings": args.crossings,
        "alerts_received": len(latencies),
        "alerts_missing": missing,
        "background_readings_per_s": args.rate,
    }
    print(
        f"publish → alert on the websocket, {len(latencies)} of {args.crossings} crossings "
        f"under {args.rate:,} readings/s: p50 {figures['alert_p50_ms']} ms, "
        f"p95 {figures['alert_p95_ms']} ms, p99 {figures['alert_p99_ms']} ms"
    )
    print_result(figures)


if __name__ == "__main__":
    main()
