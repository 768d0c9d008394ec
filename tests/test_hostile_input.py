"""Hostile input the penetration test sent: a clear 400, never a 500."""

from rest_framework.test import APIClient

from core.models import AuditEntry
from tests.conftest import sign_in

ACTIVATIONS = "/api/v1/ppms/activations/"


def test_a_json_body_nested_50000_levels_deep_is_a_json_400(db, operator):
    api = APIClient()
    sign_in(api, operator)
    body = "[" * 50_000 + "]" * 50_000

    response = api.generic("POST", ACTIVATIONS, body, content_type="application/json")

    assert response.status_code == 400
    assert "imbrication" in response.json()["detail"]
    entry = AuditEntry.objects.get()  # and the attempt is kept
    assert (entry.user, entry.status, entry.data) == (operator, 400, {"body": "(JSON invalide)"})


def test_a_nul_byte_in_a_path_segment_is_a_404(db, operator):
    api = APIClient()
    sign_in(api, operator)

    for path in ("/api/v1/sensors/ab%00cd/", "/sensors/ab%00cd/", "/ppms/school/0370%001A/"):
        assert api.get(path).status_code == 404, path
    assert api.get("/api/v1/sensors/ab%00cd/").json() == {"detail": "Adresse inconnue."}
    assert api.get("/api/v1/sensors/", {"commune": "37\x00122"}).status_code == 400


def test_a_non_ascii_bearer_token_on_metrics_is_a_401(db, settings):
    settings.METRICS_TOKEN = "secret"

    response = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer jéton-été")

    assert response.status_code == 401


def test_a_json_body_over_the_limit_is_a_json_400(db, operator, settings):
    api = APIClient()
    sign_in(api, operator)
    body = '{"title": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '"}'

    response = api.generic("POST", ACTIVATIONS, body, content_type="application/json")

    assert response.status_code == 400
    assert "volumineuse" in response.json()["detail"]


def test_an_api_path_no_route_matches_is_a_json_404(db, operator):
    api = APIClient()
    sign_in(api, operator)

    for path in ("/api/v1/alerts/abc/", "/api/v1/schools/%F0%9F%98%80/", "/api/v1/nothing/"):
        response = api.get(path)

        assert response.status_code == 404, path
        assert response.json() == {"detail": "Adresse inconnue."}, path
    assert api.get("/nothing/")["Content-Type"].startswith("text/html")  # the pages: HTML


def test_an_id_of_ten_thousand_digits_is_a_json_404(db, operator):
    api = APIClient()
    sign_in(api, operator)

    for path in ("/api/v1/alerts/", "/api/v1/ppms/activations/", "/api/v1/rules/"):
        response = api.get(path + "9" * 10_000 + "/")

        assert response.status_code == 404, path
        assert response.json() == {"detail": "Adresse inconnue."}, path


def test_a_content_length_that_is_not_a_number_is_a_json_400_and_audited(db, operator):
    api = APIClient()
    sign_in(api, operator)

    response = api.generic(
        "POST", ACTIVATIONS, "{}", content_type="application/json", CONTENT_LENGTH="abc"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "En-tête Content-Length invalide."}
    assert AuditEntry.objects.get().status == 400


def test_an_api_list_asked_for_in_html_is_answered_in_json(db, operator):
    api = APIClient()
    sign_in(api, operator)

    response = api.get("/api/v1/alerts/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert "detail" in response.json()
    assert api.get("/api/v1/alerts/", HTTP_ACCEPT="text/html, */*;q=0.8").status_code == 200


def test_the_schema_and_the_docs_refuse_in_json(db, operator):
    api = APIClient()
    refused = api.get("/api/schema/", HTTP_AUTHORIZATION="Token nope")
    sign_in(api, operator)
    posted = api.post("/api/docs/", {})

    assert refused.status_code == 401
    assert "detail" in refused.json()
    assert posted.status_code == 405
    assert "detail" in posted.json()


def test_a_number_is_neither_a_comment_nor_a_centres_open_state(db, operator, sensor):
    from ppms.models import Shelter
    from tests.alerting import feed, make_rule

    make_rule()
    [alert] = feed(sensor, [500])
    api = APIClient()
    sign_in(api, operator)

    comment = api.post(f"/api/v1/alerts/{alert.pk}/comments/", {"text": 0}, format="json")
    assert comment.status_code == 400
    shelter = Shelter.objects.create(
        commune=sensor.commune, name="Gymnase", capacity=100, latitude=47.35, longitude=0.66
    )
    shut = api.post(f"/api/v1/shelters/{shelter.pk}/open/", {"open": 0}, format="json")
    assert shut.status_code == 400
