"""WeChat: the callback's signatures and safe mode, every rejection, dedupe, the worker's replies through
the customer-service API (numbered choices, token refresh, unreachable users) and the mini-program login."""
import asyncio
import base64
import json
import logging
import os
import time

import fakeredis
import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi.testclient import TestClient

from gateway import keys
from gateway.app import create_app
from gateway.conversation import Conversation
from gateway.limits import RateLimiter
from gateway.rasa_client import RasaClient
from gateway.sessions import SessionStore
from gateway.settings import Settings
from gateway.wechat import WeChat
from gateway.wechat.codec import CallbackCodec, CallbackRejected
from gateway.wechat.inbox import CHOOSE_HINT, NOT_TEXT_TEXT, WELCOME_TEXT, render
from wechat_simulator import AES_KEY, APPID, TOKEN, WeChatSimulator, message_fields, push_body, signature

# Tencent's WXBizMsgCrypt sample (the public-platform demo): token, EncodingAESKey, appid and one pushed text.
VECTOR = dict(token="spamtest", appid="wx2c2769f8efd9abc2", aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
              timestamp="1409735669", nonce="1320562132", msg_signature="5d197aaffba7e9b25a30732f161a50dee96bd5fa",
              encrypt="hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFm"
                      "OD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSn"
                      "yU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77"
                      "TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5"
                      "MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")


def codec(msg_format="xml", aes_key=AES_KEY, clock=time.time):
    return CallbackCodec(TOKEN, APPID, aes_key, msg_format, clock=clock)


def test_tencent_sample_decrypts_to_its_text_message():
    v = VECTOR
    sample = CallbackCodec(v["token"], v["appid"], v["aes_key"], "xml", clock=lambda: int(v["timestamp"]) + 10)
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>"
    message = sample.decode({k: v[k] for k in ("msg_signature", "timestamp", "nonce")}, body.encode())
    assert (message.openid, message.msg_type, message.content) == ("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "text", "abcdteT")
    assert message.dedupe_id == "msg:6054768590064713728"


@pytest.mark.parametrize("msg_format", ["xml", "json"])
@pytest.mark.parametrize("aes_key", ["", AES_KEY])
def test_plaintext_and_safe_mode_in_xml_and_json(msg_format, aes_key):
    query, body = push_body(message_fields("o_user", "租房怎么提取", msg_id=77), msg_format, aes_key)
    message = codec(msg_format, aes_key).decode(query, body)
    assert (message.openid, message.content, message.msg_id) == ("o_user", "租房怎么提取", "77")


def test_events_are_deduplicated_by_sender_and_time():
    query, body = push_body(message_fields("o_user", msg_type="event", event="user_enter_tempsession",
                                           create_time=1700000000), "xml", AES_KEY)
    message = codec().decode(query, body)
    assert message.event == "user_enter_tempsession" and message.dedupe_id == "event:o_user:1700000000"


def test_url_verification_echoes_only_for_our_signature():
    ts = str(int(time.time()))
    good = {"signature": signature(TOKEN, ts, "n1"), "timestamp": ts, "nonce": "n1", "echostr": "hello123"}
    assert codec().verify_url(good) == "hello123"
    with pytest.raises(CallbackRejected) as refused:
        codec().verify_url({**good, "signature": "0" * 40})
    assert refused.value.status == 403


def encrypt_raw(plain: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def signed_envelope(encrypt: str, ts: str) -> tuple[dict, bytes]:
    body = f"<xml><ToUserName>gh_anju</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    return {"msg_signature": signature(TOKEN, ts, "n1", encrypt), "timestamp": ts, "nonce": "n1"}, body


def rejection(msg_format="xml", aes_key=AES_KEY):
    def case(query, body):
        with pytest.raises(CallbackRejected) as caught:
            codec(msg_format, aes_key).decode(query, body)
        return caught.value.status, caught.value.reason
    return case


def test_each_rejection_gets_its_4xx():
    ts = str(int(time.time()))
    query, body = push_body(message_fields("o_user"), "xml", AES_KEY, timestamp=ts)
    assert rejection()({**query, "msg_signature": "f" * 40}, body) == (403, "bad_signature")
    assert rejection()({k: v for k, v in query.items() if k != "msg_signature"}, body) == (403, "missing_signature")
    old = str(int(time.time()) - 301)
    assert rejection()(*push_body(message_fields("o_user"), "xml", AES_KEY, timestamp=old)) == (403, "stale_timestamp")
    assert rejection()(*push_body(message_fields("o_user"), "xml", AES_KEY, appid="wx-someone-else")) == \
        (400, "wrong_appid")
    assert rejection()(*signed_envelope(encrypt_raw(os.urandom(16) + b"\x00" * 47 + b"\x28"), ts)) == (400, "bad_padding")
    assert rejection()(*signed_envelope(base64.b64encode(b"short").decode(), ts)) == (400, "bad_ciphertext")
    assert rejection()(query, body[: len(body) // 2]) == (400, "malformed_xml")
    assert rejection()(query, b"<xml><ToUserName>x</ToUserName></xml>") == (400, "no_encrypt_field")
    plain_query, plain_body = push_body(message_fields("o_user"), "json", "")
    assert rejection("json", "")(plain_query, plain_body[:-5]) == (400, "malformed_json")
    assert rejection("json", "")(plain_query, b"[1, 2]") == (400, "malformed_json")
    missing_query, missing_body = push_body({"MsgType": "text", "Content": "x"}, "json", "")
    assert rejection("json", "")(missing_query, missing_body) == (400, "missing_fields")
    assert rejection("json", "")({**plain_query, "signature": "0" * 40}, plain_body) == (403, "bad_signature")


def test_render_numbers_buttons_and_hides_markers():
    from gateway.conversation import BotMessage, Button
    text, choices = render([BotMessage(text="请选择提取类型"), BotMessage(custom={"type": "identity_verified"}),
                            BotMessage(text="是否继续？", buttons=[Button(title="是", payload="/affirm"),
                                                              Button(title="否", payload="/deny")])])
    assert text == "请选择提取类型\n\n是否继续？\n\n1. 是\n2. 否\n" + CHOOSE_HINT
    assert choices == {"1": "/affirm", "2": "/deny"}


# --- the callback, the worker and the mini-program, with a fake Rasa, fakeredis and the simulator ---
class FakeRasa:
    def __init__(self):
        self.received = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if "/tracker/events" in request.url.path:
            return httpx.Response(200, json={})
        body = json.loads(request.content)
        self.received.append(body)
        return httpx.Response(200, json=[{"recipient_id": body["sender"], "text": f"收到：{body['message']}",
                                          "buttons": [{"title": "是", "payload": "/affirm"},
                                                      {"title": "否", "payload": "/deny"}]}])


class FakeCore:
    def __init__(self):
        self.calls = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"unbound": True})


@pytest.fixture
def world():
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)   # nothing shared between tests
    sim, rasa, core = WeChatSimulator(), FakeRasa(), FakeCore()
    settings = Settings(_env_file=None, anju_env="test", redis_url="redis://127.0.0.1:1/0", wechat_aes_key=AES_KEY)
    app = create_app(settings)
    with TestClient(app) as client:
        rasa_client = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(rasa.handler))
        conversation = Conversation(rasa_client, settings.chat_max_chars, redis)
        store, limiter = SessionStore(redis, 3600, 900), RateLimiter(redis)
        app.state.conversation, app.state.sessions, app.state.limiter = conversation, store, limiter
        app.state.wechat = WeChat(settings, redis, conversation, store, limiter,
                                  wechat_transport=httpx.ASGITransport(app=sim.app()),
                                  core_transport=httpx.MockTransport(core.handler))
        yield client, app.state.wechat, sim, rasa, core, redis


