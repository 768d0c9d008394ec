#!/usr/bin/env python
"""Take the screenshots of docs/screenshots/ from the embedded demo, in Debian's chromium.

    uv run python docs/screenshots.py

It seeds a throwaway demo town, runs `manage.py run_embedded` (web, broker, ingest,
simulator with its incidents) and photographs the operator's dashboard, the alert
console, a sensor page, the PPMS board and a director's page.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "demo-screenshots-1"
PORT = 8765
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def manage(*args, env) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def app_keys(seed_output: str) -> dict[str, str]:
    """The authenticator keys seed_demo printed, by username."""
    keys = seed_output.split("Authenticator keys", 1)[-1].splitlines()[1:]
    rows = [line.split() for line in keys if line.startswith("  ")]
    return {fields[0]: "".join(fields[1:]) for fields in rows}


def app_code(key: str) -> str:
    """The code an authenticator app shows now for ``key`` (base32)."""
    from base64 import b32decode

    from django_otp.oath import totp

    return f"{totp(b32decode(key)):06d}"


def main():
    data = tempfile.mkdtemp(prefix="csu-shots-")
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MQTT_URL")
    }
    env.update(CSU_DATA_DIR=data, CSU_EMBEDDED_MQTT_PORT="18845")
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    keys = app_keys(manage("seed_demo", "--password", PASSWORD, env=env))
    server = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_embedded",
            "--port",
            str(PORT),
            "--simulate",
            "--scenario pollution,flood,intrusion --scenario-delay 5 --speed 120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(90)  # readings flow, incidents unfold, alerts and a PPMS activation open
        shoot(f"http://127.0.0.1:{PORT}", keys)
    finally:
        server.terminate()
        server.wait(30)


def shoot(base, keys):
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        operator = browser.new_page(
            locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1600, "height": 1000}
        )
        log_in(operator, base, "operateur", keys["operateur"])
        operator.goto(f"{base}/dashboard/")
        operator.wait_for_selector('[data-testid="connection"][data-state="connected"]')
        operator.wait_for_timeout(8000)  # charts load, live points arrive
        operator.screenshot(path=OUT / "dashboard.png", full_page=True)
        operator.locator('[data-testid="alert-console"]').screenshot(path=OUT / "alert-console.png")
        operator.goto(f"{base}/sensors/jlt-river-01/")
        operator.wait_for_timeout(5000)
        operator.screenshot(path=OUT / "sensor-page.png", full_page=True)
        operator.goto(f"{base}/ppms/")
        operator.wait_for_timeout(4000)
        operator.screenshot(path=OUT / "ppms-board.png", full_page=True)
        operator.goto(f"{base}/dashboard/wall/")
        operator.wait_for_timeout(6000)
        operator.screenshot(path=OUT / "wall-mode.png")

        phone = browser.new_page(
            locale="fr-FR",
            timezone_id="Europe/Paris",
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
        )
        director = flood_zone_director(base, operator)
        log_in(phone, base, director)
        phone.wait_for_timeout(4000)
        phone.screenshot(path=OUT / "director-phone.png", full_page=True)
        browser.close()
    print(f"screenshots written to {OUT}")


def flood_zone_director(base, page) -> str:
    """A director whose school is concerned by the flood activation, if there is one."""
    page.goto(f"{base}/ppms/")
    row = page.locator("tr[data-school]").first
    if row.count():
        return f"directeur-{row.get_attribute('data-school').lower()}"
    return "directeur-0370890e"


def log_in(page, base, username, key=None):
    """The password, then the code of the app whose key seed_demo printed, if any."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if key:
        page.fill("#id_code", app_code(key))
        page.click("button[type=submit]")
        page.wait_for_load_state()


if __name__ == "__main__":
    main()
