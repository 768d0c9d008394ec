"""The JSON shape of an activation, of a school's status and of a proposal, shared by the
live pushes, the webhooks and the pages."""

from django.utils import timezone

from alerts.payloads import rule_ref
from sensors.serializers import commune_ref

from .models import COUNTS, Activation, Proposal, SchoolStatus, open_schools


def activation_summary(activation: Activation) -> dict:
    return {
        "id": activation.pk,
        "scenario": activation.scenario,
        "title": activation.title,
        "source": activation.source,
        "drill": activation.drill,
        "silent": activation.scenario == "intrusion",  # never betray hidden people
        "started_at": activation.started_at.isoformat(),
        "ended_at": activation.ended_at.isoformat() if activation.ended_at else None,
        "cancelled": activation.cancelled,
        "automatic": activation.automatic,
        "shelter": shelter_summary(activation.shelter) if activation.shelter_id else None,
        "vigicrues_colour": activation.vigicrues_colour or None,
    }


def shelter_summary(shelter) -> dict:
    """An evacuation's destination, as the schools are told it."""
    return {"id": shelter.pk, "name": shelter.name, "address": shelter.address}


def status_summary(status: SchoolStatus) -> dict:
    return {
        "school": status.school.uai,
        "school_name": status.school.name,
        "state": status.state,
        "posture": status.posture,
        **{field: getattr(status, field) for field in COUNTS},
        "pupils_uncounted": status.pupils_uncounted,
        "adults_uncounted": status.adults_uncounted,
        "location": status.location,
        "groups": status.groups,
        "needs": status.needs,
        "updated_at": status.updated_at.isoformat() if status.updated_at else None,
        "escalated_at": status.escalated_at.isoformat() if status.escalated_at else None,
    }


def proposal_summary(proposal: Proposal, now=None) -> dict:
    """A proposal with what an operator decides on: its alerts (sensor, value) and its
    schools, each saying whether pupils are there now (days, hours, holidays)."""
    schools = list(proposal.schools.select_related("commune").order_by("name", "uai"))
    open_now = open_schools(schools, now or timezone.now())
    return {
        "id": proposal.pk,
        "scenario": proposal.scenario,
        "title": proposal.title,
        "state": proposal.state,
        "rule": rule_ref(proposal.rule),
        "created_at": proposal.created_at.isoformat(),
        "auto_activate_at": _iso(proposal.auto_activate_at),
        "decided_at": _iso(proposal.decided_at),
        "decided_by": proposal.decided_by.get_username() if proposal.decided_by else None,
        "reason": proposal.reason,
        "activation": proposal.activation_id,
        "silent": proposal.scenario == "intrusion",
        "alerts": [
            {
                "id": alert.pk,
                "title": alert.title,
                "sensor": alert.sensor.ref,
                "metric": alert.metric,
                "last_value": alert.last_value,
                "last_value_at": _iso(alert.last_value_at),
            }
            for alert in proposal.alerts.select_related("sensor").order_by("opened_at", "pk")
        ],
        "schools": [
            {
                "school": school.uai,
                "school_name": school.name,
                "commune": commune_ref(school.commune),
                "open": school.pk in open_now,
            }
            for school in schools
        ],
        "schools_open": len(open_now),
    }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None
