# The one outbox: notifications and their webhook deliveries move to core. The webhooks'
# table (alerts_webhook) is adopted as it stands here, and renamed by 0004 once the alerts
# and PPMS apps point at core.Webhook.

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0002_audit_entry_table"),
        ("alerts", "0003_pending_evaluation"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Webhook",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=120, verbose_name="nom")),
                        ("url", models.URLField(max_length=500, verbose_name="adresse")),
                        ("secret", models.CharField(help_text="Clé de la signature HMAC-SHA256.", max_length=200, verbose_name="secret")),
                        ("active", models.BooleanField(default=True, verbose_name="actif")),
                    ],
                    options={
                        "verbose_name": "webhook",
                        "verbose_name_plural": "webhooks",
                        "ordering": ["name"],
                        "db_table": "alerts_webhook",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("topic", models.CharField(max_length=16, verbose_name="sujet")),
                ("event", models.CharField(max_length=32, verbose_name="événement")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="créée le")),
                ("live", models.JSONField(blank=True, default=list, encoder=django.core.serializers.json.DjangoJSONEncoder, verbose_name="envois en direct")),
                ("emails", models.JSONField(blank=True, default=list, encoder=django.core.serializers.json.DjangoJSONEncoder, verbose_name="courriels")),
                ("webhook_payload", models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True, verbose_name="contenu des webhooks")),
                ("notified_at", models.DateTimeField(blank=True, null=True, verbose_name="envoyée le")),
                ("webhooks", models.ManyToManyField(blank=True, to="core.webhook", verbose_name="webhooks")),
            ],
            options={
                "verbose_name": "notification",
                "verbose_name_plural": "notifications",
                "ordering": ["-created_at", "-pk"],
            },
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(condition=models.Q(("notified_at__isnull", True)), fields=["notified_at"], name="notification_unsent"),
        ),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("payload", models.JSONField(verbose_name="contenu")),
                ("status", models.CharField(choices=[("pending", "en attente"), ("delivered", "livré"), ("failed", "échec")], default="pending", max_length=12, verbose_name="état")),
                ("attempts", models.PositiveSmallIntegerField(default=0, verbose_name="tentatives")),
                ("last_status_code", models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="dernier code HTTP")),
                ("last_error", models.CharField(blank=True, max_length=500, verbose_name="dernière erreur")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="créé le")),
                ("delivered_at", models.DateTimeField(blank=True, null=True, verbose_name="livré le")),
                ("notification", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="deliveries", to="core.notification", verbose_name="notification")),
                ("webhook", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="deliveries", to="core.webhook", verbose_name="webhook")),
            ],
            options={
                "verbose_name": "envoi de webhook",
                "verbose_name_plural": "envois de webhooks",
                "ordering": ["-created_at", "-pk"],
            },
        ),
    ]