def drain(client, wechat):
    """What the worker does with the queued messages (without blocking reads, which fakeredis cannot do)."""
    async def once():
        await wechat.worker.ensure_group()
        while await wechat.worker.process_new(None):
            await wechat.worker.idle()
    client.portal.call(once)


def push(client, fields, msg_format="xml"):
    query, body = push_body(fields, msg_format, AES_KEY)
    return client.post("/wechat/callback", params=query, content=body)


def test_a_message_pushed_three_times_is_answered_once(world):
    client, wechat, sim, rasa, _, _ = world
    for _ in range(3):
        resp = push(client, message_fields("o_dup", "公积金能贷多少", msg_id=9001))
        assert resp.status_code == 200 and resp.text == "success"
    drain(client, wechat)
    assert len(rasa.received) == 1 and len(sim.sent("o_dup")) == 1
    assert sim.sent("o_dup")[0]["text"]["content"].startswith("收到：公积金能贷多少")
    assert "identity_assertion" in rasa.received[0]["metadata"]


def test_a_number_picks_the_button_and_an_expired_token_is_refreshed_once(world):
    client, wechat, sim, rasa, _, _ = world
    push(client, message_fields("o_pick", "我要提取", msg_id=1))
    drain(client, wechat)
    assert "1. 是\n2. 否" in sim.sent("o_pick")[0]["text"]["content"]
    sim.expire_tokens()
    push(client, message_fields("o_pick", "1", msg_id=2))
    drain(client, wechat)
    assert rasa.received[-1]["message"] == "/affirm"
    assert len(sim.sent("o_pick")) == 2 and sim.count("/cgi-bin/token") == 2
    assert [c.body["touser"] for c in sim.calls if c.path.endswith("/send")].count("o_pick") == 3  # one 40001


