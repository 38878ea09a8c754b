"""Chat sockets kept open by keepalive frames: a ping is answered and keeps the socket past the
idle timeout, is never a turn (no Rasa call, no rate-limit hit), and a silent socket still closes.
And the gateway's leaner uvicorn WebSocket protocol: frames, closes, and refusal past its limit."""
import asyncio
import json
import socket
import time
from contextlib import asynccontextmanager

import fakeredis
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.__main__ import LeanWebSocketProtocol
from gateway_app import gateway_client

IDLE_S = 0.6


class CountingRasa:
    def __init__(self):
        self.turns: list[dict] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.turns.append(body)
        return httpx.Response(200, json=[{"text": f"收到：{body['message']}"}])


@pytest.fixture
def rasa():
    return CountingRasa()


@pytest.fixture
def client(rasa):
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    with gateway_client(rasa.handler, redis, ws_idle_timeout_s=IDLE_S, rate_chat_session="2/60") as test_client:
        yield test_client


def test_pings_keep_a_socket_open_past_the_idle_timeout_and_are_not_turns(client, rasa):
    with client.websocket_connect("/ws/chat") as ws:
        assert ws.receive_json()["type"] == "session"
        for _ in range(5):  # 5 x 0.25 s: twice the idle timeout, and more pings than the turn rate allows
            time.sleep(IDLE_S * 0.4)
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"text": "还在吗"})
        assert ws.receive_json()["messages"][0]["text"] == "收到：还在吗"
    assert [t["message"] for t in rasa.turns] == ["还在吗"]


def test_a_silent_socket_is_closed_after_the_idle_timeout(client):
    with client.websocket_connect("/ws/chat") as ws:
        ws.receive_json()
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000 and closed.value.reason == "idle"
        assert IDLE_S * 0.9 <= time.monotonic() - started < IDLE_S + 5


def test_a_ping_on_an_ended_session_closes_the_socket(client):
    token = client.post("/api/session").json()["token"]
    with client.websocket_connect("/ws/chat", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json() == {"type": "session", "new": False}
        client.post("/api/session/end", headers={"Authorization": f"Bearer {token}"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["reconnect"] is True
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4001



async def echo(websocket):
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        if text == "bye":
            await websocket.close(code=1000, reason="bye")
            return
        await websocket.send_text(f"收到{text}")


@asynccontextmanager
async def lean_server():
    """uvicorn with the gateway's WebSocket protocol (gateway/__main__.py) serving an echo socket."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[WebSocketRoute("/ws", echo)]), host="127.0.0.1",
                                           port=port, ws=LeanWebSocketProtocol, ws_per_message_deflate=False,
                                           log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        yield server, f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await serving


async def test_the_gateways_lean_websocket_protocol_serves_frames_in_order_and_closes_cleanly():
    """The gateway serves sockets with a leaner uvicorn protocol (its own inbox, the handshake dropped
    once open): frames still arrive in order through back-pressure, and closes carry their code."""
    async with lean_server() as (server, url), connect(url) as ws:
        for i in range(200):  # sent at once: the server pauses reading while its inbox holds frames
            await ws.send(str(i))
        assert [await ws.recv() for _ in range(200)] == [f"收到{i}" for i in range(200)]
        [protocol] = list(server.server_state.connections)
        assert protocol.request is None and protocol.response is None  # the handshake is not kept
        await ws.send("bye")
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1000, "bye")


async def test_past_the_connection_limit_a_new_socket_is_refused_and_open_ones_go_on(monkeypatch):
    monkeypatch.setattr(LeanWebSocketProtocol, "max_connections", 1)
    async with lean_server() as (_, url), connect(url) as first:
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "30"
        assert "服务繁忙" in refused.value.response.body.decode()
        await first.send("还在吗")
        assert await first.recv() == "收到还在吗"
