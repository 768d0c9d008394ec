# A rule's PPMS scenario moves from the alerts app to the PPMS app: each rule that named
# one gets its RuleTrigger, before alerts drops the column (alerts 0005).

import django.db.models.deletion
from django.db import migrations, models


def copy_scenarios(apps, schema_editor):
    rules = apps.get_model("alerts", "Rule")
    triggers = apps.get_model("ppms", "RuleTrigger")
    triggers.objects.bulk_create(
        triggers(rule_id=rule_id, scenario=scenario)
        for rule_id, scenario in rules.objects.exclude(ppms_scenario="").values_list(
            "pk", "ppms_scenario"
        )
    )


def copy_back(apps, schema_editor):
    rules = apps.get_model("alerts", "Rule")
    for rule_id, scenario in apps.get_model("ppms", "RuleTrigger").objects.values_list(
        "rule_id", "scenario"
    ):
        rules.objects.filter(pk=rule_id).update(ppms_scenario=scenario)


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0004_notifications_in_core'),
        ('ppms', '0004_notifications_in_core'),
    ]

    operations = [
        migrations.CreateModel(
            name='RuleTrigger',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scenario', models.CharField(choices=[('shelter', "Mise à l'abri"), ('confinement', 'Confinement'), ('evacuation', 'Évacuation'), ('intrusion', "S'échapper ou se cacher (intrusion)")], max_length=16, verbose_name='scénario PPMS à déclencher')),
                ('rule', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='ppms_trigger', to='alerts.rule', verbose_name='règle')),
            ],
            options={
                'verbose_name': "déclenchement PPMS d'une règle",
                'verbose_name_plural': 'déclenchements PPMS des règles',
            },
        ),
        migrations.RunPython(copy_scenarios, copy_back),
    ]
