"""What the admin shows of itself: its name, its icon, its sections in words a town reads."""

import re

import pytest

pytestmark = pytest.mark.django_db

# The sections of the admin's home page: the apps' names, never a library's label.
SECTIONS = {
    "fr": ["Alertes", "Authentification et autorisation", "Capteurs et mesures", "CSU",
           "Écoles et PPMS"],
    "en": ["Alerts", "Authentication and Authorization", "CSU", "Schools and PPMS",
           "Sensors and readings"],
}  # fmt: skip


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_admin_is_titled_csu_administration_with_its_icon_and_named_sections(
    admin_client, language
):
    admin_client.cookies["django_language"] = language

    html = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert re.search(r"<title>[^<]*CSU — administration</title>", html)
    assert re.search(r'id="site-name"><a [^>]*>CSU — administration</a>', html)
    assert '<link rel="icon" href="/static/img/favicon.svg"' in html
    captions = re.findall(r"<caption>\s*<a [^>]*>([^<]*)</a>", html)
    assert set(captions) == set(SECTIONS[language])
    assert "Django" not in html.split("<body", 1)[1]
