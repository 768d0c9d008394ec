# The rate_limited reason (sensors/ingest/rates.py): choices only, no change in the database.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sensors', '0007_insee_code_rule'),
    ]

    operations = [
        migrations.AlterField(
            model_name='rejectedmessage',
            name='reason',
            field=models.CharField(choices=[('too_large', 'Trop volumineux'), ('malformed', 'Malformé'), ('unknown_sensor', 'Capteur inconnu'), ('inactive_sensor', 'Capteur désactivé'), ('unknown_metric', 'Grandeur inconnue'), ('not_a_number', 'Valeur non numérique'), ('out_of_range', 'Hors de la plage physique'), ('bad_timestamp', 'Horodatage invalide'), ('unit_mismatch', 'Unité différente'), ('rate_limited', 'Débit du capteur dépassé')], db_index=True, max_length=24, verbose_name='motif'),
        ),
    ]
