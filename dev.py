#!/usr/bin/env python3
"""The developer entry point: set up and run CSU with nothing but Python and pip.

    python dev.py start      install, migrate, seed the demo town, run everything
    python dev.py test       install and run the test suite (pytest arguments pass through)
    python dev.py lint       ruff, the import layers and the migrations check
    python dev.py manage ... any manage.py command in the project's environment

It installs uv (into var/tools, not system-wide) when it is not on the PATH, then
builds .venv from uv.lock, so every machine runs the same versions.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ROOT / "var" / "tools"
PY = VENV / "bin" / "python"


def run(*cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, **kwargs)


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    local = TOOLS / "bin" / "uv"
    if not local.exists():
        # --target keeps uv out of the system's site-packages (and out of PEP 668's way).
        run(sys.executable, "-m", "pip", "install", "--quiet", "--target", TOOLS, "uv")
    return str(local)


def install() -> None:
    run(uv(), "sync", "--frozen", "--python", sys.executable)
    # Compiled message catalogues are build products: made here, never committed.
    if any((ROOT / "locale").glob("*/LC_MESSAGES/django.po")):
        run(VENV / "bin" / "pybabel", "compile", "--statistics", "-d", "locale", "-D", "django")


def data_dir() -> Path:
    """Create CSU_DATA_DIR (the embedded database, static files): settings create nothing."""
    path = Path(os.environ.get("CSU_DATA_DIR") or ROOT / "var")
    (path / "static").mkdir(parents=True, exist_ok=True)
    return path


def webpush_keys(data: Path) -> None:
    """Give the embedded demo one VAPID key pair for Web Push, kept in CSU_DATA_DIR (in
    production, set WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_PUBLIC_KEY)."""
    if os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY"):
        return
    path = data / "webpush-keys.json"
    if not path.exists():
        printed = subprocess.run(
            [str(PY), "manage.py", "webpush_keys"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        keys = dict(line.split("=", 1) for line in printed.split())
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    os.environ.update(json.loads(path.read_text()))


def throwaway_key_env() -> dict:
    """The environment, with a throwaway secret key if none is set: with DATABASE_URL and
    REDIS_URL the settings are production's, which refuse to run without one."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SECRET_KEY", "throwaway-" + secrets.token_urlsafe(40))
    return env


def manage(*args, env=None):
    return run(PY, "manage.py", *args, env=env)


def start(args):
    install()
    data = data_dir()
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("seed_demo")
    webpush_keys(data)
    # The embedded runner's Celery worker runs in threads of its process.
    os.environ["CSU_EMBEDDED_WORKER"] = "true"
    os.execv(str(PY), [str(PY), "manage.py", "run_embedded", *args])


def test(args):
    install()
    data_dir()
    env = dict(throwaway_key_env(), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def lint(args):
    install()
    run(VENV / "bin" / "ruff", "check", ".")
    run(VENV / "bin" / "ruff", "format", "--check", ".")
    run(VENV / "bin" / "lint-imports")  # the layers: pyproject.toml's [tool.importlinter]
    manage("makemigrations", "--check", "--dry-run", env=throwaway_key_env())


def manage_cmd(args):
    install()
    data_dir()
    os.execv(str(PY), [str(PY), "manage.py", *args])


COMMANDS = {"start": start, "test": test, "lint": lint, "manage": manage_cmd}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    COMMANDS[sys.argv[1]](sys.argv[2:])
