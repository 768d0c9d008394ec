"""The PPMS pages: the director's phone page (and its PWA files), the operators' board,
the after-action report. Who sees what, what each page gives its script, and the
report's figures and CSV format."""

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings

from core import roles
from ppms.models import PpmsPlan, SchoolStatus
from ppms.services import ppms_activate, ppms_report
from tests.conftest import make_school, make_user, sign_in
from tests.ppms_helpers import end_of_alert

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DIRECTOR_PAGE = "/ppms/ecole/"
BOARD = "/ppms/"


def page_data(response, element_id="ppms-data") -> dict:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, f"the page has no #{element_id} JSON for its script"
    return json.loads(match.group(1))


def activate(schools, scenario="shelter", title="Nuage toxique : mise à l'abri", **fields):
    fields.setdefault("now", T0)
    return ppms_activate(
        scenario=scenario, title=title, source="operator", schools=schools, **fields
    )


def report(activation, school, *, minutes, state="safe", by=None, **counts):
    status = SchoolStatus.objects.get(activation=activation, school=school)
    return ppms_report(
        status=status,
        report={"state": state, **counts},
        by=by,
        now=activation.started_at + timedelta(minutes=minutes),
    )


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "admin", is_staff=True)


@pytest.fixture
def shelter_plan(school):
    return PpmsPlan.objects.create(
        school=school,
        scenario="shelter",
        sheltering_places="Salle de motricité (rez-de-chaussée)",
        assembly_point="Préau nord",
        instructions="Fermer les fenêtres, couper la ventilation, écouter France Bleu.",
    )


