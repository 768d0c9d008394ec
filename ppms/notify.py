"""What the CSU tells of a PPMS activation, through the outbox (``core/outbox.py``).

Every change is told in the transaction that makes it, and sent once it commits:

- live, to the browsers that may see it: the operators of the concerned schools'
  communes, and the directors of each concerned school;
- to the safety services, for the changes of the activation's timeline
  (``ActivationEvent``: start, schools added, a school's alarm, escalation, end): one
  signed JSON webhook per ``PpmsWebhook`` that hears the schools' communes, carrying
  the activation's CAP 1.2 message of that moment; police, pompiers and préfecture keep
  one address, one secret and one delivery log for alerts and PPMS alike;
- by e-mail, for an escalation: the safety services (``PPMS_SAFETY_EMAILS``) and, as a
  reminder, the directors of the silent schools — except for an intrusion: a phone that
  rings could betray people in hiding (the SAIP app's lesson), so they get no e-mail then;
- by Web Push, to every subscribed device of the concerned schools' directors: the
  start, schools added, the reminders of the escalation ladder (``ppms/ladder.py``), the
  end and a cancellation — silent (no sound, no vibration) for an intrusion, as their
  page is;
- by SMS, to the crisis numbers of a school still silent when the ladder says so (in an
  intrusion only if the school's plan allows it), then its end or cancellation.

Each device push and text message is about one school of one activation
(``about(activation, school)``): the board and the report show who was told how.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Min, Prefetch, Q
from django.urls import reverse
from django.utils import timezone

from core import live, outbox

from .cap import activation_cap, for_cap
from .models import (
    Activation,
    ActivationEvent,
    ActivationEventKind,
    PpmsWebhook,
    Proposal,
    Scenario,
    School,
    SchoolStatus,
)
from .reach import reach_of
from .serializers import ReachSerializer, ShelterSerializer
from .summaries import activation_summary, proposal_summary, status_summary

# The event names of the webhooks (the live events' names where they exist).
WEBHOOK_EVENT = {
    ActivationEventKind.STARTED: "activated",
    ActivationEventKind.EXTENDED: "extended",
    ActivationEventKind.ALARM: "alarm",
    ActivationEventKind.ESCALATED: "escalated",
    ActivationEventKind.ENDED: "ended",
    ActivationEventKind.CANCELLED: "cancelled",
}


# --- Live pushes -----------------------------------------------------------------------------


def _message(activation: Activation, event: str, status: SchoolStatus | None) -> live.PpmsEvent:
    return live.PpmsEvent(
        type="ppms",
        event=event,
        activation=activation_summary(activation),
        status=status_summary(status) if status else None,
    )


def to_everyone(activation: Activation, event: str) -> list[outbox.Push]:
    """The operators of every concerned commune and the directors of every concerned school."""
    message = _message(activation, event, None)
    schools_by_commune: dict[int, list[int]] = {}
    for school_id, commune_id in activation.statuses.values_list("school_id", "school__commune_id"):
        schools_by_commune.setdefault(commune_id, []).append(school_id)
    pushes = []
    for commune_id, school_ids in schools_by_commune.items():
        pushes.append(outbox.push(live.commune_group(commune_id), message))
        pushes.append(outbox.push(live.directors_group(commune_id), message, school_ids))
    return pushes


def to_school(activation: Activation, event: str, status: SchoolStatus) -> list[outbox.Push]:
    """The directors of the status's school and the operators of its commune."""
    message = _message(activation, event, status)
    return [
        outbox.push(live.school_group(status.school_id), message),
        outbox.push(live.commune_group(status.school.commune_id), message),
    ]


def to_operators(activation: Activation, event: str, status: SchoolStatus) -> list[outbox.Push]:
    """The operators of the status's commune only (a school's alarm: its directors know)."""
    message = _message(activation, event, status)
    return [outbox.push(live.commune_group(status.school.commune_id), message)]


