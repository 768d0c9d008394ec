"""The demo's "replay the flood" button (csu/demo.py), in the admin of the embedded runner."""

import pytest

from csu import embedded
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

REPLAY = "/admin/demo/rejouer-la-crue/"


@pytest.fixture
def demo_simulator(settings):
    # A real simulator child, on a port where no broker answers: it exits at once, and
    # the replay restarts it all the same.
    process = embedded.start_simulator(["--url", "mqtt://127.0.0.1:9", "--once"])
    yield process
    embedded.stop_simulator()


def test_the_admin_home_offers_the_replay_when_the_demo_simulator_runs(
    admin_client, demo_simulator
):
    page = admin_client.get("/admin/").content.decode()

    assert "Rejouer la crue" in page
    assert f'action="{REPLAY}"' in page


def test_the_replay_restarts_the_simulator_with_the_flood_beginning_at_once(
    admin_client, demo_simulator
):
    response = admin_client.post(REPLAY, follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    assert "La crue du Cher recommence" in response.content.decode()
    assert demo_simulator.returncode is not None  # the first one was stopped
    replayed = embedded._simulator
    assert replayed is not demo_simulator
    assert replayed.args[-7:] == [
        "simulate", "--scenario", "flood", "--scenario-delay", "0", "--speed", "60"
    ]  # fmt: skip


def test_without_a_demo_simulator_there_is_no_button_and_nothing_to_replay(admin_client):
    assert "Rejouer la crue" not in admin_client.get("/admin/").content.decode()
    assert admin_client.post(REPLAY).status_code == 404


def test_only_the_admin_may_replay(client, operator, demo_simulator):
    sign_in(client, operator)

    response = client.post(REPLAY)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert embedded._simulator is demo_simulator
