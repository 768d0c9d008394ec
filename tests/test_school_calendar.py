"""When pupils are at school: each school's days and hours of class, and the holidays of
its zone (the Ministry's calendar, imported, editable in the admin)."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from ppms.models import SchoolHoliday
from tests.conftest import make_school

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def calendar(db):
    """The shipped calendar (its migration imports it; a transactional test's flush may
    have emptied the table since)."""
    call_command("import_school_holidays", stdout=io.StringIO())


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    "moment, open_",
    [
        (paris(2026, 12, 3, 10, 0), True),  # a Thursday of class
        (paris(2026, 12, 2, 10, 0), False),  # Wednesday: no class in a four-day week
        (paris(2026, 12, 3, 7, 30), False),  # before the school opens
        (paris(2026, 12, 3, 18, 0), False),  # after it closes
        (paris(2026, 12, 5, 10, 0), False),  # Saturday
        (paris(2026, 10, 20, 10, 0), False),  # Toussaint holidays, zone B
        (paris(2026, 11, 11, 10, 0), False),  # Armistice: a public holiday (a Wednesday)
        (paris(2026, 5, 15, 10, 0), False),  # the Ascension bridge, checked by hand
        (paris(2026, 2, 16, 10, 0), False),  # winter holidays, zone B
        (paris(2027, 2, 15, 10, 0), True),  # winter 2027: zone A is off, not zone B
    ],
)
def test_a_school_is_open_on_its_days_and_hours_outside_its_zones_holidays(school, moment, open_):
    assert school.is_open(moment) is open_


def test_a_school_of_another_zone_follows_its_own_holidays(commune):
    school = make_school(commune, "0750001A", holiday_zone="A")

    assert not school.is_open(paris(2027, 2, 15, 10, 0))


def test_importing_the_calendar_again_changes_nothing():
    before = SchoolHoliday.objects.count()
    assert before > 50  # three zones, 2025 to the package's last year, public holidays

    call_command("import_school_holidays", stdout=io.StringIO())

    assert SchoolHoliday.objects.count() == before
    toussaint = SchoolHoliday.objects.get(zone="B", first_day="2025-10-18")
    assert (toussaint.name, str(toussaint.last_day)) == ("Vacances de la Toussaint", "2025-11-02")
