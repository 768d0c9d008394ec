"""Proposals (propositions de déclenchement): a rule's alerts ask a human to start the PPMS.

No reading starts a PPMS by itself. An alert on a rule that names a scenario
(``RuleTrigger``) proposes it once enough sensors of the rule are in alert (its
``confirmations``, k of n); the proposal reaches every operator screen at once, and
someone who may validate (``may_validate``: an authority, or an operator where the
commune's policy says so) validates it — it becomes the activation — or dismisses it
with a reason. A rule may say "activate automatically if nobody answers within N
minutes" (off by default): beat then activates it, marked automatic.

One proposal per incident and commune (each commune's authority decides for its own
schools): while a proposal of the rule waits, the rule's later alerts join it; while
the activation it led to is under way, their schools join the activation.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.models import Alert, Rule
from alerts.notify import group_incidents
from core.roles import VALIDATE_ACTIVATION, is_operator, supervised_communes

from . import notify
from .models import (
    Activation,
    ActivationEventKind,
    CommunePolicy,
    Proposal,
    ProposalState,
    RuleTrigger,
    School,
    Source,
)
from .services import add_schools, ppms_activate, schools_in


class AlreadyDecided(Exception):
    """The proposal was validated, dismissed or cancelled already (answered as a 409)."""


def may_validate(user, commune_ids) -> bool:
    """Tell whether ``user`` may validate, dismiss or cancel a PPMS concerning these
    communes: an authority, or an operator of communes that grant it, of all of them."""
    if not user.is_authenticated:
        return False
    communes = set(commune_ids)
    supervised = supervised_communes(user)
    if supervised is not None and not communes <= set(supervised.values_list("pk", flat=True)):
        return False
    if user.has_perm(VALIDATE_ACTIVATION):
        return True
    if not is_operator(user):
        return False
    granting = CommunePolicy.objects.filter(commune__in=communes, operators_validate=True)
    return set(granting.values_list("commune_id", flat=True)) >= communes


def proposal_communes(proposal: Proposal) -> set[int]:
    return set(proposal.communes.values_list("pk", flat=True))


def ppms_propose_for_alert(alert: Alert, now=None) -> list[Proposal | Activation]:
    """Propose (or join) the PPMS that the alert's rule names; return what it joined.

    One proposal per commune: each commune's authority decides for its own schools.
    """
    now = now or timezone.now()
    trigger = RuleTrigger.objects.filter(rule_id=alert.rule_id).first()
    if trigger is None:
        return []
    with transaction.atomic():
        # One decision at a time per rule: two alerts at once make one proposal.
        rule = Rule.objects.select_for_update().get(pk=alert.rule_id)
        in_alert = list(Alert.objects.open().filter(rule=rule))
        if len({each.sensor_id for each in in_alert}) < trigger.confirmations:
            return []
        zones = list(rule.zones.all()) or list(alert.sensor.zones.all())
        by_commune: dict[int, list[School]] = {}
        for school in schools_in(zones):
            by_commune.setdefault(school.commune_id, []).append(school)
        joined = [
            _propose_in_commune(rule, trigger, commune_id, schools, zones, in_alert, alert, now)
            for commune_id, schools in sorted(by_commune.items())
        ]
        if joined:  # the alerts of one proposal are one incident (per commune)
            group_incidents(
                Alert.objects.filter(pk__in=[each.pk for each in in_alert]).select_related("sensor")
            )
        return joined


def _propose_in_commune(rule, trigger, commune_id, schools, zones, in_alert, alert, now):
    current = (
        Activation.objects.active()
        .select_for_update(of=("self",))
        .filter(proposal__rule=rule, proposal__communes=commune_id)
        .first()
    )
    if current is not None:
        if added := add_schools(current, schools, now=now):
            notify.record_event(
                current,
                ActivationEventKind.EXTENDED,
                at=now,
                schools=[status.school for status in added],
                pushes=notify.to_everyone(current, "activated"),
            )
        return current
    proposal = (
        Proposal.objects.pending()
        .select_for_update()
        .filter(rule=rule, communes=commune_id)
        .first()
    )
    if proposal is None:
        proposal = Proposal.objects.create(
            rule=rule,
            scenario=trigger.scenario,
            title=alert.title[:200],
            created_at=now,
            auto_activate_at=now + trigger.auto_activate_after
            if trigger.auto_activate_after
            else None,
        )
        proposal.communes.add(commune_id)
    proposal.alerts.add(*in_alert)
    proposal.zones.add(*(zone for zone in zones if zone.commune_id == commune_id))
    proposal.schools.add(*schools)
    notify.tell_proposal(proposal, "proposed")
    return proposal


@transaction.atomic
def ppms_validate(*, proposal: Proposal, by, now=None, automatic: bool = False) -> Activation:
    """Start the activation a proposal asks for; ``by`` validated it (None: automatic)."""
    now = now or timezone.now()
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.state != ProposalState.PENDING:
        raise AlreadyDecided(proposal.get_state_display())
    alerts = list(proposal.alerts.order_by("opened_at", "pk"))
    activation = ppms_activate(
        scenario=proposal.scenario,
        title=proposal.title,
        source=Source.ALERT,
        zones=list(proposal.zones.all()),
        schools=list(School.objects.filter(pk__in=proposal.schools.values("pk"))),
        by=by,
        alert=alerts[0] if alerts else None,
        now=now,
        automatic=automatic,
    )
    proposal.state = ProposalState.VALIDATED
    proposal.decided_at, proposal.decided_by = now, by
    proposal.activation = activation
    if automatic:
        proposal.reason = _("Déclenché automatiquement : personne n'a répondu à temps.")
    proposal.save(update_fields=["state", "decided_at", "decided_by", "activation", "reason"])
    notify.tell_proposal(proposal, "validated")
    return activation


@transaction.atomic
def ppms_dismiss(
    *, proposal: Proposal, by, reason: str, now=None, cancelled: bool = False
) -> Proposal:
    """Set a proposal aside, with why: dismissed, or cancelled as sent in error."""
    if not reason.strip():
        raise ValidationError({"reason": _("Indiquez le motif.")})
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.state != ProposalState.PENDING:
        raise AlreadyDecided(proposal.get_state_display())
    proposal.state = ProposalState.CANCELLED if cancelled else ProposalState.DISMISSED
    proposal.decided_at, proposal.decided_by = now or timezone.now(), by
    proposal.reason = reason.strip()
    proposal.save(update_fields=["state", "decided_at", "decided_by", "reason"])
    notify.tell_proposal(proposal, "cancelled" if cancelled else "dismissed")
    return proposal


def ppms_activate_unanswered(now=None) -> list[Activation]:
    """Activate the proposals whose rule activates them when nobody answered in time."""
    now = now or timezone.now()
    due = Proposal.objects.pending().filter(auto_activate_at__lte=now).order_by("pk")
    activations = []
    for proposal in due:
        try:
            activations.append(ppms_validate(proposal=proposal, by=None, now=now, automatic=True))
        except AlreadyDecided:
            continue  # someone answered meanwhile
    return activations
