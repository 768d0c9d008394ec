#!/usr/bin/env python
"""PPMS fan-out: an activation → every concerned director's and operator's page, and
every subscribed phone, notified.

    python bench/ppms_fanout.py   (DATABASE_URL's server, database <name>_bench_flow; REDIS_URL)

A métropole: 400 schools in 20 communes. 2,000 websocket clients (1,900 directors'
pages, 5 operators' pages per commune) connect to uvicorn serving the ASGI app with the
Redis channel layer (2 workers, as docker-compose runs), and 1,000 directors' devices
are subscribed to Web Push at a push service on loopback started by this script
(``push_endpoint.py``), which decrypts each push as the phone would (RFC 8291) and
timestamps it. This script starts one activation concerning every school and measures,
from the start of the call, the arrival of each page's `activated` event
(``activation_*``) and of each decrypted push (``push_*``). As in production, the
notification is sent by a Celery worker (the outbox, core/outbox.py; 2 processes, as
docker-compose runs it) once the activation commits: the live events at once, then the
device pushes in batches (core/webpush.py).

``--profile DIR``: py-spy samples the web workers and the Celery worker while the
activation goes out (their collapsed stacks in DIR), cProfile the activation's own
transaction; the functions where the time goes are printed.

The last line is JSON: ``activation_p99_ms`` (target ≤ 500 on a quiet 2-core machine),
``push_p99_ms`` (target ≤ 2,000), ``push_delivered`` (of ``push_subscriptions``),
``clients``, ``notified``.
"""

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from common import (
    ROOT,
    bench_database_url,
    connect_websockets,
    cpu_seconds,
    listening,
    percentile,
    prepare_database,
    print_result,
    run_manage,
    session_key_for,
    start_celery,
    start_process,
    start_web,
    stop_processes,
    wait_for_celery,
    wait_until,
)
from push_endpoint import new_devices


def setup(database_url: str, args, push_base_url: str):
    """The métropole: communes, schools, directors' and operators' sessions, devices.
    Return (schools, session keys, device keys for the push service)."""
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from core.models import DevicePush, PushSubscription
    from core.roles import DIRECTORS, OPERATORS
    from ppms.models import Activation, School
    from sensors.models import Commune, Operator

    User = get_user_model()
    Activation.objects.filter(title__startswith="bench").delete()
    DevicePush.objects.all().delete()
    PushSubscription.objects.all().delete()
    directors_group = Group.objects.get_or_create(name=DIRECTORS)[0]
    operators_group = Group.objects.get_or_create(name=OPERATORS)[0]

    with transaction.atomic():
        communes = [
            Commune.objects.get_or_create(
                insee_code=f"99{n:03d}", defaults={"name": f"Bench commune {n}"}
            )[0]
            for n in range(args.communes)
        ]
        schools = []
        for n in range(args.schools):
            school, _ = School.objects.get_or_create(
                uai=f"099{n:04d}A",
                defaults={
                    "name": f"École bench {n}",
                    "commune": communes[n % len(communes)],
                    "latitude": 47.3,
                    "longitude": 0.7,
                    "pupils": 200,
                },
            )
            schools.append(school)
        keys, directors = [], []
        for n in range(args.director_pages):
            director, _ = User.objects.get_or_create(username=f"bench-director-{n}")
            director.groups.add(directors_group)
            schools[n % len(schools)].directors.add(director)
            directors.append(director)
            keys.append(session_key_for(director))
        for commune in communes:
            for n in range(args.operators_per_commune):
                operator, _ = User.objects.get_or_create(
                    username=f"bench-fanout-operator-{commune.insee_code}-{n}"
                )
                operator.groups.add(operators_group)
                profile, _ = Operator.objects.get_or_create(user=operator)
                profile.communes.add(commune)
                keys.append(session_key_for(operator))
        device_keys, subscriptions = new_devices(args.devices, push_base_url)
        PushSubscription.objects.bulk_create(
            PushSubscription(
                user=directors[n % len(directors)],
                endpoint=info["endpoint"],
                p256dh=info["keys"]["p256dh"],
                auth=info["keys"]["auth"],
                user_agent="bench device",
            )
            for n, info in enumerate(subscriptions)
        )
    return schools, keys, device_keys


def warm_up(school, received) -> None:
    """One activation of one school, cancelled: every process has run the whole path once
    (imports, URL resolver, first queries), as a server in service has."""
    from ppms.services import ppms_activate, ppms_cancel

    before = received()
    activation = ppms_activate(
        scenario="shelter", title="bench: warm-up", source="operator", schools=[school]
    )
    ppms_cancel(activation=activation, by=None, reason="bench: warm-up")
    # Its pushes (activated, then cancelled) are in before the measured activation starts.
    wait_until(lambda: received() > before, timeout=30)
    time.sleep(2)


