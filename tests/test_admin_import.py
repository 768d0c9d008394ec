"""The Django admin: every changelist opens, and sensors and schools import from CSV."""

import csv
import io

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from ppms.models import School, Shelter
from ppms.resources import SchoolResource
from sensors.metrics import Kind
from sensors.models import Commune, LatestReading, RejectedMessage, Sensor, Zone
from sensors.resources import SensorResource
from tests.conftest import make_school, make_sensor, sign_in

pytestmark = pytest.mark.django_db

SENSOR_HEADER = "ref,name,kind,commune,zones,latitude,longitude,building,expected_interval,active"
SCHOOL_HEADER = "uai,name,address,commune,zones,latitude,longitude,pupils,staff"


# The shared cast (tests/conftest.py) gives ``commune`` (INSEE 37122) and its
# ``flood_zone``; sensors and schools here also belong to a district of that commune.


@pytest.fixture
def centre(commune):
    return Zone.objects.create(commune=commune, name="Centre", type=Zone.Type.DISTRICT)


def csv_file(*lines: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("import.csv", "\n".join(lines).encode(), content_type="text/csv")


def upload(client, model: str, *lines: str):
    """Post a CSV file to the admin's import view, as the import form does."""
    app = "ppms" if model == "school" else "sensors"
    return client.post(
        reverse(f"admin:{app}_{model}_import"),
        {"format": "0", "import_file": csv_file(*lines)},
    )


def confirm(client, model: str, preview):
    """Post the confirm form of a preview page, as its "Confirmer" button does."""
    app = "ppms" if model == "school" else "sensors"
    form = preview.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return client.post(reverse(f"admin:{app}_{model}_process_import"), data)


def dataset(*lines: str) -> tablib.Dataset:
    return tablib.Dataset().load("\n".join(lines), format="csv")


# --- Sensors through the admin ---------------------------------------------------------


def test_it_previews_a_sensor_csv_without_writing_it(admin_client, flood_zone, centre):
    response = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,37122,Centre,47.3521,0.6614,,60,1",
        f"level-cher,Niveau du Cher,water,37122,{flood_zone.name}|Centre,47.3410,0.6702,,300,oui",
    )

    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert [row.import_type for row in result.valid_rows()] == ["new", "new"]
    assert "confirm_form" in response.context
    assert b"air-1" in response.content and b"level-cher" in response.content
    assert not Sensor.objects.exists()


def test_it_creates_the_sensors_of_a_confirmed_import(admin_client, flood_zone, centre):
    preview = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,37122,Centre,47.3521,0.6614,,60,1",
        f"level-cher,Niveau du Cher,water,37122,{flood_zone.name}|Centre,47.3410,0.6702,,300,oui",
    )

    response = confirm(admin_client, "sensor", preview)

    assert response.status_code == 302
    assert response.url == reverse("admin:sensors_sensor_changelist")
    level = Sensor.objects.get(ref="level-cher")
    assert level.name == "Niveau du Cher"
    assert level.kind == "water"
    assert level.commune.insee_code == "37122"
    assert set(level.zones.all()) == {flood_zone, centre}
    assert (level.latitude, level.longitude) == (47.3410, 0.6702)
    assert level.expected_interval == 300
    assert level.active is True
    assert list(Sensor.objects.get(ref="air-1").zones.all()) == [centre]


def test_it_updates_a_sensor_imported_again_instead_of_duplicating_it(
    admin_client, commune, flood_zone, centre
):
    sensor = make_sensor(commune, "air-1", name="Ancien nom")
    sensor.zones.add(flood_zone)

    preview = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,37122,Centre,47.3521,0.6614,,120,0",
    )
    assert [row.import_type for row in preview.context["result"].valid_rows()] == ["update"]
    confirm(admin_client, "sensor", preview)

    assert Sensor.objects.count() == 1
    sensor.refresh_from_db()
    assert sensor.name == "Air mairie"
    assert sensor.expected_interval == 120
    assert sensor.active is False
    assert list(sensor.zones.all()) == [centre]


