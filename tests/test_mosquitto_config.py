"""Our Mosquitto configuration, run for real (deploy/mosquitto/mosquitto.conf).

Each test talks to a broker started from that file, with only its port and file paths
rewritten, and with the ACL that `manage.py mosquitto_auth` writes. The machine's
default broker proves nothing: its max_queued_messages of 1,000 silently drops what a
lagging persistent subscriber has not read (NOTES.md).
"""

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import CallbackAPIVersion, MQTTv311

from sensors import mqtt_auth

pytestmark = pytest.mark.mqtt

CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"

INGEST, INGEST_PASSWORD = mqtt_auth.INGEST_USER, "ingest-secret"
DEVICE, DEVICE_PASSWORD = "jlt-air-01", "device-secret"
# A device whose password was set in the admin: hashed by the app, not mosquitto_passwd.
ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD = "jlt-water-01", "water-secret"

BURST = 5_000


def _find(program: str) -> str | None:
    for candidate in (shutil.which(program), f"/usr/sbin/{program}", f"/usr/bin/{program}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _substitute(text: str, pattern: str, replacement: str) -> str:
    """Replace the one active line matching ``pattern``; fail if the config changed shape."""
    text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{CONF} should have exactly one line matching {pattern!r}"
    return text


def _test_config(tmp: Path, port: int) -> str:
    text = CONF.read_text()
    text = _substitute(text, r"^listener 1883$", f"listener {port} 127.0.0.1")
    text = _substitute(text, r"^password_file .*$", f"password_file {tmp / 'passwords'}")
    text = _substitute(text, r"^acl_file .*$", f"acl_file {tmp / 'acl'}")
    text = _substitute(text, r"^persistence_location .*$", f"persistence_location {tmp}/data/")
    if os.geteuid() == 0:
        # As root, Mosquitto switches to the `mosquitto` user, who cannot enter pytest's
        # private temporary directory; in the container it starts as root and switches.
        text += "\nuser root\n"
    return text


@dataclass
class Broker:
    port: int
    log: Path
    process: subprocess.Popen = field(repr=False)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    mosquitto, mosquitto_passwd = _find("mosquitto"), _find("mosquitto_passwd")
    if not (mosquitto and mosquitto_passwd):
        message = "mosquitto and mosquitto_passwd are needed: apt-get install mosquitto"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: a missing service fails the run)")
        pytest.skip(message)

    tmp = tmp_path_factory.mktemp("mosquitto")
    (tmp / "data").mkdir()
    passwords = tmp / "passwords"
    subprocess.run([mosquitto_passwd, "-b", "-c", passwords, INGEST, INGEST_PASSWORD], check=True)
    subprocess.run([mosquitto_passwd, "-b", passwords, DEVICE, DEVICE_PASSWORD], check=True)
    with passwords.open("a") as lines:
        lines.write(f"{ADMIN_SET_DEVICE}:{mqtt_auth.hash_password(ADMIN_SET_PASSWORD)}\n")
    # The ACL that `manage.py mosquitto_auth` writes.
    (tmp / "acl").write_text(mqtt_auth.ACL)

    started = None
    for _attempt in range(5):
        started = _start(mosquitto, tmp, _free_port())
        if started.process.poll() is None:
            break
        if "Address already in use" not in started.log_tail():
            pytest.fail(
                f"mosquitto exited with {started.process.returncode}:\n{started.log_tail()}"
            )
    else:
        pytest.fail(f"mosquitto found no free port:\n{started.log_tail()}")
    try:
        yield started
    finally:
        started.process.terminate()
        try:
            started.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            started.process.kill()
            started.process.wait()


def _start(mosquitto: str, tmp: Path, port: int) -> Broker:
    """Start a broker on ``port``; return once it listens there, or once it has died."""
    conf = tmp / "mosquitto.conf"
    conf.write_text(_test_config(tmp, port))
    log = tmp / "mosquitto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out, stderr=out)
    broker = Broker(port=port, log=log, process=process)
    deadline = time.monotonic() + 10
    while process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"mosquitto did not listen on {port}:\n{broker.log_tail()}")
            time.sleep(0.05)
            continue
        # Another process may have taken the port first: ours then exits at once.
        time.sleep(0.2)
        break
    return broker


class Inbox:
    """What a subscriber received, and a way to wait for it."""

    def __init__(self):
        self.messages: list[mqtt.MQTTMessage] = []
        self._changed = threading.Condition()

    def on_message(self, client, userdata, message):
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, count: int, idle: float = 5) -> list[mqtt.MQTTMessage]:
        """Wait until ``count`` messages arrived, or none arrived for ``idle`` seconds."""
        with self._changed:
            while len(self.messages) < count:
                seen = len(self.messages)
                if not self._changed.wait(timeout=idle) and len(self.messages) == seen:
                    break
            return list(self.messages)

    @property
    def payloads(self) -> list[bytes]:
        with self._changed:
            return [message.payload for message in self.messages]


