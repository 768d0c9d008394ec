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
