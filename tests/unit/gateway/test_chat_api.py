"""The chat API as a citizen's client sees it, with a fake Rasa behind the gateway."""
import json

import fakeredis
import httpx
import pytest

from gateway_app import gateway_client
from gateway.conversation import BOT_UNAVAILABLE, BotUnavailable, Conversation
from gateway.rasa_client import RasaClient


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
    with gateway_client(fake_rasa.handler, fake_redis) as test_client:
        yield test_client


@pytest.fixture
def api(client):
    """An API client holding a session token, as the README shows."""
    token = client.post("/api/session").json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_a_turn_returns_text_buttons_and_custom_payloads(api, fake_rasa):
    resp = api.post("/api/chat", json={"text": "  你好 "})
    assert resp.status_code == 200
    body = resp.json()
    assert "sender_id" not in body and "token" not in body  # the session was valid: nothing new to keep
    assert body["messages"][0]["text"] == "收到：你好"
    assert body["messages"][0]["buttons"] == [{"title": "是", "payload": "/affirm"}]
    assert body["messages"][1]["custom"] == {"type": "handoff_offer"}
    assert fake_rasa.received[0]["sender"].startswith("api-")


def test_a_sender_id_from_an_old_client_is_ignored_not_obeyed(api, fake_rasa):
    resp = api.post("/api/chat", json={"sender_id": "web-victim", "text": "你好"})
    assert resp.status_code == 200
    assert fake_rasa.received[0]["sender"] != "web-victim"


@pytest.mark.parametrize("payload, status, words", [
    ({"text": ""}, 422, "不能为空"),
    ({"text": "   "}, 422, "不能为空"),
    ({"text": "字" * 2001}, 413, "2000"),
    ({"text": 42}, 422, "文字"),
    ({"sender_id": "a b'; DROP TABLE x;--"}, 422, "文字"),
])
def test_bad_input_gets_a_clear_chinese_error_and_never_reaches_rasa(api, fake_rasa, payload, status, words):
    resp = api.post("/api/chat", json=payload)
    assert resp.status_code == status
    assert words in resp.json()["detail"]
    assert fake_rasa.received == []


@pytest.mark.parametrize("raw", [b"not json", b"{\"sender_id\": ", b"[1, 2]", b"\xff\xfe"])
def test_malformed_body_is_a_400_with_a_chinese_message(client, raw):
    resp = client.post("/api/chat", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "请求格式错误" in resp.json()["detail"]


def test_a_lone_surrogate_is_a_400_not_bot_unavailable_and_the_next_turn_works(api, fake_rasa):
    resp = api.post("/api/chat", content='{"text": "\\ud800公积金"}'.encode(),
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "无法识别的字符" in resp.json()["detail"]
    assert fake_rasa.received == []
    assert api.post("/api/chat", json={"text": "公积金"}).status_code == 200


def test_exactly_the_limit_is_accepted(api):
    assert api.post("/api/chat", json={"text": "字" * 2000}).status_code == 200


def test_rasa_down_is_a_friendly_503_and_the_gateway_recovers(api, fake_rasa):
    fake_rasa.up = False
    resp = api.post("/api/chat", json={"text": "你好"})
    assert resp.status_code == 503
    assert resp.json()["detail"] == BOT_UNAVAILABLE
    assert api.get("/healthz").status_code == 200
    fake_rasa.up = True
    resp = api.post("/api/chat", json={"text": "你好"})
    assert resp.status_code == 200


def test_websocket_turns_and_bad_frames(api, fake_rasa):
    with api.websocket_connect("/ws/chat?sender_id=web-ws") as ws:
        assert ws.receive_json() == {"type": "session", "new": False}
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


def test_websocket_without_a_session_starts_one_and_hands_the_token_to_the_client(client, fake_rasa):
    with client.websocket_connect("/ws/chat") as ws:
        first = ws.receive_json()
        assert first["new"] is True and len(first["token"]) >= 43  # 256 random bits, url-safe
        ws.send_json({"text": "你好"})
        ws.receive_json()
    client.headers["Authorization"] = f"Bearer {first['token']}"
    client.post("/api/chat", json={"text": "还在吗"})
    assert fake_rasa.received[0]["sender"] == fake_rasa.received[1]["sender"]


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


def test_id_and_phone_numbers_never_reach_rasa_but_stay_in_the_vault(api, fake_rasa, fake_redis):
    import asyncio

    resp = api.post("/api/chat", json={"text": "身份证340503196005171235 手机13812345678"})
    assert resp.status_code == 200
    sent = fake_rasa.received[0]["message"]
    assert "340503196005171235" not in sent and "13812345678" not in sent
    tokens = sent.split()
    assert tokens[0].startswith("身份证pii_id_") and tokens[1].startswith("手机pii_ph_")
    stored = asyncio.run(fake_redis.get("anju:vault:" + tokens[1].removeprefix("手机")))
    assert stored == "13812345678"


def test_clients_cannot_set_trusted_metadata(api, fake_rasa):
    api.post("/api/chat", json={"text": "查余额", "metadata": {"wechat_openid": "o-stolen", "elder_mode": True,
                                                             "identity_assertion": "v1.forged.mac",
                                                             "request_id": "forged-request-id"}})
    metadata = dict(fake_rasa.received[0]["metadata"])
    assert metadata.pop("request_id") != "forged-request-id"  # the gateway's own, for the logs
    assert metadata == {"elder_mode": True}


async def test_an_empty_reply_while_the_action_server_is_down_is_a_503_not_silence(fake_redis):
    def silent_rasa(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])  # what Rasa 3.6 answers when a custom action cannot be reached

    rasa = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(silent_rasa))
    alive = {"actions": False}

    async def actions_alive() -> bool:
        return alive["actions"]

    conversation = Conversation(rasa, 2000, fake_redis, actions_alive=actions_alive)
    with pytest.raises(BotUnavailable):
        await conversation.turn("web-1", "租房怎么提取")
    # The action server died mid-turn and is back already: still never a silent turn.
    alive["actions"] = True
    [message] = await conversation.turn("web-1", "/decline_handoff")
    assert "没有处理成功" in message.text and "转人工" in message.text
