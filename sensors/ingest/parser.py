"""Parse and judge the payload of one MQTT readings message (docs/mqtt.md).

Pure and database-free: the worker resolves the sensor from the topic, then hands the
payload and the sensor's kind to ``parse_readings()``, which never raises on what a
device sends. A message that cannot be read at all gets one rejection; otherwise each
reading is judged alone, and the first failing check names its reason, in this order:
unknown_metric, bad_timestamp, unit_mismatch, not_a_number, out_of_range (checked in
the metric's unit, after converting a SenML value sent in another one). A field of
the wrong JSON type fails the check of that field (a name that is not a string is an
unknown metric, a time that is not a number a bad timestamp, and so on).
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from core.fields import parse_rfc3339
from sensors.metrics import Metric, metrics_of
from sensors.units import convert, converter

TOPIC_RE = re.compile(r"\Acsu/([a-z0-9][a-z0-9-]{0,62})/(readings|status)\Z")

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_READINGS = 1000
SENML_CONTENT_TYPE = "application/senml+json"

# The values of RejectedMessage.Reason this module gives (the model is not imported so
# that the parser stays usable without Django's app registry; a test keeps them in step).
TOO_LARGE = "too_large"
MALFORMED = "malformed"
UNKNOWN_METRIC = "unknown_metric"
NOT_A_NUMBER = "not_a_number"
OUT_OF_RANGE = "out_of_range"
BAD_TIMESTAMP = "bad_timestamp"
UNIT_MISMATCH = "unit_mismatch"
UNSUPPORTED_VERSION = "unsupported_version"
REASONS = frozenset(
    {
        TOO_LARGE,
        MALFORMED,
        UNKNOWN_METRIC,
        NOT_A_NUMBER,
        OUT_OF_RANGE,
        BAD_TIMESTAMP,
        UNIT_MISMATCH,
        UNSUPPORTED_VERSION,
    }
)

# RFC 8428 section 4.5.3: a resolved time below 2**28 is relative to now.
SENML_RELATIVE_LIMIT = 2**28
# RFC 8428 section 4.4: the version this parser understands, and the default of "bver".
SENML_VERSION = 10
# Native "ts" numbers above this are milliseconds (10^11 s is in the year 5138).
MILLISECONDS_ABOVE = 10**11

_SENML_BASE_KEYS = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})
# The keys that make a record a measurement rather than a carrier of base fields only.
_SENML_RECORD_KEYS = frozenset({"n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})
_SENML_KEYS = _SENML_BASE_KEYS | _SENML_RECORD_KEYS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Delivered again on every new subscription: stamping it would store it again each time.
_RETAINED_WITHOUT_TIME = "a retained message without an absolute time: its instant is unknown"
_CLIP = 40


@dataclass(frozen=True, slots=True)
class ParsedReading:
    metric: str
    ts: datetime  # timezone-aware, UTC
    value: float


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # a RejectedMessage.Reason value
    detail: str
    metric: str = ""


@dataclass(slots=True)
class ParseResult:
    readings: list[ParsedReading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def parse_topic(topic: str) -> tuple[str, str] | None:
    """Return (sensor ref, "readings" or "status") for a CSU topic, None for any other."""
    match = TOPIC_RE.match(topic)
    return (match[1], match[2]) if match else None


def parse_readings(
    payload: bytes,
    *,
    kind: str,
    received_at: datetime,
    content_type: str | None = None,
    retention: timedelta = timedelta(days=30),
    max_future: timedelta = timedelta(minutes=5),
    retained: bool = False,
) -> ParseResult:
    """Judge every reading of one readings message from a sensor of ``kind``.

    ``retained``: the broker delivered a retained message on a new subscription; its
    readings without an absolute time are rejected, not stamped with this delivery.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _whole(
            TOO_LARGE, f"payload of {len(payload):,} bytes, over the {MAX_PAYLOAD_BYTES:,} allowed"
        )
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return _whole(MALFORMED, "payload is not UTF-8")
    if text[:1] == "\ufeff":  # RFC 8259 lets parsers ignore a byte order mark
        text = text[1:]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return _whole(MALFORMED, "payload is not JSON")

    senml = (
        content_type is not None
        and content_type.partition(";")[0].strip().lower() == SENML_CONTENT_TYPE
    )
    if type(data) is dict and not senml:
        items = [data]
    elif type(data) is list and data and all(type(item) is dict for item in data):
        items = data
        if not senml:
            if any("values" in item for item in items):
                pass
            elif any(not _SENML_KEYS.isdisjoint(item) for item in items):
                senml = True
            else:
                return _whole(MALFORMED, "an array of neither native objects nor SenML records")
    elif senml:
        return _whole(MALFORMED, "SenML payload is not a non-empty array of objects")
    elif type(data) is list:
        return _whole(MALFORMED, "payload is not a non-empty array of objects")
    else:
        return _whole(MALFORMED, "payload is neither a JSON object nor an array")

    judge = _Judge(kind, received_at, retention, max_future, retained)
    if senml:
        _judge_senml(items, judge)
    else:
        _judge_native(items, judge, single=type(data) is dict)
    return judge.result()


