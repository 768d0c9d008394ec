"""The wiring of CSU: every signal the apps send is connected here, and only here.

Each app announces what happened through the signals it defines and never learns who
listens; reading this file tells who hears what:

- ``sensors.signals.batch_writing`` (inside an ingest batch's transaction): the alerts
  record what their rules must evaluate; the roll-ups mark the late hours stale.
- ``sensors.signals.batch_committed`` (after the commit): the readings go live.
- ``sensors.signals.sensor_state_changed``: the state goes live; the offline rules follow.
- ``alerts.signals.alert_opened``: the PPMS proposes an activation when the rule says so.
- ``core.signals.delivery_changed``: a push or a text about a school of an activation
  changed state; the PPMS board hears it (who was told how).
- a sensor, a zone or a rule changes (admin, API, import): every cache of the process is
  emptied (``core.cache.forget_all``); other processes follow within CONFIG_CACHE_S.
- a user is saved: a changed password or a deactivated account revokes the user's API
  tokens (``core.access``).
- what a user may see changes (the account, its groups, an operator's communes, a
  school's directors, signing out, a deleted account): the user's websockets check again
  and close if they must (``core.access``).
- ``post_migrate``: the role groups get their permissions.
- Django's ``user_login_failed`` and ``user_logged_in``: the sign-in throttle counts the
  failures and forgets them on success (``core.signin_throttle``).
"""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save, pre_save


class CsuConfig(AppConfig):
    name = "csu"
    verbose_name = "CSU"

    def ready(self):
        from django.contrib.auth import get_user_model

        from alerts import receivers as alerts_receivers
        from alerts import triggers
        from alerts.feeds import open_alert_items
        from alerts.models import Rule
        from alerts.signals import alert_opened
        from core import access, signin_throttle
        from core.cache import forget_all
        from core.feeds import register_feed_provider
        from core.models import ApiToken
        from core.roles import ensure_role_groups
        from core.signals import delivery_changed
        from ppms import receivers as ppms_receivers
        from ppms.cap import activation_feed_items
        from ppms.models import RuleTrigger, School
        from ppms.triggers import PpmsTriggers
        from sensors import live as sensors_live
        from sensors import rollups
        from sensors.models import Operator, Sensor, Zone
        from sensors.signals import batch_committed, batch_writing, sensor_state_changed

        User = get_user_model()

        post_migrate.connect(ensure_role_groups, sender=self)
        user_login_failed.connect(signin_throttle.on_login_failed, dispatch_uid="signin-failed")
        user_logged_in.connect(signin_throttle.on_logged_in, dispatch_uid="signin-succeeded")
        pre_save.connect(access.remember_account, sender=User, dispatch_uid="access-before")
        post_save.connect(access.on_account_saved, sender=User, dispatch_uid="access-saved")
        post_delete.connect(access.on_account_deleted, sender=User, dispatch_uid="access-gone")
        post_delete.connect(access.on_token_deleted, sender=ApiToken, dispatch_uid="access-token")
        user_logged_out.connect(access.on_logged_out, dispatch_uid="access-logged-out")
        for signal in (post_save, post_delete):
            signal.connect(access.on_scope_saved, sender=Operator, dispatch_uid="access-operator")
        for through in (User.groups.through, Operator.communes.through, School.directors.through):
            m2m_changed.connect(
                access.on_scope_m2m_changed,
                sender=through,
                dispatch_uid=f"access-{through.__name__}",
            )

        batch_writing.connect(alerts_receivers.on_batch_writing, dispatch_uid="alerts-batch")
        batch_writing.connect(rollups.on_batch_writing, dispatch_uid="rollups-dirty-hours")
        batch_committed.connect(sensors_live.on_batch_committed, dispatch_uid="live-readings")
        sensor_state_changed.connect(
            sensors_live.on_sensor_state_changed, dispatch_uid="live-sensors"
        )
        sensor_state_changed.connect(
            alerts_receivers.on_sensor_state_changed, dispatch_uid="alerts-sensor-state"
        )
        alert_opened.connect(ppms_receivers.on_alert_opened, dispatch_uid="ppms-alert-opened")
        delivery_changed.connect(ppms_receivers.on_delivery_changed, dispatch_uid="ppms-reach")
        # The PPMS scenario a rule sets off, shown by the alerts app without knowing the PPMS.
        triggers.register(PpmsTriggers())

        for model in (Sensor, Zone, Rule, RuleTrigger):
            for signal in (post_save, post_delete):
                signal.connect(forget_all, sender=model, dispatch_uid=f"forget-{model.__name__}")
        for through in (Sensor.zones.through, Rule.zones.through, Rule.communes.through):
            m2m_changed.connect(
                forget_all, sender=through, dispatch_uid=f"forget-{through.__name__}"
            )

        # The entries of the CAP feed (/api/v1/cap/feed/): open alerts, active activations.
        register_feed_provider(open_alert_items)
        register_feed_provider(activation_feed_items)
