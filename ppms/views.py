"""The PPMS pages: the director's phone page (an installable PWA), the operators' live
board, and the after-action report (HTML to print, French CSV).

Writes go through the REST API (/api/docs/) from the pages' scripts; these
views only render, and answer the few page-shaped reads the scripts need to catch up
after a reconnect (``state.json`` for a director, the board's sections for operators).

Who sees what: a director sees only the schools they direct (any other school is a
404, like an unknown one); operators and admins see the board and the reports of the
activations concerning their communes' schools; directors get a 403 there.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.db.models import Min, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from core import exports, webpush
from core.roles import supervised_communes, watches_the_town
from sensors.models import Commune, Zone

from .api import may_record_occupancy, visible_shelters
from .models import (
    COUNTS,
    UNCOUNTED_TEXTS,
    Activation,
    ActivationEvent,
    ActivationEventKind,
    CommunePolicy,
    PpmsPlan,
    Proposal,
    Scenario,
    School,
    SchoolState,
    SchoolStatus,
    Shelter,
    ShelterReport,
    StatusUpdate,
    VigicruesColour,
    directory_of,
    emergency_numbers,
)
from .proposals import may_validate, proposal_communes
from .reach import Reach, reach_of
from .summaries import activation_summary, proposal_summary, status_summary

PUPIL_COUNTS = ("pupils_present", "pupils_absent", "pupils_missing", "pupils_injured")
ADULT_COUNTS = ("adults_present", "adults_absent", "adults_missing", "adults_injured")
# A state that means "the children are safe" (for totals and the report's "all safe").
SAFE_STATES = (SchoolState.SAFE, SchoolState.EVACUATED)
# Board order: schools needing help first, then those that have not answered.
BOARD_ORDER = {SchoolState.NEEDS_HELP: 0, SchoolState.PENDING: 1}
# Ended activations stay listed on the board this long, with their report.
RECENTLY_ENDED = timedelta(hours=12)


def numbers_for_page() -> dict[str, list[dict]]:
    """The emergency numbers in the order of each case, and the short text of an alarm
    that failed to send ("18 · 15 · …")."""
    lists = {
        case: [
            {"number": n.number, "label": str(n.label), "sms": n.sms}
            for n in emergency_numbers("intrusion" if case == "intrusion" else None)
        ]
        for case in ("intrusion", "default")
    }
    return {
        **lists,
        **{f"{case}_text": " · ".join(n["number"] for n in lists[case]) for case in lists},
    }


def destination_of(activation, school) -> dict | None:
    """Where an evacuating school goes: the centre d'accueil the operator named, else the
    assembly point of its plan; None for the other postures."""
    if activation is None or activation.scenario != Scenario.EVACUATION:
        return None
    if activation.shelter_id:
        shelter = activation.shelter
        text = f"{shelter.name}, {shelter.address}" if shelter.address else shelter.name
        return {"kind": "shelter", "text": text}
    plan = school.plans.filter(scenario=Scenario.EVACUATION).first()
    if plan and plan.assembly_point:
        return {"kind": "assembly", "text": plan.assembly_point}
    return {"kind": "assembly", "text": str(_("le point de rassemblement de votre plan"))}


def require_supervisor(user) -> None:
    if not watches_the_town(user):
        raise PermissionDenied(_("Réservé aux opérateurs du CSU."))


def director_schools(user):
    """The schools ``user`` directs: the only ones their PPMS page shows."""
    return School.objects.filter(directors=user).select_related("commune")


def scenario_labels() -> dict[str, str]:
    return {code: str(label) for code, label in Scenario.choices}


def state_labels() -> dict[str, dict[str, str]]:
    return {
        code: {"label": str(label), "colour": SchoolState(code).colour}
        for code, label in SchoolState.choices
    }


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    minutes = round((end - start).total_seconds() / 60, 1)
    return int(minutes) if minutes.is_integer() else minutes  # "7", not "7,0", in a sheet


def duration_text(start: datetime | None, end: datetime | None) -> str:
    """A short French duration: « 4 min 05 s », « 1 h 12 min »."""
    if start is None or end is None:
        return "—"
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def who(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


# --- The director's page -----------------------------------------------------------------


def active_statuses(school) -> list[SchoolStatus]:
    """The school's statuses in activations not yet ended, newest activation first."""
    return list(
        SchoolStatus.objects.filter(school=school, activation__ended_at__isnull=True)
        .select_related("activation", "school")
        .order_by("-activation__started_at", "-activation__pk")
    )


