# Webhooks and their deliveries move to core (one outbox for alerts and PPMS). The rules
# point at core.Webhook (the same table); every delivery logged so far is kept, each with
# a notification of its own, already sent. Stop the workers once their queues are empty
# before migrating: an alert event not yet sent is not carried over.

from django.db import migrations, models


def copy_deliveries(apps, schema_editor):
    old_deliveries = apps.get_model("alerts", "WebhookDelivery")
    notifications = apps.get_model("core", "Notification")
    deliveries = apps.get_model("core", "WebhookDelivery")
    for old in old_deliveries.objects.order_by("pk").iterator():
        payload = old.payload if isinstance(old.payload, dict) else {"body": old.payload}
        notification = notifications.objects.create(
            topic=str(payload.get("type", ""))[:16],
            event=str(payload.get("event", ""))[:32],
            created_at=old.created_at,
            webhook_payload=payload,
            notified_at=old.created_at,
        )
        notification.webhooks.add(old.webhook_id)
        delivery = deliveries.objects.create(
            webhook_id=old.webhook_id,
            notification=notification,
            payload=old.payload,
            status=old.status,
            attempts=old.attempts,
            last_status_code=old.last_status_code,
            last_error=old.last_error,
            delivered_at=old.delivered_at,
        )
        deliveries.objects.filter(pk=delivery.pk).update(created_at=old.created_at)


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0003_pending_evaluation"),
        ("core", "0003_notifications"),
        ("ppms", "0004_notifications_in_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="rule",
                    name="webhooks",
                    field=models.ManyToManyField(blank=True, to="core.webhook", verbose_name="webhooks"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(copy_deliveries, migrations.RunPython.noop),
        migrations.DeleteModel(name="WebhookDelivery"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Webhook")],
            database_operations=[],
        ),
        migrations.RemoveIndex(
            model_name="alertevent",
            name="alertevent_unsent",
        ),
        migrations.RemoveField(
            model_name="alertevent",
            name="notified_at",
        ),
        migrations.AlterField(
            model_name="alertevent",
            name="kind",
            field=models.CharField(choices=[("opened", "ouverte"), ("acknowledged", "acquittée"), ("commented", "commentée"), ("resolved", "résolue"), ("escalated", "aggravée"), ("renotified", "relancée"), ("flapping", "instable")], max_length=16),
        ),
    ]
