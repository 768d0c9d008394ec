"""The websocket's rights follow the user: signing out, losing a commune, a school or the
role, a new password or a deactivated account close the socket within 5 seconds.

On the real Redis channel layer: the change is told to the user's group (``user-<id>``),
which each of their sockets joins, and the socket checks again what it may hear.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core import roles
from csu.asgi import application
from dashboard.consumers import CLOSE_ACCESS_CHANGED, CLOSE_UNAUTHENTICATED
from sensors.models import Operator
from tests.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

WITHIN_S = 5


async def socket_of(user, client=None):
    """A websocket of ``user``, logged in like a browser (``client``'s session, or a new one)."""
    client = client or APIClient()
    await sync_to_async(sign_in)(client, user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect(timeout=20)
    assert connected
    return communicator


async def close_code(communicator) -> int:
    """The code the socket was closed with, within WITHIN_S seconds (else TimeoutError)."""
    output = await communicator.receive_output(timeout=WITHIN_S)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def test_signing_out_closes_the_socket_of_that_session_only(operator):
    browser = APIClient()
    socket = await socket_of(operator, browser)
    phone = await socket_of(operator)

    await sync_to_async(browser.post)("/accounts/logout/")

    assert await close_code(socket) == CLOSE_UNAUTHENTICATED
    assert await phone.receive_nothing(timeout=0.5)
    await phone.disconnect()


async def test_losing_a_commune_closes_the_socket(operator, commune):
    socket = await socket_of(operator)

    await sync_to_async(lambda: Operator.objects.get(user=operator).communes.remove(commune))()

    assert await close_code(socket) == CLOSE_ACCESS_CHANGED


async def test_a_metropole_operator_brought_down_to_no_commune_is_closed(
    metropole_operator, commune
):
    socket = await socket_of(metropole_operator)

    scope = await sync_to_async(Operator.objects.get)(user=metropole_operator)
    scope.all_communes = False
    await sync_to_async(scope.save)()

    assert await close_code(socket) == CLOSE_ACCESS_CHANGED


async def test_losing_the_operators_role_closes_the_socket(operator):
    socket = await socket_of(operator)

    group = await sync_to_async(Group.objects.get)(name=roles.OPERATORS)
    await sync_to_async(operator.groups.remove)(group)

    assert await close_code(socket) == CLOSE_ACCESS_CHANGED


async def test_a_director_taken_off_their_school_is_closed(director, school):
    socket = await socket_of(director)

    await sync_to_async(school.directors.remove)(director)

    assert await close_code(socket) == CLOSE_ACCESS_CHANGED


async def test_a_director_whose_schools_are_cleared_from_the_account_is_closed(director):
    socket = await socket_of(director)

    await sync_to_async(director.schools.clear)()

    assert await close_code(socket) == CLOSE_ACCESS_CHANGED


async def test_deactivating_the_account_closes_its_sockets(operator):
    socket = await socket_of(operator)

    operator.is_active = False
    await sync_to_async(operator.save)()

    assert await close_code(socket) == CLOSE_UNAUTHENTICATED


async def test_a_new_password_closes_the_sockets_of_the_sessions_it_ends(operator):
    socket = await socket_of(operator)

    operator.set_password("un tout autre mot de passe")
    await sync_to_async(operator.save)()

    assert await close_code(socket) == CLOSE_UNAUTHENTICATED


async def test_deleting_the_account_closes_its_sockets(operator):
    socket = await socket_of(operator)

    await sync_to_async(operator.delete)()

    assert await close_code(socket) == CLOSE_UNAUTHENTICATED


async def test_a_change_that_takes_nothing_away_keeps_the_socket_open(
    operator, other_operator, commune
):
    socket = await socket_of(operator)

    operator.first_name = "Camille"
    await sync_to_async(operator.save)()
    await sync_to_async(lambda: Operator.objects.get(user=other_operator).communes.add(commune))()
    await sync_to_async(lambda: Operator.objects.get(user=operator).communes.add(commune))()

    assert await socket.receive_nothing(timeout=1)
    await socket.disconnect()
