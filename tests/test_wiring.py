"""The wiring of the apps (csu/apps.py): every periodic task exists, every signal has its
receivers once, and a change of configuration reaches every process's caches."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone

from alerts import receivers as alerts_receivers
from alerts.models import Rule
from alerts.signals import alert_opened
from core import access, live
from core.cache import forget_all
from core.signals import delivery_changed
from csu.celery import app
from ppms import receivers as ppms_receivers
from ppms.models import RuleTrigger, School
from sensors import directory, rollups
from sensors import live as sensors_live
from sensors.models import Operator, Sensor, Zone
from sensors.signals import StoredReading, batch_committed, batch_writing, sensor_state_changed
from tests.conftest import make_sensor, make_user, sign_in

ROOT = Path(__file__).resolve().parent.parent

# Who hears what: the receivers csu/apps.py connects, each exactly once.
WIRING = [
    (batch_writing, None, alerts_receivers.on_batch_writing),
    (batch_writing, None, rollups.on_batch_writing),
    (batch_committed, None, sensors_live.on_batch_committed),
    (sensor_state_changed, None, sensors_live.on_sensor_state_changed),
    (sensor_state_changed, None, alerts_receivers.on_sensor_state_changed),
    (alert_opened, None, ppms_receivers.on_alert_opened),
    (delivery_changed, None, ppms_receivers.on_delivery_changed),
    (pre_save, get_user_model(), access.remember_account),
    (post_save, get_user_model(), access.on_account_saved),
    (post_delete, get_user_model(), access.on_account_deleted),
    (user_logged_out, None, access.on_logged_out),
    (post_save, Operator, access.on_scope_saved),
    (post_delete, Operator, access.on_scope_saved),
    *[
        (m2m_changed, through, access.on_scope_m2m_changed)
        for through in (
            get_user_model().groups.through,
            Operator.communes.through,
            School.directors.through,
        )
    ],
    *[
        (signal, model, forget_all)
        for model in (Sensor, Zone, Rule, RuleTrigger)
        for signal in (post_save, post_delete)
    ],
    *[
        (m2m_changed, through, forget_all)
        for through in (Sensor.zones.through, Rule.zones.through, Rule.communes.through)
    ],
]


def times_connected(signal, sender, receiver) -> int:
    """How many of ``signal``'s receivers for ``sender`` are ``receiver``."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    return [*sync_receivers, *async_receivers].count(receiver)


def test_every_task_of_the_beat_schedule_exists():
    app.loader.import_default_modules()

    missing = [
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] not in app.tasks
    ]

    assert missing == []


@pytest.mark.parametrize(
    "signal, sender, receiver",
    WIRING,
    ids=[
        f"{receiver.__module__}.{receiver.__name__}-{i}"
        for i, (_, _, receiver) in enumerate(WIRING)
    ],
)
def test_every_receiver_is_connected_once_even_if_the_wiring_runs_again(signal, sender, receiver):
    apps.get_app_config("csu").ready()  # a second run (tests, reloads) connects nothing more

    assert times_connected(signal, sender, receiver) == 1


def test_no_app_but_csu_connects_a_receiver_to_another_apps_signal():
    for name in ("core", "sensors", "alerts", "ppms", "dashboard"):
        config = apps.get_app_config(name)
        assert "ready" not in type(config).__dict__, (
            f"{name} connects signals: do it in csu/apps.py"
        )


# --- One cache, one invalidation ---------------------------------------------------------


def test_a_sensor_moved_to_another_commune_in_the_admin_is_pushed_to_its_new_commune_at_once(
    admin_client, commune, other_commune, monkeypatch
):
    sensor = make_sensor(commune, "jlt-air-01")
    assert directory.by_ref("jlt-air-01").commune_id == commune.pk  # cached from now on
    pushed = []
    monkeypatch.setattr(live, "send", lambda group, payload, **_: pushed.append(group))

    response = admin_client.post(
        f"/admin/sensors/sensor/{sensor.pk}/change/",
        {
            "ref": sensor.ref,
            "name": sensor.name,
            "kind": sensor.kind,
            "active": "on",
            "commune": other_commune.pk,
            "latitude": "47.35",
            "longitude": "0.66",
            "expected_interval": "60",
        },
    )
    coalescer = sensors_live.ReadingsCoalescer()
    coalescer.add([StoredReading(sensor.pk, "pm25", timezone.now(), 12.0)])
    coalescer.flush()

    assert response.status_code == 302, response.content.decode()[:2000]
    assert directory.by_ref("jlt-air-01").commune_id == other_commune.pk
    assert pushed == [live.commune_group(other_commune.pk)]


ASK_SCRIPT = """
import sys
import django
django.setup()
from sensors import directory
print("ready", flush=True)
for line in sys.stdin:
    entry = directory.by_ref(line.strip())
    print(entry.commune_id if entry else "none", flush=True)
"""


@pytest.fixture
def other_process(transactional_db, tmp_path):
    """Another process of the CSU (an ingest worker, say) on this test's database, keeping
    its caches CONFIG_CACHE_S = 1 second; it answers the commune of the refs it is sent."""
    env = dict(os.environ, CONFIG_CACHE_S="1", DJANGO_SETTINGS_MODULE="csu.settings")
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        data = tmp_path / "data"
        data.mkdir()
        (data / "csu.sqlite3").symlink_to(database["NAME"])
        env["CSU_DATA_DIR"] = str(data)
        env.pop("DATABASE_URL", None)
    else:
        env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        )
    process = subprocess.Popen(
        [sys.executable, "-c", ASK_SCRIPT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"

    def ask(ref: str) -> str:
        process.stdin.write(ref + "\n")
        process.stdin.flush()
        return process.stdout.readline().strip()

    yield ask
    process.stdin.close()
    process.wait(10)


def test_a_change_in_the_admin_reaches_another_process_within_its_ttl(
    other_process, client, django_user_model, commune, other_commune
):
    sensor = make_sensor(commune, "jlt-air-01")
    admin = make_user(django_user_model, "admin", is_staff=True, is_superuser=True)
    sign_in(client, admin)
    assert other_process("jlt-air-01") == str(commune.pk)  # read, and kept

    response = client.post(
        f"/admin/sensors/sensor/{sensor.pk}/change/",
        {
            "ref": sensor.ref,
            "name": sensor.name,
            "kind": sensor.kind,
            "active": "on",
            "commune": other_commune.pk,
            "latitude": "47.35",
            "longitude": "0.66",
            "expected_interval": "60",
        },
    )
    changed = time.monotonic()
    assert response.status_code == 302
    answers = []
    while time.monotonic() - changed < 3:
        answers.append(other_process("jlt-air-01"))
        if answers[-1] == str(other_commune.pk):
            break
        time.sleep(0.1)

    assert answers[-1] == str(other_commune.pk)
    assert time.monotonic() - changed <= 1 + 0.5  # its TTL, and the time to ask


def test_the_embedded_runner_logs_no_request_unless_asked():
    from csu.embedded import server_config
    from csu.management.commands.run_embedded import Command

    options = Command().create_parser("manage.py", "run_embedded").parse_args([])
    assert options.access_log is False
    assert server_config(host="127.0.0.1", port=8000, access_log=False).access_log is False
    assert server_config(host="127.0.0.1", port=8000, access_log=True).access_log is True