def _whole(reason: str, detail: str) -> ParseResult:
    return ParseResult(readings=[], rejections=[Rejection(reason, detail)])


def _judge_native(items: list[dict], judge: "_Judge", *, single: bool) -> None:
    count = sum(len(v) for item in items if type(v := item.get("values")) is dict)
    if count > MAX_READINGS:
        judge.whole(TOO_LARGE, f"{count:,} readings, over the {MAX_READINGS:,} allowed")
        return
    for index, item in enumerate(items):
        values = item.get("values")
        if type(values) is not dict or not values:
            problem = (
                '"values" is missing' if values is None else '"values" is not a non-empty object'
            )
            judge.reject(MALFORMED, problem if single else f"item {index}: {problem}")
            continue
        ts = judge.native_time(item["ts"]) if "ts" in item else judge.delivery_time()
        for name, raw in values.items():
            judge.reading(name, ts, _value(raw), None)


def _judge_senml(records: list[dict], judge: "_Judge") -> None:
    count = 0
    for record in records:
        for key in record:
            if key[-1:] == "_":
                # RFC 8428 section 4.4: a pack with a must-understand field we do not
                # understand must not be processed at all.
                judge.whole(MALFORMED, f"unsupported SenML field {_show(key)}")
                return
        if "bver" in record:
            version = record["bver"]
            if type(version) is not int:
                judge.whole(MALFORMED, f"SenML version {_show(version)} is not an integer")
                return
            if version < 1:
                judge.whole(MALFORMED, f"SenML version {version} is not a positive integer")
                return
            if version > SENML_VERSION:
                # Section 4.4: a later version may change what the fields mean.
                detail = f"SenML version {_show(version)}, above the {SENML_VERSION} understood"
                judge.whole(UNSUPPORTED_VERSION, detail)
                return
        if not _SENML_RECORD_KEYS.isdisjoint(record):
            count += 1
    if count > MAX_READINGS:
        judge.whole(TOO_LARGE, f"{count:,} readings, over the {MAX_READINGS:,} allowed")
        return
    if count == 0:
        # Without this, a pack of base fields only would leave no reading and no rejection.
        judge.whole(MALFORMED, "a SenML pack of base fields only, without a measurement")
        return

    base_name: object = ""
    base_time: object = 0
    base_unit: object = None
    base_value: object = 0
    for index, record in enumerate(records):
        if "bn" in record:
            base_name = record["bn"]
        if "bt" in record:
            base_time = record["bt"]
        if "bu" in record:
            base_unit = record["bu"]
        if "bv" in record:
            base_value = record["bv"]
        if _SENML_RECORD_KEYS.isdisjoint(record):
            if _SENML_BASE_KEYS.isdisjoint(record):
                judge.reject(MALFORMED, f"record {index} has no SenML field")
            continue  # base fields only: they apply to the records that follow

        name = record.get("n", "")
        if type(name) is not str or type(base_name) is not str:
            judge.reject(UNKNOWN_METRIC, f"record {index}: the name is not a string")
            continue
        # The name's last segment: after "urn:dev:…:" or an address such as "device/".
        full = base_name + name
        metric = full[max(full.rfind(":"), full.rfind("/")) + 1 :]

        ts = judge.senml_time(base_time, record.get("t", 0))
        unit = record.get("u", base_unit)  # "u": null counts as no unit

        if "v" in record and type(record["v"]) is bool:
            value = record["v"]  # a state metric takes it; a numeric one rejects it
        elif "v" in record:
            value = _value(record["v"])
            if base_value != 0 and type(value) is float:
                base = _value(base_value)
                if type(base) is float:
                    value = _value(base + value)
                else:
                    value = f"base value {_show(base_value)} is not a number"
        elif "vb" in record:
            raw = record["vb"]
            value = raw if type(raw) is bool else f"vb {_show(raw)} is not a boolean"
        elif "vs" in record:
            value = f"string value {_show(record['vs'])} is not a number"
        elif "vd" in record:
            value = "data value is not a number"
        else:
            value = "record has no value"
        judge.reading(metric, ts, value, unit)


