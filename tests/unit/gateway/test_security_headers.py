"""Security headers on every HTTP answer (pages, API, errors), WebSockets untouched."""
import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.security_headers import SecurityHeaders, content_security_policy
from gateway.settings import Settings

COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.fixture
def client():
    app = FastAPI()
    app.add_middleware(SecurityHeaders)

    @app.get("/")
    async def page():
        return PlainTextResponse("page")

    @app.get("/api/thing")
    async def thing():
        return {"ok": True}

    @app.get("/api/cached")
    async def cached():
        return JSONResponse({}, headers={"Cache-Control": "max-age=60"})

    @app.get("/api/stream")
    async def stream():
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")

    @app.websocket("/ws/echo")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return TestClient(app)


def assert_common(resp):
    for name, value in COMMON.items():
        assert resp.headers[name] == value
    csp = resp.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "object-src 'none'", "base-uri 'none'", "media-src 'self' blob:"):
        assert directive in csp
    assert "camera=(self)" in resp.headers["permissions-policy"]
    assert "microphone=(self)" in resp.headers["permissions-policy"]


@pytest.mark.parametrize("path, status", [("/", 200), ("/api/thing", 200), ("/api/stream", 200), ("/nope", 404),
                                          ("/api/nope", 404)])
def test_every_http_answer_carries_the_headers(client, path, status):
    resp = client.get(path)
    assert resp.status_code == status
    assert_common(resp)


def test_only_api_answers_are_not_cached(client):
    assert client.get("/api/thing").headers["cache-control"] == "no-store"
    assert client.get("/api/nope").headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/").headers


def test_a_header_the_route_set_is_kept(client):
    assert client.get("/api/cached").headers["cache-control"] == "max-age=60"


def test_a_streamed_body_arrives_whole(client):
    assert client.get("/api/stream").text == "ab"


def test_a_websocket_still_connects(client):
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_text("你好")
        assert ws.receive_text() == "你好"


def test_websockets_are_allowed_to_this_host_only():
    assert "connect-src 'self' ws://anju.example:8443 wss://anju.example:8443;" in \
        content_security_policy("anju.example:8443")
    assert "connect-src 'self' ws://[::1]:8000 wss://[::1]:8000;" in content_security_policy("[::1]:8000")
    assert "connect-src 'self';" in content_security_policy("evil.example; script-src *")


def test_the_gateway_installs_it():
    app = create_app(Settings(anju_env="test", redis_url="redis://127.0.0.1:1/0"))
    with TestClient(app) as client:
        assert_common(client.get("/"))
        assert client.get("/api/no-such-route").headers["cache-control"] == "no-store"
