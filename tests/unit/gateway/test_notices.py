"""Delivery of application notices: by channel, in order, with the cursor in redis moved only past
what was delivered or parked, retries with back-off, one deliverer at a time; and the web chat's
GET /api/notices. Fake core and Rasa (httpx handlers), fakeredis."""
import json

import httpx
import pytest

from gateway.notices import CURSOR_KEY, LEASE_KEY, MAX_ATTEMPTS, PARKED_KEY, NoticeDelivery, web_notices_key
from gateway.sessions import SessionStore
from gateway.wechat.api import UserUnreachable, WeChatUnavailable
from gateway_app import gateway_client


def notice(i, ref, status="rejected", openid=None):
    return {"id": i, "application": f"TQ2026112300000{i}", "channel_ref": ref, "status": status,
            "text": f"您的租房提取申请 TQ2026112300000{i} 未通过，原因：材料不全。", "created_at": "2026-11-23T02:00:00",
            "openid": openid}


class World:
    def __init__(self, notices):
        self.notices, self.tracker, self.sent, self.clock = notices, [], [], 1000.0
        self.rasa_up, self.wechat = True, None

    def core(self, request):
        assert request.headers["authorization"] == "Bearer core-token"
        after = int(request.url.params["after"])
        return httpx.Response(200, json={"notifications": [n for n in self.notices if n["id"] > after]})

    def rasa(self, request):
        if not self.rasa_up:
            return httpx.Response(503)
        self.tracker.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={})

    async def send(self, openid, text):
        if self.wechat:
            raise self.wechat
        self.sent.append((openid, text))


def delivery(redis, world):
    return NoticeDelivery(redis, "http://core.test", "core-token", "http://rasa.test", "rasa-token", 2.0, 5.0, 3600,
                          send_wechat=world.send, core_transport=httpx.MockTransport(world.core),
                          rasa_transport=httpx.MockTransport(world.rasa), clock=lambda: world.clock)


async def test_each_channel_gets_its_notice_and_the_cursor_follows(redis):
    world = World([notice(1, "web-aa11"), notice(2, "wxmsg-bb22", openid="o_wx_1"), notice(3, "voice-cc33")])
    assert await delivery(redis, world).poll_once() == 3
    assert await redis.get(CURSOR_KEY) == "3"
    path, [event] = world.tracker[0]
    assert path == "/conversations/web-aa11/tracker/events" and event["event"] == "bot"
    assert event["text"] == notice(1, "")["text"]
    assert [json.loads(i)["text"] for i in await redis.lrange(web_notices_key("web-aa11"), 0, -1)] == [event["text"]]
    assert world.sent == [("o_wx_1", notice(2, "")["text"])]
    assert len(world.tracker) == 1                                   # the hotline caller has the core's SMS


async def test_a_failure_is_retried_later_and_nothing_after_it_is_skipped(redis):
    world = World([notice(1, "web-aa11"), notice(2, "web-dd44")])
    world.rasa_up = False
    worker = delivery(redis, world)
    assert await worker.poll_once() == 0 and await redis.get(CURSOR_KEY) is None
    assert await worker.poll_once() == 0                             # backing off: not even asked again
    world.rasa_up, world.clock = True, world.clock + 11
    assert await worker.poll_once() == 2 and await redis.get(CURSOR_KEY) == "2"
    assert len(await redis.lrange(web_notices_key("web-aa11"), 0, -1)) == 1   # listed once, despite the retry

    restarted = delivery(redis, world)                               # a new process goes on from the cursor
    assert await restarted.poll_once() == 0 and len(world.tracker) == 2


async def test_a_notice_that_keeps_failing_is_parked_and_the_next_goes_out(redis):
    world = World([notice(1, "wx-ee55", openid="o_wx_2"), notice(2, "web-aa11")])
    world.wechat = WeChatUnavailable("down")
    worker = delivery(redis, world)
    for _ in range(MAX_ATTEMPTS):
        world.clock += 1000
        await worker.poll_once()
    assert await redis.get(CURSOR_KEY) == "2"
    [parked] = [json.loads(p) for p in await redis.lrange(PARKED_KEY, 0, -1)]
    assert parked["id"] == 1 and parked["channel"] == "wx" and "o_wx_2" not in json.dumps(parked)


@pytest.mark.parametrize("openid, error", [(None, None), ("o_wx_3", UserUnreachable(45015, "reply window"))])
async def test_wechat_citizens_out_of_reach_rely_on_the_sms(redis, openid, error):
    world = World([notice(1, "wxmsg-ff66", openid=openid)])
    world.wechat = error
    assert await delivery(redis, world).poll_once() == 1 and world.sent == []
    assert len(await redis.lrange(PARKED_KEY, 0, -1)) == 1


async def test_only_the_lease_holder_delivers(redis):
    world = World([notice(1, "web-aa11")])
    await redis.set(LEASE_KEY, "another-gateway", ex=15)
    worker = delivery(redis, world)
    assert not await worker.hold_lease()
    await redis.delete(LEASE_KEY)
    assert await worker.hold_lease() and await worker.hold_lease()   # renewing its own
    assert not await delivery(redis, world).hold_lease()


def test_the_web_chat_fetches_its_notices_once(redis):
    with gateway_client(lambda request: httpx.Response(200, json=[]), redis) as client:
        client.app.state.redis = redis
        store: SessionStore = client.app.state.sessions
        token = client.post("/api/session").json()["token"]
        assert client.get("/api/notices").status_code == 401
        mine = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/notices", headers=mine).json() == {"notices": []}
        sender = client.portal.call(store.get, token).sender_id
        client.portal.call(redis.rpush, web_notices_key(sender), json.dumps({"id": 7, "text": "已审批通过"}))
        assert client.get("/api/notices", headers=mine).json()["notices"] == [{"id": 7, "text": "已审批通过"}]
        assert client.get("/api/notices", headers=mine).json()["notices"] == []