def pushes_received(port: int) -> list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/results", timeout=10) as answer:
        return json.loads(answer.read())


def first_pushes(received: list, since: float) -> dict[str, float]:
    """Each device's first decrypted push from ``since`` (the warm-up's came before)."""
    first: dict[str, float] = {}
    for device, at, ok in received:
        if ok and at >= since:
            first.setdefault(device, at)
    return first


class Sampler:
    """py-spy sampling a process and its children (every thread) into a collapsed-stacks
    file, until stopped."""

    def __init__(self, pid: int, path: Path):
        self.path = path
        self.process = start_process(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            stop_processes([self.process])


def top_of_stacks(path: Path, count: int = 12) -> list[tuple[str, float]]:
    """The functions present in most samples (inclusive), as shares of the samples
    taken while the process was busy (its idle waits left out)."""
    idle = ("select", "poll", "epoll", "wait", "_wait", "sleep", "accept", "recv_into", "read")
    inclusive, busy = Counter(), 0
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        leaf = frames[-1].split(" (")[0]
        if leaf.rsplit(".", 1)[-1] in idle:
            continue
        busy += int(samples)
        for frame in set(frames[1:]):  # the thread's name is the first frame
            inclusive[frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")")] += int(
                samples
            )
    return [(name, 100 * n / busy) for name, n in inclusive.most_common(count)] if busy else []


