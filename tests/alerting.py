"""Helpers of the alerts tests: rules and observations in a line."""

from datetime import UTC, datetime, timedelta

from alerts import triggers
from alerts.evaluation import Evaluation, Observation
from alerts.models import Rule

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def make_rule(**fields) -> Rule:
    fields.setdefault("name", "PM10 technique")
    fields.setdefault("kind", "threshold")
    fields.setdefault("sensor_kind", "air")
    fields.setdefault("metric", "pm10")
    fields.setdefault("condition", "above")
    fields.setdefault("threshold", 80)
    scenario = fields.pop("ppms_scenario", "")
    rule = Rule(**fields)
    rule.full_clean()
    rule.save()
    triggers.set_for(rule, scenario)
    return rule


def feed(sensor, values, *, metric="pm10", start=T0, step=timedelta(minutes=1)):
    """Evaluate ``values`` one minute apart (or at the given datetimes); return alerts opened."""
    opened = []
    for i, value in enumerate(values):
        if isinstance(value, tuple):
            ts, value = value
        else:
            ts = start + i * step
        opened += Evaluation().run([Observation(sensor.pk, metric, ts, value)])
    return opened
