"""The payload judging of docs/mqtt.md, through parse_topic() and parse_readings().

Pure tests: no database, no broker. Time is a fixed reception instant, NOW.
"""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.ingest.parser import (
    MAX_PAYLOAD_BYTES,
    MAX_READINGS,
    REASONS,
    ParsedReading,
    ParseResult,
    parse_readings,
    parse_topic,
)
from sensors.metrics import REGISTRY, Kind, metric_for
from sensors.models import RejectedMessage

NOW = datetime(2025, 11, 23, 8, 0, tzinfo=UTC)
NOW_EPOCH = 1763884800  # NOW, in seconds since the epoch
SENML = "application/senml+json"


def parse(payload, kind=Kind.AIR, **options):
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    options.setdefault("received_at", NOW)
    return parse_readings(payload, kind=kind, **options)


def reasons(result):
    return [(r.reason, r.metric) for r in result.rejections]


def only_reason(result):
    assert result.readings == []
    assert len(result.rejections) == 1
    return result.rejections[0].reason


# --- Topics -----------------------------------------------------------------------------


def test_a_readings_topic_gives_the_sensor_ref():
    assert parse_topic("csu/jlt-air-01/readings") == ("jlt-air-01", "readings")


def test_a_status_topic_gives_the_sensor_ref():
    assert parse_topic("csu/jlt-air-01/status") == ("jlt-air-01", "status")


def test_a_ref_may_be_63_characters_long():
    ref = "a" * 63
    assert parse_topic(f"csu/{ref}/readings") == (ref, "readings")


@pytest.mark.parametrize(
    "topic",
    [
        "csu/JLT-AIR-01/readings",  # upper case
        "csu/-jlt/readings",  # starts with a dash
        f"csu/{'a' * 64}/readings",  # too long
        "csu/jlt-air-01/readings/extra",
        "csu/jlt-air-01/readings\n",
        "csu/jlt-air-01/commands",
        "csu//readings",
        "other/jlt-air-01/readings",
        "$share/ingest/csu/jlt-air-01/readings",
    ],
)
def test_a_topic_outside_the_contract_is_not_ours(topic):
    assert parse_topic(topic) is None


# --- Reason codes -----------------------------------------------------------------------


def test_every_reason_the_parser_gives_is_a_rejected_message_reason():
    # The sensor-level reasons are the worker's: the parser never sees the sensor.
    model_reasons = set(RejectedMessage.Reason.values)
    assert model_reasons - REASONS == {"unknown_sensor", "inactive_sensor", "rate_limited"}
    assert REASONS.issubset(model_reasons)


# --- Native JSON ------------------------------------------------------------------------


def test_a_native_object_gives_one_reading_per_value():
    result = parse({"ts": "2025-11-23T09:00:00.123+01:00", "values": {"pm25": 12.3, "no2": 41}})
    ts = datetime(2025, 11, 23, 8, 0, 0, 123000, tzinfo=UTC)
    assert result.readings == [
        ParsedReading("pm25", ts, 12.3),
        ParsedReading("no2", ts, 41.0),
    ]
    assert result.rejections == []


def test_readings_carry_a_utc_timestamp_and_a_float_value():
    result = parse({"ts": "2025-11-23T09:00:00+01:00", "values": {"no2": 41}})
    (reading,) = result.readings
    assert reading.ts.utcoffset() == timedelta(0)
    assert reading.ts.tzinfo is UTC
    assert type(reading.value) is float


def test_a_native_array_is_a_batch():
    result = parse(
        [
            {"ts": NOW_EPOCH - 120, "values": {"pm25": 10}},
            {"ts": NOW_EPOCH - 60, "values": {"pm25": 11, "humidity": 55}},
        ]
    )
    assert [(r.metric, r.ts, r.value) for r in result.readings] == [
        ("pm25", NOW - timedelta(seconds=120), 10.0),
        ("pm25", NOW - timedelta(seconds=60), 11.0),
        ("humidity", NOW - timedelta(seconds=60), 55.0),
    ]
    assert result.rejections == []


def test_battery_is_a_metric_of_every_kind():
    for kind in Kind.values:
        assert parse({"values": {"battery": 87}}, kind=kind).readings[0].value == 87.0