# --- The director's page: who sees it -------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, school):
    response = client.get(DIRECTOR_PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_director_is_sent_from_the_home_page_to_their_ppms_page(client, director):
    sign_in(client, director)

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == DIRECTOR_PAGE


def test_a_director_sees_a_calm_page_when_nothing_is_under_way(client, director, school):
    sign_in(client, director)

    response = client.get(DIRECTOR_PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Aucun déclenchement en cours" in html
    assert 'data-testid="btn-alarm"' in html
    assert "N&#x27;écrivez aucun nom" in html or "N'écrivez aucun nom" in html
    data = page_data(response)
    assert data["school"]["uai"] == school.uai
    assert data["activation"] is None
    assert data["urls"]["alarm"] == f"/api/v1/schools/{school.uai}/alarm/"


def test_a_director_sees_their_own_school_by_its_code(client, director, school):
    sign_in(client, director)

    assert client.get(f"/ppms/school/{school.uai}/").status_code == 200


def test_a_director_gets_a_404_for_a_school_they_do_not_direct(client, director, commune):
    other = make_school(commune, "0370002B")
    sign_in(client, director)

    assert client.get(f"/ppms/school/{other.uai}/").status_code == 404
    assert client.get(f"/ppms/school/{other.uai}/state.json").status_code == 404


def test_an_operator_gets_a_404_on_a_director_page(client, operator, school):
    sign_in(client, operator)

    assert client.get(DIRECTOR_PAGE).status_code == 404
    assert client.get(f"/ppms/school/{school.uai}/").status_code == 404


def test_a_director_of_several_schools_chooses_among_their_own_only(
    client, director, school, commune
):
    second = make_school(commune, "0370002B", name="École du Morier")
    second.directors.add(director)
    make_school(commune, "0370003C", name="École d'à côté")
    activate([second])
    sign_in(client, director)

    response = client.get(DIRECTOR_PAGE)

    html = response.content.decode()
    assert 'data-testid="school-choice"' in html
    assert f'data-school="{school.uai}"' in html
    assert 'data-school="0370002B"' in html and 'data-active="true"' in html
    assert "0370003C" not in html


# --- The director's page: an activation -------------------------------------------------


def test_the_page_shows_the_banner_and_the_plan_of_the_school_for_that_posture(
    client, director, school, shelter_plan
):
    activation = activate([school])
    sign_in(client, director)

    response = client.get(DIRECTOR_PAGE)

    html = response.content.decode()
    banner = re.search(r'<section id="ppms-banner"[^>]*>', html).group(0)
    assert 'data-scenario="shelter"' in banner
    assert 'data-silent="false"' in banner
    assert f'data-activation="{activation.pk}"' in banner
    assert " hidden" not in banner
    assert "Nuage toxique : mise à l&#x27;abri" in html
    assert "Salle de motricité (rez-de-chaussée)" in html
    assert "Préau nord" in html
    assert "couper la ventilation" in html
    for testid in (
        "btn-safe",
        "btn-help",
        "btn-evacuated",
        "btn-send",
        "field-pupils_present",
        "field-pupils_absent",
        "field-pupils_missing",
        "field-pupils_injured",
        "field-adults_present",
        "field-adults_absent",
        "field-adults_missing",
        "field-adults_injured",
        "field-location",
        "field-needs",
        "queued-indicator",
        "ended-banner",
    ):
        assert f'data-testid="{testid}"' in html, testid
    data = page_data(response)
    assert data["activation"]["id"] == activation.pk
    assert data["status"]["state"] == "pending"
    assert data["urls"]["status"] == (f"/api/v1/ppms/activations/{{id}}/statuses/{school.uai}/")


def test_an_intrusion_is_marked_silent_in_the_page_and_its_data(client, director, school):
    activate([school], scenario="intrusion", title="Intrusion signalée")
    sign_in(client, director)

    response = client.get(DIRECTOR_PAGE)

    html = response.content.decode()
    banner = re.search(r'<section id="ppms-banner"[^>]*>', html).group(0)
    assert 'data-silent="true"' in banner
    assert "banner--silent" in banner
    assert page_data(response)["activation"]["silent"] is True
    # A text to 114 first (nobody hiding may speak), then the police.
    numbers = re.findall(r'href="(?:tel|sms):(\d+)"', html)
    assert numbers[:2] == ["114", "17"]


def test_an_earlier_intrusion_keeps_the_page_silent_while_a_flood_is_shown(
    client, director, school
):
    activate([school], scenario="intrusion", title="Intrusion")
    activate([school], scenario="evacuation", title="Crue du Cher", now=T0 + timedelta(minutes=5))
    sign_in(client, director)

    data = page_data(client.get(DIRECTOR_PAGE))

    assert data["activation"]["scenario"] == "evacuation"
    assert [other["silent"] for other in data["others"]] == [True]


def test_the_page_prefills_the_last_counts_the_school_gave(client, director, school):
    activation = activate([school])
    report(activation, school, minutes=3, by=director, pupils_present=180, needs="De l'eau")
    sign_in(client, director)

    html = client.get(DIRECTOR_PAGE).content.decode()

    assert re.search(r'data-testid="field-pupils_present" value="180"', html)
    assert "De l&#x27;eau" in html
    assert re.search(r'data-testid="current-state" data-state="safe"', html)


def test_an_ended_activation_leaves_the_page_calm(client, director, operator, school):
    activation = activate([school])
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=30))
    sign_in(client, director)

    response = client.get(DIRECTOR_PAGE)

    assert page_data(response)["activation"] is None
    assert "Aucun déclenchement en cours" in response.content.decode()


def test_the_state_json_gives_the_current_activation_and_the_school_status(
    client, director, school
):
    activation = activate([school], scenario="confinement")
    sign_in(client, director)

    response = client.get(f"/ppms/school/{school.uai}/state.json")

    state = response.json()
    assert state["activation"]["id"] == activation.pk
    assert state["activation"]["silent"] is False
    assert state["status"]["school"] == school.uai
    assert state["others"] == []


# --- The PWA ----------------------------------------------------------------------------


def test_the_manifest_is_served_as_a_web_app_manifest_even_without_a_session(client):
    response = client.get("/ppms/manifest.webmanifest")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "CSU — PPMS"
    assert manifest["start_url"] == DIRECTOR_PAGE
    assert manifest["display"] == "standalone"
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}


def test_the_service_worker_is_served_as_javascript_with_the_scope_of_the_ppms_pages(client):
    response = client.get("/ppms/sw.js")

    body = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/ppms/"
    assert "no-cache" in response["Cache-Control"]
    config = json.loads(re.match(r"const CONFIG = (.*);\n", body).group(1))
    assert "/static/js/director.js" in config["assets"]
    assert "/static/css/ppms.css" in config["assets"]
    assert config["start"] == DIRECTOR_PAGE


