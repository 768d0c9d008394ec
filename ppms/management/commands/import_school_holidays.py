"""Import the Ministry's school holidays (zones A, B, C) into the admin-editable calendar.

The dates come from the ``vacances-scolaires-france`` package (Etalab's, built from the
Ministry's open data "calendrier scolaire"), one flag per day and zone: consecutive days
without class of one holiday become one ``SchoolHoliday``. The public holidays (jours
fériés, Code du travail L3133-1) are added for every zone: the fixed ones and those that
follow Easter. Idempotent: a holiday already there (same zone and first day) is updated,
a row entered by hand is left alone.
"""

from datetime import date, timedelta

from dateutil.easter import easter
from django.core.management.base import BaseCommand
from vacances_scolaires_france import SchoolHolidayDates

from ppms.models import SchoolHoliday

ZONES = ("A", "B", "C")


def holiday_spans(dates: SchoolHolidayDates, zone: str, years) -> list[tuple[str, object, object]]:
    """(name, first day, last day) of each run of consecutive holiday days of ``zone``."""
    days = sorted(
        (day, row["nom_vacances"])
        for year in years
        for day, row in dates.holidays_for_year_and_zone(year, zone).items()
    )
    spans: list[list] = []
    for day, name in days:
        if spans and spans[-1][0] == name and spans[-1][2] == day - timedelta(days=1):
            spans[-1][2] = day
        else:
            spans.append([name, day, day])
    return [tuple(span) for span in spans]


FIXED_PUBLIC_HOLIDAYS = (
    (1, 1, "Jour de l'an"),
    (5, 1, "Fête du travail"),
    (5, 8, "Victoire 1945"),
    (7, 14, "Fête nationale"),
    (8, 15, "Assomption"),
    (11, 1, "Toussaint"),
    (11, 11, "Armistice 1918"),
    (12, 25, "Noël"),
)


# Days the package's data lacks, checked against the Ministry's calendar: the Ascension
# bridge of 2026, no class on Friday 15 and Saturday 16 May in every zone.
MISSING_FROM_THE_DATA = (("Pont de l'Ascension", date(2026, 5, 15), date(2026, 5, 16)),)


def public_holidays(year: int) -> list[tuple[str, date]]:
    """The French public holidays of ``year``: (name, day)."""
    sunday = easter(year)
    return [
        *((name, date(year, month, day)) for month, day, name in FIXED_PUBLIC_HOLIDAYS),
        ("Lundi de Pâques", sunday + timedelta(days=1)),
        ("Ascension", sunday + timedelta(days=39)),
        ("Lundi de Pentecôte", sunday + timedelta(days=50)),
    ]


def calendar(dates: SchoolHolidayDates, zone: str, years) -> list[tuple[str, date, date]]:
    """The holidays and public holidays of ``zone`` over ``years``: (name, first, last)."""
    spans = holiday_spans(dates, zone, years)
    spans += [span for span in MISSING_FROM_THE_DATA if span[1].year in years]
    for year in years:
        for name, day in public_holidays(year):
            if not any(first <= day <= last for _name, first, last in spans):
                spans.append((f"Jour férié : {name}", day, day))
    return sorted(spans, key=lambda span: span[1])


class Command(BaseCommand):
    help = "Import the school holidays of the Ministry's calendar (zones A, B, C)."

    def add_arguments(self, parser):
        parser.add_argument("--from-year", type=int, default=2025)

    def handle(self, *args, from_year, **options):
        dates = SchoolHolidayDates()
        years = range(max(from_year, dates.min_year), dates.max_year + 1)
        count = 0
        for zone in ZONES:
            for name, first, last in calendar(dates, zone, years):
                SchoolHoliday.objects.update_or_create(
                    zone=zone, first_day=first, defaults={"name": name, "last_day": last}
                )
                count += 1
        self.stdout.write(
            f"{count} school holidays, zones {', '.join(ZONES)}, {years.start}–{years.stop - 1}"
        )
