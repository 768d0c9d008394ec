"""Realistic readings for the demo town, and scripted incidents.

Every value is a pure function of (seed, sensor, instant, incidents): the noise is a
hash of those, not a random stream, so a test can ask for "jlt-air-01 at 8 h on a
Monday" and get the same answer each time, and the MQTT part (the ``simulate``
command) only decides *when* to publish.

Diurnal patterns follow Europe/Paris local time. ``speed`` never moves the clock of
the readings (their ``ts`` must stay near now, or ingest rejects them): it only makes
sensors report more often and incidents unfold faster.
"""

import hashlib
import json
import math
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from .metrics import Kind, metric_for

PARIS = ZoneInfo("Europe/Paris")

POLLUTION, FLOOD, INTRUSION, SENSOR_FAILURE = "pollution", "flood", "intrusion", "sensor-failure"
SCENARIOS = (POLLUTION, FLOOD, INTRUSION, SENSOR_FAILURE)

ONLINE, OFFLINE = b"online", b"offline"

# --- Scripts of the incidents, in simulated seconds since the incident began ---------

# Pollution: PM10 passes 50 (information) after ~3 min, 80 (alerte) after ~4 min, and
# NO2 passes 200; the episode holds, then clears so alerts resolve by themselves.
POLLUTION_RAMP_S = 5 * 60
POLLUTION_HOLD_UNTIL_S = 35 * 60
POLLUTION_END_S = 40 * 60
POLLUTION_PEAK = {"pm10": 95.0, "pm25": 65.0, "no2": 240.0}

# Flood: the Cher rises 5 cm per simulated minute up to above the 5.5 m step, holds,
# then recedes more slowly.
FLOOD_RISE_M_PER_MIN = 0.05
FLOOD_PEAK_M = 5.9
FLOOD_HOLD_S = 30 * 60
FLOOD_RECEDE_M_PER_MIN = 0.03

# Intrusion: the door is forced open now and stays open a while.
INTRUSION_OPEN_S = 10 * 60

SCHOOL_WORDS = ("ecole", "groupe scolaire", "college", "lycee", "maternelle", "elementaire")
SPORT_WORDS = ("gymnase", "complexe sportif", "stade", "piscine", "salle de sport")