def test_the_service_worker_changes_version_when_the_shell_changes(client, monkeypatch):
    from ppms import views

    before = client.get("/ppms/sw.js").content.decode().splitlines()[0]
    monkeypatch.setattr(views, "SHELL_ASSETS", (*views.SHELL_ASSETS, "css/sensor.css"))
    after = client.get("/ppms/sw.js").content.decode().splitlines()[0]

    assert json.loads(before[15:-1])["version"] != json.loads(after[15:-1])["version"]


def test_the_director_page_links_its_manifest_and_icons(client, director):
    sign_in(client, director)

    html = client.get(DIRECTOR_PAGE).content.decode()

    assert '<link rel="manifest" href="/ppms/manifest.webmanifest">' in html
    assert "/static/ppms/apple-touch-icon.png" in html


def test_the_icons_exist_as_png_files():
    for name in ("icon-192.png", "icon-512.png", "icon-maskable-512.png"):
        path = Path(settings.BASE_DIR) / "static" / "ppms" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# --- The operators' board ---------------------------------------------------------------


def test_operators_see_the_board_with_each_concerned_school(client, operator, school, commune):
    second = make_school(commune, "0370002B", name="École du Morier", pupils=120)
    activation = activate([school, second])
    sign_in(client, operator)

    response = client.get(BOARD)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="ppms-board"' in html
    assert f'data-activation="{activation.pk}"' in html
    assert re.search(rf'<tr data-school="{school.uai}" data-state="pending"', html)
    assert re.search(r'<tr data-school="0370002B" data-state="pending"', html)
    assert 'data-testid="btn-activate"' in html and 'data-testid="btn-end"' in html
    assert 'data-pupils-concerned="320"' in html


def test_staff_see_the_board(client, staff, school):
    sign_in(client, staff)

    assert client.get(BOARD).status_code == 200


def test_a_director_is_refused_the_board_and_its_sections(client, director, school):
    sign_in(client, director)

    assert client.get(BOARD).status_code == 403
    assert client.get("/ppms/sections/").status_code == 403


def test_an_operator_does_not_see_the_activations_of_another_commune(
    client, other_operator, school
):
    activate([school])
    sign_in(client, other_operator)

    html = client.get(BOARD).content.decode()

    assert 'data-testid="no-activation"' in html
    assert school.uai not in html


def test_the_board_lists_schools_needing_help_first_then_pending_then_the_others(
    client, operator, commune
):
    safe = make_school(commune, "0370001A", name="A — en sûreté", pupils=100)
    pending = make_school(commune, "0370002B", name="B — en attente", pupils=50)
    helpless = make_school(commune, "0370003C", name="C — besoin d'aide", pupils=80)
    activation = activate([safe, pending, helpless])
    report(activation, safe, minutes=2, pupils_present=95)
    report(activation, helpless, minutes=4, state="needs_help", pupils_present=70)
    sign_in(client, operator)

    html = client.get(BOARD).content.decode()

    order = re.findall(r'<tr data-school="(\w+)" data-state="(\w+)"', html)
    assert order == [("0370003C", "needs_help"), ("0370002B", "pending"), ("0370001A", "safe")]
    totals = re.search(r'<dl class="totals" data-testid="totals"[^>]*>', html).group(0)
    assert 'data-pupils-safe="95"' in totals
    assert 'data-pupils-concerned="230"' in totals
    assert 'data-schools-safe="1"' in totals
    assert 'data-schools-help="1"' in totals
    assert 'data-schools-pending="1"' in totals


def test_the_board_shows_an_intrusion_as_silent(client, operator, school):
    activate([school], scenario="intrusion", title="Intrusion")
    sign_in(client, operator)

    html = client.get(BOARD).content.decode()

    assert re.search(r'data-testid="activation"[^>]*data-silent="true"', html)


def test_the_board_sections_render_the_active_activations_for_the_live_refresh(
    client, operator, school
):
    activation = activate([school])
    sign_in(client, operator)

    response = client.get("/ppms/sections/")

    assert response.status_code == 200
    assert f'data-activation="{activation.pk}"' in response.content.decode()


