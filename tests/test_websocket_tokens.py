"""A program opens the websocket with its API token and no Origin; a browser's session
still needs a page of this site. A refused socket is accepted, then closed with its code
(docs/websocket.md); a revoked token closes its sockets within 5 seconds."""

import asyncio
import json
from datetime import timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework.test import APIClient

from core import live
from core.api_tokens import tokens_revoke
from core.models import ApiToken
from csu.asgi import application
from dashboard.consumers import (
    CLOSE_ACCESS_CHANGED,
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
)
from sensors.models import Operator
from tests.brokers import free_port
from tests.conftest import api_token, sign_in
from tests.stack import start_web, stop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.timeout(60),
]

WITHIN_S = 5
PING = {"type": "sensor", "event": "online", "sensor": "jlt-air-01"}


def socket(headers=(), subprotocols=None) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"host", b"localhost"), *headers],
        subprotocols=subprotocols,
    )


async def closed_with(communicator) -> int:
    """The code of a socket accepted and then closed, within WITHIN_S seconds."""
    output = await communicator.receive_output(timeout=WITHIN_S)
    assert output["type"] == "websocket.close", output
    await communicator.disconnect(timeout=WITHIN_S)
    return output["code"]


async def opened_by_token(user) -> WebsocketCommunicator:
    secret = await sync_to_async(api_token)(user)
    communicator = socket([(b"authorization", f"Token {secret}".encode())])
    connected, _ = await communicator.connect(timeout=20)
    assert connected
    return communicator


async def session_cookie(user) -> bytes:
    client = APIClient()
    await sync_to_async(sign_in)(client, user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_a_program_opens_the_socket_with_its_token_and_no_origin(operator, commune):
    communicator = await opened_by_token(operator)

    await sync_to_async(live.send)(live.commune_group(commune.pk), PING)

    assert await communicator.receive_json_from(timeout=WITHIN_S) == PING
    await communicator.disconnect()


async def test_a_program_may_send_its_token_as_subprotocols(operator):
    secret = await sync_to_async(api_token)(operator)
    communicator = socket(subprotocols=["csu.token", secret])

    connected, subprotocol = await communicator.connect(timeout=20)

    assert (connected, subprotocol) == (True, "csu.token")
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_an_unknown_token_is_closed_as_unauthenticated(operator):
    communicator = socket([(b"authorization", b"Token not-a-token")])

    connected, _ = await communicator.connect(timeout=20)

    assert connected
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_token_of_a_deactivated_account_is_closed_as_unauthenticated(operator):
    secret = await sync_to_async(api_token)(operator)
    await sync_to_async(type(operator).objects.filter(pk=operator.pk).update)(is_active=False)
    communicator = socket([(b"authorization", f"Token {secret}".encode())])

    await communicator.connect(timeout=20)

    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_an_anonymous_socket_is_closed_with_4401_after_the_handshake():
    communicator = socket([(b"origin", b"http://localhost")])

    connected, _ = await communicator.connect(timeout=20)

    assert connected  # not a bare 403: the page can read the code
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_browser_session_without_an_origin_is_closed_as_forbidden(operator):
    communicator = socket([(b"cookie", await session_cookie(operator))])

    connected, _ = await communicator.connect(timeout=20)

    assert connected
    assert await closed_with(communicator) == CLOSE_FORBIDDEN


async def test_a_browser_session_from_another_site_is_closed_as_forbidden(operator):
    cookie = await session_cookie(operator)
    communicator = socket([(b"cookie", cookie), (b"origin", b"http://localhost:8443")])

    await communicator.connect(timeout=20)

    assert await closed_with(communicator) == CLOSE_FORBIDDEN


async def test_a_session_cookie_sent_with_a_bad_token_does_not_open_the_socket(operator):
    cookie = await session_cookie(operator)
    communicator = socket([(b"cookie", cookie), (b"authorization", b"Token nope")])

    await communicator.connect(timeout=20)

    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_revoking_the_token_closes_its_socket(operator):
    communicator = await opened_by_token(operator)

    await sync_to_async(lambda: ApiToken.objects.filter(user=operator).delete())()

    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_revoking_another_token_of_the_user_keeps_the_socket_open(operator):
    communicator = await opened_by_token(operator)
    await sync_to_async(api_token)(operator)

    newest = await sync_to_async(ApiToken.objects.filter(user=operator).first)()
    await sync_to_async(newest.delete)()

    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()


async def test_a_socket_opened_with_a_token_about_to_expire_closes_when_it_does(operator):
    token, secret = await sync_to_async(ApiToken.issue)(user=operator)
    await sync_to_async(ApiToken.objects.filter(pk=token.pk).update)(
        expires=timezone.now() + timedelta(seconds=1)
    )
    communicator = socket([(b"authorization", f"Token {secret}".encode())])
    connected, _ = await communicator.connect(timeout=20)

    assert connected
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_new_password_closes_the_sockets_of_the_users_tokens(operator):
    communicator = await opened_by_token(operator)

    operator.set_password("un tout autre mot de passe")
    await sync_to_async(operator.save)()

    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_token_socket_losing_a_commune_is_closed_as_access_changed(operator, commune):
    communicator = await opened_by_token(operator)

    await sync_to_async(lambda: Operator.objects.get(user=operator).communes.remove(commune))()

    assert await closed_with(communicator) == CLOSE_ACCESS_CHANGED


async def test_a_user_signing_out_elsewhere_keeps_the_token_socket_open(operator):
    communicator = await opened_by_token(operator)
    browser = APIClient()
    await sync_to_async(sign_in)(browser, operator)

    await sync_to_async(browser.post)("/accounts/logout/")

    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()


# --- Through a real server and the websockets client library ------------------------------


@pytest.fixture
def web():
    port = free_port()
    process = start_web(port)
    yield f"ws://127.0.0.1:{port}/ws/live/"
    stop(process)


@pytest.mark.postgres
@pytest.mark.xdist_group("stack")
def test_a_program_with_a_token_and_no_origin_hears_until_its_token_is_revoked(
    web, operator, commune
):
    secret = api_token(operator)

    async def run():
        # websockets sends no Origin unless told to.
        async with websockets.connect(
            web, additional_headers={"Authorization": f"Token {secret}"}
        ) as program:
            await asyncio.sleep(0.5)  # its groups joined before the send
            await sync_to_async(live.send)(live.commune_group(commune.pk), PING)
            assert json.loads(await asyncio.wait_for(program.recv(), WITHIN_S)) == PING

            await sync_to_async(tokens_revoke)(
                tokens=ApiToken.objects.filter(user=operator), reason="test"
            )
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(program.recv(), WITHIN_S)
            return closed.value.rcvd.code

    assert asyncio.run(run()) == CLOSE_UNAUTHENTICATED


@pytest.mark.postgres
@pytest.mark.xdist_group("stack")
def test_a_browser_session_with_no_origin_is_refused_by_the_server(web, operator):
    client = sign_in(APIClient(), operator)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def run():
        async with websockets.connect(web, additional_headers={"Cookie": cookie}) as browser:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(browser.recv(), WITHIN_S)
            return closed.value.rcvd.code

    assert asyncio.run(run()) == CLOSE_FORBIDDEN
