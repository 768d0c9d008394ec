"""French first, with English translations: every message the code and templates hold
has its English text. Checked with the tool that finds them (``makemessages``): a
catalogue compiled as "100 % translated" said nothing of 131 messages never extracted,
nor of 72 that msgmerge had matched to unrelated old ones."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"
JS_CATALOGUE = ROOT / "locale" / "en" / "LC_MESSAGES" / "djangojs.po"


def extracted(catalogue: Path, *options: str) -> list:
    """The catalogue as ``makemessages`` makes it from the code today; the file as committed
    stays untouched."""
    if shutil.which("xgettext") is None:
        if IN_CI:
            pytest.fail("xgettext (gettext) is missing (CI=true: it must run)")
        pytest.skip("xgettext (gettext) is not installed")
    saved = catalogue.read_bytes()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-l", "en", "--no-obsolete", *options],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        with catalogue.open("rb") as file:
            return list(read_po(file))
    finally:
        catalogue.write_bytes(saved)  # the catalogue as committed, whatever happened


def untranslated(message) -> bool:
    texts = message.string if isinstance(message.string, tuple) else (message.string,)
    return message.fuzzy or not all(texts)


@pytest.mark.xdist_group("catalogue")
def test_every_message_has_its_english_translation():
    catalogue = extracted(CATALOGUE)

    missing = [message.id for message in catalogue if message.id and untranslated(message)]
    assert missing == []


@pytest.mark.xdist_group("catalogue")
def test_every_message_of_the_pages_scripts_has_its_english_translation():
    catalogue = extracted(JS_CATALOGUE, "-d", "djangojs", "--ignore", "var/*", "--ignore", "docs/*")

    assert len(catalogue) > 60
    missing = [message.id for message in catalogue if message.id and untranslated(message)]
    assert missing == []


# A string literal of a script: "…", '…' or `…`.
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`|\'((?:[^\'\\\n]|\\.)*)\'')


def test_no_page_script_writes_french_outside_the_javascript_catalogue():
    with JS_CATALOGUE.open("rb") as file:
        messages = set()
        for message in read_po(file):
            messages.update(message.id if isinstance(message.id, tuple) else (message.id,))
    french = []
    for script in sorted((ROOT / "static" / "js").glob("*.js")):
        if script.name == "chart_locale.js":  # Plotly's French locale: month names
            continue
        text = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.S)
        code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
        for match in LITERAL.finditer(code):
            literal = next(group for group in match.groups() if group is not None)
            literal = literal.replace("\\u202f", "\u202f")
            if re.search(r"[àâçéèêëîïôûùüœ]", literal, re.I) and literal not in messages:
                french.append((script.name, literal))
    assert french == []


# --- French plurals ----------------------------------------------------------------------------

FRENCH = ROOT / "locale" / "fr" / "LC_MESSAGES"


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_plural_message_has_its_french_forms(domain):
    """The messages are French already, but a plural with no French entry takes English's
    rule: "0 relances". The French catalogue gives each one its own two forms."""
    with (CATALOGUE.parent / f"{domain}.po").open("rb") as file:
        plurals = {m.id for m in read_po(file) if isinstance(m.id, tuple)}
    with (FRENCH / f"{domain}.po").open("rb") as file:
        french = read_po(file)

    assert french.plural_forms == "nplurals=2; plural=(n > 1);"
    assert plurals and {m.id for m in french if m.id} == plurals
    assert all(m.string == m.id for m in french if m.id)


@pytest.mark.parametrize(
    ("language", "count", "text"),
    [("fr", 0, "0 relance"), ("fr", 1, "1 relance"), ("fr", 2, "2 relances"),
     ("en", 0, "0 reminders"), ("en", 1, "1 reminder")],
)  # fmt: skip
def test_zero_takes_the_singular_in_french(language, count, text):
    from django.template import Context, Template
    from django.utils import translation

    template = Template(
        "{% load i18n %}{% blocktranslate count n=count %}{{ n }} relance{% plural %}"
        "{{ n }} relances{% endblocktranslate %}"
    )
    with translation.override(language):
        assert template.render(Context({"count": count})) == text


@pytest.mark.django_db
def test_the_pages_scripts_count_in_french_too(client):
    catalogue = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert "(n > 1)" in catalogue
