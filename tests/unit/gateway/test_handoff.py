"""Handoff desk on fakeredis: queue order, places kept and lost, routing in the switch, tokens, appointments;
recording consent, the citizen's summary, staff who never join, restarts and recording retention."""
import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import keys
from gateway.audit_client import AuditUnavailable
from gateway.channels import video
from gateway.channels.staff import EndSession
from gateway.handoff import AppointmentBook, DeskClock, HandoffDesk, HandoffError, NodeDirectory, NodeVideoService, \
    TicketState, VideoService
from gateway.handoff.desk import CONSENT_TEXT, SERVICE_RESTARTED, STAFF_NEVER_JOINED
from gateway.handoff.retention import RecordingRetention
from gateway.settings import Settings
from video.rooms import RoomRegistry

TZ = ZoneInfo("Asia/Shanghai")
WEDNESDAY_10 = dt.datetime(2025, 3, 12, 10, 0, tzinfo=TZ).timestamp()
SATURDAY_10 = dt.datetime(2025, 3, 15, 10, 0, tzinfo=TZ).timestamp()


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class FakeAudit:
    """The core's audit chain as a list; `fail` makes it refuse like a core and redis both away."""

    def __init__(self, fail=False):
        self.records = []
        self.fail = fail

    async def record(self, actor, action, subject, outcome):
        if self.fail:
            raise AuditUnavailable("neither the core nor redis took the audit record")
        self.records.append((actor, action, subject, outcome))
        return f"core:{len(self.records)}"


def make_desk(redis, at=WEDNESDAY_10, audit=None, **overrides):
    clock = Clock(at)
    return HandoffDesk(redis, Settings(_env_file=None, **overrides), clock, audit=audit or FakeAudit()), clock


async def test_elderly_and_disabled_are_served_before_earlier_ordinary_citizens(redis):
    desk, clock = make_desk(redis)
    first = await desk.enqueue("web-a", priority=False, reason="request")
    clock.t += 5
    second = await desk.enqueue("web-b", priority=False, reason="request")
    clock.t += 5
    elder = await desk.enqueue("web-c", priority=True, reason="elderly")
    order = [t.id for t in await desk.waiting()]
    assert order == [elder.id, first.id, second.id]
    assert await desk.position(second.id) == 3


async def test_asking_twice_keeps_one_place(redis):
    desk, _ = make_desk(redis)
    a = await desk.enqueue("web-a", priority=False, reason="request")
    again = await desk.enqueue("web-a", priority=True, reason="button")
    assert again.id == a.id
    assert len(await desk.waiting()) == 1


async def test_estimated_wait_shrinks_with_more_staff_online(redis):
    desk, _ = make_desk(redis, handoff_avg_session_s=300)
    assert await desk.eta_s(2) == 600
    await desk.heartbeat("dev-staff")
    await desk.heartbeat("dev-supervisor")
    assert await desk.eta_s(2) == 300


async def test_a_citizen_who_left_keeps_the_place_for_the_grace_period_only(redis):
    desk, clock = make_desk(redis, handoff_grace_s=1)
    gone = await desk.enqueue("web-a", priority=False, reason="request")
    clock.t += 1
    stays = await desk.enqueue("web-b", priority=False, reason="request")
    await asyncio.sleep(0.6)
    await desk.touch(stays.id)
    assert [t.id for t in await desk.waiting()] == [gone.id, stays.id]
    await asyncio.sleep(0.6)
    assert [t.id for t in await desk.waiting()] == [stays.id]
    assert (await desk.get(gone.id)).state == TicketState.CANCELLED


async def test_cancel_needs_the_citizens_key(redis):
    desk, _ = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    with pytest.raises(HandoffError):
        await desk.cancel(t.id, "not-the-key")
    await desk.cancel(t.id, t.key)
    assert await desk.waiting() == []
    assert await desk.open_ticket("web-a") is None


