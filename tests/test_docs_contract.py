"""The contract lives in docs/ and stays true: every rejection reason, websocket message
type and event of the code is documented, and every MQTT example of docs/mqtt.md gives
what the document says when fed to the parser."""

import json
import re
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import live
from sensors.ingest.parser import parse_readings
from sensors.metrics import BATTERY, REGISTRY, Kind
from sensors.models import RejectedMessage

DOCS = Path(__file__).resolve().parent.parent / "docs"
MQTT = (DOCS / "mqtt.md").read_text(encoding="utf-8")
WEBSOCKET = (DOCS / "websocket.md").read_text(encoding="utf-8")
# The moment docs/mqtt.md says its examples are received.
RECEIVED_AT = datetime(2026, 3, 14, 10, 1, tzinfo=UTC)
# `<!-- parses: ok|<reason> [python] -->`, then a fenced block (indented in a list item).
EXAMPLE = re.compile(
    r"<!-- parses: (?P<expect>\w+)(?P<python> python)? -->\s*```\w*\n(?P<body>.*?)```", re.S
)
WORKER = re.compile(r"<!-- worker: (\w+) -->")


def examples() -> list[tuple[str, str, bool]]:
    found = [(m["expect"], m["body"], bool(m["python"])) for m in EXAMPLE.finditer(MQTT)]
    assert found, "docs/mqtt.md has no examples"
    return found


def payload_of(body: str, python: bool) -> bytes:
    # A document of this repository, built with json alone: too large to write out.
    text = eval(body.strip(), {"__builtins__": {"range": range}, "json": json}) if python else body
    return text.encode()


@pytest.mark.parametrize(
    "expect, body, python", examples(), ids=[f"{e[0]}-{i}" for i, e in enumerate(examples())]
)
def test_each_mqtt_example_parses_as_documented(expect, body, python):
    result = parse_readings(payload_of(body, python), kind=Kind.AIR, received_at=RECEIVED_AT)

    if expect == "ok":
        assert result.rejections == []
        assert result.readings
    else:
        assert [rejection.reason for rejection in result.rejections] == [expect]


def test_every_rejection_reason_has_an_example():
    parsed = {expect for expect, _, _ in examples()} - {"ok"}
    by_worker = set(WORKER.findall(MQTT))

    assert parsed | by_worker == set(RejectedMessage.Reason.values)
    assert not parsed & by_worker


def test_every_metric_unit_and_alias_is_in_the_table():
    metrics = [metric for kind in REGISTRY.values() for metric in kind.values()] + [BATTERY]
    missing = {
        word
        for metric in metrics
        for word in (metric.name, metric.unit, *metric.unit_aliases)
        if f"`{word}`" not in MQTT
    }
    assert missing == set()


def test_every_websocket_message_type_and_event_is_documented():
    documented = set(re.findall(r'"type": "(\w+)", "event": "(\w+)"', WEBSOCKET))
    headed = set(re.findall(r"^### `(\w+)`", WEBSOCKET, re.M))
    missing = []
    for message in typing.get_args(live.LiveMessage):
        hints = typing.get_type_hints(message)
        (kind,) = typing.get_args(hints["type"])
        if kind not in headed:
            missing.append(kind)
        for event in typing.get_args(hints.get("event", typing.Literal[None])):
            if event is not None and f"`{event}`" not in WEBSOCKET:
                missing.append(f"{kind}.{event}")
    assert missing == []
    assert documented, "docs/websocket.md has no example"


def test_every_websocket_example_is_json():
    blocks = re.findall(r"```json\n(.*?)```", WEBSOCKET, re.S)
    assert blocks
    for block in blocks:
        assert json.loads(block)["type"] in {
            "readings",
            "sensor",
            "alert",
            "incident",
            "ppms",
            "proposal",
        }


def test_every_close_code_of_the_websocket_is_documented():
    from core import websocket

    codes = [value for name, value in vars(websocket).items() if name.startswith("CLOSE_")]
    assert codes
    assert [code for code in codes if f"| {code} |" not in WEBSOCKET] == []


def test_every_webhook_event_is_documented():
    from alerts.notify import HOOKED
    from ppms.notify import WEBHOOK_EVENT

    webhooks = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    alerts, ppms = webhooks.split("### PPMS activations", 1)
    documented_alert = set(re.findall(r'"event": "(\w+)"', alerts))
    documented_ppms = set(re.findall(r'"event": "(\w+)"', ppms))

    assert {str(kind) for kind in HOOKED} - documented_alert == set()
    assert set(WEBHOOK_EVENT.values()) - documented_ppms == set()
