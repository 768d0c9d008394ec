"""Rule evaluation: observations in, alerts opened, updated and cleared.

Observations are evaluated per (rule, sensor) in time order against a state kept in
``RuleState``. An observation no newer than the last one evaluated is ignored for the
state machine: a replayed batch changes nothing (safe to run twice) and a late reading
cannot flip an alert that newer data decided. Hysteresis, durations and flapping make a
value that wobbles around a threshold one alert, not fifty.

Per batch, the states of every (rule, sensor) pair touched are read in one query, as
values (``KeptState``), locked ``FOR UPDATE``, each with its open alert's id; the few
open alerts in a second (none when no pair has one); the states are written back in one.

Ingest batches reach the rules through ``PendingEvaluation`` rows (written with each
batch, deleted with its evaluation): ``evaluate_pending`` takes them oldest first.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.cache import ProcessCache
from core.fast import fetch_rows
from sensors.metrics import display
from sensors.models import Sensor

from .incidents import join as join_incident
from .models import (
    Alert,
    Condition,
    EventKind,
    PendingEvaluation,
    Rule,
    RuleKind,
    RuleState,
    Severity,
)
from .notify import tell
from .schedule import in_schedule
from .signals import announce_opened

log = logging.getLogger(__name__)

# Flapping: this many opens and clears within the window make an alert "instable";
# it then stays open, quietly, until its condition stays clear for FLAP_QUIET.
FLAP_TRANSITIONS = 4
FLAP_WINDOW = timedelta(minutes=30)
FLAP_QUIET = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Observation:
    sensor_id: int
    metric: str
    ts: datetime
    value: float


@dataclass(slots=True)
class KeptState:
    """A ``RuleState`` row as the evaluation reads and writes it back (``save_states``).

    Not a model instance: every batch reads one per (rule, sensor) it concerns, and
    building model instances was the rules worker's largest cost."""

    pk: int
    rule_id: int
    sensor_id: int
    last_ts: datetime | None
    last_value: float | None
    pending_since: datetime | None
    value_since: datetime | None
    transitions: list
    samples: list
    coverage: float | None
    no_mean: str
    open_alert: int | None  # the pair's open alert (read with the state, not written back)


KEPT_COLUMNS = [
    "pk",
    "rule_id",
    "sensor_id",
    "last_ts",
    "last_value",
    "pending_since",
    "value_since",
    "transitions",
    "samples",
    "coverage",
    "no_mean",
]
# What the evaluation reads of every sensor of a batch; the rest, which an alert opening
# or closing needs, is loaded then.
SENSOR_FIELDS = ["id", "state"]


def condition_holds(rule: Rule, value: float, *, firing: bool) -> bool:
    """Tell whether the rule's condition holds; while firing, past the clear threshold."""
    if rule.kind == RuleKind.ATMO:
        limit = (
            rule.clear_threshold if firing and rule.clear_threshold is not None else rule.threshold
        )
        return value >= limit
    low, high = rule.threshold, rule.threshold_high
    if firing:
        low = rule.clear_threshold if rule.clear_threshold is not None else low
        high = rule.clear_threshold_high if rule.clear_threshold_high is not None else high
    if rule.condition == Condition.ABOVE:
        return value > low
    if rule.condition == Condition.BELOW:
        return value < low
    if rule.condition == Condition.OUTSIDE:
        return value < low or value > high
    return value == low  # EQUALS: a state (0 or 1)


def describe(rule: Rule, sensor: Sensor, value: float | None) -> str:
    # The title is stored: in the town's language, whatever a request activated.
    with translation.override(settings.LANGUAGE_CODE):
        shown = ""
        if value is not None:
            shown = "\u202f: " + display(sensor.kind, rule.metric, value)
        if rule.aggregate:
            shown += f" ({rule.get_aggregate_display()})"
    return f"{rule.name} — {sensor.name}{shown}"[:255]


