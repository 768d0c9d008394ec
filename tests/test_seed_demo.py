import io
import stat
from base64 import b32decode, b32encode
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.roles import ADMINS, DIRECTORS, OPERATORS
from ppms.models import School, Shelter
from sensors.metrics import Kind
from sensors.models import Commune, Operator, Sensor, Zone

PASSWORD = "demo-password-for-tests"
MAIN_INSEE = "37122"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The command hashes two dozen passwords; the default hasher takes seconds for that.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def seed_with_password() -> str:
    return seed("--password", PASSWORD)


def user(username: str):
    # Fetched afresh each time: core.roles caches a user's groups on the instance.
    return get_user_model().objects.get(username=username)


def printed_password(output: str, username: str) -> str:
    for line in output.splitlines():
        fields = line.split()
        if fields and fields[0] == username:
            return fields[1]
    raise AssertionError(f"{username} not in the output")


def contains(polygon: dict, lon: float, lat: float) -> bool:
    """Tell whether the point lies inside the polygon's outer ring (ray casting)."""
    ring = polygon["coordinates"][0]
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def snapshot() -> dict[str, set]:
    return {
        "communes": set(Commune.objects.values_list("pk", flat=True)),
        "zones": set(Zone.objects.values_list("pk", flat=True)),
        "sensors": set(Sensor.objects.values_list("pk", flat=True)),
        "sensor zones": set(Sensor.zones.through.objects.values_list("pk", flat=True)),
        "schools": set(School.objects.values_list("pk", flat=True)),
        "school zones": set(School.zones.through.objects.values_list("pk", flat=True)),
        "directors": set(School.directors.through.objects.values_list("pk", flat=True)),
        "shelters": set(Shelter.objects.values_list("pk", flat=True)),
        "users": set(get_user_model().objects.values_list("pk", flat=True)),
        "operators": set(Operator.objects.values_list("pk", flat=True)),
        "memberships": set(get_user_model().groups.through.objects.values_list("pk", flat=True)),
    }


def test_it_creates_the_main_town_with_eighteen_schools_and_about_3600_pupils():
    seed_with_password()

    main_schools = School.objects.filter(commune__insee_code=MAIN_INSEE)
    assert main_schools.count() == 18
    assert 3400 <= sum(main_schools.values_list("pupils", flat=True)) <= 3800
    assert School.objects.exclude(commune__insee_code=MAIN_INSEE).count() >= 2
    assert Commune.objects.count() == 3


def test_it_creates_about_sixty_active_sensors_of_every_kind_mostly_in_the_main_town():
    seed_with_password()

    sensors = Sensor.objects.all()
    assert 55 <= sensors.count() <= 65
    assert set(sensors.values_list("kind", flat=True)) == set(Kind.values)
    assert all(sensor.active for sensor in sensors)
    in_main = sensors.filter(commune__insee_code=MAIN_INSEE).count()
    assert in_main > sensors.count() / 2
    assert all(sensor.building for sensor in sensors.filter(kind=Kind.OPENING))


def test_it_puts_river_level_sensors_and_at_least_four_schools_in_the_flood_zone():
    seed_with_password()

    flood = Zone.objects.get(commune__insee_code=MAIN_INSEE, type=Zone.Type.FLOOD)
    rivers = flood.sensors.filter(kind=Kind.WATER, ref__contains="river")
    assert 3 <= rivers.count() <= 4
    assert flood.schools.count() >= 4


def test_it_gives_every_zone_a_closed_polygon_in_lon_lat_order():
    seed_with_password()

    for zone in Zone.objects.exclude(geometry=None):
        ring = zone.geometry["coordinates"][0]
        assert zone.geometry["type"] == "Polygon"
        assert ring[0] == ring[-1], zone
        assert all(0.5 < lon < 0.8 and 47.3 < lat < 47.4 for lon, lat in ring), zone
    assert Zone.objects.filter(type=Zone.Type.SEVESO).exists()


def test_it_places_every_sensor_and_school_inside_the_polygons_of_its_zones():
    seed_with_password()

    for item in [*Sensor.objects.all(), *School.objects.all()]:
        zones = list(item.zones.all())
        assert zones, item
        for zone in zones:
            assert zone.commune_id == item.commune_id, (item, zone)
            assert contains(zone.geometry, item.longitude, item.latitude), (item, zone)


def test_it_creates_three_closed_empty_shelters():
    seed_with_password()

    shelters = Shelter.objects.all()
    assert shelters.count() == 3
    assert all(not s.is_open and s.occupancy == 0 and s.capacity > 0 for s in shelters)


def test_it_gives_each_school_one_director_who_directs_only_that_school():
    seed_with_password()

    for school in School.objects.all():
        (director,) = school.directors.all()
        assert director.username == f"directeur-{school.uai.lower()}"
        assert director.groups.filter(name=DIRECTORS).exists()
        assert list(director.schools.all()) == [school]