def tell_reach(abouts: list[str], event: str = "reach") -> None:
    """Tell the operators of the schools who was told how there, now (``abouts``: what
    pushes or texts were about, ``about()``; anything not about a PPMS activation is
    ignored). One notification, however many schools: a batch of pushes is one."""
    wanted: dict[int, set[str]] = {}
    for about_key in abouts:
        prefix, _, rest = about_key.partition(":")
        activation_id, _, uai = rest.partition(":")
        if prefix == "ppms" and activation_id.isdigit() and uai:
            wanted.setdefault(int(activation_id), set()).add(uai)
    if not wanted:
        return
    matches = Q()
    for activation_id, uais in wanted.items():
        matches |= Q(activation_id=activation_id, school__uai__in=uais)
    statuses = list(
        SchoolStatus.objects.filter(matches)
        .select_related("school", "activation")
        .annotate(first_reply_at=Min("updates__at"))
        .order_by("pk")
    )
    reaches = reach_of(statuses)
    # One serializer for them all: DRF builds its fields once, not once per school.
    told = ReachSerializer([reaches[status.pk] for status in statuses], many=True).data
    pushes = [
        outbox.push(
            live.commune_group(status.school.commune_id),
            _message(status.activation, event, status) | {"reach": reach},
        )
        for status, reach in zip(statuses, told, strict=True)
    ]
    if pushes:
        tell_live(event, pushes)


def tell_proposal(proposal: Proposal, event: str) -> None:
    """Tell the operators of the concerned communes of a proposal or of its decision."""
    message = live.ProposalEvent(type="proposal", event=event, proposal=proposal_summary(proposal))
    pushes = [
        outbox.push(live.commune_group(commune_id), message)
        for commune_id in proposal.communes.values_list("pk", flat=True)
    ]
    outbox.tell(topic="ppms", event=f"proposal-{event}", pushes=pushes)


def shelter_pushes(shelter) -> list[outbox.Push]:
    """A centre d'accueil as it is now, to its commune's operators (the PPMS board)."""
    message = live.ShelterEvent(
        type="ppms", event="shelter", shelter=ShelterSerializer(shelter).data
    )
    return [outbox.push(live.commune_group(shelter.commune_id), message)]


def tell_live(event: str, pushes: list[outbox.Push]) -> None:
    """Tell a change that only browsers hear of (a director's report, a shelter)."""
    outbox.tell(topic="ppms", event=event, pushes=pushes)


# --- The timeline: safety services too -------------------------------------------------------


def record_event(
    activation: Activation,
    kind: str,
    *,
    at,
    by=None,
    schools=(),
    text: str = "",
    pushes: list[outbox.Push] = (),
    devices: list[outbox.DeviceMessage] | None = None,
    texts: list[outbox.TextMessage] | None = None,
) -> ActivationEvent:
    """Write a change of the activation's timeline and tell it: the safety services
    (webhooks, e-mails for an escalation; not the ladder's reminders), ``pushes`` live,
    and the directors' devices and schools' phones (``devices``, ``texts``: those the
    event's kind says, unless given); it goes out once committed."""
    event = ActivationEvent.objects.create(
        activation=activation,
        kind=kind,
        at=at,
        by=by,
        schools=sorted(school.uai for school in schools),
        text=text,
    )
    activation = for_cap(Activation.objects.filter(pk=activation.pk)).get()
    communes = {status.school.commune_id for status in activation.statuses.all()}
    hooks = (
        PpmsWebhook.objects.filter(webhook__active=True)
        .select_related("webhook")
        .prefetch_related("communes")
    )
    heard = kind in WEBHOOK_EVENT
    outbox.tell(
        topic="ppms",
        event=WEBHOOK_EVENT.get(kind, kind),
        pushes=pushes,
        emails=escalation_emails(activation, event)
        if kind == ActivationEventKind.ESCALATED
        else (),
        webhook_payload=webhook_payload(activation, event) if heard else None,
        webhooks=[hook.webhook for hook in hooks if hook.hears(communes)] if heard else (),
        devices=device_messages(activation, event) if devices is None else devices,
        texts=closing_texts(activation, event) if texts is None else texts,
    )
    return event


def about(activation: Activation, school: School) -> str:
    """What a device push or text message of the activation to the school is about."""
    return f"ppms:{activation.pk}:{school.uai}"


