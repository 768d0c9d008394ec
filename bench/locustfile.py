"""The users of bench/load.py: operators and directors, logged in through the login form.

    locust -f bench/locustfile.py --headless ...   (started by bench/load.py, which writes
                                                     the plan: LOAD_PLAN=<file.json>)

The plan names the accounts, the sensors and metrics with history, and where to write
what was measured: every request's status, and its time once all users have logged in, by
name, so bench/load.py computes exact percentiles (locust's own are rounded) and counts
the errors and 5xx answers.

Operators do what their pages do: open the dashboard (or the wall screen), which then
fetches the KPIs, latest values, alert console and active PPMS activations; open a
sensor page and its 24 h chart; open the PPMS board. Directors open their school's page
and fetch its state, as the phone does after a live event.
"""

import json
import os
import random
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

with open(os.environ["LOAD_PLAN"]) as plan_file:
    PLAN = json.load(plan_file)

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LOGIN = ("login form", "login")
times: dict[str, list[float]] = defaultdict(list)
statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
# Page and API times count once every user has logged in, for PLAN["duration"] seconds:
# the logins (a password hash each) are measured on their own, not mixed into the pages'.
steady = {"logged_in": 0, "since": None, "until": None}


def logged_in(environment) -> None:
    steady["logged_in"] += 1
    if steady["logged_in"] == PLAN["users"]:
        steady["since"] = time.monotonic()
        gevent.spawn_later(PLAN["duration"], stop, environment)


def stop(environment) -> None:
    steady["until"] = time.monotonic()
    environment.runner.quit()


@events.request.add_listener
def record(name, response_time, response, exception, **kwargs):
    if (steady["since"] and not steady["until"]) or name in LOGIN:
        times[name].append(response_time)
    status = getattr(response, "status_code", 0) or 0
    statuses[name][str(status) if status else type(exception).__name__] += 1


@events.quitting.add_listener
def write_results(environment, **kwargs):
    with open(PLAN["results"], "w") as out:
        measured = (steady["until"] or time.monotonic()) - (steady["since"] or time.monotonic())
        json.dump({"times": times, "statuses": statuses, "steady_s": measured}, out)


class LoggedIn(FastHttpUser):
    abstract = True
    wait_time = between(PLAN["wait_min"], PLAN["wait_max"])
    accounts_key = ""

    def on_start(self):
        self.account = random.choice(PLAN[self.accounts_key])
        with self.client.get(
            "/accounts/login/", name="login form", catch_response=True
        ) as response:
            found = CSRF_FIELD.search(response.text or "")
            if response.status_code != 200 or not found:
                response.failure(f"no login form ({response.status_code})")
                logged_in(self.environment)
                return
        data = {
            "csrfmiddlewaretoken": found.group(1),
            "username": self.account["username"],
            "password": self.account["password"],
            "next": "",
        }
        with self.client.post(
            "/accounts/login/",
            data=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            name="login",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"login refused ({response.status_code})")
        logged_in(self.environment)

    def get(self, path: str, name: str, json_api: bool = False):
        """GET as the page does; anything but 200 (a redirect to the login too) fails."""
        headers = {"Accept": "application/json"} if json_api else {}
        with self.client.get(
            path, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


class Operator(LoggedIn):
    weight = PLAN["operator_weight"]
    accounts_key = "operators"

    @task(2)
    def dashboard(self):
        self.get("/dashboard/", "page /dashboard/")

    @task(1)
    def wall(self):
        self.get("/dashboard/wall/", "page /dashboard/wall/")

    @task(2)
    def kpis(self):
        self.get("/dashboard/kpis.json", "api /dashboard/kpis.json", json_api=True)

    @task(3)
    def latest(self):
        self.get("/api/v1/latest/", "api latest", json_api=True)

    @task(3)
    def alerts(self):
        self.get("/api/v1/alerts/?attention=true&limit=200", "api alerts", json_api=True)

    @task(4)
    def series_24h(self):
        series = random.choice(self.account["series"])
        to = datetime.now(UTC)
        query = urlencode(
            {
                "metric": series["metric"],
                "bucket": "5m",
                "from": (to - timedelta(hours=24)).isoformat(),
                "to": to.isoformat(),
            }
        )
        self.get(
            f"/api/v1/sensors/{series['ref']}/readings/?{query}", "api series 24h", json_api=True
        )

    @task(2)
    def sensor_page(self):
        self.get(f"/sensors/{random.choice(self.account['sensors'])}/", "page /sensors/<ref>/")

    @task(1)
    def sensors(self):
        self.get("/api/v1/sensors/", "api sensors", json_api=True)

    @task(1)
    def ppms_board(self):
        self.get("/ppms/", "page /ppms/")

    @task(1)
    def ppms_activations(self):
        self.get(
            "/api/v1/ppms/activations/?active=true&limit=200", "api ppms activations", json_api=True
        )


class Director(LoggedIn):
    weight = PLAN["director_weight"]
    accounts_key = "directors"

    @task(3)
    def school_page(self):
        self.get("/ppms/ecole/", "page /ppms/ecole/")

    @task(2)
    def school_state(self):
        self.get(
            f"/ppms/school/{self.account['uai']}/state.json",
            "api director state",
            json_api=True,
        )
