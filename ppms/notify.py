"""Notices to the safety services: every unsent activation event is claimed once, then sent.

Which webhooks hear the PPMS: the ``alerts.Webhook`` rows linked by a ``PpmsWebhook``
(optionally limited to some communes), so police, pompiers and préfecture keep one
address, one secret and one delivery log for alerts and PPMS alike. Each event gives
one signed JSON delivery per webhook, retried by ``alerts.tasks.deliver_webhook``; the
payload carries the activation's CAP 1.2 message of that moment.

An escalation is also e-mailed to the safety services (``PPMS_SAFETY_EMAILS``) and, as a
reminder, to the directors of the silent schools — except for an intrusion: a phone
that rings could betray people in hiding (DOMAIN.md), so they get no e-mail then.

The claim marks the events notified in one transaction, rows locked ``SKIP LOCKED`` so
two workers never take the same one, and writes the deliveries there too: each event
is notified once, whoever runs the dispatch (the commit hook or the beat task).
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from alerts.models import WebhookDelivery
from core import outbox

from .models import Activation, ActivationEvent, ActivationEventKind, PpmsWebhook, SchoolStatus

log = logging.getLogger(__name__)

BATCH = 200
# The event names of the webhooks (the live events' names where they exist).
WEBHOOK_EVENT = {
    ActivationEventKind.STARTED: "activated",
    ActivationEventKind.EXTENDED: "extended",
    ActivationEventKind.ALARM: "alarm",
    ActivationEventKind.ESCALATED: "escalated",
    ActivationEventKind.ENDED: "ended",
}


def dispatch_after_commit() -> None:
    """Enqueue the dispatch of this transaction's events once it commits."""
    outbox.dispatch_after_commit("ppms.tasks.dispatch_activation_events")


def claim_events(now=None) -> list[ActivationEvent]:
    """Take the unsent events (at most BATCH); each is returned to one caller only."""
    from .cap import for_cap

    now = now or timezone.now()
    with transaction.atomic():
        events = list(
            ActivationEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(notified_at__isnull=True)
            .select_related("by")
            .order_by("pk")[:BATCH]
        )
        if not events:
            return []
        activations = {
            activation.pk: activation
            for activation in for_cap(
                Activation.objects.filter(pk__in={event.activation_id for event in events})
            )
        }
        hooks = list(
            PpmsWebhook.objects.filter(webhook__active=True)
            .select_related("webhook")
            .prefetch_related("communes")
        )
        deliveries = []
        for event in events:
            event.activation = activations[event.activation_id]
            event.notified_at = now
            communes = {status.school.commune_id for status in event.activation.statuses.all()}
            targets = [hook.webhook for hook in hooks if hook.hears(communes)]
            if targets:
                payload = webhook_payload(event, now=now)
                deliveries += [WebhookDelivery(webhook=hook, payload=payload) for hook in targets]
        ActivationEvent.objects.bulk_update(events, ["notified_at"])
        WebhookDelivery.objects.bulk_create(deliveries)
    by_payload: dict[int, list[int]] = {}
    for delivery in deliveries:
        by_payload.setdefault(delivery.payload["event_id"], []).append(delivery.pk)
    for event in events:
        event.delivery_ids = by_payload.get(event.pk, [])
    return events


def webhook_payload(event: ActivationEvent, *, now) -> dict:
    """What a safety service receives: the activation, the schools concerned, the CAP text."""
    from .cap import activation_cap
    from .services import activation_summary, status_summary

    activation = event.activation
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
        "cap": activation_cap(activation, upto=event).decode(),
        "sent_at": now.isoformat(),
    }


def dispatch_pending_events() -> int:
    """Claim and send every unsent event; return how many were handled."""
    from alerts.tasks import deliver_webhook

    from .tasks import send_ppms_mail

    handled = 0
    while events := claim_events():
        for event in events:
            if event.kind == ActivationEventKind.ESCALATED:
                for subject, body, recipients in escalation_emails(event):
                    send_ppms_mail.delay(subject, body, recipients)
            for delivery_id in event.delivery_ids:
                deliver_webhook.delay(delivery_id)
        handled += len(events)
    return handled


# --- E-mails -------------------------------------------------------------------------------


def escalation_emails(event: ActivationEvent) -> list[tuple[str, str, list[str]]]:
    """The e-mails of an escalation: (subject, body, recipients), the services' first."""
    activation = event.activation
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
    url = f"{settings.CSU_PUBLIC_URL.rstrip('/')}/"
    exercise = "[EXERCICE] " if activation.drill else ""
    minutes = getattr(settings, "PPMS_ESCALATE_AFTER_MIN", 10)
    emails = []
    if settings.PPMS_SAFETY_EMAILS:
        lines = [
            f"{exercise}PPMS « {activation.title} » ({activation.get_scenario_display()}), "
            f"déclenché le {_local(activation.started_at)}.",
            "",
            f"Écoles sans réponse après {minutes} min :",
            *(
                f"- {status.school.name} ({status.school.uai}), {status.school.commune.name}"
                for status in statuses
            ),
            "",
            url,
        ]
        subject = (
            f"[CSU] {exercise}PPMS : {len(statuses)} école(s) sans réponse — {activation.title}"
        )
        emails.append((subject, "\n".join(lines), list(settings.PPMS_SAFETY_EMAILS)))
    if activation.scenario == "intrusion":
        return emails  # never make a hidden director's phone ring
    for status in statuses:
        recipients = [director.email for director in status.school.directors.all()]
        if not recipients:
            continue
        lines = [
            f"{exercise}Le PPMS « {activation.title} » ({activation.get_scenario_display()}) "
            f"concerne {status.school.name} depuis le {_local(activation.started_at)}.",
            "",
            "Le CSU n'a pas encore reçu la situation de l'école. Indiquez-la dès que "
            "possible : en sûreté ou besoin d'aide, avec les effectifs.",
            "",
            url,
        ]
        subject = f"[CSU] {exercise}PPMS : indiquez la situation de {status.school.name}"
        emails.append((subject, "\n".join(lines), recipients))
    return emails


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%d/%m/%Y à %H:%M")
