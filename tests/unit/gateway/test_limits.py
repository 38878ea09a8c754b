"""Limits a citizen's client meets: body sizes, rates, spoofed client IPs and foreign WebSocket origins."""
import fakeredis
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from gateway_app import gateway_client
from gateway.limits import BodyLimit, Rate, RateLimited, RateLimiter, client_ip, origin_allowed


def conn(peer: str, headers: dict[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "http", "client": (peer, 5000), "headers": raw, "path": "/"})


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy():
    spoofed = {"X-Forwarded-For": "1.2.3.4"}
    assert client_ip(conn("203.0.113.9", spoofed), []) == "203.0.113.9"
    assert client_ip(conn("203.0.113.9", spoofed), ["10.0.0.0/8"]) == "203.0.113.9"
    # Behind the proxy the nearest untrusted hop counts; what the client prepended does not.
    hops = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.3"}
    assert client_ip(conn("10.0.0.2", hops), ["10.0.0.0/8"]) == "198.51.100.7"
    assert client_ip(conn("10.0.0.2", {"X-Forwarded-For": "not-an-ip"}), ["10.0.0.0/8"]) == "10.0.0.2"


def test_websocket_origin_must_be_this_site_or_configured():
    assert origin_allowed(conn("1.1.1.1", {"Host": "anju.example.cn", "Origin": "https://anju.example.cn"}), [])
    assert not origin_allowed(conn("1.1.1.1", {"Host": "anju.example.cn", "Origin": "https://evil.example"}), [])
    assert origin_allowed(conn("1.1.1.1", {"Host": "a", "Origin": "https://servicewechat.com"}), ["https://servicewechat.com"])
    assert origin_allowed(conn("1.1.1.1", {"Host": "a"}), [])  # not a browser: no cookie to ride


async def test_rate_limiter_counts_per_subject_and_says_when_to_retry():
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    limiter = RateLimiter(redis, clock=lambda: 1_000_000_010.0)
    for _ in range(3):
        await limiter.hit("chat", "a", Rate(3, 60))
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("chat", "a", Rate(3, 60))
    assert 1 <= caught.value.retry_after_s <= 60 and "秒后再试" in caught.value.message
    await limiter.hit("chat", "b", Rate(3, 60))  # someone else is not affected


def test_rate_parses_from_settings_text():
    assert Rate.parse("30/60") == Rate(30, 60) and Rate.parse("5") == Rate(5, 60)


def small_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/chat")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    return BodyLimit(app, default_bytes=100, per_path={"/api/chat": 50})


def test_oversized_bodies_are_refused_before_the_route_reads_them():
    client = TestClient(small_app())
    assert client.post("/api/chat", content=b"x" * 50).json() == {"bytes": 50}
    resp = client.post("/api/chat", content=b"x" * 51)
    assert resp.status_code == 413 and "太大" in resp.json()["detail"]
    streamed = client.post("/api/chat", content=iter([b"x" * 40, b"x" * 40]))  # no Content-Length
    assert streamed.status_code == 413


@pytest.fixture
def gateway():
    def rasa_handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"text": "好的"}])

    with gateway_client(rasa_handler, fakeredis.FakeAsyncRedis(decode_responses=True), rate_chat_session="3/60") as client:
        yield client


def test_chat_over_the_session_rate_is_a_429_with_retry_after_and_others_still_chat(gateway):
    token = gateway.post("/api/session").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    codes = [gateway.post("/api/chat", json={"text": "你好"}, headers=auth).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    resp = gateway.post("/api/chat", json={"text": "你好"}, headers=auth)
    assert int(resp.headers["Retry-After"]) >= 1 and "太频繁" in resp.json()["detail"]
    other = gateway.post("/api/session").json()["token"]
    assert gateway.post("/api/chat", json={"text": "你好"}, headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_chat_body_over_16_kb_is_refused(gateway):
    resp = gateway.post("/api/chat", content=b'{"text": "' + b"a" * 17000 + b'"}',
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


def test_websocket_from_a_foreign_origin_is_refused(gateway):
    with pytest.raises(WebSocketDisconnect):
        with gateway.websocket_connect("/ws/chat", headers={"Origin": "https://evil.example"}) as ws:
            ws.receive_json()


def test_an_oversized_websocket_frame_closes_the_socket(gateway):
    with gateway.websocket_connect("/ws/chat") as ws:
        ws.receive_json()
        ws.send_text("x" * 20000)
        assert "太长" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