def test_each_kind_has_its_own_metrics():
    result = parse({"values": {"ph": 7.2}}, kind=Kind.WATER)
    assert result.readings[0].metric == "ph"
    assert reasons(parse({"values": {"ph": 7.2}}, kind=Kind.AIR)) == [("unknown_metric", "ph")]


def test_a_mix_keeps_the_valid_readings_and_rejects_each_invalid_one():
    result = parse(
        {
            "values": {
                "pm25": 12.3,
                "pm10": 2500,
                "no2": "high",
                "co2": 400,
                "o3": None,
                "humidity": 55,
            }
        }
    )
    assert [(r.metric, r.value) for r in result.readings] == [("pm25", 12.3), ("humidity", 55.0)]
    assert reasons(result) == [
        ("out_of_range", "pm10"),
        ("not_a_number", "no2"),
        ("unknown_metric", "co2"),
        ("not_a_number", "o3"),
    ]


def test_a_batch_item_without_values_is_rejected_alone():
    result = parse([{"ts": NOW_EPOCH, "values": {"pm25": 10}}, {"ts": NOW_EPOCH}])
    assert [r.metric for r in result.readings] == ["pm25"]
    assert reasons(result) == [("malformed", "")]
    assert "item 1" in result.rejections[0].detail


def test_a_duplicate_in_one_payload_keeps_the_last_value_once():
    result = parse(
        [
            {"ts": NOW_EPOCH, "values": {"pm25": 10}},
            {"ts": "2025-11-23T08:00:00Z", "values": {"pm25": 11}},
        ]
    )
    assert [(r.metric, r.ts, r.value) for r in result.readings] == [("pm25", NOW, 11.0)]
    assert result.rejections == []


# --- Timestamps -------------------------------------------------------------------------


