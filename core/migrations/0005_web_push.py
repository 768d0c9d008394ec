# Web Push: the devices that subscribed, and each notification pushed to one.

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0004_webhook_table'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='notification',
            name='devices',
            field=models.JSONField(blank=True, default=list, encoder=django.core.serializers.json.DjangoJSONEncoder, verbose_name='notifications poussées'),
        ),
        migrations.CreateModel(
            name='PushSubscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('endpoint', models.URLField(max_length=1000, unique=True, verbose_name='adresse du service de push')),
                ('p256dh', models.CharField(max_length=200, verbose_name='clé publique')),
                ('auth', models.CharField(max_length=100, verbose_name="secret d'authentification")),
                ('user_agent', models.CharField(blank=True, max_length=300, verbose_name='navigateur')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='abonné le')),
                ('last_pushed_at', models.DateTimeField(blank=True, null=True, verbose_name='dernier envoi réussi')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='push_subscriptions', to=settings.AUTH_USER_MODEL, verbose_name='utilisateur')),
            ],
            options={
                'verbose_name': 'abonnement aux notifications',
                'verbose_name_plural': 'abonnements aux notifications',
                'ordering': ['user', '-created_at'],
            },
        ),
        migrations.CreateModel(
            name='DevicePush',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('about', models.CharField(blank=True, db_index=True, max_length=40)),
                ('payload', models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ('status', models.CharField(choices=[('pending', 'en cours'), ('delivered', 'remis au service de push'), ('failed', 'non remis'), ('gone', 'appareil désabonné')], default='pending', max_length=12)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('notification', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='device_pushes', to='core.notification')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('subscription', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='pushes', to='core.pushsubscription')),
            ],
            options={
                'verbose_name': 'notification poussée',
                'verbose_name_plural': 'notifications poussées',
                'ordering': ['-created_at', '-pk'],
            },
        ),
    ]
