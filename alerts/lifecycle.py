"""The periodic and event-driven parts of the alert lifecycle.

- offline rules follow the sensors' MQTT status and silence (beat task);
- due alerts: re-notify critical ones left unacknowledged, end snoozes, resolve flapping
  alerts that stayed quiet;
- catch-up from the latest values, and the ATMO index of the air stations.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sensors.metrics import Kind
from sensors.models import LatestReading, Sensor, StationType

from .atmo import estimated_indices
from .evaluation import FLAP_QUIET, Evaluation, Observation, evaluate_pending, lock_pending
from .incidents import join as join_incident
from .models import Alert, AlertState, EventKind, PendingEvaluation, Rule, RuleKind, Severity
from .notify import tell
from .signals import announce_opened

log = logging.getLogger(__name__)


def offline_rules_follow(sensor_id: int, state: str, now: datetime | None = None) -> None:
    """Open (offline) or resolve (online) the alerts of the offline rules of a sensor."""
    now = now or timezone.now()
    sensor = Sensor.objects.filter(pk=sensor_id).first()
    if sensor is None:
        return
    rules = Rule.objects.applying_to(sensor).filter(kind=RuleKind.OFFLINE)
    for rule in rules:
        with transaction.atomic():
            alert = Alert.objects.open().filter(rule=rule, sensor=sensor).first()
            if state == Sensor.State.OFFLINE and alert is None:
                try:
                    with transaction.atomic():
                        alert = Alert.objects.create(
                            rule=rule,
                            sensor=sensor,
                            severity=rule.severity,
                            opened_at=now,
                            title=f"{rule.name} — {sensor.name}"[:255],
                            next_check_at=now + rule.renotify_after
                            if rule.severity == Severity.CRITICAL and rule.renotify_after
                            else None,
                        )
                except IntegrityError:
                    continue  # opened meanwhile
                join_incident(alert)
                tell(alert.record(EventKind.OPENED, at=now, text=alert.title))
                transaction.on_commit(lambda a=alert: announce_opened(a))
            elif state == Sensor.State.ONLINE and alert is not None and rule.auto_resolve:
                alert.cleared_at = now
                alert.save(update_fields=["cleared_at"])
                tell(alert.resolve(text=_("Le capteur émet de nouveau."), now=now))


def check_due_alerts(now: datetime) -> dict:
    report = {"renotified": 0, "snoozes_ended": 0, "flapping_resolved": 0}
    due = Alert.objects.open().filter(next_check_at__lte=now).select_related("rule")
    for alert in due:
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=alert.pk)
            if alert.state == AlertState.ACKNOWLEDGED and alert.snoozed_until:
                if alert.snoozed_until > now:
                    continue
                alert.snoozed_until = None
                if alert.cleared_at is None:  # still firing: back to the operators
                    alert.state = AlertState.FIRING
                    alert.next_check_at = renotify_time(alert, now)
                    alert.save()
                    reminder = alert.record(
                        EventKind.RENOTIFIED,
                        at=now,
                        text=_("Rappel : l'alerte est toujours active."),
                    )
                    tell(reminder)
                    report["snoozes_ended"] += 1
                else:
                    alert.next_check_at = None
                    alert.save()
            elif alert.state == AlertState.FIRING and alert.acknowledged_at is None:
                alert.next_check_at = renotify_time(alert, now)
                alert.save(update_fields=["next_check_at"])
                reminder = alert.record(
                    EventKind.RENOTIFIED, at=now, text=_("Alerte critique toujours non acquittée.")
                )
                tell(reminder)
                report["renotified"] += 1
            else:
                alert.next_check_at = None
                alert.save(update_fields=["next_check_at"])
    quiet = Alert.objects.open().filter(flapping=True, cleared_at__lte=now - FLAP_QUIET)
    for alert in quiet:
        with transaction.atomic():
            resolved = alert.resolve(
                text=_("Valeur stable depuis %(minutes)d min.")
                % {"minutes": FLAP_QUIET.seconds // 60},
                now=now,
            )
            tell(resolved)
            report["flapping_resolved"] += 1
    return report


def renotify_time(alert: Alert, now: datetime):
    if alert.severity == Severity.CRITICAL and alert.rule.renotify_after:
        return now + alert.rule.renotify_after
    return None


def evaluate_latest_values() -> int:
    """Feed every latest value to the rules; what was already evaluated is skipped.

    After the pending batches and under their lock: a latest value evaluated first would
    make an older crossing still waiting in a batch look late, and it would be ignored.
    """
    opened = evaluate_pending()
    with transaction.atomic():
        if not lock_pending() or PendingEvaluation.objects.exists():
            return opened  # batches are flowing: they are fresher than this catch-up
        opened += _evaluate_latest()
    return opened


def _evaluate_latest() -> int:
    metrics = set(
        Rule.objects.filter(
            active=True, kind__in=[RuleKind.THRESHOLD, RuleKind.STUCK, RuleKind.RATE]
        ).values_list("metric", flat=True)
    )
    observations = [
        Observation(sensor_id, metric, ts, value)
        for sensor_id, metric, ts, value in LatestReading.objects.filter(
            metric__in=metrics
        ).values_list("sensor_id", "metric", "ts", "value")
    ]
    return len(Evaluation().run(observations))


def evaluate_atmo_index(now: datetime | None = None) -> int:
    """Estimate the ATMO index of each background air station and evaluate the ATMO
    rules on it: today's once enough of the day is covered, else yesterday's."""
    now = now or timezone.now()
    if not Rule.objects.filter(active=True, kind=RuleKind.ATMO).exists():
        return 0
    stations = Sensor.objects.filter(
        kind=Kind.AIR, active=True, station_type=StationType.BACKGROUND
    )
    observations = [
        Observation(sensor_id, "atmo", now, float(index.klass))
        for sensor_id, (index, _share) in estimated_indices(list(stations), now).items()
        if index is not None
    ]
    return len(Evaluation().run(observations))
