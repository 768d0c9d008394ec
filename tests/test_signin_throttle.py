"""Failed sign-ins slow the next attempts down, per address and per username, without
ever locking the real user out (core/signin_throttle.py)."""

import uuid
from datetime import timedelta

import pytest
import requests
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from tests.brokers import free_port
from tests.conftest import make_user
from tests.stack import start_web, stop

ATTACKER = "198.51.100.66"
TOWN_HALL = "192.0.2.10"


def sign_in(client, username, password, address=TOWN_HALL):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def signed_in(response) -> bool:
    """The password was accepted: on to the start page, or to the code step of the second
    factor for a role that has one."""
    return response.status_code == 302


@pytest.fixture
def now():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_five_wrong_passwords_make_the_next_attempt_wait_30_seconds(client, operator, now):
    for _ in range(4):
        assert sign_in(client, "operateur", "nope").status_code == 200  # the form again

    fifth = sign_in(client, "operateur", "nope")

    assert fifth.status_code == 429
    assert fifth["Retry-After"] == "30"
    assert "réessayez dans 30 secondes" in fifth.content.decode()
    # While waiting even the right password is not checked...
    assert sign_in(client, "operateur", "pw").status_code == 429
    # ...nor do the refused attempts lengthen the wait: 31 s later, it signs in.
    now.shift(timedelta(seconds=31))
    assert signed_in(sign_in(client, "operateur", "pw"))


def test_the_wait_doubles_with_each_further_failure_up_to_its_ceiling(
    client, operator, now, settings
):
    settings.SIGNIN_MAX_DELAY_S = 100
    for _ in range(5):
        sign_in(client, "operateur", "nope")
    waits = []
    for _ in range(4):
        now.shift(timedelta(seconds=101))
        waits.append(sign_in(client, "operateur", "nope")["Retry-After"])

    assert waits == ["60", "100", "100", "100"]


def test_guessing_one_username_from_many_addresses_is_slowed_down(client, operator, now):
    for i in range(5):
        sign_in(Client(), "operateur", "nope", address=f"203.0.113.{i}")

    assert sign_in(Client(), "operateur", "nope", address="203.0.113.99").status_code == 429


def test_spraying_many_usernames_from_one_address_is_slowed_down(client, django_user_model, now):
    for i in range(20):
        make_user(django_user_model, f"agent-{i}")
        assert sign_in(Client(), f"agent-{i}", "nope", address=ATTACKER).status_code in (200, 429)

    refused = sign_in(Client(), "someone-else", "nope", address=ATTACKER)

    assert refused.status_code == 429
    # Only that address: the town hall signs in as before.
    assert signed_in(sign_in(Client(), "agent-3", "pw", address=TOWN_HALL))


def test_a_school_behind_one_address_is_not_slowed_by_a_few_typos(django_user_model, now):
    for i in range(12):
        make_user(django_user_model, f"directeur-{i}")
        sign_in(Client(), f"directeur-{i}", "typo", address=TOWN_HALL)

    assert signed_in(sign_in(Client(), "directeur-5", "pw", address=TOWN_HALL))


def test_an_attacker_cannot_keep_the_user_out_of_the_phone_they_signed_in_on(
    django_user_model, director, now
):
    phone = Client()
    assert signed_in(sign_in(phone, "directeur", "pw", address=TOWN_HALL))
    phone.post(reverse("logout"))
    # Someone guesses the director's password, elsewhere and on the school's own network.
    for i in range(12):
        sign_in(Client(), "directeur", "guess", address=f"203.0.113.{i}")
    for _ in range(25):
        sign_in(Client(), "directeur", "guess", address=TOWN_HALL)
    assert sign_in(Client(), "directeur", "pw", address=TOWN_HALL).status_code == 429

    # The director's own phone signs in at once.
    assert signed_in(sign_in(phone, "directeur", "pw", address=TOWN_HALL))


