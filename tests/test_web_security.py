"""Web security: CSRF on every form and write, secure cookies and headers, secrets from env."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.alerting import feed, make_rule
from tests.conftest import log_in_with_the_form, sign_in

ROOT = Path(__file__).resolve().parent.parent
POST_FORM = re.compile(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", re.S | re.I)


@pytest.fixture
def alert(sensor):
    make_rule()
    [opened] = feed(sensor, [85])
    return opened


def test_every_post_form_of_the_templates_carries_a_csrf_token():
    forms = {}
    for template in (ROOT / "templates").rglob("*.html"):
        for body in POST_FORM.findall(template.read_text()):
            forms.setdefault(template.name, []).append("{% csrf_token %}" in body)

    assert forms, "no POST form found: the pattern is wrong"
    assert {name: all(tokens) for name, tokens in forms.items()} == dict.fromkeys(forms, True)


def test_a_signed_in_write_without_the_csrf_token_is_refused_and_changes_nothing(operator, alert):
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, operator)
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"

    refused = browser.post(url, {"comment": "vu"}, content_type="application/json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    alert.refresh_from_db()
    assert alert.state == "firing"

    browser.get("/dashboard/")  # the page sets the token cookie its script sends back
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        url, {"comment": "vu"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )

    assert accepted.status_code == 200
    alert.refresh_from_db()
    assert alert.state == "acknowledged"


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/logout/", "/i18n/setlang/"])
def test_the_pages_forms_refuse_a_post_without_the_csrf_token(operator, path):
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, operator)

    assert browser.post(path, {"username": "operateur", "password": "pw"}).status_code == 403


def test_pages_are_sent_with_the_protective_headers_and_cookies(client, operator):
    log_in_with_the_form(client, operator)

    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    session = client.cookies["sessionid"]
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"


def production_settings(**env) -> dict:
    """The security settings Django computes from a production environment."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ("
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'DEBUG', 'SECRET_KEY')}))"
    )
    base = {
        "DJANGO_SETTINGS_MODULE": "csu.settings",
        "DATABASE_URL": "postgres://csu@db.invalid:5432/csu",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "MQTT_URL": "mqtt://ingest:secret@mosquitto.invalid:1883",
        "ALLOWED_HOSTS": "csu.example.fr",
        "CSU_DATA_DIR": os.environ.get("CSU_DATA_DIR", "/tmp"),
        "PATH": os.environ["PATH"],
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, **env},
    )


def test_production_cookies_are_secure_and_the_secret_comes_from_the_environment():
    result = production_settings(DJANGO_SECRET_KEY="from-the-environment-" + "k" * 40)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '{"SESSION_COOKIE_SECURE": true, "CSRF_COOKIE_SECURE": true, "SECURE_SSL_REDIRECT": true, '
        '"SECURE_HSTS_SECONDS": 31536000, "DEBUG": false, '
        '"SECRET_KEY": "from-the-environment-' + "k" * 40 + '"}'
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = production_settings()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr
