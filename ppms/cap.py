"""CAP 1.2 messages of PPMS activations, and their entries in the CAP Atom feed.

An activation's first message is an ``Alert``; each change the safety services act on
(schools added, schools escalated for not answering, the end of alert) makes an
``Update`` that references it, the last one saying ``AllClear`` (CAP 1.2: the end of
alert is an Update, ``Cancel`` is for a message sent in error). A drill is
``status=Exercise`` from its first message to its last.

An intrusion is ``scope=Restricted``: where people hide must not be broadcast. The other
postures are ``Public`` and tell parents not to come for their children.

The building blocks (sender, time format, polygons) are ``core/cap.py``'s, shared with
the alerts' messages so both read alike; the postures' responses and instructions are
``Scenario``'s.
"""

import xml.etree.ElementTree as ET
from datetime import datetime

from django.db.models import Max, Prefetch, Q
from django.utils import timezone

from core.cap import (
    CAP_NS,
    CIRCLE_RADIUS_KM,
    add_geocode,
    cap_datetime,
    cap_sender,
    deg,
    expires,
    feed_keep,
    headline,
    host,
    outer_rings,
    sub,
    tag,
)
from core.feeds import FeedItem, FeedPart, api_url, left_at, public_url
from core.roles import watches_the_town
from sensors.models import Commune, Zone

from .models import (
    Activation,
    ActivationEvent,
    ActivationEventKind,
    Scenario,
    SchoolState,
    SchoolStatus,
    Source,
)

# The events that make a new message (an alarm joining an activation changes nothing
# the public acts on: it is for the operators and the webhooks).
UPDATE_KINDS = (
    ActivationEventKind.EXTENDED,
    ActivationEventKind.ESCALATED,
    ActivationEventKind.ENDED,
    ActivationEventKind.CANCELLED,
)
FEED_LIMIT = 200
NOT_FETCHING = " N'allez pas chercher les enfants à l'école : l'école les met en sûreté."
ENDED_INSTRUCTION = "Fin d'alerte donnée par les autorités : reprise normale des activités."
CANCELLED_INSTRUCTION = (
    "Déclenchement annulé : il a été envoyé par erreur. Ne tenez pas compte des messages "
    "précédents ; reprise normale des activités."
)
RESTRICTION = (
    "Intrusion : réservé aux services de secours et aux autorités ; ne pas diffuser au "
    "public, pour ne pas trahir les personnes cachées."
)
SOURCE_TEXT = {
    Source.ALERT: "sur une alerte d'un capteur du CSU",
    Source.OPERATOR: "par un opérateur du CSU",
    Source.SCHOOL: "sur l'alarme d'une école",
}
STATE_TEXT = {
    SchoolState.PENDING: "en attente",
    SchoolState.SAFE: "en sûreté",
    SchoolState.NEEDS_HELP: "besoin d'aide",
    SchoolState.EVACUATED: "évacuées",
}
# French literals, like the alerts' messages: CAP text is for the French authorities.
SCENARIO_TEXT = {
    Scenario.SHELTER: "mise à l'abri",
    Scenario.CONFINEMENT: "confinement",
    Scenario.EVACUATION: "évacuation",
    Scenario.INTRUSION: "intrusion (s'échapper, s'enfermer et se cacher)",
}


def for_cap(queryset, user=None):
    """Load with ``queryset`` what the CAP messages of its activations read (four queries).

    ``user``: only what they may see of each activation, its schools and the zones of
    their communes (an operator of one commune asking for an activation of several);
    without, the whole activation, as the safety services' webhooks receive it.
    """
    statuses = SchoolStatus.objects.select_related("school__commune").order_by("school__name")
    zones = Zone.objects.order_by("name", "pk")
    if user is not None:
        statuses = statuses.visible_to(user)
        zones = zones.filter(commune__in=Commune.objects.visible_to(user))
    return queryset.prefetch_related(
        Prefetch("zones", queryset=zones),
        Prefetch("statuses", queryset=statuses),
        Prefetch(
            "events",
            queryset=ActivationEvent.objects.filter(kind__in=UPDATE_KINDS).order_by("pk"),
            to_attr="cap_updates",
        ),
    )


def cap_identifier(activation: Activation) -> str:
    """Name the activation's current CAP message: stable, one per activation and version."""
    return _identifier(activation, len(_messages(activation)))


def cap_sent(activation: Activation) -> datetime:
    return _messages(activation)[-1][1]


def activation_cap(
    activation: Activation, *, upto: ActivationEvent | None = None, sender: str | None = None
) -> bytes:
    """Build the activation's CAP 1.2 message, as UTF-8 XML: its current one, or the one
    that was current when ``upto`` happened."""
    messages = _messages(activation)
    if upto is not None:
        messages = [message for message in messages if message[2] is None or message[2] <= upto.pk]
    root = _alert_element(activation, messages, sender or cap_sender())
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True, default_namespace=CAP_NS)


