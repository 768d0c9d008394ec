"""The key figures of the operator's dashboard, per domain, for a given set of sensors.

``dashboard_kpis(sensors)`` answers a JSON-ready dict with one entry per tile: air
(ATMO class per station), drinking water (within the limits or not), river levels
against the flood steps, watering, traffic and building openings. The caller chooses
the sensors (those of the communes the user may see, or of the selected commune).

Two readings of "now": levels and qualities show the last known value of each sensor,
flagged ``fresh: false`` when the sensor has been silent for longer than
``SENSOR_OFFLINE_INTERVALS`` expected intervals; what is going on *now* (valves open,
flow, traffic, doors open) counts fresh values only.

The queries are a constant number whatever the number of sensors.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg
from django.db.models.functions import TruncHour
from django.utils import timezone

from alerts.atmo import background, estimated_indices
from alerts.models import Alert, Condition, Rule, RuleKind
from alerts.regulations import ATMO_2021, DRINKING_WATER_2007, WaterBasis, water_criteria
from sensors.metrics import Kind, metric_for
from sensors.models import LatestReading, Reading, Sensor

# --- Regulatory figures, in one place ----------------------------------------------------


# Drinking water: the arrêté of 11 January 2007, per water point (alerts/regulations.py).
DRINKING_WATER_METRICS = frozenset(c.metric for c in DRINKING_WATER_2007)

# The CSU's own river-level steps (m), used when no active level rule gives them.
DEFAULT_FLOOD_STEPS = (3.5, 4.5, 5.5)

# "At night" for building openings, Paris time; the window crosses midnight.
NIGHT_START, NIGHT_END = time(22), time(6)

ATMO_CACHE_SECONDS = 5 * 60


def paris() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def state_of(level: int | None, *, warning: int, alert: int) -> str:
    """Name a tile's state from a graded level (an ATMO class, a flood step)."""
    if level is None:
        return "unknown"
    return "alert" if level >= alert else "warning" if level >= warning else "ok"


# --- Inputs -----------------------------------------------------------------------------


class Latest:
    """The latest value of each sensor and metric, with freshness, in one query."""

    def __init__(self, sensors: Sequence[Sensor], now: datetime):
        self.now = now
        self.values: dict[int, dict[str, tuple[datetime, float]]] = defaultdict(dict)
        rows = LatestReading.objects.filter(sensor_id__in=[s.pk for s in sensors]).values_list(
            "sensor_id", "metric", "ts", "value"
        )
        for sensor_id, metric, ts, value in rows:
            self.values[sensor_id][metric] = (ts, value)

    def get(self, sensor: Sensor, metric: str) -> tuple[datetime, float] | None:
        return self.values.get(sensor.pk, {}).get(metric)

    def is_fresh(self, sensor: Sensor, ts: datetime) -> bool:
        return sensor.is_current(ts, self.now)

    def fresh_value(self, sensor: Sensor, metric: str) -> float | None:
        found = self.get(sensor, metric)
        if found is None or not self.is_fresh(sensor, found[0]):
            return None
        return found[1]

    def metrics(self, sensor: Sensor) -> set[str]:
        return set(self.values.get(sensor.pk, {}))


def sensor_ref(sensor: Sensor) -> dict:
    return {"sensor": sensor.ref, "name": sensor.name, "commune": sensor.commune_id}


def of_kind(sensors: Sequence[Sensor], kind: str) -> list[Sensor]:
    return [s for s in sensors if s.kind == kind]


# --- Air: the ATMO index of each station ----------------------------------------------


def _atmo_cache_key(sensor_id: int, day) -> str:
    return f"csu:kpis:atmo-estimate:{ATMO_2021.name}:{sensor_id}:{day.isoformat()}"


def atmo_classes(stations: Sequence[Sensor], now: datetime) -> dict[int, dict]:
    """Return {sensor id: {klass, label, colour, text_colour, pollutant, day, share}} of
    the background stations (the CSU's estimate, ``alerts/atmo.py``), cached ~5 min."""
    day = now.astimezone(paris()).date()
    keys = {_atmo_cache_key(s.pk, day): s.pk for s in background(stations)}
    cached = cache.get_many(list(keys))
    found = {keys[key]: value for key, value in cached.items()}
    missing = [s for s in background(stations) if s.pk not in found]
    if missing:
        fresh = {}
        for pk, (index, share) in estimated_indices(missing, now).items():
            entry = {"klass": None, "share": share}
            if index is not None:
                entry = {
                    "klass": index.klass,
                    "label": index.label,
                    "colour": index.colour,
                    "text_colour": index.text_colour,
                    "pollutant": index.pollutant,
                    "pollutant_label": metric_for(Kind.AIR, index.pollutant).label,
                    "day": index.day.isoformat(),
                    "today": index.day == day,
                    "share": index.share,
                }
            found[pk] = entry
            fresh[_atmo_cache_key(pk, day)] = entry
        cache.set_many(fresh, ATMO_CACHE_SECONDS)
    return found


