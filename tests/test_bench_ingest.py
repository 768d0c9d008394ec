"""The ingest bench reports what a reading costs and the floor it is measured against
(the figures themselves live in the bench's runs, not in tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COST_KEYS = {
    "cpu_us_per_reading",
    "ingest_us_per_reading",
    "pg_us_per_reading",
    "rules_us_per_reading",
    "burst_cpu_us_per_reading",
    "floor_us_per_reading",
    "burst_floor_us_per_reading",
    "cost_vs_floor",
    "burst_cost_vs_floor",
    "burst_machine_busy_pct",
    "burst_load_us_per_reading",
}
# A child that spends 0.3 s of CPU, then ends.
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.mqtt
@pytest.mark.xdist_group("stack")
def test_the_ingest_bench_reports_the_cost_per_reading_and_the_floor():
    # The peers' load: one publisher, 4 readings a message; a short run.
    small = "--stations 3 --messages 1000 --latency-seconds 2 --naive-messages 50"
    args = [*small.split(), "--floor-messages", "500", "--readings", "4", "--publishers", "1"]

    run = subprocess.run(
        [sys.executable, "bench/ingest.py", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(figures) >= COST_KEYS
    assert all(figures[key] > 0 for key in COST_KEYS)
    assert (figures["readings_per_message"], figures["publishers"]) == (4, 1)
    assert figures["stored"] == figures["expected"] == 4000


def test_the_cpu_meter_counts_a_process_that_lived_and_ended_between_two_samples():
    # A connection per Celery task was a PostgreSQL backend living a few milliseconds:
    # sampled every 0.25 s, the bench counted almost none of them.
    sys.path.insert(0, str(ROOT / "bench"))
    from common import CpuMeter, children_cpu

    children: list[subprocess.Popen] = []
    meter = CpuMeter(
        lambda: [child.pid for child in children if child.poll() is None],
        reaped=lambda: children_cpu(os.getpid()),
    )
    meter.start()
    child = subprocess.Popen([sys.executable, "-c", BURN])
    children.append(child)
    child.wait()  # ended before any sample, as its parent waits for it
    assert meter.seconds() >= 0.25


def test_the_machine_meter_sees_a_process_burning_a_core():
    sys.path.insert(0, str(ROOT / "bench"))
    from common import machine_cpu

    busy, total = machine_cpu()
    subprocess.run([sys.executable, "-c", BURN], check=True)
    busy_after, total_after = machine_cpu()
    assert busy_after - busy >= 0.25  # the burn, and whatever else ran meanwhile
    # A share of the machine: at most all of it (seconds from ticks: equal ones may
    # differ in the last bit once subtracted, as on a fully busy machine they did).
    assert (busy_after - busy) / (total_after - total) <= 1 + 1e-9