def pick_current(statuses: list[SchoolStatus], activation_id: int | None):
    """The activation the page shows: ``activation_id`` if active, else the newest."""
    current = next((s for s in statuses if s.activation_id == activation_id), None)
    if current is None and statuses:
        current = statuses[0]
    return current, [s for s in statuses if s is not current]


def director_state(school, current: SchoolStatus | None, others: list[SchoolStatus]) -> dict:
    """What the director's page shows: the current activation and the school's answer.

    The others active at the same time are listed too: their ``silent`` flag keeps the
    page silent while any intrusion is under way.
    """
    return {
        "school": {
            "uai": school.uai,
            "name": school.name,
            "pupils": school.pupils,
            "staff": school.staff,
        },
        "activation": activation_summary(current.activation) if current else None,
        "destination": destination_of(current.activation, school) if current else None,
        "status": status_summary(current) if current else None,
        "others": [activation_summary(s.activation) for s in others],
        "rendered_at": timezone.now().isoformat(),
    }


def plans_by_scenario(school) -> dict[str, PpmsPlan]:
    return {plan.scenario: plan for plan in school.plans.all()}


def _activation_param(request) -> int | None:
    value = request.GET.get("activation", "")
    return int(value) if value.isdigit() else None


def uncounted_forms() -> dict[str, list[list[str]]]:
    """The words of ``models.uncounted_text`` for the pages' scripts."""
    return {
        group: [[str(singular), str(plural)] for singular, plural in forms]
        for group, forms in UNCOUNTED_TEXTS.items()
    }


def vigicrues_labels() -> dict[str, str]:
    return {colour.value: str(colour.label) for colour in VigicruesColour}