def air_kpi(sensors: Sequence[Sensor], now: datetime) -> dict:
    stations = of_kind(sensors, Kind.AIR)
    classes = atmo_classes(stations, now)
    # Trafic and industrial stations are listed, without an index: they measure a source.
    items = [
        {**sensor_ref(s), "station_type": s.station_type, **classes.get(s.pk, {"klass": None})}
        for s in stations
    ]
    rated = [item for item in items if item["klass"] is not None]
    worst = max(rated, key=lambda item: item["klass"]) if rated else None
    klass = worst["klass"] if worst else None
    return {
        "state": state_of(klass, warning=3, alert=4),
        "stations": items,
        "background": len(classes),
        "worst": worst,
        "classes": [
            {
                "klass": c.number,
                "label": c.label,
                "colour": c.colour,
                "text_colour": c.text_colour,
            }
            for c in ATMO_2021.classes
        ],
    }


# --- Drinking water -------------------------------------------------------------------


def water_kpi(sensors: Sequence[Sensor], latest: Latest) -> dict:
    """The drinking-water points against the arrêté of 11 January 2007: "hors limites de
    qualité" over a limit, "hors références" over a reference (or the Vigipirate chlorine
    instruction), "dans les références" otherwise; conformity is the ARS's to judge."""
    items = []
    unset = 0
    for sensor in of_kind(sensors, Kind.WATER):
        criteria = water_criteria(sensor.water_point)
        if not criteria:
            # A river gauge, raw water, a bathing lake: not drinking water. A probe
            # sending drinking-water metrics whose point is not set is counted, not guessed.
            if not sensor.water_point and latest.metrics(sensor) & DRINKING_WATER_METRICS:
                unset += 1
            continue
        by_metric: dict[str, list] = {}
        for criterion in criteria:
            by_metric.setdefault(criterion.metric, []).append(criterion)
        checks = []
        for name, applying in by_metric.items():
            found = latest.get(sensor, name)
            if found is None:
                continue
            ts, value = found
            metric = metric_for(Kind.WATER, name)
            broken = [c for c in applying if not c.allows(value)]
            checks.append(
                {
                    "metric": name,
                    "label": metric.label,
                    "unit": metric.unit,
                    "value": value,
                    "criteria": [c.text for c in applying],
                    "ok": not broken,
                    "out": _worst_basis(broken),
                    "ts": iso(ts),
                    "fresh": latest.is_fresh(sensor, ts),
                }
            )
        out = _worst_basis(
            c
            for check in checks
            for c in by_metric[check["metric"]]
            if not c.allows(check["value"])
        )
        items.append(
            {
                **sensor_ref(sensor),
                "water_point": sensor.get_water_point_display(),
                "ok": out is None,
                "out": out,
                "fresh": all(check["fresh"] for check in checks),
                "checks": checks,
            }
        )
    over_limits = [item for item in items if item["out"] == WaterBasis.LIMIT]
    failing = [item for item in items if not item["ok"]]
    state = "alert" if over_limits else "warning" if failing else "ok"
    return {
        "state": state if items else "unknown",
        "ok": not failing if items else None,
        "within_limits": not over_limits if items else None,
        "count": len(items),
        "failing": len(failing),
        "over_limits": len(over_limits),
        "unset": unset,
        "stale": sum(1 for item in items if not item["fresh"]),
        "sensors": sorted(items, key=lambda item: (item["ok"], item["sensor"])),
    }


def _worst_basis(criteria) -> str | None:
    """A limit broken weighs more than a reference or an instruction; None if none."""
    bases = {c.basis for c in criteria}
    if WaterBasis.LIMIT in bases:
        return WaterBasis.LIMIT
    return next(iter(sorted(bases)), None)


# --- River levels ----------------------------------------------------------------------