class _Judge:
    """The clock and the metric registry of one message, and what it found so far."""

    __slots__ = (
        "_by_key",
        "_hi_ts",
        "_lo_ts",
        "_metrics",
        "_now_ts",
        "_rejections",
        "_retained",
        "_whole",
        "hi",
        "lo",
        "received_at",
    )

    def __init__(
        self,
        kind: str,
        received_at: datetime,
        retention: timedelta,
        max_future: timedelta,
        retained: bool = False,
    ):
        self.received_at = received_at.astimezone(UTC)
        self._retained = retained
        self.lo = _shift(self.received_at, -retention)
        self.hi = _shift(self.received_at, max_future)
        self._now_ts = self.received_at.timestamp()
        self._lo_ts = self.lo.timestamp()
        self._hi_ts = self.hi.timestamp()
        self._metrics = _metrics(kind)
        # Keyed by (metric, ts): a later duplicate replaces an earlier one.
        self._by_key: dict[tuple[str, datetime], ParsedReading] = {}
        self._rejections: list[Rejection] = []
        self._whole: Rejection | None = None

    def result(self) -> ParseResult:
        if self._whole is not None:
            return ParseResult(readings=[], rejections=[self._whole])
        return ParseResult(readings=list(self._by_key.values()), rejections=self._rejections)

    def whole(self, reason: str, detail: str) -> None:
        self._whole = Rejection(reason, detail)

    def reject(self, reason: str, detail: str, metric: str = "") -> None:
        self._rejections.append(Rejection(reason, detail, metric))

    def reading(
        self, name: str, ts: datetime | str, value: float | bool | str, unit: object
    ) -> None:
        """Keep one reading, or reject it with the first check it fails."""
        # The common case (no unit or the metric's own, a float) takes one branch each.
        metric = self._metrics.get(name)
        if metric is None:
            self.reject(UNKNOWN_METRIC, f"no metric {_show(name)} for this kind", _clip(name))
        elif type(ts) is str:
            self.reject(BAD_TIMESTAMP, ts, name)
        elif unit is not None and not (type(unit) is str and metric.accepts_unit(unit)):
            self._converted(metric, ts, value, unit)
        elif type(value) is not float:
            self._not_a_float(metric, ts, value)
        elif not metric.in_range(value):
            self.reject(OUT_OF_RANGE, _range_detail(metric, value), name)
        else:
            self._by_key[name, ts] = ParsedReading(name, ts, value)

    def _converted(
        self, metric: Metric, ts: datetime, value: float | bool | str, unit: object
    ) -> None:
        """A reading sent in another unit than its metric's: converted, or rejected."""
        conversion = converter(unit, metric.unit) if type(unit) is str else None
        if conversion is None:
            detail = f"unit {_show(unit)} cannot be converted to {metric.unit}"
            self.reject(UNIT_MISMATCH, detail, metric.name)
        elif type(value) is float:
            self.reading(metric.name, ts, convert(value, conversion), None)
        else:
            self._not_a_float(metric, ts, value)

    def _not_a_float(self, metric: Metric, ts: datetime, value: bool | str) -> None:
        """A string is why the value is not a number; a boolean is a state's 1 or 0."""
        if type(value) is str:
            self.reject(NOT_A_NUMBER, value, metric.name)
        elif not metric.is_state:
            detail = f"boolean {_show(value)} for a metric in {metric.unit}"
            self.reject(NOT_A_NUMBER, detail, metric.name)
        else:
            self.reading(metric.name, ts, 1.0 if value else 0.0, None)

    def delivery_time(self) -> datetime | str:
        """The instant of a reading sent without one: its delivery, unless retained."""
        if self._retained:
            return _RETAINED_WITHOUT_TIME
        return self.received_at

    def native_time(self, raw: object) -> datetime | str:
        """The instant of a native "ts", or why it is not acceptable."""
        if type(raw) is str:
            ts = parse_rfc3339(raw)
            if type(ts) is str:
                return f"timestamp {_show(raw)} {ts}"
            return self._bounded(ts, raw)
        if type(raw) is int or type(raw) is float:
            if type(raw) is float and not math.isfinite(raw):
                return f"timestamp {_show(raw)} is not a number"
            if raw > MILLISECONDS_ABOVE:
                return self._after(_EPOCH, raw, raw, milliseconds=True)
            return self._after(_EPOCH, raw, raw)
        return f"timestamp {_show(raw)} is neither an RFC 3339 string nor a number"

    def senml_time(self, base: object, offset: object) -> datetime | str:
        """The instant of a SenML record: bt + t, relative to now when small."""
        for raw in (base, offset):
            if type(raw) is not int and type(raw) is not float:
                return f"SenML time {_show(raw)} is not a number"
        total = base + offset  # type: ignore[operator]
        if type(total) is float and not math.isfinite(total):
            return f"SenML time {_show(total)} is not a number"
        if total >= SENML_RELATIVE_LIMIT:
            return self._after(_EPOCH, total, total)
        if self._retained:
            return _RETAINED_WITHOUT_TIME
        return self._after(self.received_at, total, total)

    def _after(
        self, origin: datetime, amount: float, raw: object, *, milliseconds: bool = False
    ) -> datetime | str:
        """``origin`` plus ``amount`` seconds (or milliseconds), if within the window."""
        # A coarse bound first, so absurd numbers never reach datetime arithmetic.
        try:
            approx = origin.timestamp() + (amount / 1000 if milliseconds else amount)
        except OverflowError:  # an integer too large for a float
            approx = math.inf if amount > 0 else -math.inf
        if not self._lo_ts - 1 <= approx <= self._hi_ts + 1:
            return self._out_of_window(approx, raw)
        delta = timedelta(milliseconds=amount) if milliseconds else timedelta(seconds=amount)
        try:
            return self._bounded(origin + delta, raw)
        except OverflowError:
            return self._out_of_window(approx, raw)

    def _bounded(self, ts: datetime | str, raw: object) -> datetime | str:
        if type(ts) is str:
            return ts
        if ts > self.hi or ts < self.lo:
            return self._out_of_window(ts.timestamp(), raw)
        return ts

    def _out_of_window(self, seconds: float, raw: object) -> str:
        if seconds > self._now_ts:
            ahead = self.hi - self.received_at
            return f"timestamp {_show(raw)} is more than {_duration(ahead)} in the future"
        back = self.received_at - self.lo
        return f"timestamp {_show(raw)} is older than the {_duration(back)} retention window"


