#!/usr/bin/env python
"""PPMS fan-out: an activation → every concerned director's and operator's page notified.

    python bench/ppms_fanout.py   (DATABASE_URL's server, database <name>_bench; REDIS_URL)

500 websocket clients (directors of 450 schools and 50 operators) connect to uvicorn
serving the ASGI app with the Redis channel layer; this script starts one activation
concerning every school and measures, for each client, the time from the start of the
call to the arrival of its `activated` event. As in production, the activation's
notification is sent by a Celery worker (the outbox, core/outbox.py) once it commits.
"""

import argparse
import asyncio
import json
import os
import time

from common import (
    bench_database_url,
    connect_websockets,
    percentile,
    prepare_database,
    print_result,
    session_key_for,
    start_celery,
    start_web,
    stop_processes,
    wait_for_celery,
)


def setup(database_url: str, schools: int, operators: int):
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import DIRECTORS, OPERATORS
    from ppms.models import Activation, School
    from sensors.models import Commune, Operator

    User = get_user_model()
    commune, _ = Commune.objects.get_or_create(insee_code="99998", defaults={"name": "Fanout"})
    Activation.objects.filter(title__startswith="bench").delete()
    directors_group = Group.objects.get_or_create(name=DIRECTORS)[0]
    operators_group = Group.objects.get_or_create(name=OPERATORS)[0]

    keys, school_rows = [], []
    for n in range(schools):
        school, _ = School.objects.get_or_create(
            uai=f"099{n:04d}A",
            defaults={
                "name": f"École bench {n}",
                "commune": commune,
                "latitude": 47.3,
                "longitude": 0.7,
                "pupils": 200,
            },
        )
        director, _ = User.objects.get_or_create(username=f"bench-director-{n}")
        director.groups.add(directors_group)
        school.directors.add(director)
        school_rows.append(school)
        keys.append(session_key_for(director))
    for n in range(operators):
        operator, _ = User.objects.get_or_create(username=f"bench-fanout-operator-{n}")
        operator.groups.add(operators_group)
        profile, _ = Operator.objects.get_or_create(user=operator)
        profile.communes.add(commune)
        keys.append(session_key_for(operator))
    return school_rows, keys


async def run(port: int, keys: list[str], schools) -> tuple[list[float], int]:
    from asgiref.sync import sync_to_async

    from ppms.services import ppms_activate

    sockets = await connect_websockets(port, keys)
    await asyncio.sleep(1)
    arrivals: list[float] = []

    async def wait_event(ws):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "ppms" and message.get("event") == "activated":
                arrivals.append(time.perf_counter())
                return

    waiters = [asyncio.create_task(wait_event(ws)) for ws in sockets]
    started = time.perf_counter()
    await sync_to_async(ppms_activate)(
        scenario="shelter", title="bench: fan-out", source="operator", schools=schools
    )
    done, pending = await asyncio.wait(waiters, timeout=15)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            print(f"a client failed: {task.exception()!r}")
    for ws in sockets:
        await ws.close()
    return [(t - started) * 1000 for t in arrivals], len(pending)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument(
        "--web-workers", type=int, default=2, help="uvicorn workers (docker-compose runs 2)"
    )
    args = parser.parse_args()

    database_url = bench_database_url("bench_flow")
    prepare_database(database_url)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["REDIS_URL"] = redis_url
    # A channel-layer namespace of this run's own: no group members left by earlier runs.
    os.environ["CHANNEL_LAYER_PREFIX"] = f"bench-fanout-{os.getpid()}"
    # A Celery queue of this run's own, for the worker that sends the notification.
    queue = os.environ["CELERY_QUEUE"] = f"bench-fanout-{os.getpid()}"
    schools, keys = setup(database_url, args.schools, args.operators)
    port = 19000 + os.getpid() % 1000
    web = start_web(database_url, port, workers=args.web_workers, REDIS_URL=redis_url)
    worker = start_celery(database_url, redis_url, queue)
    try:
        wait_for_celery(queue)
        latencies, missing = asyncio.run(run(port, keys, schools))
    finally:
        stop_processes([web, worker])
    figures = {
        "activation_p50_ms": round(percentile(latencies, 50), 1),
        "activation_p99_ms": round(percentile(latencies, 99), 1),
        "activation_max_ms": round(max(latencies), 1) if latencies else None,
        "clients": len(keys),
        "notified": len(latencies),
        "missing": len(keys) - len(latencies),
        "timed_out": missing,
    }
    print(
        f"activation → {len(latencies)} of {len(keys)} pages notified: "
        f"p50 {figures['activation_p50_ms']} ms, p99 {figures['activation_p99_ms']} ms, "
        f"max {figures['activation_max_ms']} ms"
    )
    print_result(figures)


if __name__ == "__main__":
    main()