def level_rules() -> list[tuple[Rule, set[int], set[int]]]:
    """The active 'level above' rules, with their commune and zone ids (three queries)."""
    rules = (
        Rule.objects.filter(
            active=True,
            kind=RuleKind.THRESHOLD,
            metric="level",
            condition=Condition.ABOVE,
            threshold__isnull=False,
        )
        .filter(sensor_kind__in=["", Kind.WATER])
        .prefetch_related("communes", "zones")
    )
    return [
        (rule, {c.pk for c in rule.communes.all()}, {z.pk for z in rule.zones.all()})
        for rule in rules
    ]


def flood_steps(sensor: Sensor, rules) -> tuple[float, ...]:
    """Return the level steps of the rules reaching ``sensor``, or the defaults."""
    zone_ids = {zone.pk for zone in sensor.zones.all()}
    steps = set()
    for rule, communes, zones in rules:
        if rule.sensor_id is not None:
            reaches = rule.sensor_id == sensor.pk
        else:
            reaches = (not communes or sensor.commune_id in communes) and (
                not zones or bool(zones & zone_ids)
            )
        if reaches:
            steps.add(rule.threshold)
    return tuple(sorted(steps)) or DEFAULT_FLOOD_STEPS


def alerted_levels(gauges: Sequence[Sensor], rules) -> dict[int, float]:
    """The highest threshold of a level rule with an open alert, by gauge (one query)."""
    if not gauges or not rules:
        return {}
    alerted: dict[int, float] = {}
    for sensor_id, threshold in (
        Alert.objects.open()
        .filter(sensor__in=gauges, rule__in=[rule for rule, _, _ in rules])
        .values_list("sensor_id", "rule__threshold")
    ):
        alerted[sensor_id] = max(threshold, alerted.get(sensor_id, threshold))
    return alerted


def river_kpi(sensors: Sequence[Sensor], latest: Latest) -> dict:
    gauges = [s for s in of_kind(sensors, Kind.WATER) if latest.get(s, "level") is not None]
    rules = level_rules() if gauges else []
    # A step stays reached while its alert is open: a level falling between a rule's
    # threshold and its clearing line must not say "palier 1/2" under a critical alert.
    alerted = alerted_levels(gauges, rules)
    items = []
    for sensor in gauges:
        ts, level = latest.get(sensor, "level")
        steps = flood_steps(sensor, rules)
        reached = max(level, alerted.get(sensor.pk, level))
        step = sum(1 for threshold in steps if reached >= threshold)
        items.append(
            {
                **sensor_ref(sensor),
                "level": level,
                "ts": iso(ts),
                "fresh": latest.is_fresh(sensor, ts),
                "steps": list(steps),
                "step": step,
                "of": len(steps),
                "next_step": steps[step] if step < len(steps) else None,
            }
        )
    worst = max(items, key=lambda item: (item["step"], item["level"])) if items else None
    return {
        "state": state_of(worst["step"] if worst else None, warning=1, alert=2),
        "gauges": items,
        "worst": worst,
        "step": worst["step"] if worst else 0,
        "stale": sum(1 for item in items if not item["fresh"]),
    }


# --- Watering -------------------------------------------------------------------------


def consumption_today(sensors: Sequence[Sensor], now: datetime) -> float:
    """Integrate the flow (L/min) over the Paris day so far, from hourly means, in litres.

    An hour's mean flow counts for the minutes of that hour already past; an hour
    without readings counts nothing.
    """
    if not sensors:
        return 0.0
    midnight = datetime.combine(now.astimezone(paris()).date(), time.min, tzinfo=paris())
    hours = (
        Reading.objects.filter(
            sensor_id__in=[s.pk for s in sensors], metric="flow", ts__gte=midnight, ts__lte=now
        )
        # Paris is a whole number of hours off UTC: UTC hours are Paris clock hours.
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values_list("sensor_id", "hour")
        .annotate(mean=Avg("value"))
        .order_by()
    )
    litres = 0.0
    for _sensor_id, hour, mean in hours:
        start = max(hour, midnight)
        end = min(hour + timedelta(hours=1), now)
        litres += mean * max((end - start).total_seconds(), 0) / 60
    return litres


def watering_kpi(sensors: Sequence[Sensor], latest: Latest, now: datetime) -> dict:
    watering = of_kind(sensors, Kind.WATERING)
    valves = []
    for sensor in watering:
        valve = latest.fresh_value(sensor, "valve")
        flow = latest.fresh_value(sensor, "flow")
        valves.append(
            {**sensor_ref(sensor), "open": valve == 1, "known": valve is not None, "flow": flow}
        )
    litres = consumption_today(watering, now)
    return {
        "state": "info" if watering else "unknown",
        "valves": len(watering),
        "valves_open": sum(1 for v in valves if v["open"]),
        "unknown": sum(1 for v in valves if not v["known"]),
        "flow_now": sum(v["flow"] or 0 for v in valves),
        "consumption_today": litres,
        "consumption_today_m3": litres / 1000,
        "open": [v for v in valves if v["open"]],
    }


