"""SenML as RFC 8428 says, judged by parse_readings(); packs built with the `senml` package.

Pure tests: no database, no broker. Time is a fixed reception instant, NOW.
"""

import json
from datetime import UTC, datetime

import pytest
from senml import SenMLDocument, SenMLMeasurement

from sensors.ingest.parser import parse_readings
from sensors.metrics import Kind
from sensors.units import PINT_UNITS, pair_converter

NOW = datetime(2025, 11, 23, 8, 0, tzinfo=UTC)
NOW_EPOCH = 1763884800  # NOW, in seconds since the epoch
SENML = "application/senml+json"


def pack(*measurements, **base):
    """A SenML pack as the `senml` package writes it (it adds "bver": 5)."""
    document = SenMLDocument(list(measurements), base=SenMLMeasurement(**base) if base else None)
    return document.to_json()


def record(name, value, unit=None, time=None):
    return SenMLMeasurement(name=name, value=value, unit=unit, time=time)


def parse(records, kind=Kind.AIR, **options):
    options.setdefault("received_at", NOW)
    payload = json.dumps(records).encode()
    return parse_readings(payload, kind=kind, content_type=SENML, **options)


def reasons(result):
    return [(r.reason, r.metric) for r in result.rejections]


def values(result):
    return {r.metric: r.value for r in result.readings}


# --- The RFC 8428 examples (section 5.1) ----------------------------------------------


def test_the_rfc_single_datapoint_resolves_its_metric_after_the_last_colon():
    # Section 5.1.1, its name ending with our metric instead of the device's id alone.
    result = parse([{"n": "urn:dev:ow:10e2073a01080063:temperature", "u": "Cel", "v": 23.1}])
    assert values(result) == {"temperature": 23.1}


def test_the_rfc_multiple_datapoints_are_unknown_metrics_for_an_air_sensor():
    # Section 5.1.2 as written: a voltage and a current.
    result = parse(
        [
            {"bn": "urn:dev:ow:10e2073a01080063:", "n": "voltage", "u": "V", "v": 120.1},
            {"n": "current", "u": "A", "v": 1.2},
        ]
    )
    assert reasons(result) == [("unknown_metric", "voltage"), ("unknown_metric", "current")]


def test_the_rfc_multiple_measurements_with_relative_times_follow_the_base_time():
    # Section 5.1.3's shape: "bver": 5, a base time and times relative to it.
    bt = NOW_EPOCH - 60
    result = parse(
        [
            {"bn": "urn:dev:ow:10e2073a0108006:", "bt": bt, "bu": "A", "bver": 5},
            {"n": "temperature", "u": "Cel", "t": -5, "v": 20.5},
            {"n": "temperature", "u": "Cel", "t": -4, "v": 20.7},
            {"n": "current", "t": -3, "v": 1.3},
        ]
    )
    assert [r.ts.timestamp() for r in result.readings] == [bt - 5, bt - 4]
    assert reasons(result) == [("unknown_metric", "current")]


def test_the_rfc_resource_properties_keep_the_number_and_reject_the_others():
    # Section 5.1.6: a temperature, a string label, a boolean and data.
    result = parse(
        [
            {"bn": "urn:dev:ow:10e2073a01080063:", "n": "temperature", "u": "Cel", "v": 23.4},
            {"n": "pm25", "vs": "Machine Room"},
            {"n": "pm10", "vb": False},
            {"n": "no2", "vd": "aGkgCg"},
        ]
    )
    assert values(result) == {"temperature": 23.4}
    assert reasons(result) == [("not_a_number", m) for m in ("pm25", "pm10", "no2")]


# --- Version -------------------------------------------------------------------------


@pytest.mark.parametrize("version", [5, 10])
def test_a_pack_of_a_version_up_to_10_is_read(version):
    assert values(parse([{"bver": version, "n": "pm25", "v": 3}])) == {"pm25": 3.0}


