"""The video handoff from WeChat: a pushed "转人工" becomes a queue text plus a mini-program card that opens
the video page; the relay then tells the citizen what changed (position, staff joining, staff's words, the
end) and nothing when nothing changed; "取消排队", appointment slots as numbered choices, users WeChat
stopped taking messages for; and the mini-program chat API's `page` for the same offer."""
import json
from urllib.parse import parse_qs, urlsplit

import fakeredis
import httpx
import pytest
from fastapi.testclient import TestClient

from gateway import keys
from gateway.app import create_app
from gateway.channels.video import HandoffHook
from gateway.conversation import Conversation
from gateway.handoff import HandoffDesk, TicketState
from gateway.limits import Rate, RateLimiter
from gateway.rasa_client import RasaClient
from gateway.sessions import SessionStore
from gateway.settings import Settings
from gateway.wechat import WeChat
from gateway.wechat.relay import ACCEPTED_TEXT, CANCELLED_TEXT, HandoffRelay
from gateway.wechat.video import BOOK_PREFIX, CARD_FAILED_TEXT, CARD_TITLE, VIDEO_PAGE
from wechat_simulator import AES_KEY, WeChatSimulator, message_fields, push_body

ALWAYS_OPEN = dict(handoff_staff_hours="00:00-24:00", handoff_staff_days=[1, 2, 3, 4, 5, 6, 7],
                   handoff_max_wait_s=10**6)


class HandoffRasa:
    """Answers "转人工" as the bot does (a handoff_start payload), anything else with an echo."""

    def __init__(self):
        self.received = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if "/tracker/events" in request.url.path:
            return httpx.Response(200, json={})
        body = json.loads(request.content)
        self.received.append(body["message"])
        if body["message"] == "转人工":
            return httpx.Response(200, json=[{"recipient_id": body["sender"], "text": "好的，为您转接工作人员。"},
                                             {"recipient_id": body["sender"],
                                              "custom": {"type": "handoff_start", "reason": "request"}}])
        return httpx.Response(200, json=[{"recipient_id": body["sender"], "text": f"收到：{body['message']}"}])


class Audit:
    async def record(self, *args):
        return "core:1"


def make_world(**desk_settings):
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
    sim, rasa = WeChatSimulator(), HandoffRasa()
    settings = Settings(_env_file=None, anju_env="test", redis_url="redis://127.0.0.1:1/0", wechat_aes_key=AES_KEY,
                        **desk_settings)
    app = create_app(settings)
    client = TestClient(app)
    client.__enter__()
    rasa_client = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(rasa.handler))
    conversation = Conversation(rasa_client, settings.chat_max_chars, redis)
    store, limiter = SessionStore(redis, 3600, 900), RateLimiter(redis)
    desk = HandoffDesk(redis, settings, audit=Audit())
    conversation.handoff = HandoffHook(desk, limiter, Rate.parse(settings.rate_priority_ip))
    app.state.conversation, app.state.sessions, app.state.limiter = conversation, store, limiter
    wechat = WeChat(settings, redis, conversation, store, limiter, desk=desk,
                    wechat_transport=httpx.ASGITransport(app=sim.app()))
    # the relay looks without waiting (fakeredis cannot block) and reports every position change
    wechat.worker.relay = HandoffRelay(redis, desk, wechat.worker.send, block_ms=None, queue_update_min_s=0)
    app.state.wechat = wechat
    return client, wechat, desk, sim, rasa, redis


@pytest.fixture
def world():
    client, *rest = make_world(**ALWAYS_OPEN)
    yield (client, *rest)
    client.__exit__(None, None, None)


def push(client, wechat, openid, text, msg_id):
    query, body = push_body(message_fields(openid, text, msg_id=msg_id), "xml", AES_KEY)
    assert client.post("/wechat/callback", params=query, content=body).text == "success"

    async def drain():
        await wechat.worker.ensure_group()
        while await wechat.worker.process_new(None):
            await wechat.worker.idle()
    client.portal.call(drain)


def texts(sim, openid):
    return [m["text"]["content"] for m in sim.sent(openid) if m["msgtype"] == "text"]


def step(client, wechat, ticket_id):
    return client.portal.call(wechat.worker.relay.step, ticket_id)