def push_settings() -> dict:
    return {"enabled": webpush.enabled(), "public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY}


def _director_page(request, school, *, several: bool):
    current, others = pick_current(active_statuses(school), _activation_param(request))
    state = director_state(school, current, others)
    plans = plans_by_scenario(school)
    activation = current.activation if current else None
    data = {
        **state,
        "user": request.user.pk,
        "several": several,
        "scenarios": scenario_labels(),
        "states": state_labels(),
        "numbers": numbers_for_page(),
        "csu_phone": settings.CSU_PHONE,
        "urls": {
            "state": reverse("ppms-director-state", args=[school.uai]),
            "status": "/api/v1/ppms/activations/{id}/statuses/" + school.uai + "/",
            "alarm": f"/api/v1/schools/{school.uai}/alarm/",
            "ws": "/ws/live/",
            "sw": reverse("ppms-sw"),
            "scope": reverse("ppms-board"),
            "push_subscriptions": reverse("push-subscriptions"),
        },
        "push": push_settings(),
        "uncounted": uncounted_forms(),
        "vigicrues": vigicrues_labels(),
    }
    silent = bool(activation and state["activation"]["silent"])

    def fields(names):
        return [(name, _field_label(name), getattr(current, name, None)) for name in names]

    context = {
        "school": school,
        "several": several,
        "activation": activation,
        "silent": silent,
        "status": current,
        "others": [s.activation for s in others],
        "plan": plans.get(activation.scenario) if activation else None,
        "plans": [
            (code, label, plans.get(code), Scenario(code).guidance)
            for code, label in Scenario.choices
        ],
        "guidance": Scenario(activation.scenario).guidance if activation else "",
        "scenarios": Scenario.choices,
        "pupil_fields": fields(PUPIL_COUNTS),
        "adult_fields": fields(ADULT_COUNTS),
        "numbers": emergency_numbers(activation.scenario if activation else None),
        "destination": state["destination"],
        "csu_phone": settings.CSU_PHONE,
        "current_state": SchoolState(current.state) if current else None,
        "directory": directory_of(school),
        "page_data": data,
    }
    return render(request, "ppms/director.html", context)


def _field_label(name: str) -> str:
    # "élèves présents" → "présents": the fieldset already says pupils or adults.
    return str(SchoolStatus._meta.get_field(name).verbose_name).split(" ", 1)[1]


@never_cache
def director_home(request):
    """The director's start page (the PWA's start_url): their school, or a choice."""
    schools = list(director_schools(request.user))
    if not schools:
        raise Http404(_("Aucune école ne vous est rattachée."))
    if len(schools) == 1:
        return _director_page(request, schools[0], several=False)
    active = set(
        SchoolStatus.objects.filter(
            school__in=schools, activation__ended_at__isnull=True
        ).values_list("school_id", flat=True)
    )
    rows = [(school, school.pk in active) for school in schools]
    rows.sort(key=lambda row: (not row[1], row[0].name))
    data = {
        "user": request.user.pk,
        "rendered_at": timezone.now().isoformat(),
        "urls": {
            "ws": "/ws/live/",
            "sw": reverse("ppms-sw"),
            "scope": reverse("ppms-board"),
            "push_subscriptions": reverse("push-subscriptions"),
        },
        "push": push_settings(),
    }
    return render(request, "ppms/director_choose.html", {"rows": rows, "page_data": data})


@never_cache
def director_school(request, uai):
    school = get_object_or_404(director_schools(request.user), uai=uai)
    several = director_schools(request.user).count() > 1
    return _director_page(request, school, several=several)


@never_cache
def director_state_json(request, uai):
    """The page's state, fetched after a reconnect or a live event (catch-up)."""
    school = get_object_or_404(director_schools(request.user), uai=uai)
    current, others = pick_current(active_statuses(school), _activation_param(request))
    return JsonResponse(director_state(school, current, others))


# --- The PWA: manifest and service worker ---------------------------------------------------

# What the service worker keeps so the director's page opens without network. The pages
# themselves are cached as they are visited (network first, see static/ppms/sw.js).
SHELL_ASSETS = (
    "css/csu.css",
    "css/ppms.css",
    "js/site.js",
    "js/director.js",
    "ppms/icon.svg",
    "ppms/icon-192.png",
)


def _shell_version(source: str, urls: list[str]) -> str:
    """Change with the worker or any shell file, so browsers install the new shell."""
    digest = hashlib.sha256(source.encode())
    for path, url in zip(SHELL_ASSETS, urls, strict=True):
        digest.update(url.encode())
        found = finders.find(path)
        if found:
            with open(found, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:12]


@login_not_required  # fetched by the browser itself; holds no data
def service_worker(request):
    """Serve the worker from /ppms/ so its scope covers the director's pages."""
    path = finders.find("ppms/sw.js")
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    urls = [static(asset) for asset in SHELL_ASSETS]
    config = {
        "version": _shell_version(source, urls),
        "assets": urls,
        "start": reverse("ppms-director"),
        "received": reverse("push-received"),
        # The director's pages: /ppms/ecole/ and /ppms/school/<uai>/ (state.json excluded).
        "pages": [reverse("ppms-director"), reverse("ppms-director-school", args=["-"])[:-2]],
        "offline": _(
            "Hors ligne. Ouvrez cette page une fois avec du réseau pour l'avoir "
            "hors ligne ensuite. En cas d'urgence : 18, 17 ou 112."
        ),
    }
    prelude = f"const CONFIG = {json.dumps(config, ensure_ascii=False)};\n"
    response = HttpResponse(prelude + source, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("ppms-board")
    # The browser checks for a new worker on each visit; never serve it from a cache.
    response["Cache-Control"] = "no-cache"
    return response


@login_not_required  # browsers fetch manifests without cookies
def manifest(request):
    data = {
        "name": "CSU — PPMS",
        "short_name": "PPMS",
        "description": _("Plan particulier de mise en sûreté : l'état de votre école."),
        "lang": "fr",
        "start_url": reverse("ppms-director"),
        "scope": reverse("ppms-board"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f4f6f8",
        "theme_color": "#12263a",
        "icons": [
            {"src": static("ppms/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("ppms/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": static("ppms/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
            {"src": static("ppms/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False), content_type="application/manifest+json"
    )
    response["Cache-Control"] = "max-age=3600"
    return response


# --- The operators' board -------------------------------------------------------------


@dataclass
class BoardRow:
    status: SchoolStatus
    first_reply_at: datetime | None
    safe_at: datetime | None = None  # first said safe or evacuated
    reach: Reach | None = None  # who was told how
    sheltered_at: datetime | None = None  # first said "en sûreté"
    evacuated_at: datetime | None = None  # first said "évacués"
    reminders: int = 0  # steps of the escalation ladder taken for it (the report)

    @property
    def first_sign_at(self) -> datetime | None:
        """Its first sign of life: its page showed the activation, or its first answer."""
        return self.reach.first_sign_at if self.reach else self.first_reply_at

    @property
    def sign_delay(self) -> str:
        return duration_text(self.status.activation.started_at, self.first_sign_at)

    @property
    def sheltered_delay(self) -> str:
        return duration_text(self.status.activation.started_at, self.sheltered_at)

    @property
    def evacuated_delay(self) -> str:
        return duration_text(self.status.activation.started_at, self.evacuated_at)

    @property
    def school(self):
        return self.status.school

    @property
    def state(self) -> SchoolState:
        return SchoolState(self.status.state)

    @property
    def minutes_to_reply(self) -> float | None:
        return minutes_between(self.status.activation.started_at, self.first_reply_at)

    @property
    def reply_delay(self) -> str:
        return duration_text(self.status.activation.started_at, self.first_reply_at)

    @property
    def minutes_to_safe(self) -> float | None:
        return minutes_between(self.status.activation.started_at, self.safe_at)

    @property
    def safe_delay(self) -> str:
        return duration_text(self.status.activation.started_at, self.safe_at)

    def counts(self, names) -> list[tuple[str, int | None]]:
        return [(name, getattr(self.status, name)) for name in names]

    @property
    def pupil_counts(self):
        return self.counts(PUPIL_COUNTS)

    @property
    def adult_counts(self):
        return self.counts(ADULT_COUNTS)

    @property
    def directory(self):
        return directory_of(self.school)

    @property
    def groups(self) -> list[dict]:
        """The school's groups with the posture's label, when it gave several."""
        if len(self.status.groups) < 2:
            return []
        return [
            {**group, "posture_label": Scenario(group["posture"]).label}
            for group in self.status.groups
        ]

    @property
    def sort_key(self):
        escalated_first = 0 if self.status.escalated_at else 1
        return (BOARD_ORDER.get(self.status.state, 2), escalated_first, self.school.name)


@dataclass
class Totals:
    """An activation's schools by state and their pupils present; evacuated schools are
    their own total (out of the building, not yet in safety)."""

    pupils_concerned: int = 0
    pupils_safe: int = 0
    pupils_evacuated: int = 0
    schools: int = 0
    schools_safe: int = 0
    schools_evacuated: int = 0
    schools_help: int = 0
    schools_pending: int = 0

    @classmethod
    def of(cls, rows: list[BoardRow]) -> "Totals":
        totals = cls(schools=len(rows))
        for row in rows:
            state = row.status.state
            totals.pupils_concerned += row.school.pupils
            if state == SchoolState.SAFE:
                totals.schools_safe += 1
                totals.pupils_safe += row.status.pupils_present or 0
            elif state == SchoolState.EVACUATED:
                totals.schools_evacuated += 1
                totals.pupils_evacuated += row.status.pupils_present or 0
            elif state == SchoolState.NEEDS_HELP:
                totals.schools_help += 1
            else:
                totals.schools_pending += 1
        return totals


@dataclass
class ShelterPanel:
    """An evacuation's centre d'accueil on the board: what it expects (the headcounts of
    the schools sent there), its last record (arrivals by home commune, staff, supplies),
    and the communes its staff count arrivals from."""

    shelter: Shelter
    report: ShelterReport | None
    expected: int
    communes: list[tuple[Commune, int | None]]
    others: list[Commune]
    may_record: bool


@dataclass
class Section:
    activation: Activation
    rows: list[BoardRow]
    totals: Totals = field(init=False)
    may_cancel: bool = False  # the user may cancel it as a mistake
    shelter_panel: ShelterPanel | None = None
    is_flood: bool = False

    def __post_init__(self):
        self.rows.sort(key=lambda row: row.sort_key)
        self.totals = Totals.of(self.rows)

    @property
    def summary(self) -> dict:
        return activation_summary(self.activation)

    @property
    def scenario_label(self) -> str:
        return self.activation.get_scenario_display()

    @property
    def all_safe_at(self) -> datetime | None:
        """When the last school first said it was safe, if every school did."""
        if not self.rows or any(row.safe_at is None for row in self.rows):
            return None
        return max(row.safe_at for row in self.rows)

    @property
    def all_safe_delay(self) -> str:
        return duration_text(self.activation.started_at, self.all_safe_at)

    @property
    def elapsed_minutes(self) -> int:
        end = self.activation.ended_at or timezone.now()
        return max(0, int((end - self.activation.started_at).total_seconds() // 60))


def visible_schools_q(user) -> Q:
    communes = supervised_communes(user)
    return Q() if communes is None else Q(school__commune__in=communes)


def sections_for(user, activations) -> list[Section]:
    """The board's sections: each activation with its schools (those ``user`` may see)."""
    statuses = (
        SchoolStatus.objects.filter(visible_schools_q(user), activation__in=activations)
        .select_related("school", "activation", "updated_by")
        .prefetch_related("school__directory")
        .annotate(
            first_reply_at=Min("updates__at"),
            safe_at=Min("updates__at", filter=Q(updates__state__in=SAFE_STATES)),
            sheltered_at=Min("updates__at", filter=Q(updates__state=SchoolState.SAFE)),
            evacuated_at=Min("updates__at", filter=Q(updates__state=SchoolState.EVACUATED)),
        )
    )
    statuses = list(statuses)
    reaches = reach_of(statuses)
    by_activation: dict[int, list[BoardRow]] = {a.pk: [] for a in activations}
    for status in statuses:
        row = BoardRow(
            status,
            status.first_reply_at,
            status.safe_at,
            reaches[status.pk],
            sheltered_at=status.sheltered_at,
            evacuated_at=status.evacuated_at,
        )
        by_activation[status.activation_id].append(row)
    return [Section(a, by_activation[a.pk]) for a in activations if by_activation[a.pk]]


def shelter_panel(section: Section, user) -> ShelterPanel | None:
    activation = section.activation
    if not activation.shelter_id:
        return None
    shelter = activation.shelter
    report = activation.last_shelter_report
    reported = {
        arrival["commune"]["id"]: arrival["count"]
        for arrival in (report.arrivals if report else [])
    }
    ids = {shelter.commune_id, *(row.school.commune_id for row in section.rows), *reported}
    listed = list(Commune.objects.filter(pk__in=ids).order_by("name"))
    return ShelterPanel(
        shelter=shelter,
        report=report,
        # Everyone the schools sent there said they had: pupils and adults present.
        expected=sum(
            (row.status.pupils_present or 0) + (row.status.adults_present or 0)
            for row in section.rows
        ),
        communes=[(commune, reported.get(commune.pk)) for commune in listed],
        others=list(Commune.objects.exclude(pk__in=ids).order_by("name")),
        may_record=may_record_occupancy(user, shelter),
    )


def board_context(user) -> dict:
    now = timezone.now()
    visible = Activation.objects.visible_to(user).select_related(
        "started_by", "ended_by", "shelter", "vigicrues_set_by"
    )
    active = list(visible.active().order_by("-started_at"))
    ended = list(visible.filter(ended_at__gte=now - RECENTLY_ENDED).order_by("-ended_at"))
    for section in (sections := sections_for(user, active)):
        section.may_cancel = may_validate(user, {row.school.commune_id for row in section.rows})
        section.shelter_panel = shelter_panel(section, user)
        section.is_flood = section.activation.is_flood
    return {
        "proposals": pending_proposals(user),
        "sections": sections,
        "recently_ended": ended,
        "vigicrues_colours": VigicruesColour.choices,
        "now": now,
    }


def pending_proposals(user) -> list[dict]:
    """The proposals waiting for a decision that ``user`` sees, as the board shows them."""
    proposals = Proposal.objects.pending().visible_to(user).select_related("rule")
    return [
        proposal_summary(proposal)
        | {
            "may_decide": may_validate(user, proposal_communes(proposal)),
            "scenario_label": Scenario(proposal.scenario).label,
            "created": proposal.created_at,
            "auto_activate": proposal.auto_activate_at,
        }
        for proposal in proposals.order_by("created_at", "pk")
    ]


@never_cache
def activation_board(request, pk):
    """An activation's own address (its CAP messages' ``<web>``): the board while it is
    under way or just ended, its report after; 404 to who may not see it."""
    require_supervisor(request.user)
    activation = get_object_or_404(Activation.objects.visible_to(request.user), pk=pk)
    if activation.ended_at and activation.ended_at < timezone.now() - RECENTLY_ENDED:
        return report(request, pk)
    return board(request)


@never_cache
def board(request):
    require_supervisor(request.user)
    communes = Commune.objects.visible_to(request.user)
    schools = School.objects.visible_to(request.user).select_related("commune")
    zones = Zone.objects.filter(commune__in=communes).select_related("commune")
    config = {
        "scenarios": scenario_labels(),
        "states": state_labels(),
        "counts": list(COUNTS),
        "uncounted": uncounted_forms(),
        "urls": {
            "activations": "/api/v1/ppms/activations/",
            "end": "/api/v1/ppms/activations/{id}/end/",
            "cancel": "/api/v1/ppms/activations/{id}/cancel/",
            "proposal": "/api/v1/ppms/proposals/{id}/{decision}/",
            "shelters": "/api/v1/shelters/",
            "occupancy": "/api/v1/shelters/{id}/occupancy/",
            "shelter_report": "/api/v1/ppms/activations/{id}/shelter/",
            "vigicrues": "/api/v1/ppms/activations/{id}/vigicrues/",
            "sections": reverse("ppms-board-sections"),
            "ws": "/ws/live/",
        },
    }
    context = {
        **board_context(request.user),
        "scenarios": Scenario.choices,
        "schools": schools.order_by("commune__name", "name"),
        "zones": zones.order_by("commune__name", "name"),
        "destinations": visible_shelters(request.user).select_related("commune"),
        "commune_links": [
            policy
            for policy in CommunePolicy.objects.filter(commune__in=communes)
            .select_related("commune")
            .order_by("commune__name")
            if policy.links
        ],
        "config": config,
    }
    return render(request, "ppms/board.html", context)


@never_cache
def board_sections(request):
    """The board's activations as HTML, for the page to refresh after a live event."""
    require_supervisor(request.user)
    return render(request, "ppms/_board_sections.html", board_context(request.user))


# --- The after-action report -------------------------------------------------------------


@dataclass
class Event:
    """One line of the report's timeline."""

    at: datetime
    kind: str  # started | extended | alarm | reply | ladder | escalated | all_safe | ended
    label: str
    status: SchoolStatus | None = None
    update: StatusUpdate | None = None
    by: str = ""
    details: str = ""
    first: bool = False
    delay: str = ""  # since the activation started

    @property
    def school_name(self) -> str:
        return self.status.school.name if self.status else ""

    @property
    def uai(self) -> str:
        return self.status.school.uai if self.status else ""


EVENT_ORDER = {"started": 0, "extended": 1, "alarm": 1, "reply": 2, "ladder": 2, "escalated": 2}


def report_for(user, pk) -> tuple[Section, list[Event]]:
    """The activation's board section and its timeline, over the schools ``user`` sees."""
    require_supervisor(user)
    activation = get_object_or_404(
        Activation.objects.visible_to(user).select_related("started_by", "ended_by"), pk=pk
    )
    [section] = sections_for(user, [activation]) or [Section(activation, [])]
    statuses = {row.status.pk: row.status for row in section.rows}
    by_uai = {row.school.uai: row.status for row in section.rows}
    events = [
        Event(activation.started_at, "started", _("Déclenchement"), by=who(activation.started_by))
    ]
    # Schools added later, alarms raised from a school (ppms.notify.record_event), the
    # steps of the escalation ladder (ppms.ladder).
    rows_by_uai = {row.school.uai: row for row in section.rows}
    for notice in ActivationEvent.objects.filter(
        activation=activation,
        kind__in=[
            ActivationEventKind.EXTENDED,
            ActivationEventKind.ALARM,
            ActivationEventKind.LADDER,
            ActivationEventKind.ESCALATED,
        ],
    ).select_related("by"):
        seen = [uai for uai in notice.schools if uai in by_uai]
        if not seen:
            continue
        if notice.kind in (ActivationEventKind.LADDER, ActivationEventKind.ESCALATED):
            # "Relancée": every step of the ladder taken for the school counts.
            for uai in seen:
                rows_by_uai[uai].reminders += 1
        if notice.kind == ActivationEventKind.ESCALATED:
            continue  # its own line per school, below (escalated_at)
        if notice.kind == ActivationEventKind.LADDER:
            names = ", ".join(by_uai[uai].school.name for uai in seen)
            # The step's own line names every school: only an admin sees them all.
            details = notice.text
            if len(seen) < len(notice.schools):
                details = details.split(" — ")[0]
            label = _("Relance : %(schools)s") % {"schools": names}
            events.append(Event(notice.at, "ladder", label, details=details))
        elif notice.kind == ActivationEventKind.ALARM:
            events.append(
                Event(
                    notice.at,
                    "alarm",
                    _("Alarme de l'école"),
                    by_uai[seen[0]],
                    by=who(notice.by),
                    details=notice.text,
                )
            )
        else:
            events.append(
                Event(notice.at, "extended", _("Écoles ajoutées"), details=", ".join(seen))
            )
    updates = StatusUpdate.objects.filter(status__in=statuses).select_related("by")
    replied = set()
    for update in updates.order_by("at", "pk"):
        first = update.status_id not in replied
        replied.add(update.status_id)
        label = _("Première réponse") if first else _("Mise à jour")
        status = statuses[update.status_id]
        events.append(Event(update.at, "reply", label, status, update, who(update.by), first=first))
    for row in section.rows:
        if row.status.escalated_at:
            events.append(
                Event(
                    row.status.escalated_at,
                    "escalated",
                    _("Signalée aux services de secours"),
                    row.status,
                )
            )
    if section.all_safe_at:
        events.append(Event(section.all_safe_at, "all_safe", _("Toutes les écoles en sûreté")))
    if activation.ended_at:
        events.append(
            Event(activation.ended_at, "ended", _("Fin d'alerte"), by=who(activation.ended_by))
        )
    events.sort(key=lambda event: (event.at, EVENT_ORDER.get(event.kind, 3)))
    for event in events:
        event.delay = duration_text(activation.started_at, event.at)
    return section, events


@never_cache
def report(request, pk):
    section, events = report_for(request.user, pk)
    activation = section.activation
    totals = [(name, sum(getattr(r.status, name) or 0 for r in section.rows)) for name in COUNTS]
    context = {
        "section": section,
        "activation": activation,
        "events": events,
        "count_totals": totals,
        "pupil_fields": [(f, _field_label(f)) for f in PUPIL_COUNTS],
        "adult_fields": [(f, _field_label(f)) for f in ADULT_COUNTS],
        "duration": duration_text(activation.started_at, activation.ended_at),
        "escalations": [row for row in section.rows if row.status.escalated_at],
        "reminders": sum(row.reminders for row in section.rows),
        "reminded_schools": sum(1 for row in section.rows if row.reminders),
        "started_by": who(activation.started_by),
        "ended_by": who(activation.ended_by),
        "shelter_panel": shelter_panel(section, request.user),
        "shelter_reports": (
            activation.shelter_reports.select_related("by", "shelter").order_by("at", "pk")
        ),
    }
    return render(request, "ppms/report.html", context)


def report_columns() -> list[exports.Column]:
    states = {code: str(label) for code, label in SchoolState.choices}
    return [
        exports.Column("at", _("Heure"), time=True),
        exports.Column("event", _("Événement")),
        exports.Column("school", _("École")),
        exports.Column("uai", _("UAI")),
        exports.Column("state", _("État"), states),
        exports.Column("minutes", _("Minutes depuis le déclenchement")),
        *(
            exports.Column(name, str(SchoolStatus._meta.get_field(name).verbose_name))
            for name in COUNTS
        ),
        exports.Column("posture", _("Posture"), scenario_labels()),
        exports.Column("location", _("Lieu")),
        exports.Column("needs", _("Besoins")),
        exports.Column("details", _("Détails")),
        exports.Column("by", _("Par")),
    ]


def report_rows(section: Section, events: list[Event]):
    """The timeline, then one line per school: its time to answer and its last counts."""
    started = section.activation.started_at
    for event in events:
        data = event.update.data if event.update else {}
        yield [
            event.at,
            event.label,
            event.school_name,
            event.uai,
            event.update.state if event.update else None,
            minutes_between(started, event.at),
            *(data.get(name) for name in COUNTS),
            data.get("posture"),
            data.get("location"),
            data.get("needs"),
            event.details,
            event.by,
        ]
    for row in section.rows:
        status = row.status
        yield [
            row.first_reply_at,
            _("Bilan de l'école : délai de première réponse"),
            status.school.name,
            status.school.uai,
            status.state,
            row.minutes_to_reply,
            *(getattr(status, name) for name in COUNTS),
            status.posture,
            status.location,
            status.needs,
            row.reach.text() if row.reach else "",
            who(status.updated_by),
        ]
    # The centre d'accueil's last record: one line per home commune.
    record = section.activation.last_shelter_report
    for arrival in record.arrivals if record else []:
        yield [
            record.at,
            _("Centre d'accueil %(shelter)s : arrivées de %(commune)s")
            % {"shelter": record.shelter.name, "commune": arrival["commune"]["name"]},
            "",
            "",
            None,
            minutes_between(started, record.at),
            *(None for _name in COUNTS),
            None,
            "",
            "",
            _("%(total)s personnes") % {"total": arrival["count"]},
            who(record.by),
        ]


@never_cache
def report_csv(request, pk):
    section, events = report_for(request.user, pk)
    limit = exports.max_rows()
    # report_rows: one per event, one per school, one per commune of the centre's arrivals
    if len(events) + len(section.rows) > limit:
        context = {"message": exports.too_large_message(limit), "activation": section.activation}
        return render(request, "ppms/report_too_large.html", context, status=413)
    return exports.export_response(
        request,
        columns=report_columns(),
        rows=report_rows(section, events),
        fmt=exports.CSV_FR,
        filename=f"ppms-{section.activation.pk}-{exports.stamp(section.activation.started_at)}",
    )