class Message(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class SimSensor:
    """What the simulator needs to know of a sensor."""

    ref: str
    kind: str
    interval: int = 60
    commune: str = ""
    building: str = ""
    river: bool = False
    water_point: str = ""

    @property
    def readings_topic(self) -> str:
        return f"csu/{self.ref}/readings"

    @property
    def status_topic(self) -> str:
        return f"csu/{self.ref}/status"

    @property
    def on_battery(self) -> bool:
        return self.kind in (Kind.WATERING, Kind.OPENING) or self.river

    @property
    def building_type(self) -> str:
        """Tell 'school', 'sport' or 'public' from the building's name."""
        name = _ascii(self.building)
        if any(word in name for word in SCHOOL_WORDS):
            return "school"
        if any(word in name for word in SPORT_WORDS):
            return "sport"
        return "public"


def metrics_published(sensor: SimSensor) -> tuple[str, ...]:
    """Name the metrics one reading of ``sensor`` carries.

    Water is the exception to "every metric of the kind": a river gauge measures the
    level, not chlorine, and a drinking-water probe no river level; sending both
    would trip the other's rules (chlorine below 0.1 mg/L, a flood step).
    """
    if sensor.kind == Kind.AIR:
        names = ("pm25", "pm10", "no2", "o3", "so2", "temperature", "humidity")
    elif sensor.kind == Kind.WATER and sensor.river:
        names = ("level", "temperature")
    elif sensor.kind == Kind.WATER and sensor.water_point == "bathing":
        names = ("ph", "turbidity", "temperature")  # a lake: no chlorine
    elif sensor.kind == Kind.WATER:
        names = ("ph", "turbidity", "chlorine", "conductivity", "nitrates", "temperature")
    elif sensor.kind == Kind.WATERING:
        names = ("flow", "valve", "soil_moisture")
    elif sensor.kind == Kind.TRAFFIC:
        names = ("vehicle_count", "speed", "occupancy")
    elif sensor.kind == Kind.OPENING:
        names = ("open",)
    else:
        names = ()
    return (*names, "battery") if sensor.on_battery else names


def sensors_from_db() -> list[SimSensor]:
    """Describe the active sensors of the database."""
    from .models import Sensor, Zone

    sensors = []
    queryset = (
        Sensor.objects.filter(active=True).select_related("commune").prefetch_related("zones")
    )
    for sensor in queryset.order_by("ref"):
        in_flood_zone = any(zone.type == Zone.Type.FLOOD for zone in sensor.zones.all())
        sensors.append(
            SimSensor(
                ref=sensor.ref,
                kind=sensor.kind,
                # The simulator needs a cadence: a sensor without a period sends each minute.
                interval=sensor.expected_interval or 60,
                commune=sensor.commune.insee_code,
                building=sensor.building,
                river=sensor.kind == Kind.WATER and ("river" in sensor.ref or in_flood_zone),
                water_point=sensor.water_point,
            )
        )
    return sensors


# --- Deterministic noise -------------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _uniform(*parts) -> float:
    """Return a number in [0, 1) that depends only on ``parts``."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _smooth(period: float, t: float, *parts) -> float:
    """Return slow noise in [-1, 1], interpolated between knots ``period`` seconds apart."""
    k, frac = divmod(t / period, 1)
    a, b = _uniform(*parts, int(k)), _uniform(*parts, int(k) + 1)
    w = (1 - math.cos(math.pi * frac)) / 2
    return 2 * (a + (b - a) * w) - 1


def _bell(x: float, centre: float, width: float) -> float:
    return math.exp(-(((x - centre) / width) ** 2) / 2)


def _ramp(x: float, x0: float, x1: float) -> float:
    """Go from 0 at ``x0`` to 1 at ``x1``, flat outside."""
    return min(1.0, max(0.0, (x - x0) / (x1 - x0)))


# --- The calendar ---------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """An instant seen in local time, with the shapes the models share."""

    at: datetime
    local: datetime = field(init=False)
    hour: float = field(init=False)
    winter: float = field(init=False)  # 1 in mid-January, -1 in mid-July
    traffic: float = field(init=False)  # 0.03 at night .. ~1 at the weekday rush hours

    def __post_init__(self):
        local = self.at.astimezone(PARIS)
        hour = local.hour + local.minute / 60 + local.second / 3600
        day = local.timetuple().tm_yday
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "hour", hour)
        object.__setattr__(self, "winter", math.cos(2 * math.pi * (day - 15) / 365.25))
        object.__setattr__(self, "traffic", traffic_profile(hour, local.weekday()))

    @property
    def summer(self) -> float:
        return -self.winter

    @property
    def epoch(self) -> float:
        return self.at.timestamp()

    @property
    def diurnal(self) -> float:
        """1 at 15 h (warmest), -1 at 3 h."""
        return math.cos(2 * math.pi * (self.hour - 15) / 24)


def traffic_profile(hour: float, weekday: int) -> float:
    """Share of a road's peak traffic at ``hour`` (local) on ``weekday`` (0 = Monday)."""
    if weekday < 5:
        level = (
            0.03
            + 0.92 * _bell(hour, 8.0, 0.75)
            + 0.95 * _bell(hour, 17.8, 1.0)
            + 0.45 * _bell(hour, 12.8, 2.2)
            + 0.08 * _bell(hour, 21, 1.5)
        )
    else:
        level = 0.03 + 0.45 * _bell(hour, 11.5, 2.5) + 0.45 * _bell(hour, 17.0, 2.5)
    return min(level, 1.05)


def is_open_hours(building_type: str, local: datetime) -> bool:
    """Tell whether a building of ``building_type`` is open at ``local`` time."""
    hour, weekday = local.hour + local.minute / 60, local.weekday()
    if building_type == "school":
        # Mon, Tue, Thu, Fri 8-17 h; Wednesday morning only.
        if weekday in (0, 1, 3, 4):
            return 8 <= hour < 17
        return weekday == 2 and 8 <= hour < 12
    if building_type == "sport":
        return 8 <= hour < 22 if weekday < 6 else 9 <= hour < 18
    if weekday < 5:
        return 8.5 <= hour < 17.5
    return weekday == 5 and 9 <= hour < 12


def _busy_door(building_type: str, hour: float) -> bool:
    """Tell whether people stream through the door (arrivals and departures)."""
    if building_type == "school":
        rushes = ((8.0, 8.6), (11.4, 11.8), (13.3, 13.6), (16.4, 17.0))
    else:
        rushes = ((8.5, 9.0), (12.0, 12.3), (13.5, 14.0), (17.0, 17.5))
    return any(start <= hour < end for start, end in rushes)


# --- The simulator -------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    scenario: str
    description: str
    sensors: tuple[str, ...]


class Simulator:
    """Produce the MQTT messages of the demo town for any instant.

    ``scenario_start`` is the real instant the incidents begin; ``speed`` multiplies
    the time elapsed since, so scripts unfold faster.
    """

    def __init__(
        self,
        sensors: Sequence[SimSensor],
        *,
        seed: int = 0,
        scenarios: Iterable[str] = (),
        scenario_start: datetime | None = None,
        speed: float = 1.0,
    ):
        self.sensors = sorted(sensors, key=lambda sensor: sensor.ref)
        self.by_ref = {sensor.ref: sensor for sensor in self.sensors}
        self.seed = seed
        self.scenarios = tuple(dict.fromkeys(scenarios))
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenario: {', '.join(sorted(unknown))}")
        # Readings carry milliseconds: an instant truncated to them must not fall
        # before the start.
        if scenario_start is not None:
            scenario_start = scenario_start.replace(
                microsecond=scenario_start.microsecond // 1000 * 1000
            )
        self.scenario_start = scenario_start
        self.speed = speed
        communes = Counter(sensor.commune for sensor in self.sensors)
        self.main_commune = communes.most_common(1)[0][0] if communes else ""
        self.incidents = self._cast_incidents()
        self.silenced = self._involved(SENSOR_FAILURE, 0)
        self.faulty = self._involved(SENSOR_FAILURE, 1)

    # -- Who takes part in which incident

    def _cast_incidents(self) -> dict[str, Incident]:
        incidents = {}
        taken: set[str] = set()
        # In a fixed order, so the cast depends on the seed only, not on the options.
        for scenario in (name for name in SCENARIOS if name in self.scenarios):
            rng = random.Random(f"{self.seed}:{scenario}")
            if scenario == POLLUTION:
                refs = [
                    s.ref
                    for s in self.sensors
                    if s.kind == Kind.AIR and s.commune == self.main_commune
                ]
                text = (
                    f"pollution episode on {len(refs)} air station(s): PM10 above 50 then "
                    f"80 µg/m³ and NO2 above 200 µg/m³ within "
                    f"{POLLUTION_RAMP_S // 60} simulated minutes"
                )
            elif scenario == FLOOD:
                refs = [s.ref for s in self.sensors if s.river]
                real_minutes = (FLOOD_PEAK_M - 1.4) / FLOOD_RISE_M_PER_MIN / self.speed
                text = (
                    f"flood: the river rises {FLOOD_RISE_M_PER_MIN * 100:.0f} cm per simulated "
                    f"minute on {len(refs)} gauge(s), up to {FLOOD_PEAK_M} m in about "
                    f"{real_minutes:.1f} real minutes"
                )
            elif scenario == INTRUSION:
                door = self._pick(rng, taken, self._door_candidates())
                refs = [door.ref] if door else []
                where = f"{door.building or door.ref} ({door.ref})" if door else "no door sensor"
                text = f"intrusion: door of {where} forced open"
            else:
                silent = self._pick(rng, taken, self._failure_candidates(Kind.TRAFFIC))
                faulty = self._pick(
                    rng, taken | {silent.ref if silent else ""}, self._failure_candidates()
                )
                refs = [s.ref for s in (silent, faulty) if s]
                text = (
                    f"sensor failure: {silent.ref if silent else '-'} goes offline and silent, "
                    f"{faulty.ref if faulty else '-'} sends out-of-range and malformed values"
                )
            if scenario != SENSOR_FAILURE or len(refs) == 2:
                taken.update(refs)
            incidents[scenario] = Incident(scenario, text, tuple(refs))
        return incidents

    def _door_candidates(self) -> list[list[SimSensor]]:
        doors = [s for s in self.sensors if s.kind == Kind.OPENING]
        main = [s for s in doors if s.commune == self.main_commune]
        schools = [s for s in main if s.building_type == "school"]
        return [schools, main, doors]

    def _failure_candidates(self, preferred: str = Kind.WATER) -> list[list[SimSensor]]:
        # In the main town, whose operators watch the demo.
        plain = [s for s in self.sensors if not s.river]
        main = [s for s in plain if s.commune == self.main_commune]
        return [
            [s for s in main if s.kind == preferred],
            [s for s in plain if s.kind == preferred],
            main,
            plain,
            list(self.sensors),
        ]

    @staticmethod
    def _pick(rng, taken, groups) -> SimSensor | None:
        for group in groups:
            free = [sensor for sensor in group if sensor.ref not in taken]
            if free:
                return rng.choice(free)
        return None

    def _involved(self, scenario: str, index: int) -> str | None:
        incident = self.incidents.get(scenario)
        if incident is None or len(incident.sensors) <= index:
            return None
        return incident.sensors[index]

    def _in(self, scenario: str, ref: str) -> bool:
        incident = self.incidents.get(scenario)
        return incident is not None and ref in incident.sensors

    def elapsed(self, at: datetime) -> float | None:
        """Return the simulated seconds since the incidents began, or None before."""
        if self.scenario_start is None or not self.incidents or at < self.scenario_start:
            return None
        return (at - self.scenario_start).total_seconds() * self.speed

    # -- Messages

    def status_messages(self) -> list[Message]:
        """Say every sensor is online (retained), as devices do when they connect."""
        return [Message(s.status_topic, ONLINE, 1, True) for s in self.sensors]

    def incident_statuses(self) -> list[Message]:
        """Return the status changes to publish when the incidents begin."""
        if self.silenced is None:
            return []
        return [Message(self.by_ref[self.silenced].status_topic, OFFLINE, 1, True)]

    def incident_reporters(self) -> list[SimSensor]:
        """Return the sensors that report at once when the incidents begin.

        A door sensor reports on events, not only on its period.
        """
        door = self._involved(INTRUSION, 0)
        return [self.by_ref[door]] if door else []

    def is_silent(self, sensor: SimSensor, at: datetime) -> bool:
        return sensor.ref == self.silenced and self.elapsed(at) is not None

    def message(self, sensor: SimSensor, at: datetime) -> Message:
        """Return the readings message of ``sensor`` at ``at``."""
        elapsed = self.elapsed(at)
        if sensor.ref == self.faulty and elapsed is not None:
            payload = self.faulty_payload(sensor, at, elapsed)
        else:
            payload = encode(at, self.values(sensor, at))
        return Message(sensor.readings_topic, payload, 1, False)

    def round(self, at: datetime) -> list[Message]:
        """Return one readings message for every sensor that is not silent."""
        return [self.message(s, at) for s in self.sensors if not self.is_silent(s, at)]

    # -- Values

    def values(self, sensor: SimSensor, at: datetime) -> dict[str, float | int]:
        """Return the values of every metric ``sensor`` publishes at ``at``, in range."""
        moment = Moment(at)
        model = {
            Kind.AIR: self._air,
            Kind.WATER: self._river if sensor.river else self._water,
            Kind.WATERING: self._watering,
            Kind.TRAFFIC: self._traffic,
            Kind.OPENING: self._opening,
        }.get(sensor.kind)
        values = model(sensor, moment) if model else {}
        if sensor.on_battery:
            values["battery"] = self._battery(sensor, moment)
        return {name: _clamp(sensor.kind, name, value) for name, value in values.items()}

    def _const(self, sensor: SimSensor, name: str, low: float, high: float) -> float:
        """Return a per-sensor constant (a station's exposure, a road's capacity)."""
        return low + (high - low) * _uniform(self.seed, sensor.ref, name)

    def _noise(self, sensor: SimSensor, name: str, moment: Moment, period: float = 1800) -> float:
        return _smooth(period, moment.epoch, self.seed, sensor.ref, name)

    def _jitter(self, sensor: SimSensor, name: str, moment: Moment) -> float:
        """Return fast noise in [-1, 1], new at each reading."""
        return 2 * _uniform(self.seed, sensor.ref, name, round(moment.epoch, 3)) - 1

    def _air(self, sensor: SimSensor, m: Moment) -> dict[str, float]:
        exposure = self._const(sensor, "exposure", 0.75, 1.3)
        traffic = m.traffic * exposure
        winter_evening = max(0.0, m.winter) * _bell(m.hour, 20, 2.5)  # wood heating
        n = lambda name: self._noise(sensor, name, m)  # noqa: E731
        j = lambda name: self._jitter(sensor, name, m)  # noqa: E731
        no2 = 10 + 50 * traffic * (1 + 0.25 * m.winter) + 4 * n("no2") + 1.5 * j("no2")
        pm10 = (
            13 + 3 * m.winter + 16 * traffic + 18 * winter_evening + 3 * n("pm10") + 1.0 * j("pm10")
        )
        pm25 = 0.55 * pm10 + 0.15 * 18 * winter_evening + 1.5 * n("pm25") + 0.5 * j("pm25")
        sunny_afternoon = _bell(m.hour, 15.5, 3)
        o3 = (
            38
            + 25 * m.summer
            + (25 + 55 * max(0.0, m.summer)) * sunny_afternoon
            - 12 * traffic  # titration by NO near the roads
            + 6 * n("o3")
            + 2 * j("o3")
        )
        so2 = 3 + 1.5 * n("so2") + 0.5 * j("so2") + 2 * max(0.0, m.winter)
        temperature = (
            12.2
            - 7.5 * m.winter
            + (3.5 + 2.5 * max(0.0, m.summer)) * m.diurnal
            + 1.5 * self._noise(sensor, "temperature", m, 6 * 3600)
            + 0.2 * j("temperature")
        )
        humidity = (
            76
            + 8 * m.winter
            - 14 * m.diurnal
            + 6 * self._noise(sensor, "humidity", m, 6 * 3600)
            + 1 * j("humidity")
        )
        values = {
            "pm25": pm25,
            "pm10": pm10,
            "no2": no2,
            "o3": max(o3, 2.0),
            "so2": max(so2, 0.5),
            "temperature": temperature,
            "humidity": min(max(humidity, 25.0), 99.0),
        }
        elapsed = self.elapsed(m.at)
        if elapsed is not None and self._in(POLLUTION, sensor.ref):
            share = pollution_share(elapsed)
            for name, peak in POLLUTION_PEAK.items():
                target = peak * self._const(sensor, f"episode-{name}", 0.97, 1.1)
                values[name] += share * max(0.0, target - values[name])
        return values

    def _water(self, sensor: SimSensor, m: Moment) -> dict[str, float]:
        n = lambda name, period=3 * 3600: self._noise(sensor, name, m, period)  # noqa: E731
        j = lambda name: self._jitter(sensor, name, m)  # noqa: E731
        return {
            "ph": self._const(sensor, "ph", 7.68, 7.82) + 0.06 * n("ph") + 0.01 * j("ph"),
            "turbidity": self._const(sensor, "turbidity", 0.25, 0.33)
            + 0.06 * n("turbidity")
            + 0.01 * j("turbidity"),
            "chlorine": self._const(sensor, "chlorine", 0.36, 0.44)
            + 0.05 * n("chlorine")
            + 0.005 * j("chlorine"),
            "conductivity": self._const(sensor, "conductivity", 450, 550)
            + 40 * n("conductivity", 12 * 3600)
            + 3 * j("conductivity"),
            "nitrates": self._const(sensor, "nitrates", 12, 25)
            + 1.5 * n("nitrates", 24 * 3600)
            + 0.1 * j("nitrates"),
            "temperature": 13 - 4 * m.winter + 0.8 * n("temperature") + 0.1 * j("temperature"),
        }

    def _river(self, sensor: SimSensor, m: Moment) -> dict[str, float]:
        # Upstream gauges read a little higher; the Cher is higher in winter.
        level = (
            1.4
            + self._const(sensor, "reach", -0.05, 0.05)
            + 0.1 * m.winter
            + 0.05 * self._noise(sensor, "level", m, 12 * 3600)
            + 0.003 * self._jitter(sensor, "level", m)
        )
        elapsed = self.elapsed(m.at)
        if elapsed is not None and self._in(FLOOD, sensor.ref):
            level = max(level, flood_level(elapsed, level))
        temperature = 12.5 - 7.5 * m.winter + 0.6 * self._noise(sensor, "temperature", m, 6 * 3600)
        return {"level": level, "temperature": temperature}

    def _watering(self, sensor: SimSensor, m: Moment) -> dict[str, float]:
        start = 22 + self._const(sensor, "start", 0, 1)  # programmes start 22-23 h
        hour = m.hour
        valve = int(hour >= start or hour < 5)
        nominal = self._const(sensor, "flow", 40, 120)
        flow = nominal * (1 + 0.04 * self._jitter(sensor, "flow", m)) if valve else 0.0
        # Soil moisture: wettest when watering ends at 5 h, dries until it starts again.
        wet = self._const(sensor, "wet", 34, 42)
        dry = wet - (10 + 6 * max(0.0, m.summer))
        since_5 = (hour - 5) % 24
        if hour >= start or hour < 5:
            length = (5 - start) % 24
            moisture = dry + (wet - dry) * (1 - ((5 - hour) % 24) / length)
        else:
            moisture = wet - (wet - dry) * since_5 / (start - 5)
        moisture += 0.6 * self._noise(sensor, "soil", m, 3 * 3600)
        return {"flow": flow, "valve": valve, "soil_moisture": moisture}

    def _traffic(self, sensor: SimSensor, m: Moment) -> dict[str, float]:
        capacity = self._const(sensor, "capacity", 600, 1500)  # vehicles per hour at peak
        expected = capacity * m.traffic * sensor.interval / 3600
        count = expected * (1 + 0.15 * self._jitter(sensor, "count", m)) + self._jitter(
            sensor, "count+", m
        )
        free_speed = self._const(sensor, "free-speed", 42, 55)
        speed = free_speed * (1 - 0.5 * min(m.traffic, 1) ** 2) * (
            1 + 0.06 * self._jitter(sensor, "speed", m)
        ) + 3 * self._noise(sensor, "speed", m)
        occupancy = (2 + 40 * min(m.traffic, 1) ** 1.5) * (
            1 + 0.1 * self._jitter(sensor, "occupancy", m)
        )
        return {"vehicle_count": round(max(count, 0)), "speed": speed, "occupancy": occupancy}

    def _opening(self, sensor: SimSensor, m: Moment) -> dict[str, int]:
        elapsed = self.elapsed(m.at)
        if elapsed is not None and self._in(INTRUSION, sensor.ref) and elapsed < INTRUSION_OPEN_S:
            return {"open": 1}
        kind = sensor.building_type
        if not is_open_hours(kind, m.local):
            return {"open": 0}
        chance = 0.85 if _busy_door(kind, m.hour) else 0.2
        return {"open": int(_uniform(self.seed, sensor.ref, "door", round(m.epoch)) < chance)}

    def _battery(self, sensor: SimSensor, m: Moment) -> float:
        # A sawtooth: drains over a year or so, then the battery is replaced.
        life_days = self._const(sensor, "battery-life", 300, 500)
        phase = self._const(sensor, "battery-phase", 0, 1)
        used = (m.epoch / 86400 / life_days + phase) % 1
        return 100 - 85 * used

    def faulty_payload(self, sensor: SimSensor, at: datetime, elapsed: float) -> bytes:
        """Return a bad message, in turn out of range, not a number, and malformed."""
        values: dict = dict(self.values(sensor, at))
        name = next(iter(values), "battery")
        turn = int(elapsed // max(sensor.interval, 1)) % 3
        if turn == 0:
            metric = metric_for(sensor.kind, name)
            values[name] = (metric.maximum if metric else 100) * 2 + 1
            return encode(at, values)
        if turn == 1:
            values[name] = "n/a"
            return encode(at, values)
        return encode(at, values)[:-7]  # cut short: not JSON any more


def pollution_share(elapsed: float) -> float:
    """Return how far the pollution episode is from normal (0) to its peak (1)."""
    if elapsed < POLLUTION_HOLD_UNTIL_S:
        return _ramp(elapsed, 0, POLLUTION_RAMP_S)
    return 1 - _ramp(elapsed, POLLUTION_HOLD_UNTIL_S, POLLUTION_END_S)


def flood_level(elapsed: float, normal: float) -> float:
    """Return the river level ``elapsed`` simulated seconds into the flood."""
    rise_s = max(FLOOD_PEAK_M - normal, 0) / FLOOD_RISE_M_PER_MIN * 60
    if elapsed <= rise_s:
        return normal + FLOOD_RISE_M_PER_MIN * elapsed / 60
    if elapsed <= rise_s + FLOOD_HOLD_S:
        return FLOOD_PEAK_M
    receding = (elapsed - rise_s - FLOOD_HOLD_S) / 60 * FLOOD_RECEDE_M_PER_MIN
    return max(normal, FLOOD_PEAK_M - receding)


DECIMALS = {
    "ph": 2,
    "turbidity": 2,
    "chlorine": 2,
    "level": 3,
    "conductivity": 0,
    "nitrates": 1,
    "battery": 0,
}


def _clamp(kind: str, name: str, value: float) -> float | int:
    metric = metric_for(kind, name)
    if metric is None:
        return value
    if metric.is_state:
        middle = (metric.minimum + metric.maximum) / 2
        return int(metric.maximum if value >= middle else metric.minimum)
    value = min(max(value, metric.minimum), metric.maximum)
    digits = 0 if name == "vehicle_count" else DECIMALS.get(name, 1)
    return round(value) if digits == 0 else round(value, digits)


def encode(at: datetime, values: dict) -> bytes:
    """Encode a native JSON payload (docs/mqtt.md), ``ts`` in local time with its offset."""
    ts = at.astimezone(PARIS).isoformat(timespec="milliseconds")
    return json.dumps({"ts": ts, "values": values}, separators=(",", ":")).encode()


def next_ts(at: datetime, last: datetime | None) -> datetime:
    """Return ``at``, moved 1 ms past ``last`` so a sensor never repeats a timestamp."""
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    if last is not None and at <= last:
        return last + timedelta(milliseconds=1)
    return at
