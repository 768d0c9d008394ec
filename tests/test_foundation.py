import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from csu.asgi import application
from dashboard.consumers import CLOSE_UNAUTHENTICATED
from ppms.models import School
from sensors.models import Commune, Sensor
from tests.conftest import log_in_with_the_form, make_school, make_sensor, sign_in

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def monitoring(client, settings):
    """A monitoring system: the metrics token."""
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_healthz_reports_each_service_to_monitoring(client, db, monitoring):
    response = client.get("/healthz", **monitoring)
    body = response.json()
    assert set(body["checks"]) == {"database", "redis", "broker", "ingest"}
    assert body["checks"]["database"] == "ok"
    assert response.status_code == (200 if body["status"] == "ok" else 503)


def test_healthz_tells_the_public_only_up_or_down(client, db, settings):
    # The pen test: the public learnt which services ran, and ingest's lag and queue.
    settings.MQTT_URL = "mqtt://127.0.0.1:9"  # the discard port: nothing listens
    settings.METRICS_TOKEN = TOKEN
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}):
        response = client.get("/healthz", **headers)
        assert response.status_code == 503
        assert response.json() == {"status": "error"}


def test_healthz_says_503_when_the_broker_is_unreachable(client, db, settings, monitoring):
    settings.MQTT_URL = "mqtt://127.0.0.1:9"  # the discard port: nothing listens
    response = client.get("/healthz", **monitoring)
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")


@pytest.mark.parametrize("path", ["/", "/admin/"])
def test_pages_send_anonymous_visitors_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_api_answers_401_to_anonymous_callers(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 401


def test_the_api_schema_is_served_to_a_logged_in_user(client, operator):
    sign_in(client, operator)
    response = client.get("/api/schema/")
    assert response.status_code == 200


def test_the_login_page_is_in_french_by_default(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "Mot de passe" in response.content.decode()
    assert 'lang="fr"' in response.content.decode()


def test_the_login_page_speaks_english_when_the_browser_asks(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en")
    assert 'lang="en"' in response.content.decode()
    assert "Password" in response.content.decode()


def test_a_user_logs_in_with_the_form_and_sees_the_home_page(client, operator, sensor):
    response = log_in_with_the_form(client, operator, follow=True)
    assert response.status_code == 200
    assert "1 capteur supervisé" in response.content.decode()


def test_an_operator_sees_only_the_sensors_and_schools_of_their_communes(
    operator, commune, other_commune
):
    mine = make_sensor(commune, "jlt-air-01")
    make_sensor(other_commune, "bal-air-01")
    my_school = make_school(commune, "0370001A")
    make_school(other_commune, "0370002B")
    assert list(Sensor.objects.visible_to(operator)) == [mine]
    assert list(School.objects.visible_to(operator)) == [my_school]
    assert list(Commune.objects.visible_to(operator)) == [commune]


def test_a_metropole_operator_sees_every_commune(metropole_operator, commune, other_commune):
    make_sensor(commune, "jlt-air-01")
    make_sensor(other_commune, "bal-air-01")
    assert Sensor.objects.visible_to(metropole_operator).count() == 2
    assert Commune.objects.visible_to(metropole_operator).count() == 2


def test_a_director_sees_only_their_school_and_no_sensor(director, school, commune):
    make_school(commune, "0370009Z")
    make_sensor(commune)
    assert list(School.objects.visible_to(director)) == [school]
    assert not Sensor.objects.visible_to(director).exists()
    assert not Commune.objects.visible_to(director).exists()


def test_an_operator_profile_without_the_operator_role_sees_nothing(django_user_model, commune):
    from sensors.models import Operator

    user = django_user_model.objects.create_user("sans-role", password="pw")
    Operator.objects.create(user=user, all_communes=True)
    make_sensor(commune)
    assert not Sensor.objects.visible_to(user).exists()


def test_the_director_home_page_lists_their_school_only(client, director, school, commune):
    make_school(commune, "0370009Z", name="École voisine")
    sign_in(client, director)
    page = client.get("/", follow=True).content.decode()  # their PPMS page
    assert school.name in page
    assert "École voisine" not in page


def test_the_admins_group_may_change_sensors_but_not_readings(db):
    from django.contrib.auth.models import Group

    perms = set(Group.objects.get(name="admins").permissions.values_list("codename", flat=True))
    assert {"add_sensor", "change_sensor", "change_school", "add_threshold"} & perms >= {
        "add_sensor",
        "change_sensor",
        "change_school",
    }
    assert "change_reading" not in perms
    assert "view_reading" in perms


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_websocket_is_closed_with_4401():
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed: a page can read the code of a close
    closed = await communicator.receive_output()
    assert (closed["type"], closed["code"]) == ("websocket.close", CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


def test_production_settings_pass_the_deployment_checks(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        DJANGO_SECRET_KEY="a-long-random-production-key-" + "x" * 40,
        DATABASE_URL="postgres://csu@db.invalid:5432/csu",
        REDIS_URL="redis://redis.invalid:6379/0",
        MQTT_URL="mqtt://csu-ingest:secret@mosquitto.invalid:1883",
        ALLOWED_HOSTS="csu.example.fr",
        CSU_DATA_DIR=str(tmp_path),
    )
    env.pop("DJANGO_DEBUG", None)
    env.pop("CSU_HTTPS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stdout + result.stderr
