"""Our Mosquitto configuration, run for real (deploy/mosquitto/mosquitto.conf).

Each test talks to a broker started from that file (tests/brokers.py rewrites only its
ports and file paths), with the ACL that `manage.py mosquitto_auth` writes and a
throwaway certificate on the TLS listener. Devices connect on the devices' listeners,
ingest on the services' one, as in docker-compose.yml. The machine's default broker
proves nothing: its max_queued_messages of 1,000 silently drops what a lagging
persistent subscriber has not read (measured).
"""

import re
import socket
import ssl
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.client import CallbackAPIVersion, MQTTv311

from sensors import mqtt_auth
from tests.brokers import (
    CONF,
    DEVICES_LISTENER,
    ROOT,
    SERVICES_LISTENER,
    TLS_LISTENER,
    Mosquitto,
    find_program,
    free_port,
    throwaway_certificates,
)
from tests.conftest import IN_CI

pytestmark = pytest.mark.mqtt

INGEST, INGEST_PASSWORD = mqtt_auth.INGEST_USER, "ingest-secret"
SIMULATOR, SIMULATOR_PASSWORD = mqtt_auth.SIMULATOR_USER, "simulator-secret"
DEVICE, DEVICE_PASSWORD = "jlt-air-01", "device-secret"
# A device whose password was set in the admin: hashed by the app, not mosquitto_passwd.
ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD = "jlt-water-01", "water-secret"
# The client id an ingest worker of the docker-compose group takes (sensors/ingest/slots.py).
INGEST_WORKER_ID = "csu-ingest-csu-ingest-1"

BURST = 5_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    mosquitto_passwd = find_program("mosquitto_passwd")
    if not (find_program("mosquitto") and mosquitto_passwd):
        message = "mosquitto and mosquitto_passwd are needed: apt-get install mosquitto"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service fails the run)")
        pytest.skip(message)

    tmp = tmp_path_factory.mktemp("mosquitto")
    passwords = tmp / "passwords"
    subprocess.run([mosquitto_passwd, "-b", "-c", passwords, INGEST, INGEST_PASSWORD], check=True)
    subprocess.run([mosquitto_passwd, "-b", passwords, DEVICE, DEVICE_PASSWORD], check=True)
    with passwords.open("a") as lines:
        lines.write(f"{ADMIN_SET_DEVICE}:{mqtt_auth.hash_password(ADMIN_SET_PASSWORD)}\n")
        lines.write(f"{SIMULATOR}:{mqtt_auth.hash_password(SIMULATOR_PASSWORD)}\n")
    # The services' listener has its own file, as `manage.py mosquitto_auth` writes it:
    # the ingest account only.
    accounts = {
        INGEST: mqtt_auth.hash_password(INGEST_PASSWORD),
        SIMULATOR: mqtt_auth.hash_password(SIMULATOR_PASSWORD),
    }
    (tmp / "services").write_text(mqtt_auth.services_password_file(accounts))
    # The ACL that `manage.py mosquitto_auth` writes.
    (tmp / "acl").write_text(mqtt_auth.ACL)
    ca, tls = throwaway_certificates(tmp / "certs")

    for attempt in range(5):
        # Another process may take one of the free ports first: try new ones.
        started = Mosquitto(tmp, free_port(), auth=True, tls=tls)
        try:
            started.start()
            time.sleep(0.2)  # a broker that lost a port race exits at once
            if started.process.poll() is None:
                break
        except RuntimeError:
            if attempt == 4:
                raise
    else:
        pytest.fail(f"mosquitto did not start:\n{started.log_tail()}")
    started.ca = ca
    try:
        yield started
    finally:
        started.stop()


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
        listener=None,
        client_id=None,
        clean_session=True,
        will=None,
        inbox=None,
    ):
        # As deployed: devices on the devices' listeners, ingest on the services' one.
        listener = listener or ("services" if username == INGEST else "devices")
        port = {"devices": broker.device_port, "tls": broker.tls_port, "services": broker.port}
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
        # Measured: paho at QoS 1 is fastest with ~100 messages in flight.
        self.client.max_inflight_messages_set(100)
        if inbox is not None:
            self.client.on_message = inbox.on_message
        self._connack = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self._granted: dict[int, list] = {}
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        if listener == "tls":
            # Verifies the broker's certificate against the CA, and its name.
            self.client.tls_set(ca_certs=str(broker.ca))
        self.client.connect("127.0.0.1", port[listener], keepalive=30)
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

    def subscribe(self, topic: str, *, may_be_refused: bool = False) -> None:
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert self._subacks.setdefault(mid, threading.Event()).wait(10), "no SUBACK"
        if not may_be_refused:
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


@pytest.mark.parametrize("listener", ["devices", "tls", "services"])
def test_it_refuses_anonymous_clients(connect, listener):
    anonymous = connect(None, None, listener=listener)

    assert anonymous.refused