def test_an_rfc3339_timestamp_with_an_offset_is_converted_to_utc():
    result = parse({"ts": "2025-11-23T10:00:00+02:00", "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW


def test_an_rfc3339_timestamp_in_z_is_utc():
    result = parse({"ts": "2025-11-23T07:59:30Z", "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW - timedelta(seconds=30)


def test_a_lower_case_rfc3339_timestamp_is_accepted():
    result = parse({"ts": "2025-11-23t07:59:30.5z", "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW - timedelta(seconds=29.5)


def test_a_timestamp_in_seconds_is_taken_as_such():
    result = parse({"ts": NOW_EPOCH - 60, "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW - timedelta(seconds=60)


def test_a_timestamp_in_fractional_seconds_keeps_its_milliseconds():
    result = parse({"ts": NOW_EPOCH + 0.123, "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW + timedelta(milliseconds=123)


def test_a_timestamp_in_milliseconds_is_taken_as_such():
    result = parse({"ts": 1763884800123, "values": {"pm25": 1}})
    assert result.readings[0].ts == datetime(2025, 11, 23, 8, 0, 0, 123000, tzinfo=UTC)


def test_a_missing_timestamp_means_the_time_of_reception():
    result = parse({"values": {"pm25": 1}})
    assert result.readings[0].ts == NOW


def test_a_timestamp_without_an_offset_is_rejected():
    result = parse({"ts": "2025-11-23T08:00:00", "values": {"pm25": 1, "no2": 2}})
    assert reasons(result) == [("bad_timestamp", "pm25"), ("bad_timestamp", "no2")]
    assert "offset" in result.rejections[0].detail


@pytest.mark.parametrize(
    "ts",
    [
        "yesterday",
        "2025-11-23",
        "2025-W47-7T08:00:00Z",
        "2025-11-23T25:00:00Z",
        "",
        None,
        True,
        [NOW_EPOCH],
        {"s": NOW_EPOCH},
    ],
)
def test_an_unparseable_timestamp_is_rejected(ts):
    assert only_reason(parse({"ts": ts, "values": {"pm25": 1}})) == "bad_timestamp"


def test_a_timestamp_6_minutes_in_the_future_is_rejected():
    result = parse({"ts": NOW_EPOCH + 360, "values": {"pm25": 1}})
    assert reasons(result) == [("bad_timestamp", "pm25")]
    assert "in the future" in result.rejections[0].detail


def test_a_timestamp_exactly_5_minutes_in_the_future_is_accepted():
    result = parse({"ts": "2025-11-23T08:05:00Z", "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW + timedelta(minutes=5)


def test_a_timestamp_31_days_old_is_rejected():
    result = parse({"ts": NOW_EPOCH - 31 * 86400, "values": {"pm25": 1}})
    assert reasons(result) == [("bad_timestamp", "pm25")]
    assert "retention" in result.rejections[0].detail


def test_a_timestamp_exactly_30_days_old_is_accepted():
    result = parse({"ts": NOW_EPOCH - 30 * 86400, "values": {"pm25": 1}})
    assert result.readings[0].ts == NOW - timedelta(days=30)


def test_the_retention_window_is_the_callers():
    payload = {"ts": NOW_EPOCH - 10 * 86400, "values": {"pm25": 1}}
    assert only_reason(parse(payload, retention=timedelta(days=7))) == "bad_timestamp"
    assert parse(payload, retention=timedelta(days=90)).readings


@pytest.mark.parametrize("ts", [10**400, -(10**400), 1e300, -1e300, 10**30])
def test_an_absurd_numeric_timestamp_is_rejected(ts):
    assert only_reason(parse({"ts": ts, "values": {"pm25": 1}})) == "bad_timestamp"


def test_a_reception_time_without_a_timezone_is_a_programming_error():
    with pytest.raises(ValueError):
        parse({"values": {"pm25": 1}}, received_at=datetime(2025, 11, 23, 8, 0))


# --- Values -----------------------------------------------------------------------------


def test_a_boolean_counts_as_1_or_0_for_a_state_metric():
    result = parse(
        [{"ts": NOW_EPOCH - 1, "values": {"valve": True}}, {"values": {"valve": False}}],
        kind=Kind.WATERING,
    )
    assert [r.value for r in result.readings] == [1.0, 0.0]


def test_a_state_metric_takes_only_0_or_1():
    result = parse({"values": {"open": 0.5}}, kind=Kind.OPENING)
    assert reasons(result) == [("out_of_range", "open")]
    assert parse({"values": {"open": 1}}, kind=Kind.OPENING).readings[0].value == 1.0


def test_a_boolean_for_another_metric_is_judged_as_1_or_0():
    assert parse({"values": {"pm25": True}}).readings[0].value == 1.0


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b'"12.3"', b"null", b"{}", b"[1]"]
)
def test_a_value_that_is_not_a_finite_number_is_rejected(literal):
    result = parse(b'{"values": {"pm25": ' + literal + b"}}")
    assert reasons(result) == [("not_a_number", "pm25")]


def test_a_value_outside_the_metric_range_is_rejected_with_a_clear_detail():
    result = parse({"values": {"pm25": 2500}})
    assert result.rejections[0].reason == "out_of_range"
    assert result.rejections[0].detail == "value 2500 outside 0..2000 µg/m³"


def test_the_range_bounds_are_inclusive():
    result = parse({"values": {"temperature": -50, "humidity": 100}})
    assert [r.value for r in result.readings] == [-50.0, 100.0]


def test_a_huge_integer_value_is_out_of_range():
    assert only_reason(parse({"values": {"pm25": 10**400}})) == "out_of_range"


def test_an_unknown_metric_is_rejected_with_its_name():
    result = parse({"values": {"co2": 400}})
    assert reasons(result) == [("unknown_metric", "co2")]


def test_a_very_long_metric_name_is_clipped_in_the_rejection():
    result = parse({"values": {"x" * 1000: 1}})
    assert len(result.rejections[0].metric) <= 64
    assert len(result.rejections[0].detail) <= 200


# --- Malformed payloads -----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe{}",  # not UTF-8
        b'{"values": {"pm25": 1}',  # not JSON
        b"",
        b"12.3",
        b'"online"',
        b"null",
        b"[]",
        b"[1, 2]",
        b'[{"values": {"pm25": 1}}, 3]',
        b'[{"temperature": 12}]',  # objects, but neither shape
        b'{"ts": 1763884800}',  # no values
        b'{"values": {}}',
        b'{"values": [12.3]}',
        b'{"values": 12.3}',
        b"[" * 50_000,  # deeper than the JSON decoder goes
    ],
)
def test_a_payload_of_neither_shape_is_rejected_whole_as_malformed(payload):
    assert only_reason(parse(payload)) == "malformed"


def test_a_byte_order_mark_is_ignored():
    assert parse(b'\xef\xbb\xbf{"values": {"pm25": 1}}').readings


# --- Limits -----------------------------------------------------------------------------


def padded(size):
    body = b'{"values": {"pm25": 1}}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_payload_of_exactly_64_kib_is_accepted():
    payload = padded(MAX_PAYLOAD_BYTES)
    assert len(payload) == 64 * 1024
    assert parse(payload).readings


def test_a_payload_one_byte_over_64_kib_is_rejected_whole():
    result = parse(padded(MAX_PAYLOAD_BYTES + 1))
    assert only_reason(result) == "too_large"


def native_batch(count):
    return [{"ts": NOW_EPOCH - i, "values": {"pm25": 1}} for i in range(count)]


def senml_pack(count):
    return [{"bn": "jlt-air-01:", "n": "pm25", "v": 1, "t": -i} for i in range(count)]


def test_exactly_1000_readings_are_accepted():
    assert MAX_READINGS == 1000
    assert len(parse(native_batch(1000)).readings) == 1000
    assert len(parse(senml_pack(1000)).readings) == 1000


def test_1001_readings_are_rejected_whole():
    assert only_reason(parse(native_batch(1001))) == "too_large"
    assert only_reason(parse(senml_pack(1001))) == "too_large"


def test_the_reading_limit_counts_values_not_objects():
    batch = [{"ts": NOW_EPOCH - i, "values": {"pm25": 1, "no2": 2}} for i in range(501)]
    assert only_reason(parse(batch)) == "too_large"


# --- SenML ------------------------------------------------------------------------------


def test_the_contract_senml_example_is_understood():
    result = parse(
        [
            {"bn": "jlt-air-01:", "bt": NOW_EPOCH, "n": "pm25", "u": "ug/m3", "v": 12.3},
            {"n": "no2", "v": 41, "t": 0},
        ]
    )
    assert result.readings == [ParsedReading("pm25", NOW, 12.3), ParsedReading("no2", NOW, 41.0)]
    assert result.rejections == []


def test_senml_time_is_the_base_time_plus_the_time():
    result = parse([{"bt": NOW_EPOCH - 60, "n": "pm25", "v": 1, "t": 30}])
    assert result.readings[0].ts == NOW - timedelta(seconds=30)


def test_a_senml_time_of_zero_without_base_time_means_now():
    result = parse([{"n": "pm25", "v": 1, "t": 0}])
    assert result.readings[0].ts == NOW


def test_a_senml_record_without_time_means_now():
    assert parse([{"n": "pm25", "v": 1}]).readings[0].ts == NOW


def test_a_small_negative_senml_time_is_relative_to_now():
    result = parse([{"n": "pm25", "v": 1, "t": -60}])
    assert result.readings[0].ts == NOW - timedelta(minutes=1)


def test_a_small_base_time_is_relative_to_now_too():
    result = parse([{"bt": -120, "n": "pm25", "v": 1, "t": 60}])
    assert result.readings[0].ts == NOW - timedelta(minutes=1)


def test_a_senml_time_in_the_far_future_is_rejected():
    result = parse([{"n": "pm25", "v": 1, "t": 3600}])
    assert reasons(result) == [("bad_timestamp", "pm25")]


def test_an_old_absolute_senml_time_is_rejected():
    result = parse([{"bt": NOW_EPOCH - 31 * 86400, "n": "pm25", "v": 1}])
    assert reasons(result) == [("bad_timestamp", "pm25")]


def test_a_senml_time_that_is_not_a_number_is_rejected():
    assert only_reason(parse([{"n": "pm25", "v": 1, "t": "now"}])) == "bad_timestamp"
    assert only_reason(parse([{"bt": None, "n": "pm25", "v": 1}])) == "bad_timestamp"


def test_senml_base_fields_carry_over_to_the_following_records():
    result = parse(
        [
            {"bn": "jlt-air-01:", "bt": NOW_EPOCH, "bu": "ug/m3", "n": "pm25", "v": 10},
            {"n": "pm10", "v": 20, "t": -10},
            {"bn": "jlt-air-01:", "bu": "%", "n": "humidity", "v": 50},
            {"n": "battery", "v": 90, "t": -5},
        ]
    )
    assert [(r.metric, r.ts, r.value) for r in result.readings] == [
        ("pm25", NOW, 10.0),
        ("pm10", NOW - timedelta(seconds=10), 20.0),
        ("humidity", NOW, 50.0),
        ("battery", NOW - timedelta(seconds=5), 90.0),
    ]
    assert result.rejections == []


def test_a_record_of_base_fields_only_applies_to_the_next_records():
    result = parse([{"bn": "jlt-air-01:", "bt": NOW_EPOCH}, {"n": "pm25", "v": 1, "t": -1}])
    assert [(r.metric, r.ts) for r in result.readings] == [("pm25", NOW - timedelta(seconds=1))]
    assert result.rejections == []


@pytest.mark.parametrize(
    "pack",
    [
        [{"bn": "jlt-air-01:", "bt": NOW_EPOCH}],
        [{"bn": "jlt-air-01:", "bt": 17954200, "8 0n": 0}],  # found by atheris
        [{"bu": "%"}, {"bv": 1, "other": 2}],
    ],
)
def test_a_senml_pack_of_base_fields_only_is_rejected_whole_as_malformed(pack):
    # Not one reading and not one rejection: the message would vanish without a trace.
    assert only_reason(parse(pack)) == "malformed"


def test_the_senml_metric_is_the_resolved_name_after_its_last_colon():
    result = parse([{"bn": "urn:dev:ow:10e2073a01080063:", "n": "pm25", "v": 1}])
    assert result.readings[0].metric == "pm25"
    result = parse([{"n": "jlt-air-01:no2", "v": 1}])
    assert result.readings[0].metric == "no2"


def test_a_senml_base_value_adds_to_the_value():
    result = parse([{"bv": 10, "n": "pm25", "v": 2.5}, {"n": "pm10", "v": -1}])
    assert [r.value for r in result.readings] == [12.5, 9.0]


@pytest.mark.parametrize("unit", ["µg/m³", "ug/m3", "µg/m3", "ug/m³"])
def test_a_senml_unit_may_be_spelled_in_ascii(unit):
    assert parse([{"n": "pm25", "u": unit, "v": 12}]).readings[0].value == 12.0


def test_a_senml_unit_other_than_the_metrics_is_rejected():
    result = parse([{"n": "pm25", "u": "ppm", "v": 12}, {"n": "humidity", "u": "%", "v": 40}])
    assert reasons(result) == [("unit_mismatch", "pm25")]
    assert [r.metric for r in result.readings] == ["humidity"]
    assert "µg/m³" in result.rejections[0].detail


def test_an_inherited_base_unit_must_match_too():
    result = parse([{"bu": "Cel", "n": "temperature", "v": 12}, {"n": "pm25", "v": 1}])
    assert [r.metric for r in result.readings] == ["temperature"]
    assert reasons(result) == [("unit_mismatch", "pm25")]


def test_a_record_unit_overrides_the_base_unit():
    result = parse([{"bu": "Cel", "n": "pm25", "u": "ug/m3", "v": 1}])
    assert [r.metric for r in result.readings] == ["pm25"]


def test_a_senml_boolean_value_counts_as_1_or_0_for_a_state_metric():
    result = parse(
        [{"n": "valve", "vb": True, "t": -1}, {"n": "valve", "vb": False}], kind=Kind.WATERING
    )
    assert [r.value for r in result.readings] == [1.0, 0.0]


@pytest.mark.parametrize(
    "record",
    [
        {"n": "pm25", "vs": "12.3"},
        {"n": "pm25", "vd": "aGVsbG8"},
        {"n": "pm25", "vb": "yes"},
        {"n": "pm25", "v": "12.3"},
        {"n": "pm25", "v": None},
        {"n": "pm25"},
        {"n": "pm25", "s": 100},
        {"bv": "ten", "n": "pm25", "v": 1},
    ],
)
def test_a_senml_value_that_is_not_a_number_is_rejected(record):
    assert reasons(parse([record])) == [("not_a_number", "pm25")]


def test_senml_nan_is_not_a_number():
    assert only_reason(parse(b'[{"n": "pm25", "v": NaN}]')) == "not_a_number"


def test_an_unknown_senml_metric_is_rejected():
    assert reasons(parse([{"bn": "jlt-air-01:", "n": "co2", "v": 400}])) == [
        ("unknown_metric", "co2")
    ]


def test_a_senml_name_that_is_not_a_string_is_an_unknown_metric():
    assert only_reason(parse([{"n": 25, "v": 1}])) == "unknown_metric"
    assert only_reason(parse([{"bn": ["x"], "n": "pm25", "v": 1}])) == "unknown_metric"


def test_a_senml_duplicate_keeps_the_last_value_once():
    result = parse([{"bt": NOW_EPOCH, "n": "pm25", "v": 1}, {"n": "pm25", "v": 2, "t": 0}])
    assert [(r.ts, r.value) for r in result.readings] == [(NOW, 2.0)]


def test_senml_is_recognised_by_its_content_type():
    payload = [{"n": "pm25", "v": 12}]
    for content_type in (SENML, "application/senml+json; charset=utf-8", "Application/SenML+JSON"):
        assert parse(payload, content_type=content_type).readings[0].value == 12.0


def test_a_senml_content_type_on_an_object_is_malformed():
    assert only_reason(parse({"values": {"pm25": 1}}, content_type=SENML)) == "malformed"


def test_an_unknown_content_type_leaves_the_shape_to_decide():
    assert parse({"values": {"pm25": 1}}, content_type="application/json").readings


def test_a_senml_pack_with_an_unknown_must_understand_field_is_malformed():
    assert only_reason(parse([{"n": "pm25", "v": 1, "x_": 2}])) == "malformed"


def test_a_senml_mix_keeps_the_valid_records():
    result = parse(
        [
            {"bn": "jlt-air-01:", "bt": NOW_EPOCH, "n": "pm25", "v": 12},
            {"n": "pm10", "v": 2500},
            {"n": "no2", "vs": "high"},
            {"n": "o3", "v": 30, "t": 3600},
            {"n": "so2", "u": "ppb", "v": 4},
            {"n": "co2", "v": 400},
            {"n": "humidity", "v": 50},
        ]
    )
    assert [r.metric for r in result.readings] == ["pm25", "humidity"]
    assert reasons(result) == [
        ("out_of_range", "pm10"),
        ("not_a_number", "no2"),
        ("bad_timestamp", "o3"),
        ("unit_mismatch", "so2"),
        ("unknown_metric", "co2"),
    ]


# --- No payload crashes the parser ------------------------------------------------------

ALL_METRICS = sorted({name for metrics in REGISTRY.values() for name in metrics} | {"battery"})
KINDS = [*Kind.values, "unknown"]
UNITS = sorted(
    {
        unit
        for metrics in REGISTRY.values()
        for m in metrics.values()
        for unit in (m.unit, *m.unit_aliases)
    }
)
fuzz = settings(
    max_examples=300,
    deadline=None,
    database=None,  # leave no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def mostly(likely, unlikely):
    """Draw from ``likely`` four times in five, else from ``unlikely``."""
    return st.integers(0, 4).flatmap(lambda i: unlikely if i == 0 else likely)


numbers = st.one_of(
    st.integers(min_value=-100, max_value=3000),
    st.floats(min_value=-100, max_value=3000),
    st.sampled_from([0, 1, -1, 0.5, 2000, 2001, 10**400, math.nan, math.inf]),
    st.integers(),
    st.floats(),
)
timestamps = mostly(
    st.one_of(
        st.integers(min_value=NOW_EPOCH - 40 * 86400, max_value=NOW_EPOCH + 600),
        st.integers(min_value=(NOW_EPOCH - 40 * 86400) * 1000, max_value=(NOW_EPOCH + 600) * 1000),
        st.floats(min_value=NOW_EPOCH - 40 * 86400, max_value=NOW_EPOCH + 600),
        st.datetimes(
            min_value=datetime(2025, 10, 1),
            max_value=datetime(2025, 12, 1),
            timezones=st.timezones(),
        ).map(lambda d: d.isoformat()),
    ),
    st.one_of(
        st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
        st.text(max_size=40),
        json_scalars,
    ),
)
metric_names = mostly(st.sampled_from(ALL_METRICS), st.text(max_size=10))
reading_values = mostly(numbers | st.booleans(), json_scalars)
native_objects = st.fixed_dictionaries(
    {"values": mostly(st.dictionaries(metric_names, reading_values, max_size=8), json_values)},
    optional={"ts": timestamps},
)
senml_fields = st.fixed_dictionaries(
    {},
    optional={
        "bn": mostly(st.sampled_from(["jlt-air-01:", "", "urn:dev:x:"]), json_scalars),
        "bt": mostly(st.sampled_from([NOW_EPOCH, 0, -60]), numbers | json_scalars),
        "bu": mostly(st.sampled_from(UNITS), json_scalars),
        "bv": mostly(st.sampled_from([0, 1, -1.5]), numbers | json_scalars),
        "u": mostly(st.sampled_from(UNITS), json_scalars),
        "v": reading_values,
        "vb": mostly(st.booleans(), json_scalars),
        "vs": json_scalars,
        "t": mostly(st.integers(min_value=-100_000, max_value=1000), numbers | json_scalars),
    },
)
senml_records = mostly(
    st.tuples(mostly(metric_names, json_scalars), senml_fields).map(lambda r: {"n": r[0], **r[1]}),
    senml_fields,
)
# A must-understand field makes the whole pack malformed: add one to a pack in ten.
senml_packs = st.tuples(st.lists(senml_records, max_size=6), st.integers(0, 9)).map(
    lambda pack: [*pack[0], {"x_": 1}] if pack[1] == 0 else pack[0]
)
content_types = st.sampled_from([None, SENML, "application/json", "text/plain"])
reception_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def assert_well_judged(result, kind, received_at):
    assert isinstance(result, ParseResult)
    assert result.readings or result.rejections  # every message leaves a trace
    for rejection in result.rejections:
        assert rejection.reason in REASONS
        assert rejection.reason in RejectedMessage.Reason.values
        assert isinstance(rejection.detail, str) and rejection.detail
        assert len(rejection.metric) <= 64
    for reading in result.readings:
        metric = metric_for(kind, reading.metric)
        assert metric is not None
        assert type(reading.value) is float and math.isfinite(reading.value)
        assert metric.in_range(reading.value)
        assert reading.ts.tzinfo is UTC
        assert received_at - timedelta(days=30) <= reading.ts <= received_at + timedelta(minutes=5)
    assert len({(r.metric, r.ts) for r in result.readings}) == len(result.readings)


@fuzz
@given(payload=st.binary(max_size=2000), kind=st.sampled_from(KINDS), content_type=content_types)
def test_no_byte_string_crashes_the_parser(payload, kind, content_type):
    result = parse_readings(payload, kind=kind, received_at=NOW, content_type=content_type)
    assert_well_judged(result, kind, NOW)


@fuzz
@given(value=json_values, kind=st.sampled_from(KINDS), content_type=content_types)
def test_no_json_value_crashes_the_parser(value, kind, content_type):
    payload = json.dumps(value).encode()
    result = parse_readings(payload, kind=kind, received_at=NOW, content_type=content_type)
    assert_well_judged(result, kind, NOW)


@fuzz
@given(
    value=native_objects | st.lists(native_objects, max_size=5),
    kind=st.sampled_from(KINDS),
    received_at=reception_times,
)
def test_no_near_valid_native_payload_crashes_the_parser(value, kind, received_at):
    payload = json.dumps(value).encode()
    result = parse_readings(payload, kind=kind, received_at=received_at)
    assert_well_judged(result, kind, received_at)


@fuzz
@given(
    records=senml_packs,
    kind=st.sampled_from(KINDS),
    content_type=content_types,
    received_at=reception_times | st.just(NOW),
)
def test_no_near_valid_senml_payload_crashes_the_parser(records, kind, content_type, received_at):
    payload = json.dumps(records).encode()
    result = parse_readings(payload, kind=kind, received_at=received_at, content_type=content_type)
    assert_well_judged(result, kind, received_at)