# What the directors' phones are pushed, and what each says.
PUSHED = {
    ActivationEventKind.STARTED: "activated",
    ActivationEventKind.EXTENDED: "activated",
    ActivationEventKind.ESCALATED: "escalated",
    ActivationEventKind.ENDED: "ended",
    ActivationEventKind.CANCELLED: "cancelled",
}
PUSH_BODY = {
    "activated": "%(title)s — appliquez le PPMS et indiquez la situation de l'école.",
    "escalated": "%(title)s — le CSU attend la situation de l'école : indiquez-la.",
    "ended": "Fin d'alerte : %(title)s.",
    "cancelled": "Déclenchement annulé (erreur) : %(title)s. Reprenez le cours normal.",
}


def device_messages(activation: Activation, event: ActivationEvent) -> list[outbox.DeviceMessage]:
    """A push to the devices of the directors of each school the event is about.

    ``activation`` is loaded with ``for_cap`` (its statuses and schools).
    """
    pushed = PUSHED.get(event.kind)
    if pushed is None:
        return []  # a school's own alarm: its directors know; the ladder says its own
    named = set(event.schools)
    schools = [status.school for status in activation.statuses.all() if status.school.uai in named]
    return _device_messages(activation, schools, pushed)


def reminder_devices(activation: Activation, schools) -> list[outbox.DeviceMessage]:
    """The ladder's reminder to the devices of the schools' directors."""
    return _device_messages(activation, schools, "escalated")


def _device_messages(activation: Activation, schools, pushed: str) -> list[outbox.DeviceMessage]:
    exercise = "EXERCICE — " if activation.drill else ""
    scenario = Scenario(activation.scenario).french
    users_of: dict[int, list[int]] = {}
    for school_id, user_id in School.directors.through.objects.filter(
        school__in=schools
    ).values_list("school_id", "user_id"):
        users_of.setdefault(school_id, []).append(user_id)
    return [
        outbox.DeviceMessage(
            users=users_of.get(school.pk, []),
            about=about(activation, school),
            payload={
                "title": f"{exercise}PPMS : {scenario} — {school.name}",
                "body": PUSH_BODY[pushed] % {"title": activation.title},
                "tag": f"csu-ppms-{activation.pk}",
                "url": reverse("ppms-director-school", args=[school.uai]),
                "silent": activation.scenario == "intrusion",
                "event": pushed,
                "activation": activation.pk,
                "school": school.uai,
            },
        )
        for school in schools
    ]


# --- Text messages ---------------------------------------------------------------------------

SMS_BODY = {
    "activated": "%(exercise)sCSU %(commune)s : PPMS «\u202f%(scenario)s\u202f» déclenché à "
    "%(time)s pour %(school)s. Appliquez le PPMS et indiquez la situation de l'école : %(url)s",
    "ended": "%(exercise)sCSU %(commune)s : fin d'alerte du PPMS «\u202f%(scenario)s\u202f» "
    "pour %(school)s.",
    "cancelled": "%(exercise)sCSU %(commune)s : déclenchement PPMS «\u202f%(scenario)s\u202f» "
    "annulé (erreur) pour %(school)s. Reprenez le cours normal.",
}


def ladder_texts(activation: Activation, schools) -> list[outbox.TextMessage]:
    """The ladder's text to each school's crisis numbers."""
    return _texts(activation, schools, "activated")


def closing_texts(activation: Activation, event: ActivationEvent) -> list[outbox.TextMessage]:
    """The end or cancellation, to the schools the ladder texted (the others were not
    told by text)."""
    closing = {ActivationEventKind.ENDED: "ended", ActivationEventKind.CANCELLED: "cancelled"}
    if event.kind not in closing:
        return []
    schools = [status.school for status in activation.statuses.all() if status.texted_at]
    return _texts(activation, schools, closing[event.kind])


def texted_line(activation: Activation, schools, texted) -> str:
    """What the ladder's text step did, for the timeline."""
    texted_ids = {school.pk for school in texted}
    parts = [f"SMS : {', '.join(school.name for school in texted) or 'aucune école'}"]
    no_number = [school.name for school in schools if not school.phones]
    if no_number:
        parts.append(f"sans numéro de crise : {', '.join(no_number)}")
    withheld = [school.name for school in schools if school.phones and school.pk not in texted_ids]
    if withheld:
        parts.append(f"pas de SMS en intrusion (plan de l'école) : {', '.join(withheld)}")
    return " ; ".join(parts)