def test_the_known_browser_counts_its_own_failures(director, now):
    phone = Client()
    assert signed_in(sign_in(phone, "directeur", "pw"))
    phone.post(reverse("logout"))
    for _ in range(4):
        sign_in(phone, "directeur", "nope")

    assert sign_in(phone, "directeur", "nope").status_code == 429
    assert sign_in(phone, "directeur", "pw").status_code == 429


def test_a_browser_known_for_one_username_is_not_exempt_for_another(director, operator, now):
    browser = Client()
    assert signed_in(sign_in(browser, "directeur", "pw"))
    browser.post(reverse("logout"))
    for i in range(5):
        sign_in(Client(), "operateur", "nope", address=f"203.0.113.{i}")

    assert sign_in(browser, "operateur", "pw").status_code == 429


def test_a_forged_known_browser_cookie_is_ignored(director, now):
    for i in range(5):
        sign_in(Client(), "directeur", "nope", address=f"203.0.113.{i}")
    forger = Client()
    forger.cookies["csu_signin"] = '{"id": "x", "users": ["directeur"]}'

    assert sign_in(forger, "directeur", "pw").status_code == 429


def test_a_success_forgets_the_usernames_failures(client, director, now):
    for _ in range(4):
        sign_in(client, "directeur", "nope")
    assert signed_in(sign_in(client, "directeur", "pw"))
    client.post(reverse("logout"))

    for _ in range(4):
        assert sign_in(Client(), "directeur", "nope", address=ATTACKER).status_code == 200


# --- Behind a reverse proxy: the address is the proxy's word only if it is trusted ---------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("stack")  # one stack's processes at a time (conftest.py)
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-client"])
def test_the_address_comes_from_x_forwarded_for_only_through_a_trusted_proxy(
    django_user_model, trusted
):
    for i in range(25):
        make_user(django_user_model, f"agent-{i}")
    port = free_port()
    # The test connects from 127.0.0.1: the proxy when trusted, a client sending its own
    # X-Forwarded-For when not.
    web = start_web(
        port,
        FORWARDED_ALLOW_IPS="127.0.0.1" if trusted else "192.0.2.254",
        CHANNEL_LAYER_PREFIX=f"signin-{uuid.uuid4().hex[:8]}",  # a cache of its own
    )
    try:
        answers = []
        for i in range(21):
            browser = requests.Session()
            login = f"http://127.0.0.1:{port}/accounts/login/"
            browser.get(login, timeout=10)
            answers.append(
                browser.post(
                    login,
                    data={
                        "username": f"agent-{i}",
                        "password": "nope",
                        "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                    },
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                    allow_redirects=False,
                    timeout=10,
                ).status_code
            )
    finally:
        stop(web)

    recorded = set(
        AuditEntry.objects.filter(action="login").values_list("ip", flat=True).distinct()
    )
    if trusted:
        # Each attempt is its client's: 21 addresses, none slowed down.
        assert recorded == {f"203.0.113.{i}" for i in range(21)}
        assert answers == [200] * 21
    else:
        # The header is ignored: one address, slowed down after its 20 free failures.
        assert recorded == {"127.0.0.1"}
        assert answers == [200] * 19 + [429, 429]


def test_a_failed_sign_in_is_in_the_audit_trail_without_its_password(operator, now):
    sign_in(Client(), "operateur", "secret-guess", address=ATTACKER)

    [entry] = AuditEntry.objects.all()
    assert (entry.user, entry.username, entry.action) == (None, "operateur", "login")
    assert (entry.status, entry.ip) == (200, ATTACKER)
    assert "secret-guess" not in str(entry.data)


def test_with_the_cache_out_of_reach_sign_in_still_works(settings, director):
    # Redis down (bench/faults.py stops it): a director must still sign in in a crisis.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }

    assert sign_in(Client(), "directeur", "nope").status_code == 200
    assert signed_in(sign_in(Client(), "directeur", "pw"))
