"""The chat API as a citizen's client sees it, with a fake Rasa behind the gateway."""
import json

import fakeredis
import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.conversation import BOT_UNAVAILABLE, Conversation
from gateway.rasa_client import RasaClient
from gateway.settings import Settings


class FakeRasa:
    """Answers the REST webhook like Rasa does; can be switched off to simulate an outage."""

    def __init__(self):
        self.up = True
        self.received = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused")
        body = json.loads(request.content)
        self.received.append(body)
        return httpx.Response(200, json=[
            {"recipient_id": body["sender"], "text": f"收到：{body['message']}",
             "buttons": [{"title": "是", "payload": "/affirm"}]},
            {"recipient_id": body["sender"], "custom": {"type": "handoff_offer"}},
        ])


@pytest.fixture
def fake_rasa():
    return FakeRasa()


@pytest.fixture
def fake_redis():
    return fakeredis.FakeAsyncRedis(decode_responses=True)


@pytest.fixture
def client(fake_rasa, fake_redis):
    app = create_app(Settings(anju_env="test", redis_url="redis://127.0.0.1:1/0"))
    with TestClient(app) as test_client:
        rasa = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(fake_rasa.handler))
        app.state.rasa = rasa
        app.state.conversation = Conversation(rasa, app.state.settings.chat_max_chars, fake_redis)
        yield test_client


def test_a_turn_returns_text_buttons_and_custom_payloads(client, fake_rasa):
    resp = client.post("/api/chat", json={"sender_id": "web-1", "text": "  你好 "})
    assert resp.status_code == 200
    body = resp.json()
    assert body["sender_id"] == "web-1"
    assert body["messages"][0]["text"] == "收到：你好"
    assert body["messages"][0]["buttons"] == [{"title": "是", "payload": "/affirm"}]
    assert body["messages"][1]["custom"] == {"type": "handoff_offer"}
    assert fake_rasa.received[0]["sender"] == "web-1"


@pytest.mark.parametrize("payload, status, words", [
    ({"sender_id": "web-1", "text": ""}, 422, "不能为空"),
    ({"sender_id": "web-1", "text": "   "}, 422, "不能为空"),
    ({"sender_id": "web-1", "text": "字" * 2001}, 413, "2000"),
    ({"sender_id": "web-1", "text": 42}, 422, "文字"),
    ({"text": "你好"}, 422, "sender_id"),
    ({"sender_id": "a b'; DROP TABLE x;--", "text": "你好"}, 422, "格式不正确"),
    ({"sender_id": "x" * 65, "text": "你好"}, 422, "格式不正确"),
])
def test_bad_input_gets_a_clear_chinese_error_and_never_reaches_rasa(client, fake_rasa, payload, status, words):
    resp = client.post("/api/chat", json=payload)
    assert resp.status_code == status
    assert words in resp.json()["detail"]
    assert fake_rasa.received == []


@pytest.mark.parametrize("raw", [b"not json", b"{\"sender_id\": ", b"[1, 2]", b"\xff\xfe"])
def test_malformed_body_is_a_400_with_a_chinese_message(client, raw):
    resp = client.post("/api/chat", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "请求格式错误" in resp.json()["detail"]


def test_exactly_the_limit_is_accepted(client):
    assert client.post("/api/chat", json={"sender_id": "web-1", "text": "字" * 2000}).status_code == 200


def test_rasa_down_is_a_friendly_503_and_the_gateway_recovers(client, fake_rasa):
    fake_rasa.up = False
    resp = client.post("/api/chat", json={"sender_id": "web-1", "text": "你好"})
    assert resp.status_code == 503
    assert resp.json()["detail"] == BOT_UNAVAILABLE
    assert client.get("/healthz").status_code == 200
    fake_rasa.up = True
    resp = client.post("/api/chat", json={"sender_id": "web-1", "text": "你好"})
    assert resp.status_code == 200


def test_websocket_turns_and_bad_frames(client, fake_rasa):
    with client.websocket_connect("/ws/chat?sender_id=web-ws") as ws:
        assert ws.receive_json() == {"sender_id": "web-ws"}
        ws.send_text("not json")
        assert "格式错误" in ws.receive_json()["error"]
        ws.send_json({"text": ""})
        assert "不能为空" in ws.receive_json()["error"]
        ws.send_json({"text": "租房提取"})
        assert ws.receive_json()["messages"][0]["text"] == "收到：租房提取"
        fake_rasa.up = False
        ws.send_json({"text": "还在吗"})
        frame = ws.receive_json()
        assert frame["error"] == BOT_UNAVAILABLE and frame["retry"] is True
        fake_rasa.up = True
        ws.send_json({"text": "好了吗"})
        assert ws.receive_json()["messages"][0]["text"] == "收到：好了吗"


def test_websocket_without_sender_gets_a_new_session_id(client):
    with client.websocket_connect("/ws/chat") as ws:
        assert ws.receive_json()["sender_id"].startswith("web-")


def test_widget_page_is_served_in_chinese(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert 'lang="zh-CN"' in resp.text and "住房公积金智能助手" in resp.text
    assert client.get("/static/widget.js").status_code == 200


def test_readyz_names_what_is_missing(client):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    checks = resp.json()["checks"]
    assert checks["redis"] == "unavailable" and checks["core"] == "unavailable"


def test_id_and_phone_numbers_never_reach_rasa_but_stay_in_the_vault(client, fake_rasa, fake_redis):
    import asyncio

    resp = client.post("/api/chat", json={"sender_id": "web-1", "text": "身份证340503196005171235 手机13812345678"})
    assert resp.status_code == 200
    sent = fake_rasa.received[0]["message"]
    assert "340503196005171235" not in sent and "13812345678" not in sent
    tokens = sent.split()
    assert tokens[0].startswith("身份证pii_id_") and tokens[1].startswith("手机pii_ph_")
    stored = asyncio.run(fake_redis.get("anju:vault:" + tokens[1].removeprefix("手机")))
    assert stored == "13812345678"


def test_clients_cannot_set_trusted_metadata(client, fake_rasa):
    client.post("/api/chat", json={"sender_id": "web-1", "text": "查余额",
                                   "metadata": {"wechat_openid": "o-stolen", "elder_mode": True}})
    assert fake_rasa.received[0]["metadata"] == {"elder_mode": True}
