"""Handoff desk on fakeredis: queue order, places kept and lost, routing in the switch, tokens, appointments."""
import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from gateway.handoff import HandoffDesk, HandoffError, TicketState
from gateway.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
WEDNESDAY_10 = dt.datetime(2025, 3, 12, 10, 0, tzinfo=TZ).timestamp()
SATURDAY_10 = dt.datetime(2025, 3, 15, 10, 0, tzinfo=TZ).timestamp()


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def make_desk(redis, at=WEDNESDAY_10, **overrides):
    clock = Clock(at)
    return HandoffDesk(redis, Settings(_env_file=None, **overrides), clock), clock


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
    await desk.end(t.id, "s1", "已指导完成租房提取")
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
    assert await desk.should_book()
    slots = await desk.free_slots()
    assert slots[0]["slot"].startswith("2025-03-17T09:00") and "周一" in slots[0]["label"]
    label = await desk.book("web-a", slots[0]["slot"])
    assert "09:00" in label
    with pytest.raises(HandoffError):
        await desk.book("web-b", slots[0]["slot"])
    with pytest.raises(HandoffError):
        await desk.book("web-b", "2025-03-16T03:00:00+08:00")
    assert (await desk.free_slots())[0]["slot"] != slots[0]["slot"]


async def test_a_long_wait_also_leads_to_booking(redis):
    desk, _ = make_desk(redis, handoff_avg_session_s=600, handoff_max_wait_s=1500)
    assert not await desk.should_book()
    await desk.enqueue("web-a", priority=False, reason="request")
    await desk.enqueue("web-b", priority=False, reason="request")
    assert await desk.should_book()


async def test_todays_figures(redis):
    desk, clock = make_desk(redis)
    for sender in ("web-a", "web-b", "web-c", "web-d"):
        await desk.record_turn(sender, "你好", unanswered=False)
    await desk.record_turn("web-a", "我的身份证340104199001011234怎么办", unanswered=True)
    await desk.record_turn("web-b", "我的身份证340104199001011234怎么办", unanswered=True)
    t = await desk.enqueue("web-a", priority=False, reason="request")
    clock.t += 90
    await desk.accept(t.id, "s1")
    figures = await desk.today()
    assert figures["chats"] == 4 and figures["handoffs"] == 1
    assert figures["average_wait_s"] == 90.0 and figures["containment_rate"] == 0.75
    assert figures["top_unanswered"] == [{"text": "我的身份证340***********1234怎么办", "count": 2}]


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
    await desk.end(t.id, "s1", "已办结")
    assert any("已办结" in m["text"] for m in await asyncio.wait_for(woken, timeout=1))