def test_it_reads_a_semicolon_csv_from_a_french_spreadsheet(admin_client, commune):
    preview = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER.replace(",", ";"),
        "air-1;Air mairie;air;37122;;47,3521;0,6614;;60;1",
    )
    confirm(admin_client, "sensor", preview)

    assert Sensor.objects.get(ref="air-1").latitude == 47.3521


def test_an_empty_interval_is_no_period_and_an_empty_active_flag_is_active(admin_client, commune):
    # No period is guessed: a sensor without one is judged on nothing that needs it.
    preview = upload(
        admin_client, "sensor", SENSOR_HEADER, "air-1,Air mairie,air,37122,,47.35,0.66,,,"
    )
    confirm(admin_client, "sensor", preview)

    sensor = Sensor.objects.get(ref="air-1")
    assert (sensor.expected_interval, sensor.active) == (None, True)


@pytest.mark.parametrize(
    ("bad_line", "field", "message"),
    [
        (
            "air-2,Air école,air,99999,,47.35,0.66,,60,1",
            "commune",
            "aucune commune n'a le code INSEE « 99999 »",
        ),
        ("air-2,Air école,rocket,37122,,47.35,0.66,,60,1", "kind", "rocket"),
        (
            "air-2,Air école,air,37122,Centre|Nulle part,47.35,0.66,,60,1",
            "zones",
            "Zone(s) inconnue(s) dans la commune 37122 : Nulle part.",
        ),
        ("air-2,Air école,air,37122,,97.35,0.66,,60,1", "latitude", "90"),
        ("Air_2,Air école,air,37122,,47.35,0.66,,60,1", "ref", "Minuscules"),
        ("air-2,Air école,air,37122,,quarante,0.66,,60,1", "latitude", "quarante"),
        ("air-2,Air école,air,37122,,47.35,0.66,,60,peut-être", "active", "peut-être"),
    ],
)
def test_it_reports_a_bad_line_with_its_number_and_writes_nothing(
    admin_client, centre, bad_line, field, message
):
    response = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,37122,Centre,47.3521,0.6614,,60,1",
        bad_line,
    )

    assert response.status_code == 200
    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [2]
    errors = result.invalid_rows[0].field_specific_errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert escape(message) in response.content.decode()
    assert "confirm_form" not in response.context
    assert not Sensor.objects.exists()


def test_it_reports_every_bad_line_of_a_file_at_once(admin_client, centre):
    response = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,99999,,47.35,0.66,,60,1",
        "air-2,Air école,air,37122,Centre,47.35,0.66,,60,1",
        "air-3,Air stade,rocket,37122,,147.35,0.66,,60,1",
    )

    invalid = {
        row.number: row.field_specific_errors for row in response.context["result"].invalid_rows
    }
    assert set(invalid) == {1, 3}
    assert set(invalid[3]) == {"kind", "latitude"}


def test_it_refuses_a_zone_of_another_commune(admin_client, centre):
    tours = Commune.objects.create(insee_code="37261", name="Tours")
    Zone.objects.create(commune=tours, name="Rives du Cher")

    response = upload(
        admin_client,
        "sensor",
        SENSOR_HEADER,
        "air-1,Air mairie,air,37122,Rives du Cher,47.35,0.66,,60,1",
    )

    [row] = response.context["result"].invalid_rows
    assert "Rives du Cher" in " ".join(row.field_specific_errors["zones"])


def test_it_exports_sensors_in_the_import_columns(admin_client, commune, flood_zone, centre):
    sensor = make_sensor(commune, "level-cher", Kind.WATER, name="Niveau")
    sensor.zones.add(flood_zone, centre)

    url = reverse("admin:sensors_sensor_export")
    form = admin_client.get(url).context["form"]
    every_column = {name: "on" for name, field in form.fields.items() if field.initial is True}

    response = admin_client.post(url, {"format": "0", "resource": "0", **every_column})

    assert response.status_code == 200
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == SENSOR_HEADER
    # Zones come in name order: "Centre" before "Zone inondable du Cher".
    assert lines[1] == f"level-cher,Niveau,water,37122,Centre|{flood_zone.name},47.35,0.66,,60,1"


