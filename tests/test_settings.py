"""Settings come from the environment, in one place, all documented, and touch nothing."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "csu" / "settings.py").read_text()
APPS = ("core", "sensors", "alerts", "ppms", "dashboard", "csu")


def variables_read_by_the_settings() -> set[str]:
    return set(
        re.findall(r"env(?:_bool|_int|_list|_rate)?\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']", SETTINGS)
    )


def test_every_variable_the_settings_read_is_in_the_readmes_table():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ", 1)]

    missing = sorted(name for name in variables_read_by_the_settings() if f"`{name}`" not in table)

    assert missing == []


def test_no_code_but_the_settings_reads_the_environment():
    readers = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name == "settings.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                # The entry points only choose the settings module and say what they are.
                if re.search(r"os\.environ(?!\.setdefault)|os\.getenv", line):
                    readers.append(f"{path.relative_to(ROOT)}:{number}")

    assert readers == []


def run_settings(tmp_path, _script=None, **env) -> subprocess.CompletedProcess:
    script = _script or (
        "import django; django.setup(); from django.conf import settings; print('ok')"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "csu.settings", "PATH": os.environ["PATH"], **env},
    )


def test_loading_the_settings_creates_nothing_on_disk(tmp_path):
    data = tmp_path / "not-yet"

    result = run_settings(tmp_path, CSU_DATA_DIR=str(data))

    assert result.returncode == 0, result.stderr
    assert not data.exists()


def test_production_refuses_the_insecure_default_key_even_when_given_explicitly(tmp_path):
    from csu.settings import INSECURE_SECRET_KEY

    result = run_settings(
        tmp_path,
        DATABASE_URL="postgres://csu@db.invalid:5432/csu",
        REDIS_URL="redis://redis.invalid:6379/0",
        DJANGO_SECRET_KEY=INSECURE_SECRET_KEY,
        CSU_DATA_DIR=str(tmp_path),
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_the_embedded_default_runs_without_a_key(tmp_path):
    assert run_settings(tmp_path, CSU_DATA_DIR=str(tmp_path)).returncode == 0


@pytest.mark.parametrize("rate", ["120", "abc/min", "0/min", "-5/min", "12/week", "1e3/min"])
def test_a_rate_that_is_not_requests_per_period_is_refused(tmp_path, rate):
    result = run_settings(tmp_path, CSU_DATA_DIR=str(tmp_path), API_WRITE_RATE=rate)

    assert result.returncode != 0
    assert "API_WRITE_RATE must be a number of requests per s, min, h or day" in result.stderr


@pytest.mark.parametrize(
    ("value", "rate"), [("", "120/min"), ("600/hour", "600/hour"), ("OFF", None)]
)
def test_a_rate_is_requests_per_period_or_off(monkeypatch, value, rate):
    from csu.settings import env_rate

    monkeypatch.setenv("API_WRITE_RATE", value)

    assert env_rate("API_WRITE_RATE", "120/min") == rate


def test_a_csu_phone_that_is_not_a_phone_number_is_refused(tmp_path):
    result = run_settings(tmp_path, CSU_DATA_DIR=str(tmp_path), CSU_PHONE="appelez-nous")

    assert result.returncode != 0
    assert "CSU_PHONE='appelez-nous': a phone number" in result.stderr
