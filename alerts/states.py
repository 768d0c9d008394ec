"""What a rule makes of each sensor it watches, now: the rules API's ``states``.

Read from what the evaluation keeps (``RuleState``, one per rule and sensor) and the
open alerts; nothing is computed again. A rule on a mean gives its last mean with the
hours it covers and their completeness, or why it cannot judge: the sensor has no
period (``no_period``), or its last window had too few readings (``incomplete``).
"""

from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from sensors.models import Sensor

from .aggregates import HOUR, PARIS, no_period_note, window_of
from .models import Aggregate, Alert, DailyWindow, Rule, RuleKind, RuleState


class Status(models.TextChoices):
    NOT_JUDGED = "not_judged", _("pas encore jugé")  # nothing evaluated yet
    NORMAL = "normal", _("normal")  # the condition does not hold
    PENDING = "pending", _("condition remplie, pas encore assez longtemps")
    FIRING = "firing", _("alerte ouverte")
    CANNOT_JUDGE = "cannot_judge", _("ne peut pas juger")  # see ``reason``


class Reason(StrEnum):
    NO_PERIOD = "no_period"  # the sensor has no period: completeness cannot be judged
    INCOMPLETE = "incomplete"  # the last window had too few readings for a mean


@dataclass(frozen=True)
class SensorState:
    sensor: str  # its ref
    status: Status
    value: float | None  # the last value compared: a mean, or a reading
    window_start: datetime | None  # the hours of that mean (rules on a mean)
    window_end: datetime | None
    completeness: float | None  # % of the expected data behind it (rules on a mean)
    judged_until: datetime | None  # the last reading, or the end of the last hour, judged
    reason: Reason | None
    message: str  # why it cannot judge, in the town's language ("" when it can)
    alert: int | None  # the open alert's id


def mean_window(rule: Rule, judged_until: datetime) -> tuple[datetime, datetime] | None:
    """The hours of the last mean a rule judged once it had judged up to ``judged_until``
    (a calendar day's mean is judged at the Paris midnight that ends it)."""
    end = judged_until
    if rule.aggregate == Aggregate.DAILY and rule.daily_window == DailyWindow.CALENDAR:
        local = judged_until.astimezone(PARIS)
        end = datetime.combine(local.date(), time(0), PARIS)
    hours = window_of(rule, end)
    return (hours[0], hours[-1] + HOUR) if hours else None


def states_of(rule: Rule) -> list[SensorState]:
    """The rule's state for each active sensor in its scope, by sensor ref."""
    sensors = list(rule.sensors_in_scope().order_by("ref"))
    kept = {
        state.sensor_id: state
        for state in RuleState.objects.filter(rule=rule, sensor__in=[s.pk for s in sensors])
    }
    alerts = dict(Alert.objects.open().filter(rule=rule).values_list("sensor_id", "pk"))
    return [_state(rule, sensor, kept.get(sensor.pk), alerts.get(sensor.pk)) for sensor in sensors]


def _state(rule: Rule, sensor: Sensor, kept: RuleState | None, alert: int | None) -> SensorState:
    on_mean = bool(rule.aggregate) and rule.kind == RuleKind.THRESHOLD
    reason, message = None, ""
    if on_mean and sensor.expected_interval is None:
        # In the town's language, as the stored reasons (written by the workers).
        with translation.override(settings.LANGUAGE_CODE):
            reason, message = Reason.NO_PERIOD, no_period_note()
    elif on_mean and kept is not None and kept.no_mean:
        reason, message = Reason.INCOMPLETE, kept.no_mean
    value = window = completeness = None
    judged_until = kept.last_ts if kept is not None else None
    if kept is not None and reason is None:
        value = kept.last_value
        if on_mean and judged_until is not None and value is not None:
            window = mean_window(rule, judged_until)
            completeness = None if kept.coverage is None else round(kept.coverage * 100, 1)
    if alert is not None:
        status = Status.FIRING
    elif reason is not None:
        status = Status.CANNOT_JUDGE
    elif kept is None or judged_until is None:
        status = Status.NOT_JUDGED
    elif kept.pending_since is not None:
        status = Status.PENDING
    else:
        status = Status.NORMAL
    return SensorState(
        sensor=sensor.ref,
        status=status,
        value=value,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        completeness=completeness,
        judged_until=judged_until,
        reason=reason,
        message=message,
        alert=alert,
    )