class Evaluation:
    """Evaluate the observations of one batch against the rules they concern."""

    def __init__(self, now: datetime | None = None):
        self.now = now or timezone.now()
        self.opened: list[Alert] = []

    def run(self, observations: list[Observation]) -> list[Alert]:
        by_sensor: dict[int, list[Observation]] = defaultdict(list)
        for obs in observations:
            by_sensor[obs.sensor_id].append(obs)
        sensors = Sensor.objects.only(*SENSOR_FIELDS).in_bulk(list(by_sensor))
        work: dict[tuple[int, int], list[Observation]] = {}
        rules: dict[int, Rule] = {}
        for sensor_id, sensor_obs in by_sensor.items():
            sensor = sensors.get(sensor_id)
            if sensor is None:
                continue
            for rule in rules_for(sensor):
                if rule.kind == RuleKind.OFFLINE or rule.aggregate:
                    continue  # means are evaluated from the roll-ups (alerts/aggregates.py)
                wanted = "atmo" if rule.kind == RuleKind.ATMO else rule.metric
                matching = sorted((o for o in sensor_obs if o.metric == wanted), key=lambda o: o.ts)
                if matching:
                    rules[rule.pk] = rule
                    work[(rule.pk, sensor_id)] = matching
        if not work:
            return []
        with transaction.atomic(savepoint=False):
            states = self.lock_states(work)
            # Locked: an operator acknowledging meanwhile waits, then sees this batch's result.
            # Most pairs have none: the states told which to read.
            with_alert = [st.open_alert for st in states.values() if st.open_alert is not None]
            alerts = {
                (a.rule_id, a.sensor_id): a
                for a in (
                    Alert.objects.open().select_for_update().filter(pk__in=with_alert)
                    if with_alert
                    else ()
                )
            }
            for (rule_id, sensor_id), matching in work.items():
                state = states[(rule_id, sensor_id)]
                self.evaluate(
                    rules[rule_id],
                    sensors[sensor_id],
                    state,
                    alerts.get((rule_id, sensor_id)),
                    matching,
                )
            save_states(states.values())
        return self.opened

    @staticmethod
    def lock_states(work) -> dict[tuple[int, int], KeptState]:
        """Lock (creating the missing ones) the states of the (rule, sensor) pairs ``work``,
        each with the id of its open alert if it has one."""
        open_alert = Alert.objects.open().filter(
            rule_id=OuterRef("rule_id"), sensor_id=OuterRef("sensor_id")
        )

        def locked():
            rows = fetch_rows(
                RuleState.objects.select_for_update()
                .filter(rule_id__in={r for r, _ in work}, sensor_id__in={s for _, s in work})
                .annotate(open_alert=Subquery(open_alert.values("pk")[:1]))
                .order_by("pk")
                .values_list(*KEPT_COLUMNS, "open_alert")
            )
            return {(row[1], row[2]): KeptState(*row) for row in rows if (row[1], row[2]) in work}

        states = locked()
        missing = [RuleState(rule_id=r, sensor_id=s) for r, s in work if (r, s) not in states]
        if missing:
            RuleState.objects.bulk_create(missing, ignore_conflicts=True)
            states = locked()
        return states

    # --- One (rule, sensor) ------------------------------------------------------------

    def evaluate(self, rule, sensor, state, alert, observations) -> Alert | None:
        """Feed observations in time order; return the pair's open alert after them."""
        for obs in observations:
            if state.last_ts is not None and obs.ts <= state.last_ts:
                continue  # replayed or late: newer data already decided
            previous = state.last_value
            state.last_ts, state.last_value = obs.ts, obs.value
            holds = self.holds(rule, state, obs, previous, firing=alert is not None)
            if alert is not None:
                alert = self.follow(rule, sensor, state, alert, obs, holds)
            elif holds and in_schedule(rule, obs.ts) and sensor.state != Sensor.State.OFFLINE:
                if state.pending_since is None:
                    state.pending_since = obs.ts
                if obs.ts - state.pending_since >= rule.hold_for:
                    alert = self.open(rule, sensor, state, obs)
            else:
                state.pending_since = None
        return alert

    def holds(self, rule, state, obs, previous, *, firing) -> bool:
        if rule.kind == RuleKind.STUCK:
            if previous is None or obs.value != previous or state.value_since is None:
                state.value_since = obs.ts
                return False
            return obs.ts - state.value_since >= rule.window
        if rule.kind == RuleKind.RATE:
            horizon = obs.ts.timestamp() - rule.window.total_seconds()
            state.samples = [s for s in state.samples if s[0] >= horizon] + [
                [obs.ts.timestamp(), obs.value]
            ]
            rise = obs.value - min(value for _, value in state.samples)
            limit = rule.rise
            if firing and rule.clear_threshold is not None:
                limit = rule.clear_threshold
            return rise >= limit
        return condition_holds(rule, obs.value, firing=firing)

    def open(self, rule, sensor, state, obs) -> Alert | None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule,
                    sensor=sensor,
                    metric=obs.metric,
                    severity=rule.severity,
                    title=describe(rule, sensor, obs.value),
                    opened_at=obs.ts,
                    first_value=obs.value,
                    last_value=obs.value,
                    last_value_at=obs.ts,
                    peak_value=obs.value,
                    next_check_at=self.renotify_at(rule, obs.ts),
                )
        except IntegrityError:
            # Another evaluation opened it meanwhile: the database keeps one.
            return Alert.objects.open().filter(rule=rule, sensor=sensor).first()
        state.pending_since = None
        self.note_transition(state, obs.ts)
        join_incident(alert)
        tell(alert.record(EventKind.OPENED, at=obs.ts, value=obs.value, text=alert.title))
        transaction.on_commit(lambda: announce_opened(alert))
        self.opened.append(alert)
        return alert

    def follow(self, rule, sensor, state, alert, obs, holds) -> Alert | None:
        """An open alert sees a new value: update it, escalate it, or clear it."""
        alert.last_value, alert.last_value_at = obs.value, obs.ts
        if self.more_extreme(rule, obs.value, alert.peak_value):
            alert.peak_value = obs.value
        changed = ["last_value", "last_value_at", "peak_value"]
        if holds:
            if alert.cleared_at is not None:
                alert.cleared_at = None
                changed.append("cleared_at")
            if (
                rule.escalate_after
                and alert.severity != Severity.CRITICAL
                and obs.ts - alert.opened_at >= rule.escalate_after
            ):
                alert.severity = Severity.CRITICAL
                alert.save(update_fields=[*changed, "severity"])
                escalated = alert.record(
                    EventKind.ESCALATED,
                    at=obs.ts,
                    value=obs.value,
                    text=_("La condition tient depuis plus de %(duration)s.")
                    % {"duration": rule.escalate_after},
                )
                tell(escalated)
                return alert
            alert.save(update_fields=changed)
            return alert
        # The condition cleared (past the hysteresis).
        if alert.cleared_at is None:
            alert.cleared_at = obs.ts
            changed.append("cleared_at")
        if not rule.auto_resolve:
            alert.save(update_fields=changed)
            return alert
        self.note_transition(state, obs.ts)
        if alert.flapping or self.is_flapping(state, obs.ts):
            if not alert.flapping:
                alert.flapping = True
                changed.append("flapping")
                alert.save(update_fields=changed)
                flapping = alert.record(
                    EventKind.FLAPPING,
                    at=obs.ts,
                    value=obs.value,
                    text=_(
                        "Valeur instable autour du seuil : l'alerte reste ouverte jusqu'à "
                        "%(quiet)d min de calme."
                    )
                    % {"quiet": FLAP_QUIET.seconds // 60},
                )
                tell(flapping)
            else:
                alert.save(update_fields=changed)
            return alert
        alert.save(update_fields=changed)
        tell(
            alert.resolve(
                text=_("Retour à la normale : %(value)s.")
                % {"value": display(sensor.kind, obs.metric, obs.value)},
                now=obs.ts,
            )
        )
        return None

    @staticmethod
    def more_extreme(rule, value, peak) -> bool:
        if peak is None:
            return True
        if rule.condition == Condition.BELOW and rule.kind == RuleKind.THRESHOLD:
            return value < peak
        if rule.condition == Condition.OUTSIDE:
            middle = (rule.threshold + rule.threshold_high) / 2
            return abs(value - middle) > abs(peak - middle)
        return value > peak

    @staticmethod
    def note_transition(state, ts):
        horizon = (ts - FLAP_WINDOW).timestamp()
        state.transitions = [t for t in state.transitions if t >= horizon] + [ts.timestamp()]

    @staticmethod
    def is_flapping(state, ts) -> bool:
        return len(state.transitions) >= FLAP_TRANSITIONS

    @staticmethod
    def renotify_at(rule, at):
        if rule.severity == Severity.CRITICAL and rule.renotify_after:
            return at + rule.renotify_after
        return None


def save_states(states) -> None:
    """Write the states back: on PostgreSQL in one statement reading one JSON document
    (Django's bulk_update builds a CASE per field and row: it cost 90 % of an evaluation;
    one UPDATE per row made PostgreSQL parse and plan each), row by row elsewhere (the
    embedded SQLite)."""
    states = list(states)
    if not states:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # orjson writes the dataclasses, datetimes as RFC 3339.
            cursor.execute(SAVE_STATES_SQL, [orjson.dumps(states).decode()])
            return
        adapt = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            "UPDATE alerts_rulestate SET last_ts = %s, last_value = %s, pending_since = %s, "
            "value_since = %s, transitions = %s, samples = %s, coverage = %s, no_mean = %s "
            "WHERE id = %s",
            [
                (
                    adapt(st.last_ts),
                    st.last_value,
                    adapt(st.pending_since),
                    adapt(st.value_since),
                    json.dumps(st.transitions),
                    json.dumps(st.samples),
                    st.coverage,
                    st.no_mean,
                    st.pk,
                )
                for st in states
            ],
        )


