# The INSEE code rule is written once now (core.fields.insee_code): no change in the database.

import django.core.validators
import re
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sensors', '0006_reading_hourly'),
    ]

    operations = [
        migrations.AlterField(
            model_name='commune',
            name='insee_code',
            field=models.CharField(max_length=5, unique=True, validators=[django.core.validators.RegexValidator(re.compile('^(\\d{5}|2[AB]\\d{3})$'), 'Un code INSEE : 5 chiffres, ou 2A/2B et 3 chiffres.')], verbose_name='code INSEE'),
        ),
    ]