async def run(port: int, keys: list[str], schools, profile_dir: Path | None, on_ready, on_done):
    """Connect the pages, call ``on_ready()``, activate, wait for every page's event, call
    ``on_done(started)`` (in a thread; the pushes), and only then close the pages."""
    from asgiref.sync import sync_to_async

    from ppms.services import ppms_activate

    arrivals: list[float] = []
    waiters = []

    async def wait_event(ws):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "ppms" and message.get("event") == "activated":
                arrivals.append(time.monotonic())
                return

    def on_open(ws, key):
        waiters.append(asyncio.create_task(wait_event(ws)))

    sockets = await connect_websockets(port, keys, on_open=on_open)
    await asyncio.sleep(2)  # every consumer has joined its groups

    def activate():
        profiler = cProfile.Profile() if profile_dir else None
        if profiler:
            profiler.enable()
        ppms_activate(
            scenario="shelter", title="bench: fan-out", source="operator", schools=schools
        )
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_dir / "activation.pstats")

    await asyncio.to_thread(on_ready)
    started = time.monotonic()
    await sync_to_async(activate)()
    committed = time.monotonic()
    done, pending = await asyncio.wait(waiters, timeout=30)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            print(f"a client failed: {task.exception()!r}")
    await asyncio.to_thread(on_done, started)
    for ws in sockets:
        await ws.close()
    return started, committed, [(t - started) * 1000 for t in arrivals], len(pending)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--schools", type=int, default=400)
    parser.add_argument("--communes", type=int, default=20)
    parser.add_argument("--director-pages", type=int, default=1900)
    parser.add_argument("--operators-per-commune", type=int, default=5)
    parser.add_argument("--devices", type=int, default=1000, help="subscribed push devices")
    parser.add_argument(
        "--web-workers", type=int, default=2, help="uvicorn workers (docker-compose runs 2)"
    )
    parser.add_argument("--profile", type=Path, metavar="DIR")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    database_url = bench_database_url("bench_flow")
    prepare_database(database_url)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["REDIS_URL"] = redis_url
    # A channel-layer namespace of this run's own: no group members left by earlier runs.
    os.environ["CHANNEL_LAYER_PREFIX"] = f"bench-fanout-{os.getpid()}"
    # A Celery queue of this run's own, for the worker that sends the notification.
    queue = os.environ["CELERY_QUEUE"] = f"bench-fanout-{os.getpid()}"
    # Web Push on, with a key pair of this run's own (the outbox writes the device pushes
    # in the activation's transaction only when it is set).
    printed = run_manage(["webpush_keys"], database_url, capture_output=True, text=True).stdout
    os.environ.update(line.split("=", 1) for line in printed.split())
    port = 19000 + os.getpid() % 1000
    push_port = port + 1000
    schools, keys, device_keys = setup(database_url, args, f"http://127.0.0.1:{push_port}")

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as keys_file:
        json.dump(device_keys, keys_file)
    processes, samplers = [], []
    try:
        endpoint = start_process(
            [
                sys.executable,
                str(ROOT / "bench" / "push_endpoint.py"),
                str(push_port),
                keys_file.name,
            ],
            cwd=ROOT,
        )
        processes.append(endpoint)
        if not wait_until(lambda: listening(push_port) or endpoint.poll() is not None, 30):
            sys.exit("the push endpoint did not start")
        web = start_web(database_url, port, workers=args.web_workers, REDIS_URL=redis_url)
        processes.append(web)
        worker = start_celery(database_url, redis_url, queue, pool="prefork", concurrency=2)
        processes.append(worker)
        wait_for_celery(queue)
        warm_up(schools[0], lambda: len(pushes_received(push_port)))

        groups = {"web": web.pid, "celery": worker.pid, "push_service": endpoint.pid}
        cpu_before = {}

        def sample():
            cpu_before.update(
                {name: cpu_seconds(pgid) for name, pgid in groups.items()},
                postgres=cpu_seconds(command="postgres:"),
                bench=sum(os.times()[:2]),
            )
            # Once every page is connected: the profile is of the activation only.
            if args.profile:
                samplers.append(Sampler(web.pid, args.profile / "web.txt"))
                samplers.append(Sampler(worker.pid, args.profile / "celery.txt"))
                time.sleep(2)  # py-spy attaches

        finished = {}

        def finish(started):
            # Every push delivered, or none more for 10 s.
            seen = {"n": -1, "at": time.monotonic()}

            def pushes_settled():
                n = len(first_pushes(pushes_received(push_port), started))
                if n != seen["n"]:
                    seen.update(n=n, at=time.monotonic())
                return n >= args.devices or time.monotonic() - seen["at"] > 10

            wait_until(pushes_settled, timeout=120, step=0.2)
            finished["received"] = pushes_received(push_port)
            finished["cpu"] = {name: cpu_seconds(pgid) for name, pgid in groups.items()}
            finished["cpu"].update(
                postgres=cpu_seconds(command="postgres:"), bench=sum(os.times()[:2])
            )
            for sampler in samplers:
                sampler.stop()
            samplers.clear()

        started, committed, latencies, timed_out = asyncio.run(
            run(port, keys, schools, args.profile, sample, finish)
        )
        received, cpu_after = finished["received"], finished["cpu"]
    finally:
        for sampler in samplers:
            sampler.stop()
        stop_processes(processes)
        os.unlink(keys_file.name)
    first = first_pushes(received, started)
    undecryptable = sum(1 for _, at, ok in received if not ok and at >= started)
    decrypted = list(first.values())
    push_latencies = [(at - started) * 1000 for at in decrypted]
    figures = {
        "activation_first_ms": round(min(latencies), 1) if latencies else None,
        "activation_p50_ms": round(percentile(latencies, 50), 1),
        "activation_p99_ms": round(percentile(latencies, 99), 1),
        "activation_max_ms": round(max(latencies), 1) if latencies else None,
        "commit_ms": round((committed - started) * 1000, 1),
        "push_p50_ms": round(percentile(push_latencies, 50), 1),
        "push_p99_ms": round(percentile(push_latencies, 99), 1),
        "push_max_ms": round(max(push_latencies), 1) if push_latencies else None,
        "push_delivered": len(decrypted),
        "push_undecryptable": undecryptable,
        "push_subscriptions": args.devices,
        "schools": args.schools,
        "clients": len(keys),
        "notified": len(latencies),
        "missing": len(keys) - len(latencies),
        "timed_out": timed_out,
        # CPU seconds each part spent from the activation to the last push.
        "cpu_s": {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.profile:
        print_profile(args.profile)
    print(
        f"activation → {len(latencies)} of {len(keys)} pages notified: "
        f"p50 {figures['activation_p50_ms']} ms, p99 {figures['activation_p99_ms']} ms; "
        f"{len(decrypted)} of {args.devices} pushes decrypted: "
        f"p50 {figures['push_p50_ms']} ms, p99 {figures['push_p99_ms']} ms"
    )
    print_result(figures)


def print_profile(directory: Path) -> None:
    stats = directory / "activation.pstats"
    if stats.exists():
        print("\n--- the activation's transaction (cProfile, cumulative) ---")
        pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(15)
    for name in ("web", "celery"):
        print(f"\n--- {name} (py-spy, share of busy samples, inclusive) ---")
        for function, share in top_of_stacks(directory / f"{name}.txt", 25):
            print(f"{share:5.1f} %  {function}")


if __name__ == "__main__":
    main()
