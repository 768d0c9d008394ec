"""The benches stop every process they start, children included: uvicorn's workers, for
one, outlived the bench that started them (they wait on SIGTERM)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent.parent / "bench"))  # after the project

import common

# A parent that starts a child, both deaf to SIGTERM; the parent prints the child's pid.
DEAF = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_process_and_its_children_deaf_to_sigterm_are_stopped():
    parent = common.start_process([sys.executable, "-c", DEAF], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert running(child)

    common.stop_processes([parent], grace=1)

    assert parent.returncode is not None
    assert common.wait_until(lambda: not running(child), timeout=5)


def test_the_cpu_of_a_group_is_counted_with_its_children():
    parent = common.start_process(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'sum(range(30_000_000)); input()'])",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        assert common.wait_until(lambda: common.cpu_seconds(parent.pid) > 0.2, timeout=30)
    finally:
        common.stop_processes([parent], grace=1)


def test_a_worker_that_does_not_start_is_stopped_not_left_running():
    # Its broker does not answer: it never subscribes. Left running, such a worker kept
    # its connection to the test database and the next run could not recreate it.
    from tests.stack import start_worker

    class Nowhere:
        def url_for(self, username):
            return f"mqtt://{username}@127.0.0.1:9"

    before = set(common._processes(command=f"{sys.executable} manage.py ingest"))
    with pytest.raises(AssertionError):
        start_worker(Nowhere(), "csu-ingest-nowhere", timeout=3)

    after = set(common._processes(command=f"{sys.executable} manage.py ingest"))
    assert after - before == set()
