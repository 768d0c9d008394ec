# The audit trail moves from the csu app (now wiring only) to core: the table is adopted
# as it stands (state only), then renamed by the next migration.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("csu", "0001_audit_entry"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='date')),
                        ('username', models.CharField(max_length=150, verbose_name='identifiant')),
                        ('action', models.CharField(db_index=True, max_length=80, verbose_name='action')),
                        ('method', models.CharField(max_length=8, verbose_name='méthode')),
                        ('path', models.CharField(max_length=300, verbose_name='adresse')),
                        ('target', models.CharField(blank=True, max_length=200, verbose_name='objet')),
                        ('status', models.PositiveSmallIntegerField(verbose_name='réponse')),
                        ('data', models.JSONField(blank=True, default=dict, verbose_name='données')),
                        ('ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='adresse IP')),
                        ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_entries', to=settings.AUTH_USER_MODEL, verbose_name='utilisateur')),
                    ],
                    options={
                        'verbose_name': "entrée du journal d'audit",
                        'verbose_name_plural': "journal d'audit",
                        'ordering': ['-at', '-pk'],
                        'db_table': 'csu_auditentry',
                        'indexes': [models.Index(fields=['user', '-at'], name='csu_auditen_user_id_e89f1a_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