def activation_feed_items(user) -> FeedPart:
    """The activations ``user`` supervises under way or ended within the feed's keep, and
    when the last of the others left the feed, for the CAP feed (operators and admins)."""
    if not watches_the_town(user):
        return FeedPart([])
    current = Q(ended_at__isnull=True) | Q(ended_at__gte=timezone.now() - feed_keep())
    visible = Activation.objects.visible_to(user)
    activations = for_cap(visible.filter(current).order_by("-started_at", "-pk"), user)[:FEED_LIMIT]
    gone = visible.exclude(current).aggregate(Max("ended_at"))["ended_at__max"]
    items = []
    for activation in activations:
        counts = _state_counts(activation)
        exercise = "EXERCICE · " if activation.drill else ""
        items.append(
            FeedItem(
                id=cap_identifier(activation),
                title=activation.title,
                link=api_url(f"ppms/activations/{activation.pk}/cap/"),
                updated=cap_sent(activation),
                summary=(
                    f"{exercise}PPMS {SCENARIO_TEXT[activation.scenario]} · "
                    f"{sum(counts.values())} école(s) : {_counts_text(counts)}"
                ),
                content=activation_cap(activation),
            )
        )
    return FeedPart(items, left_at(gone))


# --- The message ------------------------------------------------------------------------


def _alert_element(activation: Activation, messages: list, sender: str) -> ET.Element:
    kind, sent, _pk = messages[-1]
    intrusion = activation.scenario == Scenario.INTRUSION
    root = ET.Element(tag("alert"))
    sub(root, "identifier", _identifier(activation, len(messages)))
    sub(root, "sender", sender)
    sub(root, "sent", cap_datetime(sent))
    sub(root, "status", "Exercise" if activation.drill else "Actual")
    cancel = kind == ActivationEventKind.CANCELLED
    sub(root, "msgType", "Cancel" if cancel else "Alert" if len(messages) == 1 else "Update")
    sub(root, "scope", "Restricted" if intrusion else "Public")
    if intrusion:
        sub(root, "restriction", RESTRICTION)
    if len(messages) > 1:
        # An update refers to the first message; a cancellation to every message it undoes.
        earlier = messages[:-1] if cancel else messages[:1]
        references = [
            f"{sender},{_identifier(activation, number)},{cap_datetime(sent)}"
            for number, (_kind, sent, _pk) in enumerate(earlier, 1)
        ]
        sub(root, "references", " ".join(references))
    root.append(_info_element(activation, kind, messages))
    return root


def _info_element(activation: Activation, kind: str, messages: list) -> ET.Element:
    cancelled = kind == ActivationEventKind.CANCELLED
    ended = kind == ActivationEventKind.ENDED or cancelled
    intrusion = activation.scenario == Scenario.INTRUSION
    exercise = "EXERCICE — " if activation.drill else ""
    info = ET.Element(tag("info"))
    sub(info, "language", "fr-FR")
    sub(info, "category", "Safety")
    if intrusion:
        sub(info, "category", "Security")
    sub(info, "event", f"PPMS : {SCENARIO_TEXT[activation.scenario]}")
    if cancelled:
        response = "None"
    elif ended:
        response = "AllClear"
    else:
        response = Scenario(activation.scenario).cap_response
    sub(info, "responseType", response)
    sub(info, "urgency", "Past" if ended else "Immediate")
    sub(info, "severity", "Extreme" if intrusion else "Severe")
    sub(info, "certainty", "Observed")
    sub(info, "onset", cap_datetime(activation.started_at))
    sent = messages[-1][1]
    sub(info, "expires", expires(sent, sent if ended else None))
    sub(info, "senderName", f"Centre de supervision urbaine ({_communes(activation)})")
    sub(info, "headline", headline(exercise + activation.title))
    sub(info, "description", _description(activation, kind, messages))
    if cancelled:
        instruction = CANCELLED_INSTRUCTION
    elif ended:
        instruction = ENDED_INSTRUCTION
    else:
        instruction = Scenario(activation.scenario).cap_instruction
        if not intrusion:
            instruction += NOT_FETCHING
    sub(info, "instruction", ("EXERCICE. " if activation.drill else "") + instruction)
    sub(info, "web", public_url(f"ppms/activations/{activation.pk}/"))
    for name, value in _parameters(activation):
        parameter = sub(info, "parameter")
        sub(parameter, "valueName", name)
        sub(parameter, "value", value)
    info.append(_area_element(activation))
    return info


