# The PPMS webhooks point at core.Webhook (the same table); the activation events are a
# timeline only: what they tell goes through core's notifications.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_notifications"),
        ("ppms", "0003_activation_events_webhooks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="ppmswebhook",
                    name="webhook",
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="ppms", to="core.webhook", verbose_name="webhook"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RemoveIndex(
            model_name="activationevent",
            name="activationevent_unsent",
        ),
        migrations.RemoveField(
            model_name="activationevent",
            name="notified_at",
        ),
    ]
