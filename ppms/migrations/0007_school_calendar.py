# The school calendar: each school's days and hours of class and its holidays' zone, and
# the holidays of zones A, B and C from the Ministry's calendar (editable in the admin).

import datetime
import ppms.models
from django.db import migrations, models


def import_holidays(apps, schema_editor):
    from vacances_scolaires_france import SchoolHolidayDates

    from ppms.management.commands.import_school_holidays import ZONES, calendar

    holidays = apps.get_model("ppms", "SchoolHoliday")
    dates = SchoolHolidayDates()
    years = range(2025, dates.max_year + 1)
    holidays.objects.bulk_create(
        holidays(zone=zone, name=name, first_day=first, last_day=last)
        for zone in ZONES
        for name, first, last in calendar(dates, zone, years)
    )


class Migration(migrations.Migration):

    dependencies = [
        ('ppms', '0006_proposals_and_cancellation'),
    ]

    operations = [
        migrations.AddField(
            model_name='school',
            name='closes_at',
            field=models.TimeField(default=datetime.time(16, 40), verbose_name='fermeture'),
        ),
        migrations.AddField(
            model_name='school',
            name='holiday_zone',
            field=models.CharField(choices=[('A', 'A'), ('B', 'B'), ('C', 'C')], default='B', max_length=1, verbose_name='zone de vacances'),
        ),
        migrations.AddField(
            model_name='school',
            name='open_days',
            field=models.JSONField(blank=True, default=ppms.models.default_open_days, help_text='0 = lundi … 6 = dimanche ; par défaut lundi, mardi, jeudi, vendredi.', verbose_name='jours de classe'),
        ),
        migrations.AddField(
            model_name='school',
            name='opens_at',
            field=models.TimeField(default=datetime.time(8, 20), verbose_name='ouverture'),
        ),
        migrations.CreateModel(
            name='SchoolHoliday',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('zone', models.CharField(choices=[('A', 'A'), ('B', 'B'), ('C', 'C')], max_length=1, verbose_name='zone')),
                ('name', models.CharField(max_length=80, verbose_name='nom')),
                ('first_day', models.DateField(verbose_name='premier jour sans classe')),
                ('last_day', models.DateField(verbose_name='dernier jour sans classe')),
            ],
            options={
                'verbose_name': 'vacances scolaires',
                'verbose_name_plural': 'vacances scolaires',
                'ordering': ['first_day', 'zone'],
                'constraints': [models.UniqueConstraint(fields=('zone', 'first_day'), name='schoolholiday_unique'), models.CheckConstraint(condition=models.Q(('last_day__gte', models.F('first_day'))), name='schoolholiday_ordered')],
            },
        ),
        migrations.RunPython(import_holidays, migrations.RunPython.noop),
    ]
