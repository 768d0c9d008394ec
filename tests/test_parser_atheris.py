"""The MQTT parser under atheris (coverage-guided libFuzzer), in a subprocess.

``bench/fuzz_parser.py`` feeds any topic and any payload to ``parse_topic()`` and
``parse_readings()`` and checks every answer (readings that hold, or rejections with a
reason of docs/mqtt.md); here it runs a bounded, seeded number of inputs from the
payloads of docs/mqtt.md. It complements the hypothesis tests of ``test_parser.py``: those
generate from what we think payloads look like, libFuzzer mutates towards the branches
of the parser it has not reached yet (it found the SenML pack of base fields only).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "bench" / "fuzz_parser.py"
RUNS = 50_000


def test_no_topic_nor_payload_crashes_the_parser_in_50_000_fuzzed_inputs(tmp_path):
    subprocess.run(
        [sys.executable, str(HARNESS), "--prepare", str(tmp_path)], check=True, timeout=60
    )
    crashes = tmp_path / "crashes"
    crashes.mkdir()

    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-runs={RUNS}",
            "-seed=1",  # the same inputs on every run
            "-max_len=4096",
            "-timeout=10",  # an input that takes this long (seconds) is a crash too
            f"-dict={tmp_path / 'parser.dict'}",
            f"-artifact_prefix={crashes}/",
            str(tmp_path / "corpus"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )

    found = {path.name: path.read_bytes()[:300] for path in crashes.iterdir()}
    assert run.returncode == 0 and not found, (
        f"the fuzzer found a crash (replay: python bench/fuzz_parser.py <file>): {found}\n"
        + run.stderr[-3000:]
    )
    assert f"Done {RUNS} runs" in run.stderr