@lru_cache(maxsize=32)
def _metrics(kind: str) -> dict[str, Metric]:
    return {metric.name: metric for metric in metrics_of(kind)}


def _shift(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        limit = datetime.max if delta > timedelta(0) else datetime.min
        return limit.replace(tzinfo=UTC)


def _value(raw: object) -> float | str:
    """The reading value of a JSON value, or why it is not a number."""
    if type(raw) is float:
        return raw if math.isfinite(raw) else f"value {_show(raw)} is not a finite number"
    if type(raw) is int:
        try:
            return float(raw)
        except OverflowError:  # a huge integer is a number, just out of any range
            return math.inf if raw > 0 else -math.inf
    if type(raw) is bool:
        return 1.0 if raw else 0.0
    return f"value {_show(raw)} is not a number"


def _range_detail(metric: Metric, value: float) -> str:
    if metric.is_state:
        return f"value {_number(value)} is neither 0 nor 1 (a state)"
    bounds = f"{_number(metric.minimum)}..{_number(metric.maximum)}"
    return f"value {_number(value)} outside {bounds} {metric.unit}"


def _number(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return str(x)


def _show(raw: object) -> str:
    """A short rendering of a value from the payload, for a detail."""
    if raw is None:
        return "null"
    if type(raw) is bool:
        return "true" if raw else "false"
    if type(raw) is str:
        return json.dumps(_clip(raw), ensure_ascii=False)
    if type(raw) is float:
        if math.isnan(raw):
            return "NaN"
        if math.isinf(raw):
            return "Infinity" if raw > 0 else "-Infinity"
        return _number(raw)
    if type(raw) is int:
        # str() refuses integers of more than 4,300 digits.
        return _clip(str(raw)) if raw.bit_length() < 10_000 else "(a huge integer)"
    if type(raw) is list:
        return "an array"
    if type(raw) is dict:
        return "an object"
    return type(raw).__name__


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
