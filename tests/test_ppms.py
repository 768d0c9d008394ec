"""The PPMS workflow's core: activation (proposed by an alert, once per incident; by an operator),
directors' reports and their validation, end of alert, live events (the escalation ladder:
test_ppms_ladder.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from ppms.models import Activation, Proposal, StatusUpdate
from ppms.services import ppms_activate, ppms_report
from tests.alerting import feed, make_rule
from tests.conftest import make_school, make_sensor
from tests.ppms_helpers import end_of_alert
from tests.test_live import connect_as

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def flood_schools(commune, flood_zone):
    schools = [make_school(commune, uai, pupils=200) for uai in ("0370001A", "0370002B")]
    for school in schools:
        school.zones.add(flood_zone)
    make_school(commune, "0370003C")  # on high ground
    return schools


@pytest.fixture
def flood_rule(flood_zone):
    rule = make_rule(
        name="Cher : évacuation (4,5 m)",
        sensor_kind="water",
        metric="level",
        threshold=4.5,
        severity="critical",
        duration=timedelta(minutes=2),
        ppms_scenario="evacuation",
    )
    rule.zones.add(flood_zone)
    return rule


def test_an_alert_on_a_ppms_rule_proposes_it_once_for_the_schools_of_its_zones(
    commune, flood_zone, flood_schools, flood_rule, django_capture_on_commit_callbacks
):
    gauges = [make_sensor(commune, f"jlt-river-0{n}", kind="water") for n in (1, 2)]
    for gauge in gauges:
        gauge.zones.add(flood_zone)
    with django_capture_on_commit_callbacks(execute=True):
        feed(gauges[0], [3.0, 4.6, 4.7, 4.8], metric="level")
        feed(gauges[1], [4.7, 4.8, 4.9], metric="level", start=T0 + timedelta(minutes=5))

    assert not Activation.objects.exists()  # a human decides
    [proposal] = Proposal.objects.all()
    assert (proposal.scenario, proposal.state) == ("evacuation", "pending")
    assert set(proposal.schools.values_list("uai", flat=True)) == {"0370001A", "0370002B"}
    assert proposal.alerts.count() == 2


def test_an_operator_activates_a_zone_or_chosen_schools(
    commune, flood_zone, flood_schools, operator
):
    other = make_school(commune, "0370009Z")
    activation = ppms_activate(
        scenario="confinement",
        title="Nuage toxique",
        source="operator",
        zones=[flood_zone],
        schools=[other],
        by=operator,
    )
    assert activation.statuses.count() == 3
    assert activation.started_by == operator
    with pytest.raises(ValidationError) as error:
        ppms_activate(scenario="shelter", title="Rien", source="operator")
    assert "schools" in error.value.message_dict


def test_a_directors_report_is_kept_with_who_and_when(school, director):
    activation = ppms_activate(
        scenario="intrusion", title="Intrusion", source="school", schools=[school], now=T0
    )
    status = activation.statuses.get()
    ppms_report(
        status=status,
        by=director,
        now=T0 + timedelta(minutes=3),
        report={
            "state": "safe",
            "pupils_present": 180,
            "pupils_absent": 20,
            "pupils_missing": 0,
            "pupils_injured": 0,
            "adults_present": 12,
            "location": "Salle polyvalente",
        },
    )
    ppms_report(
        status=status,
        by=director,
        now=T0 + timedelta(minutes=8),
        report={"state": "needs_help", "pupils_injured": 1, "needs": "Un blessé léger"},
    )
    status.refresh_from_db()
    assert (status.state, status.pupils_present, status.pupils_injured) == ("needs_help", 180, 1)
    assert status.posture == "intrusion"
    history = list(StatusUpdate.objects.values_list("state", "by__username", "at"))
    assert history == [
        ("safe", "directeur", T0 + timedelta(minutes=3)),
        ("needs_help", "directeur", T0 + timedelta(minutes=8)),
    ]


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({"state": "pending"}, "state"),
        ({"state": "safe", "pupils_present": -1}, "pupils_present"),
        ({"state": "safe", "adults_missing": "deux"}, "adults_missing"),
        ({"state": "safe", "pupils_present": 400}, "pupils_present"),  # 200 pupils enrolled
    ],
)
def test_a_report_that_does_not_add_up_is_refused_with_a_clear_message(school, report, field):
    activation = ppms_activate(scenario="shelter", title="t", source="operator", schools=[school])
    with pytest.raises(ValidationError) as error:
        ppms_report(status=activation.statuses.get(), report=report, by=None)
    assert field in error.value.message_dict
    assert activation.statuses.get().state == "pending"


def test_after_the_end_of_alert_no_report_is_taken(school, operator, director):
    activation = ppms_activate(scenario="shelter", title="t", source="operator", schools=[school])
    end_of_alert(activation=activation, by=operator)
    activation.refresh_from_db()
    assert activation.ended_by == operator
    with pytest.raises(ValidationError):
        ppms_report(status=activation.statuses.get(), report={"state": "safe"}, by=director)
    with pytest.raises(ValidationError):
        end_of_alert(activation=activation, by=operator)


@pytest.mark.django_db(transaction=True)
async def test_the_director_of_a_concerned_school_hears_the_activation_silently_for_an_intrusion(
    client, director, school, commune, django_user_model
):
    other = await sync_to_async(make_school)(commune, "0370099X")
    other_director = await sync_to_async(django_user_model.objects.create_user)(
        "directeur-autre", password="pw"
    )
    await sync_to_async(other.directors.add)(other_director)
    mine = await connect_as(client, "directeur")
    theirs = await connect_as(client, "directeur-autre")
    await sync_to_async(ppms_activate)(
        scenario="intrusion", title="Intrusion signalée", source="operator", schools=[school]
    )
    event = await mine.receive_json_from(timeout=3)
    assert (event["type"], event["event"]) == ("ppms", "activated")
    assert event["activation"]["silent"] is True
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()