class Session:
    """A paho-mqtt 2 client connected to the broker, as devices and ingest are."""

    def __init__(
        self,
        broker,
        username,
        password,
        *,
        client_id=None,
        clean_session=True,
        will=None,
        inbox=None,
    ):
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
            protocol=MQTTv311,
            clean_session=clean_session,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(*will, qos=1, retain=True)
        # NOTES.md: paho at QoS 1 is fastest with ~100 messages in flight.
        self.client.max_inflight_messages_set(100)
        if inbox is not None:
            self.client.on_message = inbox.on_message
        self._connack = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self._granted: dict[int, list] = {}
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        assert self._connack.wait(10), f"no CONNACK from the broker:\n{broker.log_tail()}"
        if self.reason_code.is_failure:
            self.close()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.reason_code, self.session_present = reason_code, flags.session_present
        self._connack.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self._granted[mid] = reason_codes
        self._subacks.setdefault(mid, threading.Event()).set()

    @property
    def refused(self) -> bool:
        return self.reason_code.is_failure

    def subscribe(self, topic: str) -> None:
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert self._subacks.setdefault(mid, threading.Event()).wait(10), "no SUBACK"
        assert not any(code.is_failure for code in self._granted[mid]), self._granted[mid]

    def publish(self, topic: str, payloads) -> None:
        """Publish at QoS 1 and wait for every PUBACK."""
        infos = [self.client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published(), f"no PUBACK for message {info.mid}"

    def drop(self) -> None:
        """Vanish without a DISCONNECT, as a device losing power does."""
        self.client.loop_stop()
        self.client.socket().close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sessions():
    opened = []
    yield opened
    for session in opened:
        session.close()


@pytest.fixture
def connect(broker, sessions):
    def connect(username, password, **options):
        session = Session(broker, username, password, **options)
        sessions.append(session)
        return session

    return connect


def test_it_refuses_anonymous_clients(connect):
    anonymous = connect(None, None)

    assert anonymous.refused


def test_it_refuses_a_device_with_a_wrong_password(connect):
    impostor = connect(DEVICE, "not-the-password")

    assert impostor.refused


def test_ingest_receives_through_its_shared_subscription_what_a_device_publishes(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("$share/csu-ingest/csu/+/readings")
    device = connect(DEVICE, DEVICE_PASSWORD, client_id=DEVICE)
    assert not ingest.refused and not device.refused

    device.publish(f"csu/{DEVICE}/readings", [b'{"values": {"pm25": 12.3}}'])

    [message] = inbox.wait_for(1)
    assert message.topic == f"csu/{DEVICE}/readings"
    assert message.payload == b'{"values": {"pm25": 12.3}}'


def test_a_device_whose_password_was_set_in_the_admin_can_publish(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("csu/+/readings")
    device = connect(ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD, client_id=ADMIN_SET_DEVICE)
    assert not device.refused

    device.publish(f"csu/{ADMIN_SET_DEVICE}/readings", [b'{"values": {"ph": 7.1}}'])

    assert inbox.wait_for(1)[0].payload == b'{"values": {"ph": 7.1}}'


def test_a_device_cannot_publish_under_another_sensors_ref(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("csu/+/readings")
    device = connect(DEVICE, DEVICE_PASSWORD, client_id=DEVICE)

    device.publish("csu/other-sensor/readings", [b"forged"])
    # Same publisher, same subscriber: once this one arrives, the forged one never will.
    device.publish(f"csu/{DEVICE}/readings", [b"genuine"])

    inbox.wait_for(1)
    assert inbox.payloads == [b"genuine"]


def test_a_devices_last_will_tells_ingest_it_is_offline(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("csu/+/status")
    device = connect(
        DEVICE, DEVICE_PASSWORD, client_id=DEVICE, will=(f"csu/{DEVICE}/status", b"offline")
    )
    device.publish(f"csu/{DEVICE}/status", [b"online"])
    inbox.wait_for(1)

    device.drop()

    statuses = inbox.wait_for(2)
    assert [(m.topic, m.payload) for m in statuses] == [
        (f"csu/{DEVICE}/status", b"online"),
        (f"csu/{DEVICE}/status", b"offline"),
    ]


@pytest.mark.parametrize(
    "subscription", ["csu/+/readings", "$share/csu-ingest-burst/csu/+/readings"]
)
def test_a_persistent_subscriber_away_during_a_burst_receives_all_of_it(
    connect, broker, subscription
):
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    ingest = connect(INGEST, INGEST_PASSWORD, client_id=client_id, clean_session=False)
    ingest.subscribe(subscription)
    ingest.close()
    device = connect(DEVICE, DEVICE_PASSWORD, client_id=DEVICE)
    expected = [b"reading-%05d" % number for number in range(BURST)]

    device.publish(f"csu/{DEVICE}/readings", expected)
    inbox = Inbox()
    returning = connect(
        INGEST, INGEST_PASSWORD, client_id=client_id, clean_session=False, inbox=inbox
    )

    assert returning.session_present
    received = inbox.wait_for(BURST)
    assert len(received) == BURST, (
        f"{BURST - len(received)} of {BURST} queued messages were lost; "
        f"is max_queued_messages raised?\n{broker.log_tail()}"
    )
    assert sorted(message.payload for message in received) == expected
