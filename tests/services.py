"""Private PostgreSQL and Redis servers on free ports, for faults that stop a service.

The shared servers of a machine must never be stopped (other work uses them), so a test
or bench that takes a service away starts its own: a PostgreSQL cluster initialised in a
temporary directory and a redis-server configured like production (append-only file on,
docker-compose.yml), each one stoppable, killable and restartable on the same port.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.brokers import find_program, free_port, wait_for_port

PG_BIN = Path(os.environ.get("CSU_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres_user() -> dict:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` OS user."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def postgres_available() -> str | None:
    """Why a private cluster cannot run here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL's initdb is needed in {PG_BIN} (set CSU_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a `postgres` OS user for a private cluster"
    return None


def redis_available() -> str | None:
    return None if find_program("redis-server") else "redis-server is needed"


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust authentication, user postgres)."""

    port: int = field(default_factory=free_port)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="csu-pg-")))
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> "PrivatePostgres":
        _chown_to_postgres(self.tmp)
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",  # the cluster is thrown away; its servers keep fsync on
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.tmp,
            **_as_postgres_user(),
        )
        return self

    def start(self) -> "PrivatePostgres":
        if not self.data.exists():
            self.init()
        log = (self.tmp / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.tmp}",
                "-c",
                "max_connections=100",
                "-c",
                "shared_buffers=64MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
            **_as_postgres_user(),
        )
        try:
            wait_for_port(self.port, timeout=30, process=self.process)
            self._wait_ready()
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"postgres did not start ({exc}):\n{self.log_tail()}") from exc
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        import time

        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError("postgres does not accept connections") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (SIGINT: clients are disconnected, like
        ``pg_ctl stop -m fast``), ``smart`` (SIGTERM) or ``immediate`` (SIGQUIT)."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        path = self.tmp / "postgres.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.remove()


@dataclass
class PrivateRedis:
    """redis-server as production runs it (append-only file), on a free port."""

    port: int = field(default_factory=free_port)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="csu-redis-")))
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "PrivateRedis":
        log = (self.tmp / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                find_program("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.tmp),
                "--save",
                "",
                # As docker-compose.yml: a restart keeps the queued Celery tasks.
                "--appendonly",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout=15, process=self.process)
            self._wait_loaded()
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"redis did not start ({exc}):\n{self.log_tail()}") from exc
        return self

    def _wait_loaded(self, timeout: float = 15) -> None:
        import time

        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()  # LOADING while it replays its append-only file
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise TimeoutError("redis still loading") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """A clean stop (SIGTERM: the append-only file is flushed)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.tmp / "redis.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def remove(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.remove()
