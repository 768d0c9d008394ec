# The webhooks' table takes the core app's name, now that every model pointing at it
# points at core.Webhook.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_notifications"),
        ("alerts", "0004_notifications_in_core"),
        ("ppms", "0004_notifications_in_core"),
    ]

    operations = [
        migrations.AlterModelTable(name="webhook", table=None),
    ]
