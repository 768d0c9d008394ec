"""Lighthouse's accessibility and best-practices scores of the operators' and the
director's pages, on the embedded demo town in Debian's chromium.

Run by bench/lighthouse.sh (which installs the pinned lighthouse). It seeds a fresh demo
in a temporary data directory, activates the flood zone's PPMS so the pages show it,
signs the operator and a director in (sessions with their second factor verified),
serves the app on a free port and audits each page. The last line is JSON:
{"a11y_min": …, "best_practices_min": …, "pages": {…}}.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
LIGHTHOUSE = os.environ.get(
    "LIGHTHOUSE", str(ROOT / "var/tools/lighthouse/node_modules/.bin/lighthouse")
)
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
PAGES = {  # path: who looks at it
    "/dashboard/": "operateur",
    "/dashboard/wall/": "operateur",
    "/ppms/": "operateur",
    "/ppms/ecole/": "director",
}
# Signs in as the sign-in pages do, second factor verified; prints {role: session key}.
SESSIONS = """
import json
from django.conf import settings
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from django.contrib.auth import get_user_model
from ppms.models import School
from ppms.services import ppms_activate

users = get_user_model().objects
schools = list(School.objects.filter(zones__type="flood").distinct())
operator = users.get(username="operateur")
ppms_activate(scenario="evacuation", title="Crue du Cher", source="operator",
              schools=schools, by=operator)
keys = {}
for role, user in (("operateur", operator), ("director", schools[0].directors.first())):
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    keys[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
print(json.dumps({"cookie": settings.SESSION_COOKIE_NAME, "keys": keys}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env, *args, **kwargs):
    return subprocess.run(
        [str(PY), "manage.py", *args], cwd=ROOT, env=env, check=True, text=True, **kwargs
    )


def wait_until_up(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz?service=web", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the demo did not answer at {base}")


def audit(url: str, cookie: str) -> dict[str, int]:
    report = subprocess.run(
        [
            LIGHTHOUSE, url,
            "--only-categories=accessibility,best-practices",
            "--output=json", "--output-path=stdout", "--quiet",
            "--chrome-flags=--headless --no-sandbox --disable-gpu",
            f"--extra-headers={json.dumps({'Cookie': cookie})}",
        ],
        cwd=ROOT, env={**os.environ, "CHROME_PATH": CHROMIUM},
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result = json.loads(report)
    if result.get("finalDisplayedUrl") != url:  # sent to the sign-in page: nothing measured
        raise SystemExit(f"{url} ended at {result.get('finalDisplayedUrl')}")
    categories = result["categories"]
    return {name: round(categories[name]["score"] * 100) for name in categories}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="csu-lighthouse-") as data:
        (Path(data) / "static").mkdir()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "MQTT_URL")
        }  # the embedded default
        env |= {"CSU_DATA_DIR": data, "CSU_EMBEDDED_MQTT_PORT": str(free_port())}
        quiet = {"stdout": subprocess.DEVNULL}
        manage(env, "migrate", "--noinput", **quiet)
        manage(env, "collectstatic", "--noinput", "--verbosity", "0", **quiet)
        manage(env, "seed_demo", "--password", "lighthouse-demo", **quiet)
        # The last line: the activation's texts go to the console SMS backend before it.
        printed = manage(env, "shell", "-c", SESSIONS, capture_output=True).stdout
        signed_in = json.loads(printed.strip().splitlines()[-1])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(PY), "manage.py", "run_embedded", "--port", str(port), "--simulate", "off"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_up(base)
            scores = {}
            for path, role in PAGES.items():
                cookie = f"{signed_in['cookie']}={signed_in['keys'][role]}"
                scores[path] = audit(base + path, cookie)
                print(
                    f"{path:<18} accessibility {scores[path]['accessibility']:>3}"
                    f"  best practices {scores[path]['best-practices']:>3}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(30)
    print(
        json.dumps(
            {
                "a11y_min": min(s["accessibility"] for s in scores.values()),
                "best_practices_min": min(s["best-practices"] for s in scores.values()),
                "pages": scores,
            }
        )
    )


if __name__ == "__main__":
    main()