def test_a_pack_of_a_later_version_is_rejected_whole_as_unsupported():
    result = parse([{"n": "pm25", "v": 3}, {"bver": 11, "n": "pm10", "v": 4}])
    assert result.readings == []
    assert reasons(result) == [("unsupported_version", "")]
    assert "11" in result.rejections[0].detail


@pytest.mark.parametrize("version", ["10", 10.5, None, True])
def test_a_version_that_is_not_an_integer_is_malformed(version):
    result = parse([{"bver": version, "n": "pm25", "v": 3}])
    assert reasons(result) == [("malformed", "")]


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_below_1_is_malformed(version):
    # Section 4.4: the version is a positive number.
    result = parse([{"bver": version, "n": "pm25", "v": 3}])
    assert reasons(result) == [("malformed", "")]
    assert "positive" in result.rejections[0].detail


# --- Booleans ------------------------------------------------------------------------


def test_a_boolean_on_a_numeric_metric_is_not_a_number():
    result = parse(pack(record("pm25", True), record("pm10", False)))  # written as "vb"
    assert reasons(result) == [("not_a_number", "pm25"), ("not_a_number", "pm10")]


def test_a_boolean_v_on_a_numeric_metric_is_not_a_number():
    result = parse([{"n": "pm25", "v": True}, {"bv": 10, "n": "pm10", "v": False}])
    assert reasons(result) == [("not_a_number", "pm25"), ("not_a_number", "pm10")]
    assert "boolean" in result.rejections[0].detail


def test_a_boolean_on_a_state_metric_is_1_or_0():
    result = parse(pack(record("valve", True), record("flow", 3)), kind=Kind.WATERING)
    assert values(result) == {"valve": 1.0, "flow": 3.0}


# --- Names with "/" ------------------------------------------------------------------


def test_a_name_may_use_a_slash_between_the_device_and_the_metric():
    result = parse(pack(record("pm25", 12, "ug/m3"), record("pm10", 20), name="device/"))
    assert values(result) == {"pm25": 12.0, "pm10": 20.0}


def test_a_collection_of_resources_under_an_address_resolves_each_metric():
    # The shape of RFC 8428's collections: a base name ending with "/".
    result = parse(
        [
            {"bn": "2001:db8::2/", "n": "temperature", "u": "Cel", "v": 25.2},
            {"n": "humidity", "u": "%RH", "v": 30},
        ]
    )
    assert values(result) == {"temperature": 25.2, "humidity": 30.0}


# --- Units ---------------------------------------------------------------------------


def test_kelvins_are_converted_to_degrees_celsius():
    result = parse(pack(record("temperature", 293.65, "K")))
    assert values(result) == {"temperature": pytest.approx(20.5)}


def test_a_base_unit_in_kelvins_is_converted_too():
    result = parse(pack(record("temperature", 273.15), record("pm25", 2, "ug/m3"), unit="K"))
    assert values(result) == {"temperature": pytest.approx(0.0), "pm25": 2.0}


def test_siemens_per_metre_are_converted_to_microsiemens_per_centimetre():
    result = parse(pack(record("conductivity", 0.05, "S/m")), kind=Kind.WATER)
    assert values(result) == {"conductivity": pytest.approx(500.0)}


def test_the_senml_battery_level_is_a_percentage():
    assert values(parse(pack(record("battery", 87, "%EL")))) == {"battery": 87.0}


def test_a_relative_humidity_is_not_a_battery_level_nor_the_reverse():
    result = parse(pack(record("battery", 87, "%RH"), record("humidity", 50, "%EL")))
    assert reasons(result) == [("unit_mismatch", "battery"), ("unit_mismatch", "humidity")]


def test_units_of_the_same_dimension_convert_even_across_metrics():
    result = parse(pack(record("chlorine", 2000, "ug/m3")), kind=Kind.WATER)
    assert values(result) == {"chlorine": pytest.approx(0.002)}  # 1 mg/L is 10^6 µg/m³