def test_an_exported_formula_is_neutralised_and_reimports_as_it_was(admin_client, commune):
    # A name a spreadsheet would run as a formula (CSV injection) gets a quote on export;
    # the import takes it off, so the file goes back as it came out.
    make_sensor(commune, "air-1", Kind.AIR, name='=HYPERLINK("http://evil.example","x")')
    make_sensor(commune, "air-2", Kind.AIR, name="@SUM(1+1)")
    Sensor.objects.filter(ref="air-2").update(longitude=-1.5)
    url = reverse("admin:sensors_sensor_export")
    form = admin_client.get(url).context["form"]
    every_column = {name: "on" for name, field in form.fields.items() if field.initial is True}

    exported = admin_client.post(url, {"format": "0", "resource": "0", **every_column})

    text = exported.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[2][1] == "'@SUM(1+1)"
    assert rows[2][6] == "-1.5"  # a number is no formula
    Sensor.objects.update(name="changed")

    confirm(admin_client, "sensor", upload(admin_client, "sensor", *text.splitlines()))

    assert dict(Sensor.objects.values_list("ref", "name")) == {
        "air-1": '=HYPERLINK("http://evil.example","x")',
        "air-2": "@SUM(1+1)",
    }


def test_a_staff_user_who_may_only_view_sensors_cannot_import_them(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sensor"))
    sign_in(client, viewer)

    assert client.get(reverse("admin:sensors_sensor_changelist")).status_code == 200
    assert client.get(reverse("admin:sensors_sensor_import")).status_code == 403


# --- Sensors through the resource ------------------------------------------------------


def test_the_resource_dry_run_validates_without_writing(centre):
    result = SensorResource().import_data(
        dataset(SENSOR_HEADER, "air-1,Air mairie,air,37122,centre,47.35,0.66,,60,1"),
        dry_run=True,
    )

    assert not result.has_errors() and not result.has_validation_errors()
    assert not Sensor.objects.exists()


def test_the_resource_restores_the_leading_zero_a_spreadsheet_drops(db):
    Commune.objects.create(insee_code="01053", name="Bourg-en-Bresse")

    result = SensorResource().import_data(
        dataset(SENSOR_HEADER, "air-1,Air,air,1053,,46.2,5.22,,60,1"), dry_run=False
    )

    assert not result.has_validation_errors()
    assert Sensor.objects.get(ref="air-1").commune.insee_code == "01053"


# --- Schools ---------------------------------------------------------------------------


def test_it_imports_schools_by_uai(admin_client, commune, flood_zone):
    make_school(commune, "0370001A", name="Ancien nom")

    preview = upload(
        admin_client,
        "school",
        SCHOOL_HEADER,
        "0370001A,École Mairie,1 place de la Mairie,37122,,47.35,0.66,210,14",
        f"0370002B,École du Cher,3 rue du Cher,37122,{flood_zone.name},47.34,0.67,180,12",
    )
    assert not School.objects.filter(uai="0370002B").exists()
    assert [row.import_type for row in preview.context["result"].valid_rows()] == [
        "update",
        "new",
    ]
    response = confirm(admin_client, "school", preview)

    assert response.status_code == 302
    assert School.objects.count() == 2
    assert School.objects.get(uai="0370001A").name == "École Mairie"
    cher = School.objects.get(uai="0370002B")
    assert (cher.pupils, cher.staff) == (180, 12)
    assert list(cher.zones.all()) == [flood_zone]


def test_it_reports_a_bad_uai_on_its_line(admin_client, commune):
    response = upload(
        admin_client,
        "school",
        SCHOOL_HEADER,
        "0370001A,École Mairie,,37122,,47.35,0.66,210,14",
        "370001A,École sans zéro,,37122,,47.35,0.66,90,8",
    )

    [row] = response.context["result"].invalid_rows
    assert row.number == 2
    assert "uai" in row.field_specific_errors
    assert not School.objects.exists()


def test_the_school_resource_refuses_an_unknown_zone(commune):
    result = SchoolResource().import_data(
        dataset(SCHOOL_HEADER, "0370001A,École,,37122,Inconnue,47.35,0.66,210,14"), dry_run=True
    )

    [row] = result.invalid_rows
    assert "Inconnue" in " ".join(row.field_specific_errors["zones"])


# --- Every changelist ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:sensors_commune_changelist",
        "admin:sensors_zone_changelist",
        "admin:sensors_sensor_changelist",
        "admin:sensors_latestreading_changelist",
        "admin:sensors_rejectedmessage_changelist",
        "admin:ppms_school_changelist",
        "admin:ppms_shelter_changelist",
        "admin:auth_user_changelist",
        "admin:sensors_sensor_import",
        "admin:sensors_sensor_export",
        "admin:ppms_school_import",
    ],
)
def test_every_admin_page_answers_a_superuser(admin_client, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 200


def test_the_admin_pages_show_rows(admin_client, sensor, flood_zone, school, admin_user):
    sensor.zones.add(flood_zone)
    reading = LatestReading.objects.create(
        sensor=sensor, metric="pm10", ts="2025-01-01T00:00Z", value=12
    )
    rejected = RejectedMessage.objects.create(
        topic="csu/v1/ghost/up", sensor_ref="ghost", reason=RejectedMessage.Reason.UNKNOWN_SENSOR
    )
    shelter = Shelter.objects.create(
        name="Gymnase", commune=sensor.commune, latitude=47.35, longitude=0.66, capacity=80
    )

    pages = {
        "admin:sensors_sensor_change": sensor.pk,
        "admin:sensors_latestreading_change": reading.pk,
        "admin:sensors_rejectedmessage_change": rejected.pk,
        "admin:ppms_school_change": school.pk,
        "admin:ppms_shelter_change": shelter.pk,
        "admin:auth_user_change": admin_user.pk,
    }
    for url_name, pk in pages.items():
        assert admin_client.get(reverse(url_name, args=[pk])).status_code == 200, url_name
    changelist = admin_client.get(reverse("admin:sensors_rejectedmessage_changelist"))
    assert reverse("admin:sensors_sensor_add") + "?ref=ghost" in changelist.content.decode()


def test_a_non_staff_user_is_sent_to_the_admin_login(client, django_user_model):
    sign_in(client, django_user_model.objects.create_user("operateur"))

    response = client.get(reverse("admin:sensors_sensor_changelist"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# --- Actions and the operator's scope ---------------------------------------------------


def test_the_actions_deactivate_and_activate_sensors(admin_client, sensor):
    url = reverse("admin:sensors_sensor_changelist")

    admin_client.post(url, {"action": "deactivate", "_selected_action": [sensor.pk]})
    sensor.refresh_from_db()
    assert sensor.active is False

    admin_client.post(url, {"action": "activate", "_selected_action": [sensor.pk]})
    sensor.refresh_from_db()
    assert sensor.active is True


def test_an_admin_sets_an_operators_communes_on_the_user_page(
    admin_client, commune, django_user_model
):
    user = django_user_model.objects.create_user("operateur")
    data = {
        "username": "operateur",
        "is_active": "on",
        "date_joined_0": "2025-01-01",
        "date_joined_1": "00:00:00",
        "operator-TOTAL_FORMS": "1",
        "operator-INITIAL_FORMS": "0",
        "operator-MIN_NUM_FORMS": "0",
        "operator-MAX_NUM_FORMS": "1",
        "operator-0-communes": [commune.pk],
        "operator-0-user": user.pk,
    }

    response = admin_client.post(reverse("admin:auth_user_change", args=[user.pk]), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert list(user.operator.communes.all()) == [commune]
    assert user.operator.all_communes is False
