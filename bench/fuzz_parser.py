#!/usr/bin/env python
"""Fuzz the MQTT parser with atheris (libFuzzer, coverage-guided): any topic, any payload.

    python bench/fuzz_parser.py --prepare DIR        (DIR/corpus/ and DIR/parser.dict)
    python bench/fuzz_parser.py -runs=50000 -seed=1 -dict=DIR/parser.dict DIR/corpus

Each input is a topic, a sensor kind, a content type, a reception time and a payload,
fed to what the ingest worker calls: ``parse_topic()``, then ``parse_readings()``. The
parser must answer every input: readings that hold (a known metric, a finite value in
its range, a time within the window) and rejections with a reason of docs/mqtt.md, and
never raise. Anything else is a crash: libFuzzer stops, writes the input to
``-artifact_prefix`` (crash-<sha1>) and exits non-zero; replay it with
``python bench/fuzz_parser.py <crash file>``.

Input layout, so that seeds stay readable and mutations stay meaningful:
byte 0 picks the kind, byte 1 the content type, byte 2 the reception time, byte 3 the
topic's length n; the next n bytes are the topic (UTF-8, errors replaced) and the rest
is the payload. Seeds are the contract's native and SenML examples and a few variants;
the dictionary holds the tokens the parser looks for (keys, metric names, units, special
numbers), which random mutations would seldom spell. libFuzzer adds the inputs that
reach new code to the first corpus directory.
"""

import json
import math
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The metric registry's kinds are Django choices; no setup, no database is needed.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csu.settings")
# With DATABASE_URL and REDIS_URL the settings are production's, which want a secret key.
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + secrets.token_urlsafe(40))

with atheris.instrument_imports(include=["sensors"]):
    from sensors.ingest.parser import (
        MAX_READINGS,
        REASONS,
        ParseResult,
        parse_readings,
        parse_topic,
    )
    from sensors.metrics import REGISTRY, Kind, metric_for

KINDS = [*Kind.values, "unknown"]
CONTENT_TYPES = [
    None,
    "application/senml+json",
    "application/json",
    "Application/SenML+JSON; charset=utf-8",
    "text/plain",
]
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NOW_EPOCH = int(NOW.timestamp())
RECEPTION_TIMES = [
    NOW,
    NOW + timedelta(microseconds=123_456),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
]
RETENTION = timedelta(days=30)
MAX_FUTURE = timedelta(minutes=5)


def split(data: bytes) -> tuple[str, str | None, datetime, str, bytes]:
    """The kind, content type, reception time, topic and payload an input stands for."""
    head = data[:4].ljust(4, b"\0")
    kind = KINDS[head[0] % len(KINDS)]
    content_type = CONTENT_TYPES[head[1] % len(CONTENT_TYPES)]
    received_at = RECEPTION_TIMES[head[2] % len(RECEPTION_TIMES)]
    topic_end = 4 + head[3]
    topic = data[4:topic_end].decode("utf-8", "replace")
    return kind, content_type, received_at, topic, data[topic_end:]


def join(*, payload: bytes, kind: int = 0, content_type: int = 0, topic: bytes = b"") -> bytes:
    """An input of the layout above (reception time: NOW)."""
    topic = topic or b"csu/jlt-air-01/readings"
    return bytes([kind, content_type, 0, len(topic)]) + topic + payload


def test_one_input(data: bytes) -> None:
    kind, content_type, received_at, topic, payload = split(data)

    parsed_topic = parse_topic(topic)
    if parsed_topic is not None:
        ref, channel = parsed_topic
        assert channel in ("readings", "status"), parsed_topic
        assert topic == f"csu/{ref}/{channel}", parsed_topic
        assert 1 <= len(ref) <= 63 and ref == ref.lower(), parsed_topic

    result = parse_readings(
        payload,
        kind=kind,
        received_at=received_at,
        content_type=content_type,
        retention=RETENTION,
        max_future=MAX_FUTURE,
    )
    assert_well_judged(result, kind, received_at)