def test_it_keeps_the_same_counts_and_primary_keys_when_run_twice():
    seed_with_password()
    before = snapshot()

    seed_with_password()

    assert snapshot() == before


def test_it_limits_the_local_operator_to_the_main_town_sensors():
    seed_with_password()

    operateur = user("operateur")
    visible = Sensor.objects.visible_to(operateur)

    assert operateur.groups.filter(name=OPERATORS).exists()
    assert visible.count() == Sensor.objects.filter(commune__insee_code=MAIN_INSEE).count()
    assert set(visible.values_list("commune__insee_code", flat=True)) == {MAIN_INSEE}


def test_it_shows_every_commune_sensors_to_the_metropole_operator():
    seed_with_password()

    visible = Sensor.objects.visible_to(user("operateur-metropole"))

    assert visible.count() == Sensor.objects.count()
    assert visible.values("commune").distinct().count() == 3


def test_it_shows_a_director_only_their_school():
    seed_with_password()
    school = School.objects.get(name="Groupe scolaire Rabière")

    visible = School.objects.visible_to(user(f"directeur-{school.uai.lower()}"))

    assert list(visible) == [school]


def test_it_makes_the_admin_a_superuser_in_the_admins_group():
    seed_with_password()

    admin = user("admin")

    assert admin.is_staff and admin.is_superuser
    assert admin.groups.filter(name=ADMINS).exists()


def test_it_sets_the_given_password_on_every_demo_user():
    seed_with_password()

    assert user("operateur").check_password(PASSWORD)
    assert user("admin").check_password(PASSWORD)
    assert all(
        director.check_password(PASSWORD)
        for director in Group.objects.get(name=DIRECTORS).user_set.all()
    )


def test_it_generates_a_distinct_random_password_for_each_new_user():
    output = seed()

    operator_password = printed_password(output, "operateur")
    admin_password = printed_password(output, "admin")
    assert operator_password != admin_password
    assert user("operateur").check_password(operator_password)
    assert user("admin").check_password(admin_password)


def test_it_leaves_existing_passwords_alone_without_the_password_option():
    seed_with_password()

    output = seed()

    assert user("operateur").check_password(PASSWORD)
    assert printed_password(output, "operateur") == "(unchanged)"


def test_it_prints_the_demo_usernames_and_a_summary():
    output = seed_with_password()

    for username in ("operateur", "operateur-metropole", "admin"):
        assert username in output
    for uai in School.objects.values_list("uai", flat=True):
        assert f"directeur-{uai.lower()}" in output
    assert "Demo town ready: 3 communes" in output
    assert "60 sensors" in output


def printed_key(output: str, username: str) -> str:
    """The authenticator key printed for ``username`` (after the users' table)."""
    keys = output.split("Authenticator keys")[1]
    for line in keys.splitlines():
        fields = line.split()
        if fields and fields[0] == username:
            return "".join(fields[1:])
    raise AssertionError(f"no key printed for {username}")


def test_the_accounts_that_need_a_second_factor_get_an_app_key_it_prints():
    """The demo stays usable with the second factor required: each key goes into an app."""
    output = seed_with_password()

    for username in ("operateur", "autorite", "operateur-metropole", "admin"):
        device = TOTPDevice.objects.get(user__username=username, confirmed=True)
        assert printed_key(output, username) == b32encode(device.bin_key).decode()
    assert not TOTPDevice.objects.filter(user__groups__name=DIRECTORS).exists()


def test_a_key_is_printed_again_only_with_a_new_password():
    seed_with_password()
    key = TOTPDevice.objects.get(user__username="operateur").key

    output = seed()

    assert TOTPDevice.objects.get(user__username="operateur").key == key
    assert "(unchanged)" in output.split("Authenticator keys")[1]


def accounts_file(data_dir) -> dict[str, list[str]]:
    lines = (data_dir / "demo-accounts.txt").read_text().splitlines()
    return {row[0]: row for row in (line.split("\t") for line in lines if line[:1] != "#")}


def test_it_writes_every_password_and_key_to_an_accounts_file_only_its_owner_reads(data_dir):
    output = seed()

    accounts = accounts_file(data_dir)
    assert len(accounts) == get_user_model().objects.count()
    for username, password, _, _ in accounts.values():
        assert password == printed_password(output, username)
        assert user(username).check_password(password)
    _, _, key, role = accounts["operateur"]
    device = TOTPDevice.objects.get(user__username="operateur")
    assert device.verify_token(f"{totp(b32decode(key)):06d}")
    assert role == "operator (Joué-lès-Tours)"
    assert accounts["directeur-0370851z"][2] == "-"  # no second factor for directors
    assert stat.S_IMODE((data_dir / "demo-accounts.txt").stat().st_mode) == 0o600
    assert str(data_dir / "demo-accounts.txt") in output


def test_a_second_run_keeps_the_passwords_and_keys_of_the_first_in_the_accounts_file(data_dir):
    seed()
    first = accounts_file(data_dir)

    output = seed()

    assert "(unchanged)" in output
    assert accounts_file(data_dir) == first
