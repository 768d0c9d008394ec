"""The JSON shape of an activation and of a school's status, shared by the live pushes,
the webhooks and the pages."""

from .models import COUNTS, Activation, SchoolStatus


def activation_summary(activation: Activation) -> dict:
    return {
        "id": activation.pk,
        "scenario": activation.scenario,
        "title": activation.title,
        "source": activation.source,
        "drill": activation.drill,
        "silent": activation.scenario == "intrusion",  # DOMAIN.md: never betray hidden people
        "started_at": activation.started_at.isoformat(),
        "ended_at": activation.ended_at.isoformat() if activation.ended_at else None,
    }


def status_summary(status: SchoolStatus) -> dict:
    return {
        "school": status.school.uai,
        "school_name": status.school.name,
        "state": status.state,
        "posture": status.posture,
        **{field: getattr(status, field) for field in COUNTS},
        "location": status.location,
        "needs": status.needs,
        "updated_at": status.updated_at.isoformat() if status.updated_at else None,
        "escalated_at": status.escalated_at.isoformat() if status.escalated_at else None,
    }
