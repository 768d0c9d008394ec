"""PPMS operations that span apps or notify: activate, report, end, cancel, alarm (the
escalation of silent schools is ``ppms/ladder.py``).

Each writes its rows in one transaction and tells the change in it (``ppms/notify.py``):
the browsers that may see it, and, for the changes of the activation's timeline, the
safety services. What is told goes out once the transaction commits.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sensors.serializers import commune_ref

from . import ladder, notify
from .models import (
    COUNTS,
    GROUP_KEYS,
    Activation,
    ActivationEvent,
    ActivationEventKind,
    Drill,
    Proposal,
    Scenario,
    School,
    SchoolState,
    SchoolStatus,
    Shelter,
    ShelterReport,
    Source,
    StatusUpdate,
    count_problems,
    family_message_for,
    group_totals,
)


def schools_in(zones) -> list[School]:
    return list(School.objects.filter(zones__in=zones).distinct())


@transaction.atomic
def ppms_activate(
    *,
    scenario: str,
    title: str,
    source: str,
    zones=(),
    schools=(),
    drill: bool = False,
    by=None,
    alert=None,
    now=None,
    message: str = "",
    automatic: bool = False,
    shelter=None,
) -> Activation:
    """Start an activation for the given schools and those of the given zones.

    ``message``: a school's alarm message, when the school raised the alarm;
    ``automatic``: started by nobody, from a proposal nobody answered in time.
    """
    now = now or timezone.now()
    concerned = {school.pk: school for school in [*schools, *schools_in(zones)]}
    if not concerned:
        raise ValidationError({"schools": _("Aucune école n'est concernée.")})
    if shelter is not None and scenario != Scenario.EVACUATION:
        raise ValidationError(
            {"shelter": _("Un centre d'accueil n'est la destination que d'une évacuation.")}
        )
    if shelter is not None and not shelter.is_open:
        # The centre opens with the evacuation that sends people there.
        shelter.is_open = True
        shelter.save(update_fields=["is_open"])
        notify.tell_live("shelter", notify.shelter_pushes(shelter))
    activation = Activation.objects.create(
        scenario=scenario,
        title=title,
        source=source,
        drill=drill,
        alert=alert,
        started_at=now,
        started_by=by,
        automatic=automatic,
        shelter=shelter,
        family_message=family_message_for(concerned.values()),
    )
    activation.zones.set(zones)
    add_schools(activation, concerned.values(), now=now)
    notify.record_event(
        activation,
        ActivationEventKind.STARTED,
        at=now,
        by=by,
        schools=concerned.values(),
        text=message,
        pushes=notify.to_everyone(activation, "activated"),
    )
    return activation


def add_schools(activation: Activation, schools, *, now) -> list[SchoolStatus]:
    """Concern more schools: each starts on the escalation ladder (``ppms/ladder.py``)."""
    known = set(activation.statuses.values_list("school_id", flat=True))
    statuses = SchoolStatus.objects.bulk_create(
        SchoolStatus(activation=activation, school=school, posture=activation.scenario)
        for school in schools
        if school.pk not in known
    )
    ladder.start(activation, statuses, now=now)
    return statuses


def validate_report(status: SchoolStatus, report: dict) -> dict:
    """Check a director's report; raise ValidationError with one message per field (a
    group's, named "groups.<n>.<field>", n from 1)."""
    errors = {}
    state = report.get("state")
    if state not in (SchoolState.SAFE, SchoolState.NEEDS_HELP, SchoolState.EVACUATED):
        errors["state"] = _("Choisissez : en sûreté, besoin d'aide ou évacués.")
    groups = report.get("groups") or []
    for prefix, counts in [("", report)] + [(f"groups.{n}.", g) for n, g in enumerate(groups, 1)]:
        for field in COUNTS:
            value = counts.get(field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors[prefix + field] = _("Un nombre entier positif ou nul.")
        for field, problem in count_problems(status.school, counts).items():
            errors.setdefault(prefix + field, problem)
    if status.activation.ended_at is not None:
        errors["state"] = _("La fin d'alerte a été donnée : le déclenchement est terminé.")
    if errors:
        raise ValidationError(errors)
    return report


@transaction.atomic
def ppms_report(
    *, status: SchoolStatus, report: dict, by, now=None, client_id: str | None = None
) -> SchoolStatus:
    """Record a director's report (state, posture, counts, location, needs).

    ``client_id``: the phone's name for this report. A report replayed with a client_id
    already recorded for the school changes nothing (the phone resends what it queued
    offline); the status is returned with ``replayed`` set.
    """
    now = now or timezone.now()
    status = (
        SchoolStatus.objects.select_for_update()
        .select_related("school", "activation")
        .get(pk=status.pk)
    )
    # Checked under the lock: two replays arriving together count once.
    status.replayed = bool(client_id) and status.updates.filter(data__client_id=client_id).exists()
    if status.replayed:
        return status
    validate_report(status, report)
    groups = [
        {
            **{key: group.get(key) for key in GROUP_KEYS},
            "posture": group.get("posture") or status.activation.scenario,
            "location": (group.get("location") or "")[:255],
        }
        for group in report.get("groups") or []
    ]
    if groups:
        # The school's counts are the groups' sums: the board, the report and the roll
        # warning read them as they read a single group's.
        report = {**report, **group_totals(groups)}
        for field in COUNTS:
            setattr(status, field, report[field])
    status.groups = groups
    status.state = report["state"]
    status.posture = report.get("posture") or status.posture
    for field in COUNTS:
        if report.get(field) is not None:
            setattr(status, field, report[field])
    status.location = report.get("location", status.location)[:255]
    status.needs = report.get("needs", status.needs)
    status.updated_at, status.updated_by = now, by
    status.escalate_at = None
    status.save()
    data = {key: report.get(key) for key in (*COUNTS, "posture", "location", "needs")}
    if groups:
        data["groups"] = groups
    if client_id:
        data["client_id"] = client_id
    StatusUpdate.objects.create(status=status, at=now, by=by, state=status.state, data=data)
    notify.tell_live("status", notify.to_school(status.activation, "status", status))
    return status


@transaction.atomic
def ppms_seen(*, status: SchoolStatus, now=None):
    """A director's page showed the activation: the school's first sign of life, told to
    the board (recorded once)."""
    now = now or timezone.now()
    if SchoolStatus.objects.filter(pk=status.pk, seen_at__isnull=True).update(seen_at=now):
        notify.tell_reach([notify.about(status.activation, status.school)], "seen")
        return now
    return SchoolStatus.objects.values_list("seen_at", flat=True).get(pk=status.pk)


def unsettled_schools(activation: Activation) -> list[School]:
    """The schools that never answered, or still need help."""
    unsettled = activation.statuses.filter(state__in=[SchoolState.PENDING, SchoolState.NEEDS_HELP])
    return [status.school for status in unsettled.select_related("school").order_by("school__name")]


@transaction.atomic
def ppms_end(
    *,
    activation: Activation,
    by,
    ordered_by: str = "",
    confirmed_schools=(),
    now=None,
) -> Activation:
    """The end of alert (fin d'alerte), on the order of an authority (``ordered_by``, which
    a real event's end must name; a drill's may not).

    Schools that never answered or still need help must each be named in
    ``confirmed_schools`` (UAI): ending over them is a decision, not a slip. The end of a
    drill records the drill in each school's register.
    """
    activation = Activation.objects.select_for_update().get(pk=activation.pk)
    if activation.ended_at is not None:
        raise ValidationError({"activation": _("La fin d'alerte a déjà été donnée.")})
    errors = {}
    ordered_by = ordered_by.strip()
    if not ordered_by and not activation.drill:
        errors["ordered_by"] = _("Indiquez l'autorité qui a ordonné la fin d'alerte.")
    unconfirmed = [
        school for school in unsettled_schools(activation) if school.uai not in confirmed_schools
    ]
    if unconfirmed:
        errors["confirmed_schools"] = _(
            "Écoles sans réponse ou ayant besoin d'aide : %(schools)s. Confirmez chacune "
            "pour donner la fin d'alerte."
        ) % {"schools": ", ".join(f"{school.name} ({school.uai})" for school in unconfirmed)}
    if errors:
        raise ValidationError(errors)
    activation.ended_at, activation.ended_by = now or timezone.now(), by
    activation.ended_on_order_of = ordered_by[:200]
    activation.save(update_fields=["ended_at", "ended_by", "ended_on_order_of"])
    activation.statuses.update(escalate_at=None)
    schools = [status.school for status in activation.statuses.select_related("school")]
    if activation.drill:
        held_on = timezone.localdate(activation.started_at)
        with translation.override(settings.LANGUAGE_CODE):
            notes = _("Exercice déclenché par le CSU : %(title)s") % {"title": activation.title}
        Drill.objects.bulk_create(
            Drill(
                school=school,
                scenario=activation.scenario,
                held_on=held_on,
                activation=activation,
                notes=notes,
            )
            for school in schools
        )
    notify.record_event(
        activation,
        ActivationEventKind.ENDED,
        at=activation.ended_at,
        by=by,
        schools=schools,
        pushes=notify.to_everyone(activation, "ended"),
    )
    return activation


@transaction.atomic
def ppms_cancel(*, activation: Activation, by, reason: str, now=None) -> Activation:
    """Cancel an activation started by mistake: it stops, and everyone told of it hears it
    was an error (CAP Cancel, webhooks, pushes, pages) — not an end of alert."""
    if not reason.strip():
        raise ValidationError({"reason": _("Indiquez le motif de l'annulation.")})
    activation = Activation.objects.select_for_update().get(pk=activation.pk)
    if activation.ended_at is not None:
        raise ValidationError({"activation": _("Ce déclenchement est déjà terminé.")})
    activation.ended_at, activation.ended_by = now or timezone.now(), by
    activation.cancelled, activation.cancel_reason = True, reason.strip()
    activation.save(update_fields=["ended_at", "ended_by", "cancelled", "cancel_reason"])
    activation.statuses.update(escalate_at=None)
    schools = [status.school for status in activation.statuses.select_related("school")]
    notify.record_event(
        activation,
        ActivationEventKind.CANCELLED,
        at=activation.ended_at,
        by=by,
        schools=schools,
        text=activation.cancel_reason,
        pushes=notify.to_everyone(activation, "cancelled"),
    )
    return activation


@transaction.atomic
def ppms_alarm(
    *, school: School, scenario: str, message: str, by, now=None
) -> tuple[Activation, bool]:
    """A director raises the alarm from ``school``; return the activation and if it is new.

    The alarm joins the active activation of the same posture that concerns the school
    already; otherwise it starts one for this school. A drill is never joined (a real
    alarm must not pass for an exercise), nor another posture: an intrusion during a
    flood is another incident, with its own instructions and silent pushes.
    """
    now = now or timezone.now()
    # Locked: two alarms of one school at once start one activation, not two.
    School.objects.select_for_update().filter(pk=school.pk).first()
    current = (
        Activation.objects.active()
        .select_for_update(of=("self",))
        .filter(drill=False, scenario=scenario, statuses__school=school)
        .order_by("-started_at", "-pk")
        .first()
    )
    if current is None:
        with translation.override(settings.LANGUAGE_CODE):
            title = _("Alarme de l'école %(school)s : %(scenario)s") % {
                "school": school.name,
                "scenario": Scenario(scenario).label,
            }
        activation = ppms_activate(
            scenario=scenario,
            title=title[:200],
            source=Source.SCHOOL,
            schools=[school],
            by=by,
            now=now,
            message=message,
        )
        return activation, True
    status = current.statuses.select_related("school").get(school=school)
    notify.record_event(
        current,
        ActivationEventKind.ALARM,
        at=now,
        by=by,
        schools=[school],
        text=message,
        pushes=notify.to_operators(current, "activated", status),
    )
    return current, False


# Free text a school or an operator typed in an incident, blanked after
# PPMS_TEXT_RETENTION_DAYS: the figures stay for the reports, the words go.
FREE_TEXT_KEYS = ("location", "needs")


@transaction.atomic
def ppms_purge(*, now=None) -> dict[str, int]:
    """Apply the PPMS retention: delete the activations ended more than
    PPMS_RETENTION_DAYS ago (their statuses, reports and timeline with them) and the
    proposals decided as long ago; blank the free text of those ended more than
    PPMS_TEXT_RETENTION_DAYS ago (places and needs, the groups' places, alarm messages,
    cancellation reasons, the centres' supplies). The deliveries (pushes, SMS, e-mails,
    webhooks) follow NOTIFICATION_RETENTION_DAYS."""
    now = now or timezone.now()
    expired = Activation.objects.ended_before(now - timedelta(days=settings.PPMS_RETENTION_DAYS))
    decided = Proposal.objects.filter(
        Q(activation__in=expired)
        | Q(
            activation__isnull=True,
            decided_at__lt=now - timedelta(days=settings.PPMS_RETENTION_DAYS),
        )
    )
    proposals, activations = decided.count(), expired.count()
    decided.delete()  # first: a proposal protects the activation it became
    expired.delete()
    old = Activation.objects.ended_before(now - timedelta(days=settings.PPMS_TEXT_RETENTION_DAYS))
    statuses = SchoolStatus.objects.filter(activation__in=old).exclude(location="", needs="")
    blanked = statuses.update(location="", needs="")
    # A school's groups keep their counts; their places go.
    grouped = []
    for status in SchoolStatus.objects.filter(activation__in=old).exclude(groups=[]).only("groups"):
        if any(group.get("location") for group in status.groups):
            status.groups = without_places(status.groups)
            grouped.append(status)
    SchoolStatus.objects.bulk_update(grouped, ["groups"], batch_size=500)
    ActivationEvent.objects.filter(activation__in=old).exclude(text="").update(text="")
    old.exclude(cancel_reason="").update(cancel_reason="")
    supplies = ShelterReport.objects.filter(activation__in=old).exclude(supplies="")
    blanked += supplies.update(supplies="")
    updates = []
    for update in StatusUpdate.objects.filter(status__activation__in=old).only("data"):
        groups = update.data.get("groups") or []
        if any(update.data.get(key) for key in FREE_TEXT_KEYS) or any(
            group.get("location") for group in groups
        ):
            update.data = {**update.data, **dict.fromkeys(FREE_TEXT_KEYS, "")}
            if groups:
                update.data["groups"] = without_places(groups)
            updates.append(update)
    StatusUpdate.objects.bulk_update(updates, ["data"], batch_size=500)
    texts = blanked + len(grouped) + len(updates)
    return {"activations": activations, "proposals": proposals, "texts": texts}


def without_places(groups: list[dict]) -> list[dict]:
    return [{**group, "location": ""} for group in groups]


def ended_refusal(activation: Activation) -> None:
    if activation.ended_at is not None:
        raise ValidationError(
            {"activation": _("La fin d'alerte a été donnée : le déclenchement est terminé.")}
        )


@transaction.atomic
def ppms_shelter_report(
    *, activation: Activation, shelter: Shelter, arrivals, staff, supplies: str, by, now=None
) -> ShelterReport:
    """Record what a centre d'accueil's staff counted: ``arrivals`` as (commune, count)
    pairs, the staff on duty and the supplies. Over capacity it is recorded all the same
    (the report's ``warning`` says so): people who arrived are never turned into an error.
    The centre's occupancy becomes the arrivals' total."""
    ended_refusal(activation)
    if activation.shelter_id != shelter.pk:
        raise ValidationError(
            {
                "shelter": _("%(shelter)s n'est pas le centre d'accueil de ce déclenchement.")
                % {"shelter": shelter.name}
            }
        )
    report = ShelterReport.objects.create(
        activation=activation,
        shelter=shelter,
        at=now or timezone.now(),
        by=by,
        arrivals=[{"commune": commune_ref(commune), "count": count} for commune, count in arrivals],
        staff=staff,
        supplies=supplies,
    )
    shelter = Shelter.objects.select_for_update().get(pk=shelter.pk)
    shelter.occupancy, shelter.is_open = report.total, True
    shelter.save(update_fields=["occupancy", "is_open"])
    report.shelter = shelter
    notify.tell_live("shelter", notify.shelter_pushes(shelter))
    notify.tell_live("updated", notify.to_everyone(activation, "updated"))
    return report


@transaction.atomic
def ppms_vigicrues(*, activation: Activation, colour: str, by, now=None) -> Activation:
    """Record the Vigicrues vigilance colour of a flood's activation, read by an operator
    on vigicrues.gouv.fr (empty: not known), with who and when; the pages show it."""
    ended_refusal(activation)
    if colour and not activation.is_flood:
        raise ValidationError(
            {
                "colour": _(
                    "La vigilance Vigicrues concerne les crues : ce déclenchement n'a ni zone "
                    "inondable ni école en zone inondable."
                )
            }
        )
    activation.vigicrues_colour = colour
    activation.vigicrues_set_at, activation.vigicrues_set_by = now or timezone.now(), by
    activation.save(update_fields=["vigicrues_colour", "vigicrues_set_at", "vigicrues_set_by"])
    notify.tell_live("updated", notify.to_everyone(activation, "updated"))
    return activation
