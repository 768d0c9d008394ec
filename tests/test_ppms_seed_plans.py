"""The demo town's schools each have their PPMS plan, one per posture."""

from django.core.management import call_command

from ppms.models import PpmsPlan, Scenario, School


def test_seeding_gives_every_demo_school_a_plan_for_each_posture(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115

    schools = School.objects.count()
    assert PpmsPlan.objects.count() == schools * len(Scenario.values)
    evacuation = PpmsPlan.objects.filter(scenario="evacuation")
    assert all(plan.assembly_point for plan in evacuation)
    confinement = PpmsPlan.objects.filter(scenario="confinement")
    assert all("calfeutrer" in plan.instructions for plan in confinement)