@pytest.mark.parametrize("listener", ["devices", "tls", "services"])
def test_it_refuses_a_device_unknown_to_the_password_file(connect, listener):
    unknown = connect("jlt-air-99", DEVICE_PASSWORD, listener=listener)

    assert unknown.refused


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


# --- TLS ------------------------------------------------------------------------------


def test_a_device_publishes_over_tls_having_verified_the_brokers_certificate(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("$share/csu-ingest/csu/+/readings")
    device = connect(DEVICE, DEVICE_PASSWORD, listener="tls")
    assert not device.refused

    device.publish(f"csu/{DEVICE}/readings", [b"over tls"])

    [message] = inbox.wait_for(1)
    assert (message.topic, message.payload) == (f"csu/{DEVICE}/readings", b"over tls")


def test_a_client_that_does_not_trust_the_brokers_certificate_does_not_connect(broker):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="untrusting", protocol=MQTTv311)
    client.username_pw_set(DEVICE, DEVICE_PASSWORD)
    client.tls_set()  # the system's CAs only: our throwaway CA is not among them

    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect("127.0.0.1", broker.tls_port, keepalive=30)


def test_plain_mqtt_to_the_tls_port_gets_no_session(broker):
    # A bare MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) where TLS is expected.
    client_id = b"plain-on-tls"
    body = bytes([0, 4, *b"MQTT", 4, 2, 0, 30, 0, len(client_id), *client_id])
    connect_packet = bytes([0x10, len(body), *body])
    with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as plain:
        plain.sendall(connect_packet)
        answer = b""
        try:
            while chunk := plain.recv(1024):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass

    # The broker hangs up, at most after a TLS alert; never a CONNACK (0x20).
    assert not answer.startswith(b"\x20"), answer
    assert "plain-on-tls" not in broker.log_tail(), "a plain client got a session"


# --- Devices cannot reach what is not theirs --------------------------------------------


def test_a_device_cannot_read_other_devices_topics(connect):
    inbox, spied = Inbox(), Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("csu/+/readings")
    other = connect(ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD)
    status = other.client.publish(f"csu/{ADMIN_SET_DEVICE}/status", b"online", qos=1, retain=True)
    status.wait_for_publish(10)  # retained: what a subscriber would get at once
    spy = connect(DEVICE, DEVICE_PASSWORD, inbox=spied)
    for topic in ("csu/#", "csu/+/readings", f"csu/{ADMIN_SET_DEVICE}/status", "$share/g/csu/#"):
        # Mosquitto 2.0 grants the subscription but delivers nothing the ACL forbids.
        spy.subscribe(topic, may_be_refused=True)

    other.publish(f"csu/{ADMIN_SET_DEVICE}/readings", [b"private"])

    assert [m.payload for m in inbox.wait_for(1)] == [b"private"]
    time.sleep(0.5)  # the spy's copy, were it allowed, would have left with ingest's
    assert spied.payloads == []


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (DEVICE, DEVICE_PASSWORD),
        (ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD),
        (SIMULATOR, SIMULATOR_PASSWORD),
    ],
)
def test_the_services_listener_refuses_devices_and_the_simulator(connect, username, password):
    # Valid credentials, on the listener where client ids are kept: refused, so no
    # device (nor the simulator) can choose an ingest worker's id there.
    assert connect(username, password, listener="services").refused


@pytest.mark.parametrize("listener", ["devices", "tls", "services"])
@pytest.mark.parametrize(
    ("username", "password"),
    [(DEVICE, DEVICE_PASSWORD), (SIMULATOR, SIMULATOR_PASSWORD)],
    ids=["device", "simulator"],
)
def test_no_other_client_can_take_an_ingest_workers_client_id(
    connect, listener, username, password
):
    inbox = Inbox()
    ingest = connect(
        INGEST, INGEST_PASSWORD, client_id=INGEST_WORKER_ID, clean_session=False, inbox=inbox
    )
    # A group of its own: this persistent session stays in it after the test.
    ingest.subscribe("$share/csu-ingest-hijack/csu/+/readings")

    # A clean session too: had it taken the id, the worker's queued readings would be gone.
    connect(username, password, listener=listener, client_id=INGEST_WORKER_ID)
    device = connect(ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD)
    device.publish(f"csu/{ADMIN_SET_DEVICE}/readings", [b"ingest still listens"])

    assert [m.payload for m in inbox.wait_for(1)] == [b"ingest still listens"]
    assert not ingest.disconnected.is_set()


