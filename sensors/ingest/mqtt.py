"""MQTT connection settings, shared by the ingest worker, the simulator and the benches."""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# A persistent session survives a week without its client (what Mosquitto keeps).
SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> "BrokerURL":
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, not {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


def protocol_version() -> int:
    """MQTT 5 on real brokers; 3.1.1 on the embedded amqtt, which speaks only that."""
    wanted = settings.MQTT_PROTOCOL
    if wanted:
        return mqtt.MQTTv5 if wanted == "5" else mqtt.MQTTv311
    return mqtt.MQTTv311 if settings.MQTT_EMBEDDED else mqtt.MQTTv5


def make_client(
    client_id: str,
    *,
    url: str | None = None,
    persistent: bool = True,
    manual_ack: bool = False,
    default_username: str | None = None,
) -> tuple[mqtt.Client, dict]:
    """Return a configured paho client and the keyword arguments for ``connect``."""
    broker = BrokerURL.parse(url or settings.MQTT_URL)
    version = protocol_version()
    kwargs = {}
    if version == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        manual_ack=manual_ack,
        **kwargs,
    )
    username = broker.username or default_username
    if username:
        client.username_pw_set(username, broker.password)
    if broker.tls:
        client.tls_set()
    connect = {"host": broker.host, "port": broker.port, "keepalive": 30}
    if version == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        props.ReceiveMaximum = 65535
        connect["clean_start"] = not persistent
        connect["properties"] = props
    return client, connect
