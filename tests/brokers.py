"""Throwaway Mosquitto brokers for the tests, run with our production configuration.

No-loss tests must run against a broker with our config (raised queue
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


def _substitute(text: str, pattern: str, replacement: str, *, lines: int = 1) -> str:
    text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == lines, f"{CONF} should have {lines} line(s) matching {pattern!r}"
    return text


# The listeners of mosquitto.conf: devices (plain and TLS; client id = username) and
# the CSU's services (internal; client ids kept).
DEVICES_LISTENER, TLS_LISTENER, SERVICES_LISTENER = 1883, 8883, 1885
# The TLS listener's block: its `listener` line and the option lines right after it.
TLS_BLOCK = rf"^listener {TLS_LISTENER}\n(?:[a-z_]+ [^\n]*\n)*"


@dataclass(frozen=True)
class TLSFiles:
    """A server certificate chain and its key, PEM (the broker's certfile and keyfile)."""

    certfile: Path
    keyfile: Path


def broker_config_text(
    tmp: Path,
    port: int,
    *,
    auth: bool,
    device_port: int | None = None,
    tls: TLSFiles | None = None,
    tls_port: int | None = None,
) -> str:
    """Return our mosquitto.conf for a broker keeping its files in ``tmp``.

    ``port`` is the services' listener (ingest, test publishers: client ids kept; with
    ``auth``, the ingest account only, from ``tmp/services``);
    ``device_port`` the devices' plain one, where a client's id becomes its username;
    the TLS listener is kept on ``tls_port`` with ``tls``'s files, else left out.
    """
    text = CONF.read_text()
    # Each listener has its own authentication lines (per_listener_settings).
    listeners = len(re.findall(r"^listener ", text, flags=re.MULTILINE)) - (0 if tls else 1)
    text = _substitute(text, rf"^listener {SERVICES_LISTENER}$", f"listener {port} 127.0.0.1")
    text = _substitute(
        text, rf"^listener {DEVICES_LISTENER}$", f"listener {device_port or free_port()} 127.0.0.1"
    )
    if tls:
        text = _substitute(text, rf"^listener {TLS_LISTENER}$", f"listener {tls_port} 127.0.0.1")
        text = _substitute(text, r"^certfile .*$", f"certfile {tls.certfile}")
        text = _substitute(text, r"^keyfile .*$", f"keyfile {tls.keyfile}")
    else:
        text = _substitute(text, TLS_BLOCK, "")
    text = _substitute(text, r"^persistence_location .*$", f"persistence_location {tmp}/data/")
    if auth:
        # passwords (devices' listeners), services (services' listener) and acl, in tmp.
        auth_file = r"^(password_file|acl_file) /mosquitto/auth/(\S+)$"
        text = _substitute(text, auth_file, rf"\1 {tmp}/\2", lines=2 * listeners)
    else:
        text = _substitute(
            text, r"^allow_anonymous false$", "allow_anonymous true", lines=listeners
        )
        text = _substitute(text, r"^(password_file|acl_file) .*\n", "", lines=2 * listeners)
    if os.geteuid() == 0:
        # As root Mosquitto switches to the `mosquitto` user, who cannot enter pytest's
        # private temporary directory.
        text += "\nuser root\n"
    return text


@dataclass
class Mosquitto:
    """A broker from our config. ``port``: the services' listener, where ingest workers
    and the tests' publishers connect; ``device_port``: the devices' listener;
    ``tls_port``: the devices' TLS listener, when started with ``tls`` files."""

    tmp: Path
    port: int
    auth: bool
    tls: TLSFiles | None = None
    device_port: int = field(default_factory=free_port)
    tls_port: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.tls and self.tls_port is None:
            self.tls_port = free_port()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, username: str, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"mqtt://{username}{secret}@127.0.0.1:{self.port}"

    def config_text(self) -> str:
        return broker_config_text(
            self.tmp,
            self.port,
            auth=self.auth,
            device_port=self.device_port,
            tls=self.tls,
            tls_port=self.tls_port,
        )

    def start(self) -> "Mosquitto":
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(self.config_text())
        (self.tmp / "data").mkdir(exist_ok=True)
        log = (self.tmp / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [find_program("mosquitto"), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            for listening in (self.port, self.device_port, self.tls_port):
                if listening:
                    wait_for_port(listening, process=self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
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


def throwaway_certificates(directory: Path) -> tuple[Path, TLSFiles]:
    """Make a CA and a server certificate it signs for 127.0.0.1 and localhost.

    Return the CA certificate (what clients verify the broker with) and the broker's
    files. With the openssl CLI, as an operator would; valid for a day.
    """
    openssl = find_program("openssl")
    if not openssl:
        message = "openssl is needed: apt-get install openssl"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing tool fails the run)")
        pytest.skip(message)
    assert " " not in str(directory), "the openssl commands below split on spaces"
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, cert = directory / "privkey.pem", directory / "fullchain.pem"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    for command in (
        f"req -x509 {new_key} -keyout {ca_key} -out {ca} -days 1 -subj /CN=csu-test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        f"req {new_key} -keyout {key} -out {directory / 'server.csr'} -subj /CN=localhost",
        f"x509 -req -in {directory / 'server.csr'} -CA {ca} -CAkey {ca_key} -CAcreateserial "
        f"-out {cert} -days 1 -extfile {extensions}",
    ):
        subprocess.run([openssl, *command.split()], check=True, capture_output=True)
    return ca, TLSFiles(certfile=cert, keyfile=key)
