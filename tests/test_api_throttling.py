"""Rate limits of the API: a runaway script is slowed down, people never are.

Writes (POST, PUT, PATCH, DELETE) are counted per signed-in user, exports too; reads are
not. The rates come from the settings (``API_WRITE_RATE``, ``API_EXPORT_RATE``): these
tests lower them, the defaults are tested for what a person does in a crisis.
"""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from core.models import AuditEntry
from core.throttling import WriteRateThrottle
from tests.alerting import feed, make_rule
from tests.conftest import sign_in

ALERTS = "/api/v1/alerts/"
UNSUBSCRIBE = "/api/v1/push/unsubscribe/"
DEVICE = {"endpoint": "https://fcm.googleapis.com/fcm/send/device"}


def rates(settings, **scopes):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **scopes},
    }


def signed_in(user) -> APIClient:
    api = APIClient()
    sign_in(api, user)
    return api


@pytest.fixture
def alert(sensor):
    make_rule()
    [opened] = feed(sensor, [85])
    return opened


def comment(api, alert, text="Riverains appelés."):
    return api.post(f"{ALERTS}{alert.pk}/comments/", {"text": text}, format="json")


def test_a_user_over_the_write_rate_gets_a_json_429_with_retry_after(settings, operator, alert):
    rates(settings, write="3/min")
    api = signed_in(operator)

    answers = [comment(api, alert).status_code for _ in range(3)]
    refused = comment(api, alert)

    assert answers == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == {
        "detail": f"Trop de requêtes : réessayez dans {refused['Retry-After']} s."
    }
    assert alert.events.filter(kind="commented").count() == 3  # the fourth did nothing


def test_the_429_is_in_english_for_an_english_reader(settings, operator, alert):
    rates(settings, write="1/min")
    api = signed_in(operator)
    comment(api, alert)

    refused = api.post(
        f"{ALERTS}{alert.pk}/comments/", {"text": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert refused.json()["detail"].startswith("Too many requests: try again in ")


def test_a_refused_write_is_in_the_audit_trail(settings, operator, alert):
    rates(settings, write="1/min")
    api = signed_in(operator)
    comment(api, alert)

    comment(api, alert)

    assert list(AuditEntry.objects.order_by("pk").values_list("status", flat=True)) == [200, 429]


def test_reads_are_not_counted_nor_refused(settings, operator, alert):
    rates(settings, write="2/min")
    api = signed_in(operator)
    comment(api, alert)
    comment(api, alert)

    reads = {api.get(f"{ALERTS}{alert.pk}/").status_code for _ in range(10)}

    assert reads == {200}
    assert comment(api, alert).status_code == 429


def test_another_user_keeps_their_own_count(settings, operator, metropole_operator, alert):
    rates(settings, write="2/min")
    busy = signed_in(operator)
    comment(busy, alert)
    comment(busy, alert)
    assert comment(busy, alert).status_code == 429

    assert comment(signed_in(metropole_operator), alert).status_code == 200


def test_the_count_starts_again_after_the_period(settings, operator, alert):
    rates(settings, write="1/min")
    api = signed_in(operator)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        comment(api, alert)
        assert comment(api, alert).status_code == 429

        clock.shift(timedelta(seconds=61))

        assert comment(api, alert).status_code == 200


def test_an_unset_rate_counts_nothing(settings, operator, alert):
    rates(settings, write=None)
    api = signed_in(operator)

    assert {comment(api, alert).status_code for _ in range(5)} == {200}


def test_a_person_in_a_crisis_is_never_slowed_down_by_the_default_rate(operator, alert):
    # An operator's busiest minute: a comment, acknowledgement or resolution every second.
    api = signed_in(operator)

    answers = {comment(api, alert, f"Point {i}").status_code for i in range(60)}

    assert answers == {200}


def test_exports_have_a_rate_of_their_own(settings, operator, sensor):
    rates(settings, export="2/min")
    api = signed_in(operator)
    export = f"/api/v1/sensors/{sensor.ref}/readings/export/"

    answers = [api.get(export, {"metric": "pm25"}).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert api.get(f"/api/v1/sensors/{sensor.ref}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_are_counted_once_each(settings, django_user_model, monkeypatch):
    """Each thread has its own connection to the cache, like separate processes: a count
    read and written back (DRF's history list) would lose some and let more through."""
    rates(settings, write="10/min")
    # One instant for every request: on a loaded machine the 40 requests could straddle
    # two minutes, two windows of 10 (CI once counted 20).
    now = time.time()
    monkeypatch.setattr(WriteRateThrottle, "timer", staticmethod(lambda: now))
    user = django_user_model.objects.create_user("script", password="pw")
    request = APIRequestFactory().post(UNSUBSCRIBE, DEVICE, format="json")
    request.user = user
    allowed = []
    start = threading.Barrier(8)

    def hammer():
        start.wait()
        for _ in range(5):
            allowed.append(WriteRateThrottle().allow_request(request, None))
        cache.close()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 10


def test_a_write_goes_through_when_the_cache_is_out_of_reach(settings, operator, alert):
    # Redis down (bench/faults.py stops it): an operator's action in a crisis must not
    # fail for want of a counter.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    rates(settings, write="1/min")
    api = signed_in(operator)

    answers = [comment(api, alert).status_code for _ in range(2)]

    assert answers == [200, 200]
