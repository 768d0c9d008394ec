"""The escalation ladder: what is done, step after step, for a school that has not given
its situation during an activation (``EscalationStep``, edited in the admin).

The default (``DEFAULT_LADDER``: what a new installation starts with, and what applies
when no step is left): at once the page and a notification to the directors' phones; at
2 min a text to the school's crisis numbers; at 5 min the operators are asked to call the
school (the board shows its numbers); at 10 min the safety services are told (e-mail,
webhook, CAP Update) and the directors get an e-mail reminder. A report
from the school stops its ladder; each step taken is a line of the activation's timeline,
naming the schools it was taken for.

Each school climbs its own ladder from the moment it joined the activation:
``SchoolStatus.ladder_step`` is the next step, ``escalate_at`` when it falls due. Beat
runs ``climb`` every 15 s; steps at 0 min are taken with the activation itself, whose
own line on the timeline and notice are the page and notification of a step at 0 min.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.bulk import save_fields

from . import notify
from .models import Activation, ActivationEventKind, EscalationStep, SchoolState, SchoolStatus

Action = EscalationStep.Action
LADDER_FIELDS = ["ladder_step", "escalate_at", "texted_at", "call_asked_at", "escalated_at"]


@dataclass(frozen=True)
class Step:
    after: timedelta
    action: str


# The town's default, also when every step was deleted: a silent school is never left
# without anyone told.
DEFAULT_LADDER = [(0, Action.NOTIFY), (2, Action.SMS), (5, Action.CALL), (10, Action.SERVICES)]


def ladder() -> list[Step]:
    steps = list(EscalationStep.objects.values_list("after_minutes", "action")) or DEFAULT_LADDER
    return [Step(timedelta(minutes=minutes), action) for minutes, action in steps]


def start(activation: Activation, statuses: list[SchoolStatus], *, now) -> None:
    """Put newly concerned schools on the ladder, in the transaction that adds them: take
    its steps at 0 min now, and set when the next falls due."""
    steps = ladder()
    first_later = next((i for i, step in enumerate(steps) if step.after > timedelta(0)), len(steps))
    for step in steps[:first_later]:
        if step.action != Action.NOTIFY:  # at once, that is the activation's own notice
            _take(activation, step, statuses, now=now)
    for status in statuses:
        status.ladder_step = first_later
        status.escalate_at = now + steps[first_later].after if first_later < len(steps) else None
    save_fields(statuses, LADDER_FIELDS)


def climb(now=None) -> list[SchoolStatus]:
    """Take the steps fallen due (periodic task): one timeline line per activation and
    step, naming its schools. Returns the statuses that climbed a step."""
    now = now or timezone.now()
    steps = ladder()
    climbed: dict[int, SchoolStatus] = {}
    with transaction.atomic():
        due = list(
            SchoolStatus.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("school__commune", "activation")
            .filter(
                state=SchoolState.PENDING,
                escalate_at__lte=now,
                activation__ended_at__isnull=True,
            )
            .order_by("activation_id", "school__name")
        )
        # A school overdue for several steps (beat was away) takes each in turn.
        while due:
            groups: dict[tuple[int, int], list[SchoolStatus]] = {}
            for status in due:
                if status.ladder_step >= len(steps):
                    status.escalate_at = None  # the ladder was shortened meanwhile
                    continue
                groups.setdefault((status.activation_id, status.ladder_step), []).append(status)
            for (_activation, index), statuses in groups.items():
                _take(statuses[0].activation, steps[index], statuses, now=now)
            for status in due:
                if status.escalate_at is None:
                    continue
                index = status.ladder_step
                status.ladder_step = index + 1
                status.escalate_at = (
                    status.escalate_at + (steps[index + 1].after - steps[index].after)
                    if index + 1 < len(steps)
                    else None
                )
            save_fields(due, LADDER_FIELDS)
            climbed.update((status.pk, status) for status in due)
            due = [s for s in due if s.escalate_at is not None and s.escalate_at <= now]
    return list(climbed.values())


def _take(activation: Activation, step: Step, statuses: list[SchoolStatus], *, now) -> None:
    """Take one step for some schools of one activation, and write it on the timeline."""
    schools = [status.school for status in statuses]
    minutes = int(step.after.total_seconds() // 60)
    label = f"{EscalationStep.Action(step.action).label} ({minutes} min)"
    if step.action == Action.SERVICES:
        for status in statuses:
            status.escalated_at = now
        notify.record_event(
            activation,
            ActivationEventKind.ESCALATED,
            at=now,
            schools=schools,
            text=label,
            pushes=_to_schools(activation, "escalated", statuses),
        )
        return
    if step.action == Action.NOTIFY:
        notify.record_event(
            activation,
            ActivationEventKind.LADDER,
            at=now,
            schools=schools,
            text=label,
            pushes=_to_schools(activation, "escalated", statuses),
            devices=notify.reminder_devices(activation, schools),
        )
    elif step.action == Action.SMS:
        texted = [
            school for school in schools if school.phones and school.may_text(activation.scenario)
        ]
        for status in statuses:
            if status.school in texted:
                status.texted_at = now
        notify.record_event(
            activation,
            ActivationEventKind.LADDER,
            at=now,
            schools=schools,
            text=f"{label} — {notify.texted_line(activation, schools, texted)}",
            texts=notify.ladder_texts(activation, texted),
        )
    elif step.action == Action.CALL:
        for status in statuses:
            status.call_asked_at = now
        notify.record_event(
            activation,
            ActivationEventKind.LADDER,
            at=now,
            schools=schools,
            text=label,
            pushes=[
                push
                for status in statuses
                for push in notify.to_operators(activation, "call", status)
            ],
        )


def _to_schools(activation: Activation, event: str, statuses) -> list:
    return [push for status in statuses for push in notify.to_school(activation, event, status)]
