"""Rules on means: the hourly mean, the daily mean, the 8-hour sliding mean, and a
condition over N consecutive hourly means.

The regulations compare means, not readings: a PM10 daily mean of 50 µg/m³, an NO₂
hourly mean of 400 over three consecutive hours. These rules read the hourly roll-ups
(``sensors/rollups.py``), never the ingest batches: a mean is judged once all its hours
are rolled up (before the roll-ups' watermark), so ingest pays nothing for them.

Hours are UTC hours, which are also Paris clock hours (Paris is a whole number of hours
from UTC); a calendar day is a Paris day (23, 24 or 25 hours).

Completeness, as the validity criteria of directive 2008/50/EC (75 %: 45 minutes of an
hour, 6 hours of 8, 18 of 24): an hourly mean counts when its hour holds at least
``rule.completeness`` % of the readings the sensor's period promises
(3600 / ``expected_interval``). A mean over several hours is the mean of the hourly
means that count, not of the readings (a sensor sending twice as often in one hour does
not weigh twice), and counts when they are at least ``rule.completeness`` % of its hours.
A sensor without a period (``expected_interval`` None) gives no mean: nothing says how
many readings its hours should hold, so the rule says it cannot judge the completeness
instead of guessing it.
When a mean does not count, the rule's state says why (``RuleState.no_mean``, shown in
the rule's admin page) and an open alert stays open, its timeline saying why: missing
data clears nothing.

Incremental: each (rule, sensor) state remembers the end of the last hour judged
(``last_ts``); each run judges the hours closed since, up to the watermark, at most
``CATCH_UP`` of them, reading only the roll-ups of those hours and of the windows they
end. A late reading in an hour already judged changes no decision, as with raw readings.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import formats, translation
from django.utils.translation import gettext as _

from sensors.models import ReadingHourly, Sensor
from sensors.rollups import rollup_progress

from .evaluation import Evaluation, Observation, save_states
from .models import Aggregate, Alert, DailyWindow, EventKind, Rule, RuleKind
from .notify import tell

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
# A rule switched back on after a long pause judges the last day, not every hour since.
CATCH_UP = 24
LOCK = 7_300_002  # the advisory lock of the one worker judging means at a time


@dataclass(frozen=True)
class Mean:
    value: float | None  # None: not enough data, or no period to judge it by
    coverage: float | None  # the share of the expected data behind it, 0 to 1
    note: str  # why there is no mean, "" when there is one


def no_period_note() -> str:
    """Why a rule on a mean judges nothing for a sensor without a period."""
    return _(
        "Complétude impossible à juger : le capteur n'a pas de période (intervalle "
        "attendu), aucune moyenne n'est comparée."
    )


def window_of(rule: Rule, end: datetime) -> list[datetime] | None:
    """The starts of the hours whose mean the rule judges at ``end`` (an hour's end);
    None when it judges nothing then (a calendar day's mean is judged at its end)."""
    if rule.aggregate == Aggregate.HOURLY:
        return [end - HOUR]
    if rule.aggregate == Aggregate.EIGHT_HOURS:
        return [end - k * HOUR for k in range(8, 0, -1)]
    if rule.daily_window == DailyWindow.SLIDING:
        return [end - k * HOUR for k in range(24, 0, -1)]
    local = end.astimezone(PARIS)
    if (local.hour, local.minute) != (0, 0):
        return None
    start = datetime.combine(local.date() - timedelta(days=1), time(0), PARIS).astimezone(UTC)
    return [start + k * HOUR for k in range(int((end - start) / HOUR))]


def mean_of(rule: Rule, sensor: Sensor, hours: list[datetime], rows: dict) -> Mean:
    """The rule's mean over ``hours`` from the roll-ups ``rows`` ((sensor, hour) → (count,
    sum)), or why there is none."""
    if sensor.expected_interval is None:
        # Without a period nothing says how many readings an hour should hold: the
        # completeness cannot be judged, and a mean of too few readings is no mean.
        return Mean(None, None, no_period_note())
    expected = 3600 / sensor.expected_interval
    means = []
    for hour in hours:
        count, total = rows.get((sensor.pk, hour), (0, 0.0))
        if count and count * 100 >= rule.completeness * expected:
            means.append(total / count)
    start, end = hours[0].astimezone(PARIS), (hours[-1] + HOUR).astimezone(PARIS)
    span = {
        "day": formats.date_format(start, "d/m"),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "required": rule.completeness,
    }
    if len(hours) == 1:
        count = rows.get((sensor.pk, hours[0]), (0, 0.0))[0]
        coverage = min(count / expected, 1.0)
        if means:
            return Mean(round(means[0], 1), coverage, "")
        note = _(
            "Pas de moyenne horaire le %(day)s de %(start)s à %(end)s (heure de Paris) : "
            "%(share)d %% des mesures attendues, il en faut %(required)d %%."
        ) % {**span, "share": int(coverage * 100)}
        return Mean(None, coverage, note)
    coverage = len(means) / len(hours)
    if means and len(means) * 100 >= rule.completeness * len(hours):
        return Mean(round(sum(means) / len(means), 1), coverage, "")
    note = _(
        "Pas de %(mean)s jusqu'au %(day)s à %(end)s (heure de Paris) : %(valid)d heures sur "
        "%(hours)d ont assez de mesures, il en faut %(required)d %%."
    ) % {
        **span,
        "day": formats.date_format(end, "d/m"),
        "mean": rule.get_aggregate_display(),
        "valid": len(means),
        "hours": len(hours),
    }
    return Mean(None, coverage, note)


def evaluate_aggregates(*, now: datetime | None = None) -> int:
    """Judge the means of the hours rolled up since the last run; return alerts opened."""
    until = rollup_progress()
    if until is None:
        return 0
    rules = Rule.objects.filter(active=True, kind=RuleKind.THRESHOLD).exclude(aggregate="")
    opened = 0
    for rule in rules.order_by("pk"):
        # The reasons kept (RuleState.no_mean) and told are stored: in the town's
        # language, whatever a request or a test activated.
        with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
            if not _lock():
                return opened  # another worker judges them
            opened += _evaluate_rule(rule, until, Evaluation(now))
    return opened


def _evaluate_rule(rule: Rule, until: datetime, evaluation: Evaluation) -> int:
    sensors = {sensor.pk: sensor for sensor in rule.sensors_in_scope()}
    if not sensors:
        return 0
    states = evaluation.lock_states({(rule.pk, sensor_id) for sensor_id in sensors})
    ends: dict[int, list[datetime]] = {}
    for sensor_id in sensors:
        last = states[(rule.pk, sensor_id)].last_ts
        if last is None:  # a new rule: the hours its run of consecutive means needs
            first = until - (rule.consecutive_hours - 1) * HOUR
        else:
            first = max(last + HOUR, until - (CATCH_UP - 1) * HOUR)
        if first <= until:
            ends[sensor_id] = [first + k * HOUR for k in range(int((until - first) / HOUR) + 1)]
    if not ends:
        return 0
    earliest = min(hours[0] for hours in ends.values()) - 25 * HOUR
    rows = {
        (sensor_id, hour): (count, total)
        for sensor_id, hour, count, total in ReadingHourly.objects.filter(
            sensor_id__in=list(ends), metric=rule.metric, hour__gte=earliest, hour__lt=until
        ).values_list("sensor_id", "hour", "count", "sum")
    }
    alerts = {
        alert.sensor_id: alert
        for alert in Alert.objects.open()
        .select_for_update()
        .filter(rule=rule, sensor_id__in=list(ends))
    }
    for sensor_id, hour_ends in ends.items():
        sensor, state = sensors[sensor_id], states[(rule.pk, sensor_id)]
        alert = alerts.get(sensor_id)
        for end in hour_ends:
            hours = window_of(rule, end)
            if hours is None and sensor.expected_interval is not None:
                state.last_ts = end
                continue
            # Without a period, said at once (not at the end of a calendar day).
            mean = mean_of(rule, sensor, hours or [end - HOUR], rows)
            if mean.note and not state.no_mean and alert is not None:
                # The alert stays open (missing data clears nothing): its timeline says why.
                tell(alert.record(EventKind.COMMENTED, at=end, text=mean.note))
            state.coverage, state.no_mean = mean.coverage, mean.note
            if mean.value is None:
                state.last_ts, state.pending_since = end, None  # a gap breaks a streak
                continue
            observation = Observation(sensor_id, rule.metric, end, mean.value)
            alert = evaluation.evaluate(rule, sensor, state, alert, [observation])
    save_states([states[(rule.pk, sensor_id)] for sensor_id in ends])
    return len(evaluation.opened)


def _lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite runs one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
        return cursor.fetchone()[0]