def _texts(activation: Activation, schools, kind: str) -> list[outbox.TextMessage]:
    public = settings.CSU_PUBLIC_URL.rstrip("/")
    return [
        outbox.TextMessage(
            to=school.phones,
            about=about(activation, school),
            text=SMS_BODY[kind]
            % {
                "exercise": "EXERCICE — " if activation.drill else "",
                "commune": school.commune.name,
                "scenario": Scenario(activation.scenario).french,
                "time": timezone.localtime(activation.started_at).strftime("%H:%M"),
                "school": school.name,
                "url": public + reverse("ppms-director-school", args=[school.uai]),
            },
        )
        for school in schools
    ]


def webhook_payload(activation: Activation, event: ActivationEvent) -> dict:
    """What a safety service receives: the activation, the schools concerned, the CAP text.

    ``activation`` is loaded with ``for_cap``.
    """
    statuses = activation.statuses.all()  # prefetched
    if event.kind != ActivationEventKind.ENDED:
        named = set(event.schools)
        statuses = [status for status in statuses if status.school.uai in named]
    return {
        "type": "ppms",
        "event": WEBHOOK_EVENT[event.kind],
        "event_id": event.pk,
        "at": event.at.isoformat(),
        "by": event.by.get_username() if event.by else None,
        "activation": activation_summary(activation),
        "schools": [status_summary(status) for status in statuses],
        "message": event.text,
        "cap": activation_cap(activation, upto=event, restricted=True).decode(),
    }


# --- E-mails ---------------------------------------------------------------------------------


def escalation_emails(activation: Activation, event: ActivationEvent) -> list[outbox.Email]:
    """The e-mails of an escalation, the services' first."""
    statuses = list(
        SchoolStatus.objects.filter(activation=activation, school__uai__in=event.schools)
        .select_related("school__commune")
        .prefetch_related(
            Prefetch(
                "school__directors",
                queryset=get_user_model().objects.exclude(email="").order_by("pk"),
            )
        )
        .order_by("school__name")
    )
    public = settings.CSU_PUBLIC_URL.rstrip("/")
    # The services' copy opens the activation on the board (where the CAP <web> points);
    # a director's, their school's page, where they answer.
    board = public + reverse("ppms-activation", args=[activation.pk])
    exercise = "[EXERCICE] " if activation.drill else ""
    minutes = minutes_since_start(activation, event.at)
    emails = []
    if settings.PPMS_SAFETY_EMAILS:
        lines = [
            f"{exercise}PPMS « {activation.title} » ({Scenario(activation.scenario).french}), "
            f"déclenché le {_local(activation.started_at)}.",
            "",
            f"Écoles sans réponse après {minutes} min :",
            *(
                f"- {status.school.name} ({status.school.uai}), {status.school.commune.name}"
                for status in statuses
            ),
            "",
            board,
        ]
        subject = (
            f"[CSU] {exercise}PPMS : {len(statuses)} école(s) sans réponse — {activation.title}"
        )
        emails.append(
            outbox.Email(
                subject=subject, body="\n".join(lines), to=list(settings.PPMS_SAFETY_EMAILS)
            )
        )
    if activation.scenario == "intrusion":
        return emails  # never make a hidden director's phone ring
    for status in statuses:
        recipients = [director.email for director in status.school.directors.all()]
        if not recipients:
            continue
        lines = [
            f"{exercise}Le PPMS « {activation.title} » ({Scenario(activation.scenario).french}) "
            f"concerne {status.school.name} depuis le {_local(activation.started_at)}.",
            "",
            "Le CSU n'a pas encore reçu la situation de l'école. Indiquez-la dès que "
            "possible : en sûreté ou besoin d'aide, avec les effectifs.",
            "",
            public + reverse("ppms-director-school", args=[status.school.uai]),
        ]
        subject = f"[CSU] {exercise}PPMS : indiquez la situation de {status.school.name}"
        emails.append(outbox.Email(subject=subject, body="\n".join(lines), to=recipients))
    return emails


def minutes_since_start(activation: Activation, moment) -> int:
    return int((moment - activation.started_at).total_seconds() // 60)


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%d/%m/%Y à %H:%M")
