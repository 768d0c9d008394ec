"""One French number formatter (core/numbers.py), for titles, e-mails, CAP texts, tiles."""

import math

import pytest
from django.template import Context, Template

from alerts.models import Alert
from core.numbers import french_number
from sensors.metrics import metric_for
from tests.alerting import feed, make_rule
from tests.conftest import make_sensor


@pytest.mark.parametrize(
    ("value", "digits", "unit", "shown"),
    [
        (4.6, 2, "m", "4,6\xa0m"),  # no trailing zero
        (4.65, 2, "", "4,65"),
        (3.25, 1, "°C", "3,3\xa0°C"),  # a half goes away from zero, as Intl.NumberFormat
        (-3.25, 1, "°C", "-3,3\xa0°C"),
        (-0.04, 1, "", "0"),  # no "-0"
        (1000, 0, "", "1\u202f000"),
        (1250, 0, "véh./h", "1\u202f250\xa0véh./h"),
        (1234567.891, 1, "", "1\u202f234\u202f567,9"),
        (999.96, 1, "", "1\u202f000"),
        (0.1 + 0.2, None, "", "0,3"),
        (62.4, 0, "µg/m³", "62\xa0µg/m³"),
        (7.25, 2, "pH", "pH\xa07,25"),
        (1, 0, "state", "1"),
        (1e20, 0, "", "100\u202f000\u202f000\u202f000\u202f000\u202f000\u202f000"),
    ],
)
def test_a_number_has_a_decimal_comma_grouped_digits_and_its_unit(value, digits, unit, shown):
    assert french_number(value, digits, unit) == shown


def test_a_number_that_is_not_finite_is_refused():
    with pytest.raises(ValueError):
        french_number(math.nan)


def test_a_metric_writes_its_values_with_the_one_formatter():
    assert metric_for("water", "level").display(4.6) == "4,6\xa0m"
    assert metric_for("water", "conductivity").display(1234) == "1\u202f234\xa0µS/cm"
    assert metric_for("water", "ph").display(7.2) == "pH\xa07,2"
    assert metric_for("opening", "open").display(1) == "1"


def test_the_template_filter_writes_numbers_the_same_and_nothing_for_no_number():
    template = Template("{% load numbers %}[{{ a|number:0 }}][{{ b|number:2 }}][{{ c|number }}]")
    assert template.render(Context({"a": 1800.4, "b": None, "c": 4.5})) == "[1\u202f800][][4,5]"


def test_an_alert_back_to_normal_says_the_value_as_the_title_does(commune):
    sensor = make_sensor(commune, "jlt-air-01")
    make_rule(threshold=80)  # PM10, raw readings
    feed(sensor, [1250, 70])
    alert = Alert.objects.get()
    assert alert.title == "PM10 technique — jlt-air-01\u202f: 1\u202f250\xa0µg/m³"
    assert alert.events.get(kind="resolved").text == "Retour à la normale : 70\xa0µg/m³."


def test_a_page_in_english_writes_its_numbers_with_english_separators():
    from django.utils import translation

    template = Template("{% load numbers %}[{{ a|number:0 }}][{{ b|number:2 }}][{{ c|number }}]")
    with translation.override("en"):
        assert template.render(Context({"a": 1800.4, "b": 3.5, "c": -1234.25})) == (
            "[1,800][3.5][-1,234.25]"
        )
    with translation.override("fr"):
        assert template.render(Context({"a": 1800.4, "b": 3.5, "c": -1234.25})) == (
            "[1\u202f800][3,5][-1\u202f234,25]"
        )