SAVE_STATES_SQL = """
UPDATE alerts_rulestate AS s SET last_ts = v.last_ts, last_value = v.last_value,
    pending_since = v.pending_since, value_since = v.value_since,
    transitions = v.transitions, samples = v.samples, coverage = v.coverage,
    no_mean = v.no_mean
FROM jsonb_to_recordset(%s::jsonb) AS v(
    pk bigint, last_ts timestamptz, last_value float8, pending_since timestamptz,
    value_since timestamptz, transitions jsonb, samples jsonb, coverage float8, no_mean text)
WHERE s.id = v.pk
"""


# --- The batches waiting for the rules ------------------------------------------------

# Batches evaluated together: one evaluation's round trips serve them all.
PENDING_CHUNK = 50
PENDING_LOCK = 7_300_001  # the advisory lock of the one worker draining at a time


def lock_pending() -> bool:
    """Become the one worker taking pending batches, until the transaction ends.

    One at a time, so batches are evaluated in the order they were committed: two
    workers taking batches side by side could evaluate a newer batch first, and an older
    crossing would then be ignored as late.
    """
    if connection.vendor != "postgresql":
        return True  # SQLite runs one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PENDING_LOCK])
        return cursor.fetchone()[0]


def evaluate_pending() -> int:
    """Evaluate the committed batches waiting for the rules, oldest first; forget them.

    Each chunk's alerts and its rows' deletion commit together: a worker dying midway
    leaves the rows for the next. Return the number of alerts opened.
    """
    opened = 0
    while True:
        with transaction.atomic():
            if not lock_pending():
                return opened  # another worker drains, and looks again before it stops
            batches = take_pending()
            if batches:
                observations = [
                    Observation(sensor_id, metric, datetime.fromtimestamp(epoch, UTC), value)
                    for items in batches
                    for sensor_id, metric, epoch, value in items
                ]
                opened += len(Evaluation().run(observations))
        # Rows committed while this worker held the lock found it taken: look again.
        if len(batches) < PENDING_CHUNK and not PendingEvaluation.objects.exists():
            return opened


TAKE_PENDING_SQL = """
DELETE FROM alerts_pendingevaluation WHERE id IN (
    SELECT id FROM alerts_pendingevaluation ORDER BY id LIMIT %s
) RETURNING id, items
"""


def take_pending() -> list[list]:
    """The oldest pending batches' items, oldest first, deleted in the caller's
    transaction: they come back if it does not commit."""
    with connection.cursor() as cursor:
        cursor.execute(TAKE_PENDING_SQL, [PENDING_CHUNK])
        rows = sorted(cursor.fetchall(), key=itemgetter(0))
    return [orjson.loads(items) for _, items in rows]


# --- Which rules apply to a sensor (kept by each process, core/cache.py) --------------------

# Every sensor's at once (a few queries every CONFIG_CACHE_S, not two per sensor); a
# sensor created since the load gets its own look-up.
_rules: ProcessCache[None, dict[int, list[Rule]]] = ProcessCache(
    lambda _key: Rule.objects.by_sensor()
)


def rules_for(sensor: Sensor) -> list[Rule]:
    by_sensor = _rules.get(None)
    rules = by_sensor.get(sensor.pk)
    if rules is None:
        rules = by_sensor[sensor.pk] = list(Rule.objects.applying_to(sensor))
    return rules
