"""Server-issued chat sessions: what a client holds, what it can no longer choose, and rotation."""
import asyncio
import json

import fakeredis
import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from gateway_app import gateway_client
from gateway import sessions


class ScriptedRasa:
    """Says it verified the person when told the right code, like the actions do."""

    def __init__(self):
        self.turns: list[dict] = []
        self.tracker_events: list[tuple[str, list]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tracker/events"):
            self.tracker_events.append((request.url.path.split("/")[2], json.loads(request.content)))
            return httpx.Response(200, json={})
        body = json.loads(request.content)
        self.turns.append(body)
        if body["message"] == "123456":
            return httpx.Response(200, json=[{"text": "验证成功"}, {"custom": {"type": "identity_verified"}}])
        if body["message"] == "340104199001011234":  # never: the vault tokenises it
            return httpx.Response(200, json=[{"text": "leak"}])
        if body["message"].startswith("pii_id_"):
            return httpx.Response(200, json=[{"text": "请输入姓名"}, {"custom": {"type": "expects", "slot": "person_name"}}])
        return httpx.Response(200, json=[{"text": "好的"}])


@pytest.fixture
def rasa():
    return ScriptedRasa()


@pytest.fixture
def fake_redis():
    return fakeredis.FakeAsyncRedis(decode_responses=True)


@pytest.fixture
def clock():
    return {"now": 1_800_000_000.0}


@pytest.fixture
def client(rasa, fake_redis, clock):
    with gateway_client(rasa.handler, fake_redis, clock=lambda: clock["now"]) as test_client:
        yield test_client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_api_session_token_is_long_random_and_keeps_one_conversation(client, rasa):
    first, second = client.post("/api/session").json()["token"], client.post("/api/session").json()["token"]
    assert first != second and len(first) >= 43
    client.post("/api/chat", json={"text": "你好"}, headers=bearer(first))
    client.post("/api/chat", json={"text": "再问"}, headers=bearer(first))
    client.post("/api/chat", json={"text": "你好"}, headers=bearer(second))
    senders = [t["sender"] for t in rasa.turns]
    assert senders[0] == senders[1] != senders[2]
    assert first not in senders[0] and second not in senders[2]  # the sender id is not derived from the token


def test_a_guessed_or_unknown_token_starts_a_new_conversation_not_someone_elses(client, rasa):
    victim = client.post("/api/session").json()["token"]
    client.post("/api/chat", json={"text": "你好"}, headers=bearer(victim))
    resp = client.post("/api/chat", json={"text": "查余额"}, headers=bearer(victim[:-2] + "xx"))
    assert resp.status_code == 200 and resp.json()["token"] not in (victim,)
    assert rasa.turns[1]["sender"] != rasa.turns[0]["sender"]


def test_chat_without_any_session_issues_one(client, rasa):
    body = client.post("/api/chat", json={"text": "你好"}).json()
    assert body["token"]
    client.post("/api/chat", json={"text": "接着问"}, headers=bearer(body["token"]))
    assert rasa.turns[0]["sender"] == rasa.turns[1]["sender"]


def test_verification_rotates_the_token_and_the_old_one_is_dead(client, rasa):
    token = client.post("/api/session").json()["token"]
    reply = client.post("/api/chat", json={"text": "123456"}, headers=bearer(token)).json()
    assert [m["text"] for m in reply["messages"]] == ["验证成功"]  # the marker is not shown
    rotated = reply["token"]
    assert rotated != token
    client.post("/api/chat", json={"text": "查余额"}, headers=bearer(rotated))
    assert rasa.turns[1]["sender"] == rasa.turns[0]["sender"]  # same conversation
    stolen = client.post("/api/chat", json={"text": "查余额"}, headers=bearer(token)).json()
    assert stolen["token"] and rasa.turns[2]["sender"] != rasa.turns[0]["sender"]  # the fixated id is worth nothing


def test_widget_cookie_is_httponly_strict_and_rotates_over_http(client, rasa):
    resp = client.post("/api/session/web")
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert sessions.COOKIE in client.cookies
    old = client.cookies[sessions.COOKIE]
    assert old not in resp.text  # never in a body JS could read
    assert client.post("/api/session/web").headers.get("set-cookie") is None  # a valid session is kept
    with client.websocket_connect("/ws/chat") as ws:
        assert ws.receive_json() == {"type": "session", "new": False}
        ws.send_json({"text": "123456"})
        assert ws.receive_json()["messages"] == [{"text": "验证成功", "buttons": [], "custom": None, "image": None}]
        assert ws.receive_json() == {"type": "session_rotate"}
        rotated = client.post("/api/session/rotate")
        assert rotated.status_code == 200 and "token" not in rotated.json()
        assert client.cookies[sessions.COOKIE] != old
        ws.send_json({"text": "查余额"})  # this socket belongs to the old id: closed, not served
        assert ws.receive_json()["reconnect"] is True
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    with client.websocket_connect("/ws/chat") as ws:  # the new cookie goes on with the same conversation
        ws.receive_json()
        ws.send_json({"text": "查余额"})
        ws.receive_json()
    assert rasa.turns[-1]["sender"] == rasa.turns[0]["sender"]
    assert len(rasa.turns) == 2


def test_a_stale_cookie_socket_is_told_to_renew(client):
    client.cookies.set(sessions.COOKIE, "expired-or-made-up")
    with client.websocket_connect("/ws/chat") as ws:
        assert ws.receive_json() == {"type": "session", "new": True, "renew": True}


def test_logout_ends_the_session_and_forgets_verification(client, rasa):
    client.post("/api/session/web")
    client.post("/api/chat", json={"text": "123456"})
    resp = client.post("/api/session/end")
    assert resp.json()["ended"] is True and "退出" in resp.json()["text"]
    assert sessions.COOKIE not in client.cookies
    assert rasa.tracker_events and rasa.tracker_events[0][1][0] == {"event": "slot", "name": "verified", "value": False}
    client.post("/api/chat", json={"text": "查余额"})
    assert rasa.turns[-1]["sender"] != rasa.turns[0]["sender"]


def test_verified_state_lapses_after_fifteen_idle_minutes(client, rasa, clock):
    token = client.post("/api/session").json()["token"]
    token = client.post("/api/chat", json={"text": "123456"}, headers=bearer(token)).json()["token"]
    clock["now"] += 14 * 60
    client.post("/api/chat", json={"text": "查余额"}, headers=bearer(token))
    assert rasa.tracker_events == []
    clock["now"] += 16 * 60
    client.post("/api/chat", json={"text": "查余额"}, headers=bearer(token))
    assert len(rasa.tracker_events) == 1 and rasa.tracker_events[0][0] == rasa.turns[0]["sender"]


def test_redis_holds_no_usable_session_id(client, fake_redis):
    token = client.post("/api/session").json()["token"]
    stored = asyncio.run(fake_redis.keys("anju:session:*"))
    assert len(stored) == 1 and token not in stored[0]


def test_the_answer_to_the_name_question_is_tokenised(client, rasa, fake_redis):
    token = client.post("/api/session").json()["token"]
    client.post("/api/chat", json={"text": "340104199001011234"}, headers=bearer(token))
    client.post("/api/chat", json={"text": "王小明"}, headers=bearer(token))
    assert rasa.turns[1]["message"].startswith("pii_nm_")
    client.post("/api/chat", json={"text": "王小明"}, headers=bearer(token))  # no longer the name question
    assert rasa.turns[2]["message"] == "王小明"
