# Issue "PPMS you can trust": an alert on a rule naming a scenario proposes the PPMS
# (Proposal) for someone who may validate it (the authorities' permission, or operators
# where the commune's policy says so); an activation can be cancelled as a mistake and an
# end of alert names the authority that ordered it. No single reading decides any more:
# a rule that proposes a PPMS holds at least 2 minutes or is confirmed by 2 sensors, so
# rules below both are given the 2 minutes here.

import django.core.validators
import datetime

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def hold_two_minutes(apps, schema_editor):
    triggers = apps.get_model("ppms", "RuleTrigger")
    rules = apps.get_model("alerts", "Rule")
    below = triggers.objects.filter(
        confirmations__lt=2, rule__duration__lt=datetime.timedelta(minutes=2)
    ).values("rule_id")
    rules.objects.filter(pk__in=below).update(duration=datetime.timedelta(minutes=2))


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0005_rule_scenario_in_ppms'),
        ('ppms', '0005_rule_triggers'),
        ('sensors', '0007_insee_code_rule'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='activation',
            name='automatic',
            field=models.BooleanField(default=False, verbose_name='déclenché automatiquement'),
        ),
        migrations.AddField(
            model_name='activation',
            name='cancel_reason',
            field=models.TextField(blank=True, verbose_name="motif de l'annulation"),
        ),
        migrations.AddField(
            model_name='activation',
            name='cancelled',
            field=models.BooleanField(default=False, verbose_name='annulé (erreur)'),
        ),
        migrations.AddField(
            model_name='activation',
            name='ended_on_order_of',
            field=models.CharField(blank=True, max_length=200, verbose_name="fin d'alerte ordonnée par"),
        ),
        migrations.AddField(
            model_name='ruletrigger',
            name='auto_activate_after',
            field=models.DurationField(blank=True, help_text="Vide : jamais (par défaut). Pour les événements très rapides (nuage toxique) : le PPMS est déclenché si personne n'a validé ni écarté la proposition à temps.", null=True, verbose_name='déclencher automatiquement sans réponse après'),
        ),
        migrations.AddField(
            model_name='ruletrigger',
            name='confirmations',
            field=models.PositiveSmallIntegerField(default=1, help_text="La proposition n'est faite que lorsque ce nombre de capteurs de la règle sont en alerte (k sur n).", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(100)], verbose_name='capteurs qui confirment'),
        ),
        migrations.AlterField(
            model_name='activationevent',
            name='kind',
            field=models.CharField(choices=[('started', 'Déclenchement'), ('extended', 'Écoles ajoutées'), ('alarm', "Alarme d'une école"), ('escalated', 'Relance des écoles sans réponse'), ('ended', "Fin d'alerte"), ('cancelled', 'Annulation (déclenchement par erreur)')], max_length=16, verbose_name='type'),
        ),
        migrations.AlterField(
            model_name='ruletrigger',
            name='scenario',
            field=models.CharField(choices=[('shelter', "Mise à l'abri"), ('confinement', 'Confinement'), ('evacuation', 'Évacuation'), ('intrusion', "S'échapper ou se cacher (intrusion)")], max_length=16, verbose_name='scénario PPMS à proposer'),
        ),
        migrations.CreateModel(
            name='CommunePolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('operators_validate', models.BooleanField(default=False, help_text="Les opérateurs du CSU de la commune peuvent valider ou écarter une proposition de déclenchement, comme l'autorité.", verbose_name='les opérateurs valident les déclenchements')),
                ('commune', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='ppms_policy', to='sensors.commune', verbose_name='commune')),
            ],
            options={
                'verbose_name': "règles PPMS d'une commune",
                'verbose_name_plural': 'règles PPMS des communes',
            },
        ),
        migrations.CreateModel(
            name='Proposal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scenario', models.CharField(choices=[('shelter', "Mise à l'abri"), ('confinement', 'Confinement'), ('evacuation', 'Évacuation'), ('intrusion', "S'échapper ou se cacher (intrusion)")], max_length=16, verbose_name='posture')),
                ('title', models.CharField(max_length=200, verbose_name='titre')),
                ('state', models.CharField(choices=[('pending', 'À valider'), ('validated', 'Validée'), ('dismissed', 'Écartée'), ('cancelled', 'Annulée (erreur)')], default='pending', max_length=16, verbose_name='état')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='proposée le')),
                ('auto_activate_at', models.DateTimeField(blank=True, db_index=True, null=True, verbose_name='déclenchée automatiquement le')),
                ('decided_at', models.DateTimeField(blank=True, null=True, verbose_name='décidée le')),
                ('reason', models.TextField(blank=True, verbose_name='motif')),
                ('activation', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='proposal', to='ppms.activation', verbose_name='déclenchement')),
                ('alerts', models.ManyToManyField(related_name='ppms_proposals', to='alerts.alert', verbose_name='alertes')),
                ('communes', models.ManyToManyField(related_name='+', to='sensors.commune', verbose_name='communes')),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='décidée par')),
                ('rule', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ppms_proposals', to='alerts.rule', verbose_name='règle')),
                ('schools', models.ManyToManyField(related_name='+', to='ppms.school', verbose_name='écoles')),
                ('zones', models.ManyToManyField(blank=True, to='sensors.zone', verbose_name='zones')),
            ],
            options={
                'verbose_name': 'proposition de déclenchement',
                'verbose_name_plural': 'propositions de déclenchement',
                'ordering': ['-created_at', '-pk'],
                'permissions': [('validate_activation', 'Valider un déclenchement PPMS')],
            },
        ),
        migrations.RunPython(hold_two_minutes, migrations.RunPython.noop),
    ]