async def test_only_one_staff_member_gets_a_ticket(redis):
    desk, _ = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    results = await asyncio.gather(desk.accept(t.id, "s1"), desk.accept(t.id, "s2"), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and winners[0].state == TicketState.ACTIVE and winners[0].room_id
    assert sum(isinstance(r, HandoffError) for r in results) == 1


async def test_messages_go_to_staff_exactly_while_the_session_is_active(redis):
    desk, _ = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    assert not await desk.route_citizen_message("web-a", "排队时还能问机器人")
    await desk.accept(t.id, "s1")
    assert await desk.route_citizen_message("web-a", "我的提取申请卡住了")
    await desk.staff_message(t.id, "s1", "我来帮您看看")
    await desk.end(t.id, "s1", summary="已指导完成租房提取")
    assert not await desk.route_citizen_message("web-a", "谢谢")
    texts = [(m["from"], m["text"]) for m in await desk.messages(t.id)]
    assert texts[:2] == [("citizen", "我的提取申请卡住了"), ("staff", "我来帮您看看")]
    assert texts[2][0] == "system" and "已指导完成租房提取" in texts[2][1]
    assert len(texts) == 3


async def test_a_message_racing_the_end_is_delivered_exactly_once(redis):
    desk, _ = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    await desk.accept(t.id, "s1")
    routed, _ = await asyncio.gather(desk.route_citizen_message("web-a", "最后一句"), desk.end(t.id, "s1", ""))
    in_stream = [m for m in await desk.messages(t.id) if m["text"] == "最后一句"]
    assert len(in_stream) == (1 if routed else 0)


async def test_staff_drop_puts_the_citizen_at_the_front_of_their_class(redis):
    desk, clock = make_desk(redis)
    elder = await desk.enqueue("web-e", priority=True, reason="elderly")
    clock.t += 1
    a = await desk.enqueue("web-a", priority=False, reason="request")
    await desk.accept(a.id, "s1")
    clock.t += 1
    b = await desk.enqueue("web-b", priority=False, reason="request")
    await desk.requeue_front(a.id)
    assert [t.id for t in await desk.waiting()] == [elder.id, a.id, b.id]
    assert (await desk.get(a.id)).state == TicketState.WAITING


async def test_room_tokens_work_once(redis):
    desk, _ = make_desk(redis)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    token = await desk.issue_room_token(t, "citizen")
    assert (await desk.redeem_room_token(token)) == {"room_id": t.room_id, "ticket_id": t.id, "role": "citizen"}
    assert await desk.redeem_room_token(token) is None
    assert await desk.redeem_room_token("made-up") is None


async def test_room_tokens_expire(redis):
    desk, _ = make_desk(redis, video_room_token_ttl_s=1)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    token = await desk.issue_room_token(t, "staff")
    await asyncio.sleep(1.2)
    assert await desk.redeem_room_token(token) is None


async def test_outside_staff_hours_the_citizen_books_a_slot_instead(redis):
    desk, _ = make_desk(redis, at=SATURDAY_10, handoff_slot_capacity=1)
    assert await desk.appointments.should_book()
    slots = await desk.appointments.free_slots()
    assert slots[0]["slot"].startswith("2025-03-17T09:00") and "周一" in slots[0]["label"]
    label = await desk.appointments.book("web-a", slots[0]["slot"])
    assert "09:00" in label
    with pytest.raises(HandoffError):
        await desk.appointments.book("web-b", slots[0]["slot"])
    with pytest.raises(HandoffError):
        await desk.appointments.book("web-b", "2025-03-16T03:00:00+08:00")
    assert (await desk.appointments.free_slots())[0]["slot"] != slots[0]["slot"]


async def test_a_long_wait_also_leads_to_booking(redis):
    desk, _ = make_desk(redis, handoff_avg_session_s=600, handoff_max_wait_s=1500)
    assert not await desk.appointments.should_book()
    await desk.enqueue("web-a", priority=False, reason="request")
    await desk.enqueue("web-b", priority=False, reason="request")
    assert await desk.appointments.should_book()


async def test_the_appointment_book_needs_only_the_wait_of_a_newcomer(redis):
    settings = Settings(_env_file=None, handoff_max_wait_s=1500)
    wait = {"s": 1500}

    async def joining_eta_s():
        return wait["s"]
    book = AppointmentBook(redis, settings, DeskClock(settings.handoff_timezone, Clock(WEDNESDAY_10)), joining_eta_s)
    assert book.is_open() and not await book.should_book()
    wait["s"] = 1501
    assert await book.should_book()


async def test_todays_figures(redis):
    desk, clock = make_desk(redis)
    for sender in ("web-a", "web-b", "web-c", "web-d"):
        await desk.figures.record_turn(sender, "你好", unanswered=False)
    await desk.figures.record_turn("web-a", "我的身份证340104199001011234怎么办", unanswered=True)
    await desk.figures.record_turn("web-b", "我的身份证340104199001011234怎么办", unanswered=True)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    clock.t += 90
    await desk.accept(t.id, "s1")
    figures = await desk.figures.today()
    assert figures["chats"] == 4 and figures["handoffs"] == 1
    assert figures["average_wait_s"] == 90.0 and figures["containment_rate"] == 0.75
    assert figures["top_unanswered"] == [{"text": "我的身份证340***********1234怎么办", "count": 2}]


async def test_a_weeks_figures_add_the_days_up_and_merge_the_top_questions(redis):
    desk, clock = make_desk(redis)
    day = 24 * 3600
    clock.t -= 8 * day  # outside a 7-day period
    await desk.figures.record_turn("web-old", "早就问过的问题", unanswered=True)
    clock.t += 2 * day  # 6 days ago: inside
    await desk.figures.record_turn("web-a", "公积金能买车吗", unanswered=True)
    await desk.figures.record_turn("web-a", "公积金", unanswered=False, clarified=True)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    clock.t += 60
    await desk.accept(t.id, "s1")
    clock.t += 6 * day - 60  # today
    for sender in ("web-a", "web-b", "web-c", "web-d"):
        await desk.figures.record_turn(sender, "你好", unanswered=False)
    await desk.figures.record_turn("web-b", "公积金能买车吗", unanswered=True)
    t = await desk.enqueue("web-b", priority=False, reason="request")
    clock.t += 120
    await desk.accept(t.id, "s1")
    week = await desk.figures.period(7)
    assert week["days"] == 7 and len(week["per_day"]) == 7
    assert week["chats"] == 4 and week["handoffs"] == 2 and week["turns"] == 7
    assert week["containment_rate"] == 0.5 and week["handoff_rate"] == 0.5 and week["average_wait_s"] == 90.0
    assert week["top_unanswered"] == [{"text": "公积金能买车吗", "count": 2}]
    assert week["top_clarified"] == [{"text": "公积金", "count": 1}] and week["clarified"] == 1
    assert (await desk.figures.period(9))["top_unanswered"][-1]["text"] == "早就问过的问题"
    assert (await desk.figures.period(1000))["days"] == 31


async def test_the_citizens_socket_wakes_as_soon_as_staff_accept(redis):
    desk, _ = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    _, seen = await desk.updates(t.id, "0", "0", block_ms=10)
    waiting = asyncio.ensure_future(desk.updates(t.id, "0", seen, block_ms=5000))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await desk.accept(t.id, "s1")
    messages, _ = await asyncio.wait_for(waiting, timeout=1)
    assert messages == []


async def test_a_socket_woken_by_the_end_finds_the_summary_already_there(redis):
    desk, _ = make_desk(redis)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    _, seen = await desk.updates(t.id, "0", "0", block_ms=10)
    last = (await desk.messages(t.id) or [{"id": "0"}])[-1]["id"]

    async def socket():  # what the citizen's socket does when it wakes: read the messages, then close
        await desk.updates(t.id, last, seen, block_ms=5000)
        return await desk.messages(t.id, last)
    woken = asyncio.ensure_future(socket())
    await asyncio.sleep(0.05)
    await desk.end(t.id, "s1", summary="已办结")
    assert any("已办结" in m["text"] for m in await asyncio.wait_for(woken, timeout=1))


# --- recording consent ---
async def test_consent_is_kept_on_the_ticket_with_its_time_and_the_first_answer_stands(redis):
    audit = FakeAudit()
    desk, clock = make_desk(redis, audit=audit)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    assert await desk.record_consent(t.id, True) is None  # nobody asked yet: staff have not accepted
    await desk.accept(t.id, "s1")
    clock.t += 7
    assert await desk.record_consent(t.id, False) is False
    assert await desk.record_consent(t.id, True) is False
    ticket = await desk.get(t.id)
    assert ticket.consent is False and ticket.consent_ms == int(clock.t * 1000)
    assert audit.records == [("citizen", "video.consent", t.id, "declined")]
    notices = [m for m in await desk.messages(t.id) if m.get("event") == "consent"]
    assert [(m["to"], m["text"]) for m in notices] == [("staff", "市民未同意录像：请用文字交流")]


async def test_a_citizens_room_token_opens_no_media_before_consent(redis):
    desk, _ = make_desk(redis)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    service = VideoService(desk, RoomRegistry([], None), 20)
    with pytest.raises(HTTPException) as refused:
        await service.answer(await desk.issue_room_token(t, "citizen"), "v=0\r\n", "offer")
    assert refused.value.status_code == 403 and len(service.rooms) == 0  # no room, no recording
    await desk.record_consent(t.id, True)
    with pytest.raises(HTTPException) as bad_sdp:  # past the consent check: now the offer itself is judged
        await service.answer(await desk.issue_room_token(t, "citizen"), "v=0\r\n", "offer")
    assert bad_sdp.value.status_code == 400
    await service.aclose()


def socket_client():
    """Only the handoff socket, its desk on fakeredis, all in the test client's event loop."""
    settings = Settings(_env_file=None)

    @asynccontextmanager
    async def lifespan(app):
        redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        app.state.video = VideoService(HandoffDesk(redis, settings, audit=FakeAudit()), RoomRegistry([], None), 20)
        yield
        await app.state.video.aclose()
        await redis.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    app.include_router(video.router)
    return TestClient(app)


def frames_until(ws, done):
    frames = []
    while not frames or not done(frames[-1]):
        frames.append(ws.receive_json())
    return frames


def test_the_call_token_comes_only_after_the_citizen_agrees_and_a_reconnect_does_not_ask_again():
    with socket_client() as client:
        desk = client.app.state.video.desk
        t = client.portal.call(desk.enqueue, "web-a", False, "request")
        with client.websocket_connect(f"/ws/handoff/{t.id}") as ws:
            ws.send_json({"key": t.key})
            assert ws.receive_json()["type"] == "queue"
            client.portal.call(desk.accept, t.id, "s1")
            asked = frames_until(ws, lambda f: f["type"] == "active")
            assert [f["type"] for f in asked] == ["consent_required", "active"]
            assert asked[0]["text"] == CONSENT_TEXT and asked[1]["consent"] is None
            ws.send_json({"type": "rejoin"})  # no way round the question
            ws.send_json({"type": "consent", "agree": True})
            agreed = frames_until(ws, lambda f: f["type"] == "active")
            assert [f["type"] for f in agreed] == ["call", "active"] and agreed[1]["consent"] is True
            assert client.portal.call(desk.redeem_room_token, agreed[0]["room_token"])["role"] == "citizen"
        with client.websocket_connect(f"/ws/handoff/{t.id}") as ws:
            ws.send_json({"key": t.key})
            again = frames_until(ws, lambda f: f["type"] == "active")
            assert [f["type"] for f in again] == ["call", "active"]  # straight to the call
            assert client.portal.call(desk.get, t.id).consent is True


def test_a_citizen_who_declines_gets_no_call_and_staff_are_told_to_chat_in_text():
    with socket_client() as client:
        desk = client.app.state.video.desk
        t = client.portal.call(desk.enqueue, "web-a", False, "request")
        client.portal.call(desk.accept, t.id, "s1")
        with client.websocket_connect(f"/ws/handoff/{t.id}") as ws:
            ws.send_json({"key": t.key})
            assert [f["type"] for f in frames_until(ws, lambda f: f["type"] == "active")] == ["consent_required", "active"]
            ws.send_json({"type": "consent", "agree": False})
            declined = frames_until(ws, lambda f: f["type"] == "active")
            assert [f["type"] for f in declined] == ["active"] and declined[0]["consent"] is False
            ws.send_json({"type": "rejoin"})
            client.portal.call(desk.staff_message, t.id, "s1", "您好，我们文字交流")
            chat = frames_until(ws, lambda f: f["type"] == "message")
            assert [f["type"] for f in chat] == ["message"] and chat[0]["text"] == "您好，我们文字交流"
        staff_sees = [m["text"] for m in client.portal.call(desk.messages, t.id)]
        assert staff_sees == ["市民未同意录像：请用文字交流", "您好，我们文字交流"]


# --- internal note and the citizen's summary ---
async def test_the_citizen_reads_the_masked_summary_and_never_the_internal_note(redis):
    desk, _ = make_desk(redis)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    await desk.end(t.id, "s1", note="市民情绪激动，需回访", summary="已指导提交租房提取，身份证340104199001011234")
    ended = await desk.get(t.id)
    assert ended.note == "市民情绪激动，需回访" and ended.summary.endswith("1234")
    to_citizen = [m["text"] for m in await desk.messages(t.id) if m["from"] == "system"]
    assert len(to_citizen) == 1 and "340***********1234" in to_citizen[0] and "已指导提交租房提取" in to_citizen[0]
    assert "情绪" not in to_citizen[0] and "340104199001011234" not in to_citizen[0]


async def test_an_end_without_a_summary_tells_the_citizen_only_that_the_service_ended(redis):
    desk, _ = make_desk(redis)
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    await desk.end(t.id, "s1", note="内部备注")
    assert [m["text"] for m in await desk.messages(t.id)] == ["人工视频服务已结束。如还有问题，可以继续向智能助手提问。"]


def test_the_end_route_takes_a_note_of_1000_and_a_summary_of_500_characters():
    assert EndSession().note == EndSession().summary == ""
    EndSession(note="备" * 1000, summary="结" * 500)
    with pytest.raises(ValidationError):
        EndSession(summary="结" * 501)
    with pytest.raises(ValidationError):
        EndSession(note="备" * 1001)


# --- staff who accept and never join ---
async def test_staff_who_never_join_lose_the_ticket_to_the_front_of_the_queue(redis):
    desk, clock = make_desk(redis)
    assert Settings(_env_file=None).handoff_staff_join_timeout_s == 60
    early = await desk.enqueue("web-a", priority=False, reason="request")
    joined = await desk.enqueue("web-b", priority=False, reason="request")
    await desk.accept(early.id, "s1")
    await desk.accept(joined.id, "s2")
    await desk.mark_joined(joined.id, "staff")
    clock.t += 1
    later = await desk.enqueue("web-c", priority=False, reason="request")
    service = VideoService(desk, RoomRegistry([], None), 20)
    clock.t += 58
    assert await service.requeue_unjoined(60) == []  # still within the minute
    clock.t += 2
    assert await service.requeue_unjoined(60) == [early.id]
    assert [t.id for t in await desk.waiting()] == [early.id, later.id]
    assert (await desk.messages(early.id))[-1]["text"] == STAFF_NEVER_JOINED
    assert (await desk.get(joined.id)).state == TicketState.ACTIVE
    assert await service.requeue_unjoined(60) == []  # once is enough


async def test_a_re_accept_restarts_the_join_clock(redis):
    desk, clock = make_desk(redis)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    await desk.accept(t.id, "s1")
    await desk.mark_joined(t.id, "staff")
    await desk.requeue_front(t.id)
    clock.t += 1
    await desk.accept(t.id, "s2")  # the join from the earlier accept does not count for this one
    clock.t += 61
    assert await VideoService(desk, RoomRegistry([], None), 20).requeue_unjoined(60) == [t.id]


async def calls_on_live_and_dead_nodes(desk, redis) -> dict:
    """Three accepted calls: one never placed on a node, one on node "live", one on node "dead"."""
    tickets = {}
    for name in ("unplaced", "on_live", "on_dead"):
        t = await desk.enqueue(f"web-{name}", priority=False, reason="request")
        tickets[name] = await desk.accept(t.id, "s1")
    await redis.set(keys.video_room_node(tickets["on_live"].room_id), "live")
    await redis.set(keys.video_room_node(tickets["on_dead"].room_id), "dead")
    return tickets


async def test_a_media_node_sweeps_only_its_own_rooms_and_the_gateway_the_rest(redis):
    desk, clock = make_desk(redis)
    nodes = NodeDirectory(redis, clock)
    await nodes.heartbeat("live", "http://127.0.0.1:1", rooms=0)
    tickets = await calls_on_live_and_dead_nodes(desk, redis)
    clock.t += 61
    await nodes.heartbeat("live", "http://127.0.0.1:1", rooms=1)
    node = VideoService(desk, RoomRegistry([], None), 20, all_rooms_here=False)
    assert await node.requeue_unjoined(60) == []  # hosts none of these rooms
    gateway = NodeVideoService(desk, nodes, "token", 1.0)
    requeued = await gateway.requeue_unjoined(60)
    assert sorted(requeued) == sorted([tickets["unplaced"].id, tickets["on_dead"].id])
    assert (await desk.get(tickets["on_live"].id)).state == TicketState.ACTIVE  # that node's to judge
    await gateway.aclose()


async def test_the_join_sweep_outlives_a_redis_outage(redis, caplog):
    desk, _ = make_desk(redis)
    service = VideoService(desk, RoomRegistry([], None), 20)
    rounds = []

    async def flaky(timeout_s):
        rounds.append(timeout_s)
        if len(rounds) == 1:
            raise RedisConnectionError("redis went away")
        return []
    service.requeue_unjoined = flaky
    watcher = asyncio.ensure_future(service.watch_staff_joins(4))
    try:
        await asyncio.wait_for(_until(lambda: len(rounds) >= 2), timeout=3)
    finally:
        watcher.cancel()
    assert "handoff.join_watch.failed" in caplog.text


async def _until(check):
    while not check():
        await asyncio.sleep(0.02)


# --- calls a restart lost ---
async def test_at_start_lost_calls_are_requeued_or_ended_if_the_citizen_left(redis):
    desk, clock = make_desk(redis)
    later = await desk.enqueue("web-z", priority=False, reason="request")
    here = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    gone = await desk.accept((await desk.enqueue("web-b", priority=False, reason="request")).id, "s2")
    await redis.delete(keys.handoff_presence(gone.id))
    clock.t += 1
    started_ms = desk.clock.ms()
    after_start = await desk.accept(later.id, "s3")  # accepted by the new process: not the restart's loss
    service = VideoService(desk, RoomRegistry([], None), 20)
    assert await service.reconcile_at_start(started_ms) == {"requeued": 1, "ended": 1}
    assert [t.id for t in await desk.waiting()] == [here.id]
    assert (await desk.messages(here.id))[-1]["text"] == SERVICE_RESTARTED
    assert (await desk.get(gone.id)).state == TicketState.ENDED and await desk.open_ticket("web-b") is None
    assert (await desk.get(after_start.id)).state == TicketState.ACTIVE


async def test_with_media_nodes_only_calls_on_a_dead_node_are_put_back(redis):
    desk, clock = make_desk(redis)
    nodes = NodeDirectory(redis, clock)
    tickets = await calls_on_live_and_dead_nodes(desk, redis)
    await nodes.heartbeat("live", "http://127.0.0.1:1", rooms=1)
    gateway = NodeVideoService(desk, nodes, "token", 1.0)
    clock.t += 1
    assert await gateway.reconcile_at_start(desk.clock.ms()) == {"requeued": 1, "ended": 0}
    assert [t.id for t in await desk.waiting()] == [tickets["on_dead"].id]
    await gateway.aclose()


# --- recording retention ---
DAY = 86400


def recordings(tmp_path, now):
    ages = {"old.webm": 181, "new.webm": 179, "old.txt": 400}
    for name, days in ages.items():
        path = tmp_path / name
        path.write_bytes(b"webm")
        os.utime(path, (now - days * DAY, now - days * DAY))


async def test_retention_deletes_only_old_recordings_and_audits_each_deletion(redis, tmp_path):
    now = WEDNESDAY_10
    recordings(tmp_path, now)
    audit = FakeAudit()
    retention = RecordingRetention(redis, audit, tmp_path, 180, clock=lambda: now)
    assert await retention.sweep(dry_run=True) == ["old.webm"] and audit.records == []
    assert (tmp_path / "old.webm").exists()
    assert await retention.sweep() == ["old.webm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.webm", "old.txt"]
    assert audit.records == [("system", "video.recording.deleted", "old.webm", "retention=180d")]
    # a second process sharing the directory (the gateway and a media node) finds nothing left to do
    assert await RecordingRetention(redis, audit, tmp_path, 180, clock=lambda: now).sweep() == []
    assert len(audit.records) == 1


async def test_a_recording_whose_deletion_cannot_be_audited_is_kept_for_the_next_run(redis, tmp_path):
    now = WEDNESDAY_10
    recordings(tmp_path, now)
    assert await RecordingRetention(redis, FakeAudit(fail=True), tmp_path, 180, clock=lambda: now).sweep() == []
    assert (tmp_path / "old.webm").exists()
    audit = FakeAudit()
    assert await RecordingRetention(redis, audit, tmp_path, 180, clock=lambda: now).sweep() == ["old.webm"]
    assert len(audit.records) == 1


def test_retention_dry_run_by_hand_lists_and_keeps_the_files(tmp_path):
    recordings(tmp_path, time.time())
    env = dict(os.environ, ANJU_ENV="test", VIDEO_RECORDINGS_DIR=str(tmp_path), VIDEO_RECORDING_RETENTION_DAYS="180",
               REDIS_URL="redis://127.0.0.1:1/0", PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    run = subprocess.run([sys.executable, "-m", "gateway.handoff.retention", "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "would_delete file=old.webm" in run.stderr and "new.webm" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.webm", "old.txt", "old.webm"]


def test_staff_hours_read_as_words():
    from video.schedule import describe_hours
    assert describe_hours("09:00-17:00", [1, 2, 3, 4, 5]) == "周一至周五 9:00–17:00"
    assert describe_hours("08:30-20:00", [1, 2, 3, 4, 5, 6, 7]) == "每天 8:30–20:00"
    assert describe_hours("09:00-12:00", [6, 2]) == "周二、周六 9:00–12:00"
    assert describe_hours("00:00-24:00", [1, 2, 3, 4, 5, 6, 7]) == "每天 0:00–24:00"


def test_a_whole_day_desk_is_open_at_every_minute_including_the_last():
    import datetime as dt

    from video.schedule import is_open
    days = [1, 2, 3, 4, 5, 6, 7]
    assert is_open(dt.datetime(2026, 12, 6, 23, 59, 30), "00:00-24:00", days)
    assert is_open(dt.datetime(2026, 12, 6, 0, 0), "00:00-24:00", days)
    assert not is_open(dt.datetime(2026, 12, 6, 23, 59, 30), "00:00-23:59", days)


async def test_the_bot_states_the_configured_staff_hours_not_the_ones_in_its_domain(redis):
    import yaml
    domain = yaml.safe_load((Path(__file__).resolve().parents[3] / "bot/domain/handoff.yml").read_text(encoding="utf-8"))
    said = domain["responses"]["utter_request_human"][0]["text"]
    assert video.DOMAIN_STAFF_HOURS in said  # the phrase the gateway replaces is the one the domain says
    desk, _ = make_desk(redis, handoff_staff_hours="08:30-20:00", handoff_staff_days=[1, 2, 3, 4, 5, 6])
    hook = video.HandoffHook(desk, None, None)
    out = await hook.after_bot_reply("web-a", "转人工", {}, [video.BotMessage(text=said)])
    assert "周一至周六 8:30–20:00" in out[0].text and "9:00–17:00" not in out[0].text


async def test_the_citizen_can_hang_up_a_call_and_staff_are_told(redis):
    desk, _ = make_desk(redis)
    waiting = await desk.enqueue("web-b", priority=False, reason="request")
    assert await desk.hang_up(waiting.id, waiting.key) is None
    assert (await desk.get(waiting.id)).state == TicketState.CANCELLED
    t = await desk.accept((await desk.enqueue("web-a", priority=False, reason="request")).id, "s1")
    with pytest.raises(HandoffError):
        await desk.hang_up(t.id, "wrong-key")
    ended = await desk.hang_up(t.id, t.key)
    assert ended.state == TicketState.ENDED
    assert [m["text"] for m in await desk.messages(t.id)] == ["市民已挂断，本次视频服务结束。"]
    assert not await desk.route_citizen_message("web-a", "还在吗")  # the bot answers again