def test_events_and_other_types_get_a_polite_reply_and_unreachable_users_are_left_alone(world, caplog):
    client, wechat, sim, rasa, _, redis = world
    push(client, message_fields("o_evt", msg_type="event", event="user_enter_tempsession", msg_id=None))
    push(client, message_fields("o_evt", msg_type="image", msg_id=5), msg_format="xml")
    drain(client, wechat)
    assert [m["text"]["content"] for m in sim.sent("o_evt")] == [WELCOME_TEXT, NOT_TEXT_TEXT]
    assert rasa.received == []
    sim.unreachable["o_gone"] = 45015
    with caplog.at_level(logging.WARNING):
        push(client, message_fields("o_gone", "你好", msg_id=6))
        drain(client, wechat)
    assert "wechat.send.stopped errcode=45015" in caplog.text
    assert client.portal.call(redis.keys, "anju:wechat:muted:*")


def test_callback_http_answers(world):
    client, _, _, _, _, _ = world
    ts = str(int(time.time()))
    verify = {"signature": signature(TOKEN, ts, "n"), "timestamp": ts, "nonce": "n", "echostr": "e123"}
    assert client.get("/wechat/callback", params=verify).text == "e123"
    assert client.get("/wechat/callback", params={**verify, "nonce": "other"}).status_code == 403
    query, body = push_body(message_fields("o_x"), "xml", AES_KEY)
    assert client.post("/wechat/callback", params={**query, "msg_signature": "0" * 40}, content=body).status_code == 403
    assert client.post("/wechat/callback", params=query, content=body[:40]).status_code == 400
    assert client.post("/wechat/callback", params=query, content=b"<" * (64 * 1024 + 1)).status_code == 413


def test_mini_program_login_chat_and_unbind(world):
    client, _, sim, rasa, core, _ = world
    assert client.post("/api/wx/login", json={"code": "never-issued"}).status_code == 401
    refused = client.post("/api/wx/login", json={"code": "never-issued"}).json()["detail"]
    assert "登录凭证" in refused
    token = client.post("/api/wx/login", json={"code": sim.login_code("o_mini")}).json()["token"]
    assert "o_mini" not in token
    reply = client.post("/api/wx/chat", json={"text": "查余额"}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200 and reply.json()["messages"][0]["text"] == "收到：查余额"
    assert "identity_assertion" in rasa.received[-1]["metadata"]
    gone = client.post("/api/wx/chat", json={"text": "查余额"}, headers={"Authorization": "Bearer nope"})
    assert gone.status_code == 401 and "重新打开小程序" in gone.json()["detail"]
    web_token = client.post("/api/session").json()["token"]
    assert client.post("/api/wx/chat", json={"text": "x"}, headers={"Authorization": f"Bearer {web_token}"}).status_code == 401
    unbound = client.post("/api/wx/chat", json={"text": "解除绑定"}, headers={"Authorization": f"Bearer {token}"})
    assert "已解除" in unbound.json()["messages"][0]["text"]
    assert core.calls[-1][0] == "/identity/openid/unbind" and core.calls[-1][1]["openid"] == "o_mini"
    assert len(rasa.received) == 1   # the bot never saw it
    with client.websocket_connect("/ws/wx/chat", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json() == {"type": "session", "new": False}
        ws.send_json({"text": "你好"})
        assert ws.receive_json()["messages"][0]["text"] == "收到：你好"
    with client.websocket_connect("/ws/wx/chat", headers={"Authorization": "Bearer nope"}) as ws:
        assert ws.receive_json()["status"] == 401


def test_messages_a_dead_gateway_had_taken_are_answered_by_a_running_one(world, monkeypatch):
    """kill -9 of a gateway leaves its received, unacknowledged entries pending under its consumer
    name; the running worker claims them once they are CLAIM_IDLE_MS old (bench/faults.py found
    them never answered when the claim ran only at start)."""
    from gateway import keys
    from gateway.wechat import inbox

    client, wechat, sim, rasa, _, redis = world
    push(client, message_fields("o_orphan", "公积金能贷多少", msg_id=7001))

    async def a_dead_gateway_reads_it() -> None:
        await wechat.worker.ensure_group()
        await redis.xreadgroup(inbox.GROUP, "gone-4242", {keys.wechat_inbox(): ">"}, count=10)
    client.portal.call(a_dead_gateway_reads_it)
    drain(client, wechat)
    assert sim.sent("o_orphan") == []                      # nothing new for the running worker

    async def claim() -> int:
        taken = await wechat.worker.claim_abandoned()
        await wechat.worker.idle()
        return taken
    assert client.portal.call(claim) == 0                  # not idle long enough yet
    monkeypatch.setattr(inbox, "CLAIM_IDLE_MS", 0)
    assert client.portal.call(claim) == 1
    assert len(sim.sent("o_orphan")) == 1 and len(rasa.received) == 1
    assert client.portal.call(claim) == 0                  # acknowledged: never answered twice