def test_an_incompatible_unit_is_a_mismatch_naming_both_units():
    result = parse(pack(record("temperature", 2, "S/m"), record("pm25", 2, "K")))
    assert reasons(result) == [("unit_mismatch", "temperature"), ("unit_mismatch", "pm25")]
    assert "S/m" in result.rejections[0].detail and "°C" in result.rejections[0].detail
    assert "K" in result.rejections[1].detail and "µg/m³" in result.rejections[1].detail


def test_a_converted_value_keeps_12_significant_digits_without_float_noise():
    result = parse(pack(record("temperature", 293.15, "K"), record("pm25", 0.0000123, "mg/m3")))
    assert values(result) == {"temperature": 20.0, "pm25": 0.0123}


def test_the_range_is_checked_after_the_conversion():
    result = parse(pack(record("temperature", 400, "K"), record("humidity", 10, "%RH")))
    assert reasons(result) == [("out_of_range", "temperature")]


def test_a_converter_is_made_once_per_pair_of_units():
    pair_converter.cache_clear()
    parse(pack(*(record("temperature", 290 + i, "K", time=-i) for i in range(50))))
    info = pair_converter.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_readings_in_their_metrics_unit_or_an_unknown_one_never_reach_pint():
    pair_converter.cache_clear()
    parse([{"n": "pm25", "u": "ug/m3", "v": 1}, {"n": "pm10", "u": "x", "v": 1}])
    parse_readings(b'{"values": {"pm25": 1}}', kind=Kind.AIR, received_at=NOW)
    assert pair_converter.cache_info().currsize == 0


@pytest.mark.parametrize("unit", sorted(PINT_UNITS))
def test_every_unit_of_the_table_is_one_pint_understands(unit):
    assert pair_converter(unit, unit) == (1.0, 0.0)


def test_a_unit_pint_does_not_know_is_a_mismatch_not_a_crash():
    result = parse([{"n": "temperature", "u": "furlong/fortnight", "v": 1}, {"n": "pm25", "v": 1}])
    assert reasons(result) == [("unit_mismatch", "temperature")]


# --- Mixed packs and times -----------------------------------------------------------


def test_a_pack_mixing_a_good_record_and_a_bad_one_keeps_the_good_one():
    result = parse(
        pack(
            record("temperature", 294.15, "K"),
            record("pm25", 12, "S/m"),
            name="device/",
            time=NOW_EPOCH - 30,
        )
    )
    assert values(result) == {"temperature": pytest.approx(21.0)}
    assert [r.ts.timestamp() for r in result.readings] == [NOW_EPOCH - 30]
    assert reasons(result) == [("unit_mismatch", "pm25")]


def test_a_record_without_a_time_is_stamped_at_its_delivery():
    assert [r.ts for r in parse(pack(record("pm25", 1))).readings] == [NOW]


def test_a_retained_record_without_an_absolute_time_is_not_stamped_again():
    result = parse([{"n": "pm25", "v": 1}, {"n": "pm10", "t": -10, "v": 2}], retained=True)
    assert result.readings == []
    assert reasons(result) == [("bad_timestamp", "pm25"), ("bad_timestamp", "pm10")]
    assert "retained" in result.rejections[0].detail


def test_a_retained_record_with_an_absolute_time_is_read():
    result = parse(pack(record("pm25", 1), time=NOW_EPOCH - 5), retained=True)
    assert [(r.ts.timestamp(), r.value) for r in result.readings] == [(NOW_EPOCH - 5, 1.0)]


def test_a_retained_native_message_without_a_time_is_not_stamped_again():
    payload = json.dumps({"values": {"pm25": 1}}).encode()
    result = parse_readings(payload, kind=Kind.AIR, received_at=NOW, retained=True)
    assert result.readings == []
    assert reasons(result) == [("bad_timestamp", "pm25")]
