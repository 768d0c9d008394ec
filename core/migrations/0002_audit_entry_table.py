# The audit trail's table and index take the core app's names.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
    ]

    operations = [
        migrations.RenameIndex(
            model_name='auditentry',
            new_name='core_audite_user_id_b8ffb1_idx',
            old_name='csu_auditen_user_id_e89f1a_idx',
        ),
        migrations.AlterModelTable(
            name='auditentry',
            table=None,
        ),
    ]