def test_the_nav_links_the_board_for_operators(client, operator):
    sign_in(client, operator)

    html = client.get("/dashboard/").content.decode()

    assert 'href="/ppms/"' in html


# --- The after-action report ------------------------------------------------------------


@pytest.fixture
def finished(operator, director, school, commune):
    """Two schools: one safe at 2 min 30 s; one in need at 4 min, safe at 7 min; ended at 20."""
    second = make_school(commune, "0370002B", name="École du Morier", pupils=120)
    activation = activate([school, second], by=operator)
    report(activation, school, minutes=2.5, by=director, pupils_present=190, pupils_absent=10)
    report(
        activation,
        second,
        minutes=4,
        state="needs_help",
        pupils_present=118,
        pupils_injured=2,
        needs="Deux blessés légers",
    )
    report(activation, second, minutes=7, state="safe", pupils_present=120)
    end_of_alert(activation=activation, by=operator, now=T0 + timedelta(minutes=20))
    return activation


def test_the_report_gives_each_school_time_to_answer_and_the_time_until_all_safe(
    client, operator, finished
):
    sign_in(client, operator)

    response = client.get(f"/ppms/activations/{finished.pk}/rapport/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="report"' in html
    assert re.search(r'data-school="0370001A"[^>]*>.*?2 min 30 s', html, re.S)
    assert re.search(r'data-school="0370002B"[^>]*>.*?4 min 00 s', html, re.S)
    all_safe = re.search(r'data-testid="report-all-safe">([^<]*)', html).group(1)
    assert all_safe.startswith("7 min 00 s")
    ended = re.search(r'data-testid="report-ended">([^<]*)', html).group(1)
    assert "23/11/2026 10:20:00" in ended and "operateur" in ended  # Paris time
    assert "Deux blessés légers" in html
    assert 'data-total="pupils_present">310<' in html


def test_the_report_is_printable(client, operator, finished):
    sign_in(client, operator)

    html = client.get(f"/ppms/activations/{finished.pk}/rapport/").content.decode()
    css = (Path(settings.BASE_DIR) / "static" / "css" / "ppms.css").read_text()

    assert "/static/css/ppms.css" in html
    assert "@media print" in css


def test_the_report_csv_is_a_french_spreadsheet_file(client, operator, finished):
    sign_in(client, operator)

    response = client.get(f"/ppms/activations/{finished.pk}/rapport.csv")

    content = b"".join(response.streaming_content)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert content.startswith(b"\xef\xbb\xbf")
    lines = content.decode("utf-8-sig").splitlines()
    header = lines[0].split(";")
    assert header[:6] == [
        "Heure",
        "Événement",
        "École",
        "UAI",
        "État",
        "Minutes depuis le déclenchement",
    ]
    rows = [line.split(";") for line in lines[1:]]
    first_reply = next(r for r in rows if r[1] == "Première réponse" and r[3] == "0370001A")
    assert first_reply[0] == "23/11/2026 10:02:30"
    assert first_reply[4] == "En sûreté"
    assert first_reply[5] == "2,5"  # a decimal comma
    assert any(r[1] == "Toutes les écoles en sûreté" and r[5] == "7" for r in rows)
    end = next(r for r in rows if r[1] == "Fin d'alerte")
    assert end[5] == "20" and end[-2] == "operateur"
    assert header[-1] == "Heure — ISO 8601" and end[-1] == "2026-11-23T10:20:00+01:00"
    summary = [r for r in rows if r[1].startswith("Bilan")]
    assert [(r[3], r[5]) for r in summary] == [("0370001A", "2,5"), ("0370002B", "4")]


def test_a_report_csv_over_the_export_limit_is_a_413_page_naming_it(
    client, operator, finished, settings
):
    sign_in(client, operator)
    url = f"/ppms/activations/{finished.pk}/rapport.csv"
    rows = len(b"".join(client.get(url).streaming_content).decode().splitlines()) - 1

    settings.EXPORT_MAX_ROWS = rows
    accepted = client.get(url)
    settings.EXPORT_MAX_ROWS = rows - 1
    refused = client.get(url)

    assert accepted.status_code == 200
    assert refused.status_code == 413
    assert refused["Content-Type"] == "text/html; charset=utf-8"
    html = unescape(refused.content.decode())
    assert f"plus de {rows - 1} lignes, la limite d'un export" in html
    assert f'href="/ppms/activations/{finished.pk}/rapport/"' in html  # the report itself


def test_a_director_cannot_read_the_report(client, director, finished):
    sign_in(client, director)

    assert client.get(f"/ppms/activations/{finished.pk}/rapport/").status_code == 403
    assert client.get(f"/ppms/activations/{finished.pk}/rapport.csv").status_code == 403


def test_an_operator_of_another_commune_gets_a_404_for_the_report(client, other_operator, finished):
    sign_in(client, other_operator)

    assert client.get(f"/ppms/activations/{finished.pk}/rapport/").status_code == 404


# --- No CDN, valid scripts ---------------------------------------------------------------


def test_no_ppms_page_loads_a_script_or_a_style_from_another_site(
    client, operator, director, school
):
    activation = activate([school])
    pages = [
        (director, DIRECTOR_PAGE),
        (operator, BOARD),
        (operator, f"/ppms/activations/{activation.pk}/rapport/"),
    ]
    for user, url in pages:
        sign_in(client, user)
        html = client.get(url).content.decode()
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", html):
            assert not re.search(r'(?:src|href)="(?:https?:)?//', tag), (url, tag)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize(
    "path", ["static/js/director.js", "static/js/ppms_board.js", "static/ppms/sw.js"]
)
def test_the_scripts_parse(path):
    result = subprocess.run(
        ["node", "--check", str(Path(settings.BASE_DIR) / path)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr


def test_a_user_with_both_roles_keeps_the_dashboard_as_home(client, django_user_model, school):
    user = make_user(django_user_model, "les-deux", role=roles.OPERATORS)
    school.directors.add(user)
    sign_in(client, user)

    assert client.get("/")["Location"] == "/dashboard/"


# --- The pages' payloads against the API (its OpenAPI schema) -----------------------------


def test_the_report_the_director_page_sends_is_recorded_once_even_when_replayed(
    client, director, school
):
    activation = activate([school])
    sign_in(client, director)
    url = get_page_data(client)["urls"]["status"].replace("{id}", str(activation.pk))
    body = {  # what static/js/director.js sends
        "state": "safe",
        "posture": "shelter",
        "pupils_present": 180,
        "pupils_absent": 20,
        "adults_present": 12,
        "location": "Salle de motricité",
        "needs": "",
        "client_id": "6f1c3a52-4a8e-4c1b-9f3e-2d7c1b5a9e10",
    }

    first = client.post(url, body, content_type="application/json")
    replay = client.post(url, body, content_type="application/json")

    assert first.status_code == 201, first.content
    assert replay.status_code == 200
    assert first.json()["state"] == "safe"
    status = SchoolStatus.objects.get(activation=activation, school=school)
    assert status.updates.count() == 1
    assert status.pupils_present == 180


def test_a_refused_report_answers_a_message_per_field_for_the_page(client, director, school):
    activation = activate([school])
    sign_in(client, director)
    url = f"/api/v1/ppms/activations/{activation.pk}/statuses/{school.uai}/"

    response = client.post(
        url, {"state": "safe", "pupils_present": 5000}, content_type="application/json"
    )

    assert response.status_code == 400
    assert "pupils_present" in response.json()


def test_the_activation_the_board_sends_starts_one(client, operator, school, flood_zone):
    school.zones.add(flood_zone)
    sign_in(client, operator)
    body = {  # what static/js/ppms_board.js sends
        "scenario": "evacuation",
        "title": "",
        "zones": [flood_zone.pk],
        "schools": [],
        "drill": True,
    }

    response = client.post("/api/v1/ppms/activations/", body, content_type="application/json")

    assert response.status_code == 201, response.content
    html = client.get("/ppms/sections/").content.decode()
    assert f'data-school="{school.uai}"' in html
    assert 'data-drill="true"' in html


def get_page_data(client) -> dict:
    return page_data(client.get(DIRECTOR_PAGE))
