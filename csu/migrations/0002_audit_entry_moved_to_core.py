# The audit trail now belongs to the core app (core/migrations/0001_initial.py adopts the
# table): the csu app forgets the model, and the table stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("csu", "0001_audit_entry"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEntry")],
            database_operations=[],
        ),
    ]