# --- Traffic --------------------------------------------------------------------------


def traffic_kpi(sensors: Sequence[Sensor], latest: Latest) -> dict:
    points = []
    for sensor in of_kind(sensors, Kind.TRAFFIC):
        count = latest.fresh_value(sensor, "vehicle_count")
        speed = latest.fresh_value(sensor, "speed")
        # A count per period is a flow only when the period is known.
        period = sensor.expected_interval
        per_hour = count * 3600 / period if count is not None and period else None
        points.append({**sensor_ref(sensor), "count": count, "per_hour": per_hour, "speed": speed})
    counted = [p for p in points if p["count"] is not None]
    speeds = [p["speed"] for p in points if p["speed"] is not None]
    # Slowest first: congestion is what the operator looks for.
    points.sort(key=lambda p: (p["speed"] is None, p["speed"] or 0, p["sensor"]))
    return {
        "state": "info" if counted else "unknown",
        "points": points,
        "reporting": len(counted),
        "vehicles": sum(p["count"] for p in counted),
        "flow_per_hour": sum(p["per_hour"] for p in counted if p["per_hour"] is not None),
        "mean_speed": sum(speeds) / len(speeds) if speeds else None,
    }


# --- Building openings ----------------------------------------------------------------


def night_window(now: datetime) -> tuple[datetime, datetime, bool]:
    """Return (start, end, now_is_night) of the current night, or else of the last one."""
    local = now.astimezone(paris())
    today = local.date()
    if local.time() >= NIGHT_START:
        start_day, end_day = today, today + timedelta(days=1)
    else:
        start_day, end_day = today - timedelta(days=1), today
    start = datetime.combine(start_day, NIGHT_START, tzinfo=paris())
    end = datetime.combine(end_day, NIGHT_END, tzinfo=paris())
    return start, end, start <= now < end


def building_of(sensor: Sensor) -> str:
    return sensor.building or sensor.name


def group_by_building(sensors: Sequence[Sensor]) -> list[dict]:
    buildings: dict[str, list[Sensor]] = {}
    for sensor in sensors:
        buildings.setdefault(building_of(sensor), []).append(sensor)
    return [
        {"building": name, "sensors": [sensor_ref(s) for s in doors]}
        for name, doors in sorted(buildings.items())
    ]


def openings_kpi(sensors: Sequence[Sensor], latest: Latest, now: datetime) -> dict:
    doors = of_kind(sensors, Kind.OPENING)
    start, end, is_night = night_window(now)
    open_now = [s for s in doors if latest.fresh_value(s, "open") == 1]
    night_ids = set()
    if doors:
        night_ids = set(
            Reading.objects.filter(
                sensor_id__in=[s.pk for s in doors],
                metric="open",
                value=1,
                ts__gte=start,
                ts__lt=min(end, now),
            )
            .values_list("sensor_id", flat=True)
            .distinct()
        )
    if is_night:
        night_ids |= {s.pk for s in open_now}
    at_night = [s for s in doors if s.pk in night_ids]
    state = "unknown"
    if doors:
        state = "alert" if at_night and is_night else "warning" if at_night else "ok"
    return {
        "state": state,
        "buildings": len({building_of(s) for s in doors}),
        "open_now": group_by_building(open_now),
        "open_at_night": group_by_building(at_night),
        "night": {"from": iso(start), "to": iso(end), "now": is_night},
    }


# --- All of them ----------------------------------------------------------------------


def dashboard_kpis(sensors: Sequence[Sensor], *, now: datetime | None = None) -> dict:
    """Compute every tile's figures for ``sensors`` (their zones prefetched)."""
    now = now or timezone.now()
    latest = Latest(sensors, now)
    return {
        "generated_at": iso(now),
        "air": air_kpi(sensors, now),
        "water": water_kpi(sensors, latest),
        "river": river_kpi(sensors, latest),
        "watering": watering_kpi(sensors, latest, now),
        "traffic": traffic_kpi(sensors, latest),
        "openings": openings_kpi(sensors, latest, now),
    }
