# A rule's PPMS scenario is the PPMS app's now (ppms.RuleTrigger, filled by ppms 0005).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0004_notifications_in_core'),
        ('ppms', '0005_rule_triggers'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='rule',
            name='ppms_scenario',
        ),
    ]