def _description(activation: Activation, kind: str, messages: list) -> str:
    statuses = list(activation.statuses.all())
    exercise = "Exercice : d" if activation.drill else "D"
    lines = [
        f"{exercise}éclenchement du PPMS ({SCENARIO_TEXT[activation.scenario]}) le "
        f"{_local(activation.started_at)}, {SOURCE_TEXT[activation.source]}.",
        f"{len(statuses)} école(s) concernée(s) : {_counts_text(_state_counts(activation))}.",
    ]
    totals = {
        field: sum(getattr(status, field) or 0 for status in statuses)
        for field in ("pupils_missing", "pupils_injured", "adults_missing", "adults_injured")
    }
    if any(totals.values()):
        lines.append(
            f"Signalés : élèves {totals['pupils_missing']} manquant(s), "
            f"{totals['pupils_injured']} blessé(s) ; adultes {totals['adults_missing']} "
            f"manquant(s), {totals['adults_injured']} blessé(s)."
        )
    event = _event_of(activation, messages[-1][2])
    # Named only if the reader sees one of them (``_school_names``).
    names = _school_names(activation, event.schools if event else [])
    if kind == ActivationEventKind.ESCALATED and names:
        minutes = int((event.at - activation.started_at).total_seconds() // 60)
        lines.append(f"Sans réponse après {minutes} min : {names}.")
    elif kind == ActivationEventKind.EXTENDED and names:
        lines.append(f"Écoles ajoutées : {names}.")
    if kind == ActivationEventKind.ENDED:
        ordered = (
            f", ordonnée par {activation.ended_on_order_of}" if activation.ended_on_order_of else ""
        )
        lines.append(f"Fin d'alerte le {_local(messages[-1][1])}{ordered}.")
    if kind == ActivationEventKind.CANCELLED:
        reason = f" ({activation.cancel_reason})" if activation.cancel_reason else ""
        lines.append(
            f"Déclenchement annulé le {_local(messages[-1][1])} : envoyé par erreur{reason}."
        )
    return "\n".join(lines)


def _parameters(activation: Activation) -> list[tuple[str, str]]:
    counts = _state_counts(activation)
    return [
        ("activation", str(activation.pk)),
        ("scenario", activation.scenario),
        ("source", activation.source),
        ("drill", "true" if activation.drill else "false"),
        ("schools", str(sum(counts.values()))),
        *((f"schools_{state}", str(count)) for state, count in counts.items()),
    ]


def _area_element(activation: Activation) -> ET.Element:
    """The zones' polygons if drawn, and a circle around each school concerned."""
    area = ET.Element(tag("area"))
    zones = list(activation.zones.all())
    schools = [status.school for status in activation.statuses.all()]
    description = ", ".join(zone.name for zone in zones) or ", ".join(
        school.name for school in schools
    )
    sub(area, "areaDesc", description or _communes(activation))
    for zone in zones:
        for ring in outer_rings(zone.geometry):
            sub(area, "polygon", " ".join(f"{deg(lat)},{deg(lon)}" for lon, lat in ring))
    for school in schools:
        centre = f"{deg(school.latitude)},{deg(school.longitude)}"
        sub(area, "circle", f"{centre} {CIRCLE_RADIUS_KM}")
    communes = {school.commune.insee_code for school in schools if school.commune.insee_code}
    for code in sorted(communes):
        add_geocode(area, "INSEE", code)
    for school in schools:
        add_geocode(area, "UAI", school.uai)
    return area


# --- Versions and helpers ---------------------------------------------------------------


def _messages(activation: Activation) -> list[tuple[str, datetime, int | None]]:
    """The activation's messages: (kind, sent, event pk), its start first."""
    updates = getattr(activation, "cap_updates", None)
    if updates is None:
        updates = activation.events.filter(kind__in=UPDATE_KINDS).order_by("pk")
    started = (ActivationEventKind.STARTED, activation.started_at, None)
    return [started, *((event.kind, event.at, event.pk) for event in updates)]


def _event_of(activation: Activation, pk: int | None) -> ActivationEvent | None:
    updates = getattr(activation, "cap_updates", None)
    if updates is None:
        return activation.events.filter(pk=pk).first()
    return next((event for event in updates if event.pk == pk), None)


def _identifier(activation: Activation, version: int) -> str:
    return f"urn:csu:{host()}:ppms:{activation.pk}:{version}"


def _state_counts(activation: Activation) -> dict[str, int]:
    counts = dict.fromkeys(SchoolState.values, 0)
    for status in activation.statuses.all():
        counts[status.state] += 1
    return counts


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {STATE_TEXT[state]}" for state, count in counts.items() if count)


def _school_names(activation: Activation, uais: list[str]) -> str:
    """The schools named, of those loaded (a reader's copy names only what they see)."""
    names = {status.school.uai: status.school.name for status in activation.statuses.all()}
    return ", ".join(f"{names[uai]} ({uai})" for uai in uais if uai in names)


def _communes(activation: Activation) -> str:
    names = sorted({status.school.commune.name for status in activation.statuses.all()})
    return ", ".join(names)


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%d/%m/%Y à %H:%M")