def assert_well_judged(result: ParseResult, kind: str, received_at: datetime) -> None:
    assert isinstance(result, ParseResult), result
    assert result.readings or result.rejections, "neither readings nor a rejection"
    assert len(result.readings) <= MAX_READINGS
    for rejection in result.rejections:
        assert rejection.reason in REASONS, rejection
        assert isinstance(rejection.detail, str) and rejection.detail, rejection
        assert len(rejection.metric) <= 64, rejection
    earliest = shifted(received_at, -RETENTION)
    latest = shifted(received_at, MAX_FUTURE)
    keys = set()
    for reading in result.readings:
        metric = metric_for(kind, reading.metric)
        assert metric is not None, reading
        assert type(reading.value) is float and math.isfinite(reading.value), reading
        assert metric.in_range(reading.value), reading
        assert reading.ts.tzinfo is UTC, reading
        assert earliest <= reading.ts <= latest, reading
        keys.add((reading.metric, reading.ts))
    assert len(keys) == len(result.readings), "a (metric, ts) stored twice"


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the calendar's ends (year 1, year 9999)."""
    try:
        return moment + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=UTC)


def seeds() -> dict[str, bytes]:
    """The contract's examples and a few variants, named for the corpus directory."""
    native = {"ts": "2026-11-23T09:00:00.123+01:00", "values": {"pm25": 12.3, "no2": 41}}
    senml = [
        {"bn": "jlt-air-01:", "bt": NOW_EPOCH, "n": "pm25", "u": "ug/m3", "v": 12.3},
        {"n": "no2", "v": 41, "t": 0},
    ]
    water = KINDS.index(Kind.WATER)
    watering = KINDS.index(Kind.WATERING)
    payloads = {
        "native": (native, 0, 0),
        "native-epoch-ms": ({"ts": NOW_EPOCH * 1000, "values": {"pm10": 30}}, 0, 0),
        "native-batch": (
            [{"ts": NOW_EPOCH - 60 * i, "values": {"pm25": i, "battery": 90}} for i in range(3)],
            0,
            0,
        ),
        "native-no-ts": ({"values": {"temperature": -3.5, "humidity": 80}}, 0, 0),
        "native-water": ({"ts": NOW_EPOCH, "values": {"ph": 7.2, "level": 1.5}}, water, 0),
        "native-bool": ({"values": {"valve": True}}, watering, 0),
        "senml": (senml, 0, 0),
        "senml-content-type": (senml, 0, 1),
        "senml-base": (
            [{"bn": "urn:dev:x:", "bt": NOW_EPOCH, "bu": "%", "bv": 1, "n": "humidity", "v": 2}],
            0,
            1,
        ),
        "senml-relative": ([{"n": "pm10", "v": 5, "t": -60}, {"n": "o3", "v": 8}], 0, 0),
        "senml-vb": ([{"n": "valve", "vb": False, "t": -1}], watering, 1),
    }
    corpus = {
        name: join(payload=json.dumps(value).encode(), kind=kind, content_type=content_type)
        for name, (value, kind, content_type) in payloads.items()
    }
    corpus["status"] = join(payload=b"offline", topic=b"csu/jlt-air-01/status")
    return corpus


def dictionary() -> list[bytes]:
    """The tokens of the two payload shapes, the metric registry and JSON's corners."""
    keys = ["values", "ts", "bn", "bt", "bu", "bv", "bs", "bver"]
    keys += ["n", "u", "v", "vs", "vb", "vd", "s", "t", "ut", "x_"]
    names = {name for kind in Kind.values for name in REGISTRY[kind]} | {"battery"}
    units = {
        unit
        for kind in Kind.values
        for metric in REGISTRY[kind].values()
        for unit in (metric.unit, *metric.unit_aliases)
    }
    tokens = [json.dumps(text).encode() for text in sorted({*keys, *names, *units})]
    tokens += [b"NaN", b"Infinity", b"-Infinity", b"true", b"false", b"null", b"1e400"]
    tokens += [b"-0", b"2026-11-23T08:00:00", b"Z", b"+01:00", b".123456", b"\xef\xbb\xbf"]
    tokens += [str(NOW_EPOCH).encode(), str(NOW_EPOCH * 1000).encode(), b"268435456"]
    tokens += [b"csu/", b"/readings", b"/status"]
    return tokens


def prepare(directory: Path) -> None:
    """Write the seed corpus to ``directory/corpus`` and the dictionary beside it."""
    corpus = directory / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (corpus / name).write_bytes(data)
    lines = ['"' + "".join(f"\\x{byte:02x}" for byte in token) + '"' for token in dictionary()]
    (directory / "parser.dict").write_text("\n".join(lines) + "\n")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare":
        prepare(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
