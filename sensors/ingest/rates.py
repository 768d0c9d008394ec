"""Per-device rate limit of the ingest worker: a token bucket per sensor, in memory.

A device may send ``INGEST_DEVICE_RATE`` readings per second on average, and up to
``INGEST_DEVICE_BURST`` at once (a backlog after an outage, a batch). The clock is the
messages' arrival at the worker. A message is taken whole while the device's bucket
holds at least one reading's worth, its readings then spent (the bucket may go below
zero for a large message); past that, the device's messages are rejected as
``rate_limited`` without being parsed, until the rate has refilled the bucket. Each
check is a dict lookup and a little arithmetic.

Each worker has its own buckets. Without a shared subscription one worker receives
everything; in a shared group Mosquitto hands each message to the next member in turn,
so a device's messages are spread over the workers and each enforces the limit on its
share: with N workers a device gets up to N times the rate through (docs/mqtt.md).
"""


class DeviceRates:
    """Each device's bucket, as of the last committed batch."""

    def __init__(self, *, rate: float, burst: float):
        self.rate = float(rate)
        self.burst = float(burst)
        # sensor id -> (readings left, arrival time in seconds of the last message seen)
        self.buckets: dict[int, tuple[float, float]] = {}

    def batch(self) -> "BatchRates":
        return BatchRates(self)


class BatchRates:
    """One batch's view of the buckets, kept only once the batch is committed: a batch
    judged again after a database error spends each device's rate once."""

    __slots__ = ("changed", "rates")

    def __init__(self, rates: DeviceRates):
        self.rates = rates
        self.changed: dict[int, tuple[float, float]] = {}

    def admits(self, sensor_id: int, at: float) -> bool:
        """Refill the device's bucket up to ``at``; tell whether a message may pass."""
        rates = self.rates
        bucket = self.changed.get(sensor_id) or rates.buckets.get(sensor_id)
        if bucket is None:
            tokens = rates.burst
        else:
            tokens, last = bucket
            if at > last:
                tokens = min(rates.burst, tokens + (at - last) * rates.rate)
            else:
                at = last
        self.changed[sensor_id] = (tokens, at)
        return tokens >= 1

    def spend(self, sensor_id: int, readings: int) -> None:
        """Take an admitted message's readings from the device's bucket."""
        tokens, at = self.changed[sensor_id]
        self.changed[sensor_id] = (tokens - readings, at)

    def commit(self) -> None:
        self.rates.buckets.update(self.changed)
