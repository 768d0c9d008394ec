#!/usr/bin/env python3
"""The developer entry point: set up and run CSU with nothing but Python and pip.

    python dev.py start      install, migrate, seed the demo town, run everything
    python dev.py test       install and run the test suite on every core (pytest arguments
                             pass through; -n 0 runs it in one process)
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
    for domain in ("django", "djangojs"):  # the templates' and Python's; the pages' scripts
        if any((ROOT / "locale").glob(f"*/LC_MESSAGES/{domain}.po")):
            run(VENV / "bin" / "pybabel", "compile", "--statistics", "-d", "locale", "-D", domain)


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
    env = throwaway_key_env()
    # Compiled bytecode is kept, under var/ rather than in __pycache__ directories of the
    # tree: without it every process of a run (pytest, its workers, the web, ingest and
    # Celery processes the tests start) compiles Django and the libraries again, seconds
    # of CPU each.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / "var" / "pycache"))
    result = subprocess.run(
        [str(PY), "-m", "pytest", *parallel_options(args), *args], cwd=ROOT, env=env
    )
    sys.exit(result.returncode)


# Arguments after which the run stays in one process: a debugger or the collection
# alone was asked for, or tests were picked by name or node id, usually a few, which
# start sooner without workers (about 6 s against 12 s for `-k partitions`).
SERIAL_ARGS = ("--pdb", "--trace", "--co", "--collect-only")


def parallel_options(args) -> list[str]:
    """pytest-xdist's options: one worker per core, 4 at most, unless ``args`` say otherwise.

    Each worker has a test database of its own. Tests that start the whole stack carry
    ``xdist_group("stack")``; loadgroup runs them one at a time on one worker, also when
    the caller chose the number of workers (`-n 0` for none, `-n auto` to have them
    with `-k`). At most 4 workers: each holds PostgreSQL connections (100 in all on a
    developer's machine) and the stack's tests start servers with pools of their own.
    """
    names = [arg.split("=", 1)[0] for arg in args]
    if "--dist" in names or any("no:xdist" in arg for arg in args):
        return []
    if any(name == "--numprocesses" or name.startswith("-n") for name in names):  # -n 2, -n2
        return ["--dist", "loadgroup"]
    for arg in args:
        if arg in SERIAL_ARGS or arg.startswith("-k") or "::" in arg:
            return []
    if (os.cpu_count() or 1) < 2:
        return []
    return ["--numprocesses", "auto", "--maxprocesses", "4", "--dist", "loadgroup"]


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