def test_asking_for_a_person_sends_the_position_and_a_card_that_opens_the_video_page(world):
    client, wechat, desk, sim, _, _ = world
    client.portal.call(desk.enqueue, "web-ahead", False, "request")   # someone is waiting already
    push(client, wechat, "o_video", "转人工", 1)
    first = texts(sim, "o_video")[0]
    assert "好的，为您转接工作人员" in first and "前面还有 1 位" in first and "取消排队" in first
    cards = [m for m in sim.sent("o_video") if m["msgtype"] == "miniprogrampage"]
    assert len(cards) == 1 and cards[0]["miniprogrampage"]["title"] == CARD_TITLE
    page = urlsplit(cards[0]["miniprogrampage"]["pagepath"])
    ticket = client.portal.call(desk.get, parse_qs(page.query)["ticket"][0])
    assert page.path == VIDEO_PAGE and parse_qs(page.query)["key"] == [ticket.key]
    assert ticket.state == TicketState.WAITING
    # a second citizen's card reuses the uploaded cover
    push(client, wechat, "o_video2", "转人工", 2)
    assert sim.count("/cgi-bin/media/upload") == 1
    assert len([m for m in sim.sent("o_video2") if m["msgtype"] == "miniprogrampage"]) == 1


def test_the_relay_tells_what_changed_and_nothing_else(world):
    client, wechat, desk, sim, rasa, _ = world
    ahead = client.portal.call(desk.enqueue, "web-ahead", False, "request")
    push(client, wechat, "o_wait", "转人工", 1)
    ticket_id = client.portal.call(wechat.worker.relay._r.smembers, keys.wechat_relays()).pop()
    sent = len(sim.sent("o_wait"))
    assert step(client, wechat, ticket_id) and len(sim.sent("o_wait")) == sent   # nothing changed: silence
    client.portal.call(desk.cancel, ahead.id, ahead.key)
    assert step(client, wechat, ticket_id)
    assert texts(sim, "o_wait")[-1] == "视频排队：前面还有 0 位，预计等待约 7 分钟。"   # 420 s a session, no staff online
    assert step(client, wechat, ticket_id) and len(sim.sent("o_wait")) == sent + 1

    client.portal.call(desk.accept, ticket_id, "dev-staff")
    client.portal.call(desk.staff_message, ticket_id, "dev-staff", "您好，我是小王")
    assert step(client, wechat, ticket_id)
    assert texts(sim, "o_wait")[-1] == ACCEPTED_TEXT + "\n\n工作人员：您好，我是小王"   # one message for both
    push(client, wechat, "o_wait", "我想提取公积金", 2)   # goes to staff, not to the bot
    assert "我想提取公积金" not in rasa.received and len(sim.sent("o_wait")) == sent + 2
    assert step(client, wechat, ticket_id) and len(sim.sent("o_wait")) == sent + 2   # their own words are not echoed

    client.portal.call(lambda: desk.end(ticket_id, "dev-staff", note="内部备注", summary="已办理租房提取"))
    assert not step(client, wechat, ticket_id)
    assert "小结：已办理租房提取" in texts(sim, "o_wait")[-1] and "内部备注" not in texts(sim, "o_wait")[-1]
    assert not client.portal.call(wechat.worker.relay._r.exists, keys.wechat_relay(ticket_id))


def test_a_relay_taken_over_by_another_process_repeats_nothing(world):
    client, wechat, desk, sim, _, redis = world
    push(client, wechat, "o_takeover", "转人工", 1)
    ticket_id = client.portal.call(redis.smembers, keys.wechat_relays()).pop()
    client.portal.call(desk.accept, ticket_id, "dev-staff")
    client.portal.call(desk.staff_message, ticket_id, "dev-staff", "请准备好身份证")
    assert step(client, wechat, ticket_id)
    told = len(sim.sent("o_takeover"))
    other = HandoffRelay(redis, desk, wechat.worker.send, block_ms=None, queue_update_min_s=0)
    assert client.portal.call(other.step, ticket_id) and len(sim.sent("o_takeover")) == told
    client.portal.call(desk.staff_message, ticket_id, "dev-staff", "好的")
    assert client.portal.call(other.step, ticket_id)
    assert texts(sim, "o_takeover")[-1] == "工作人员：好的" and len(sim.sent("o_takeover")) == told + 1