def mosquitto_version() -> tuple[int, ...]:
    first = subprocess.run(
        [find_program("mosquitto"), "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return tuple(int(part) for part in first.split()[-1].split("."))


# Mosquitto before 2.0.13, on a listener with use_username_as_clientid, refuses a client
# without a username only after taking its client id, and cleaning up the refused
# connection then unlists the session that really has this id (src/context.c,
# context__remove_from_by_id; fixed by "Fix client id not showing in log on failed
# connections"). That session is orphaned: its queue is never delivered and, in a shared
# group, it keeps taking its share of the readings for the 7 days it lives. Debian 12
# ships 2.0.11; docker-compose.yml's eclipse-mosquitto:2.0 is past 2.0.13.
ORPHANS_ON_ANONYMOUS_CONNECT = (
    mosquitto_version() < (2, 0, 13) if find_program("mosquitto") else False
)


@pytest.mark.parametrize(
    "listener",
    [
        pytest.param(
            listener,
            marks=pytest.mark.xfail(
                listener != "services" and ORPHANS_ON_ANONYMOUS_CONNECT,
                reason="Mosquitto < 2.0.13 orphans the session (see above)",
                strict=True,
            ),
        )
        for listener in ("devices", "tls", "services")
    ],
)
def test_an_anonymous_client_using_an_ingest_workers_client_id_leaves_its_session_whole(
    connect, listener
):
    # An id and a group of this test's own: a session orphaned here stays orphaned.
    client_id, group = f"csu-ingest-anonymous-{listener}-1", f"csu-ingest-anonymous-{listener}"
    ingest = connect(INGEST, INGEST_PASSWORD, client_id=client_id, clean_session=False)
    ingest.subscribe(f"$share/{group}/csu/+/readings")

    anonymous = connect(None, None, listener=listener, client_id=client_id)
    ingest.close()  # the worker restarts (a deployment, a broker hiccup)
    device = connect(ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD)
    device.publish(f"csu/{ADMIN_SET_DEVICE}/readings", [b"queued for the worker"])
    inbox = Inbox()
    back = connect(INGEST, INGEST_PASSWORD, client_id=client_id, clean_session=False, inbox=inbox)

    assert anonymous.refused
    assert back.session_present, "the worker's session was lost"
    assert [m.payload for m in inbox.wait_for(1)] == [b"queued for the worker"]


def test_a_device_using_another_devices_client_id_does_not_kick_it_off(connect):
    inbox = Inbox()
    ingest = connect(INGEST, INGEST_PASSWORD, inbox=inbox)
    ingest.subscribe("csu/+/readings")
    victim = connect(ADMIN_SET_DEVICE, ADMIN_SET_PASSWORD, client_id=ADMIN_SET_DEVICE)

    connect(DEVICE, DEVICE_PASSWORD, client_id=ADMIN_SET_DEVICE)
    victim.publish(f"csu/{ADMIN_SET_DEVICE}/readings", [b"still connected"])

    assert [m.payload for m in inbox.wait_for(1)] == [b"still connected"]
    assert not victim.disconnected.is_set()


# --- docker-compose.yml and mosquitto.conf agree -----------------------------------------


def listener_options() -> dict[int, list[str]]:
    """Each listener of mosquitto.conf with the option lines right under it."""
    blocks = re.findall(r"^listener (\d+)\n((?:[a-z_]+ [^\n]*\n)*)", CONF.read_text(), re.M)
    return {int(port): options.splitlines() for port, options in blocks}


def test_docker_compose_publishes_the_devices_listeners_and_not_the_services_one():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mosquitto = compose["services"]["mosquitto"]
    listeners = listener_options()

    assert set(listeners) == {DEVICES_LISTENER, TLS_LISTENER, SERVICES_LISTENER}
    for device_port in (DEVICES_LISTENER, TLS_LISTENER):
        assert "use_username_as_clientid true" in listeners[device_port]
        assert "password_file /mosquitto/auth/passwords" in listeners[device_port]
    assert not any("use_username_as_clientid" in o for o in listeners[SERVICES_LISTENER])
    # The services' listener has its own users: the ingest account only.
    assert "password_file /mosquitto/auth/services" in listeners[SERVICES_LISTENER]
    assert "per_listener_settings true" in CONF.read_text().splitlines()
    for options in listeners.values():
        assert "allow_anonymous false" in options
        assert "acl_file /mosquitto/auth/acl" in options
    assert sorted(mosquitto["ports"]) == sorted(
        f"{port}:{port}" for port in (DEVICES_LISTENER, TLS_LISTENER)
    )
    [certs] = {
        o.split()[1].rsplit("/", 1)[0]
        for o in listeners[TLS_LISTENER]
        if o.startswith("certfile ") or o.startswith("keyfile ")
    }
    assert f"./deploy/mosquitto/certs:{certs}:ro" in mosquitto["volumes"]
    # The services, and the broker's own healthcheck, use the services' listener.
    mqtt_url = compose["x-app"]["environment"]["MQTT_URL"]
    assert mqtt_url.endswith(f"@mosquitto:{SERVICES_LISTENER}")
    assert f"-p {SERVICES_LISTENER} " in mosquitto["healthcheck"]["test"][1]
