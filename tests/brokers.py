"""Throwaway Mosquitto brokers for the tests, run with our production configuration.

NOTES.md: no-loss tests must run against a broker with our config (raised queue
limits), not the machine's default one. Only the port and the file paths change.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
IN_CI = os.environ.get("CI", "").lower() == "true"


def find_program(program: str) -> str | None:
    for candidate in (shutil.which(program), f"/usr/sbin/{program}", f"/usr/bin/{program}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port}") from None
            time.sleep(0.05)


def _substitute(text: str, pattern: str, replacement: str) -> str:
    text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{CONF} should have exactly one line matching {pattern!r}"
    return text


def broker_config_text(tmp: Path, port: int, *, auth: bool) -> str:
    """Return our mosquitto.conf for a broker on ``port`` keeping its files in ``tmp``."""
    text = CONF.read_text()
    text = _substitute(text, r"^listener 1883$", f"listener {port} 127.0.0.1")
    text = _substitute(text, r"^persistence_location .*$", f"persistence_location {tmp}/data/")
    if auth:
        text = _substitute(text, r"^password_file .*$", f"password_file {tmp / 'passwords'}")
        text = _substitute(text, r"^acl_file .*$", f"acl_file {tmp / 'acl'}")
    else:
        text = _substitute(text, r"^allow_anonymous false$", "allow_anonymous true")
        text = _substitute(text, r"^password_file .*$", "")
        text = _substitute(text, r"^acl_file .*$", "")
    if os.geteuid() == 0:
        # As root Mosquitto switches to the `mosquitto` user, who cannot enter pytest's
        # private temporary directory.
        text += "\nuser root\n"
    return text


@dataclass
class Mosquitto:
    tmp: Path
    port: int
    auth: bool
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, username: str, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"mqtt://{username}{secret}@127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(broker_config_text(self.tmp, self.port, auth=self.auth))
        (self.tmp / "data").mkdir(exist_ok=True)
        log = (self.tmp / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [find_program("mosquitto"), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, process=self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"mosquitto did not start ({exc}):\n{self.log_tail()}") from exc
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.tmp / "mosquitto.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def require_mosquitto() -> None:
    if find_program("mosquitto"):
        return
    message = "mosquitto is needed: apt-get install mosquitto"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the run)")
    pytest.skip(message)