def test_cancel_queue_by_reply(world):
    client, wechat, desk, sim, rasa, redis = world
    push(client, wechat, "o_cancel", "转人工", 1)
    ticket_id = client.portal.call(redis.smembers, keys.wechat_relays()).pop()
    push(client, wechat, "o_cancel", "取消排队", 2)
    assert "取消排队" not in rasa.received
    assert client.portal.call(desk.get, ticket_id).state == TicketState.CANCELLED
    assert not step(client, wechat, ticket_id)
    assert texts(sim, "o_cancel")[-1] == CANCELLED_TEXT
    push(client, wechat, "o_cancel", "取消排队", 3)   # nothing to cancel now: the bot answers
    assert rasa.received[-1] == "取消排队"


def test_a_user_wechat_stopped_taking_messages_for_gets_no_relayed_updates(world):
    client, wechat, desk, sim, _, redis = world
    ahead = client.portal.call(desk.enqueue, "web-ahead", False, "request")
    push(client, wechat, "o_capped", "转人工", 1)
    ticket_id = client.portal.call(redis.smembers, keys.wechat_relays()).pop()
    sim.unreachable["o_capped"] = 45047
    client.portal.call(desk.cancel, ahead.id, ahead.key)
    assert step(client, wechat, ticket_id)
    attempts = len([c for c in sim.calls if c.path.endswith("/send") and c.body["touser"] == "o_capped"])
    client.portal.call(desk.accept, ticket_id, "dev-staff")
    assert step(client, wechat, ticket_id)   # muted: not even tried
    assert len([c for c in sim.calls if c.path.endswith("/send") and c.body["touser"] == "o_capped"]) == attempts
    assert client.portal.call(redis.keys, "anju:wechat:muted:*")


def test_appointment_slots_are_numbered_choices_and_a_number_books_one():
    client, wechat, desk, sim, rasa, _ = make_world(handoff_max_wait_s=0)   # open or not, the wait is too long
    try:
        push(client, wechat, "o_book", "转人工", 1)
        offer = texts(sim, "o_book")[-1]
        assert "请选择方便的时间" in offer and "1. " in offer and "回复数字" in offer
        assert not [m for m in sim.sent("o_book") if m["msgtype"] == "miniprogrampage"]
        push(client, wechat, "o_book", "1", 2)
        assert texts(sim, "o_book")[-1].startswith("已为您预约") and "1" not in rasa.received
        push(client, wechat, "o_book", BOOK_PREFIX + "2030-01-01T09:00:00+08:00", 3)   # typed, not chosen
        assert rasa.received[-1] == BOOK_PREFIX + "2030-01-01T09:00:00+08:00"
    finally:
        client.__exit__(None, None, None)


def test_the_mini_program_gets_the_video_page_and_the_page_is_served(world):
    client, _, desk, sim, _, _ = world
    token = client.post("/api/wx/login", json={"code": sim.login_code("o_mp")}).json()["token"]
    reply = client.post("/api/wx/chat", json={"text": "转人工"}, headers={"Authorization": f"Bearer {token}"}).json()
    queued = [m["custom"] for m in reply["messages"] if (m.get("custom") or {}).get("type") == "handoff_queued"]
    assert len(queued) == 1
    page = urlsplit(queued[0]["page"])
    assert page.path == "/" + VIDEO_PAGE
    assert parse_qs(page.query) == {"ticket": [queued[0]["ticket_id"]], "key": [queued[0]["key"]]}
    html = client.get("/wx/video")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert '<script src="/wx/video.js">' in html.text and '/static/handoff.js' in html.text
    script = client.get("/wx/video.js")
    assert script.status_code == 200 and "anju.handoff" in script.text
    assert "/wx/video" in client.app.openapi()["paths"]


def test_a_card_wechat_refuses_becomes_a_text_that_says_where_to_go(world, tmp_path, monkeypatch):
    client, wechat, _, sim, _, _ = world
    not_an_image = tmp_path / "cover.png"
    not_an_image.write_bytes(b"not an image")
    monkeypatch.setattr("gateway.wechat.inbox.CARD_THUMB", not_an_image)
    push(client, wechat, "o_nocard", "转人工", 1)
    assert sim.count("/cgi-bin/media/upload") == 1 and not sim.media
    assert [m["msgtype"] for m in sim.sent("o_nocard")] == ["text", "text"]
    assert texts(sim, "o_nocard")[-1] == CARD_FAILED_TEXT
