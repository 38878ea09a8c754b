"""A hotline caller in the staff queue (issue 18 part 4, step 1): the real Call and the real desk on
fakeredis, the bot's handoff answer from the real HandoffHook, fake TTS. The caller hears a queued
message that fits a phone, hears the position again when it changes (at most once a minute), can
cancel with #, and never leaves a ticket waiting behind a call that ended, however it ended."""
import asyncio
import datetime as dt
import json
from zoneinfo import ZoneInfo

import logging

import fakeredis
import pytest

from gateway.channels import video
from gateway.handoff import HandoffDesk, TicketState
from gateway.settings import Settings
from gateway.voice import transfer as tr
from gateway.voice.audio import AudioFormat
from gateway.voice.call import Call, CallLimits, CallServices
from voice_fakes import FakeTTS

WEDNESDAY_10 = dt.datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SATURDAY_10 = dt.datetime(2025, 3, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SENDER = "voice-caller"


class FakeAudit:
    async def record(self, actor, action, subject, outcome):
        return "core:1"


class Link:
    """The caller's end of the call: frames in through `put`, everything sent kept."""

    def __init__(self):
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.json: list[dict] = []
        self.audio = 0
        self.closed = None

    def put(self, frame):
        self.incoming.put_nowait(frame if frame is None or isinstance(frame, bytes) else json.dumps(frame))

    async def receive(self):
        return await self.incoming.get()

    async def send_json(self, data):
        self.json.append(data)

    async def send_bytes(self, data):
        self.audio += len(data)

    async def close(self, code=1000, reason=""):
        self.closed = code

    def bot_texts(self):
        return [f["text"] for f in self.json if f.get("type") == "bot"]

    async def until(self, pred, timeout=5.0):
        for _ in range(int(timeout / 0.02)):
            if pred(self):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition never held; got {self.json}")


class Clock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


class Ticking:
    """The desk's clock: Wednesday 10:00, a millisecond later at each look (so queue order is join order)."""

    def __init__(self, t=WEDNESDAY_10):
        self.t = t

    def __call__(self):
        self.t += 0.001
        return self.t


@pytest.fixture
def desk():
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return HandoffDesk(redis, Settings(_env_file=None), Ticking(), audit=FakeAudit())


def start_call(desk, announce_every_s=60.0, clock=None, **limits):
    """A call whose bot answers 转人工 as the real hook does (queue or booking) and echoes anything else."""
    hook = video.HandoffHook(desk, None, None)

    async def turn(text):
        if text == "转人工":
            return await hook.start(SENDER, False, "request")
        routed = await desk.route_citizen_message(SENDER, text)
        return [] if routed else [video.BotMessage(text=f"收到：{text}")]

    async def recognise(pcm, rate):
        return ""

    transfer = tr.CallTransfer(desk, SENDER, announce_every_s=announce_every_s, clock=clock or Clock())
    link = Link()
    settings = {"silence_timeout_s": 30.0, "playback_lead_s": 60.0, "menu_wait_s": 0.05, "transfer_poll_s": 0.05,
                **limits}
    call = Call(link, CallServices(recognise, turn, FakeTTS(0.05).speech, transfer), AudioFormat(8000, "pcm16"),
                CallLimits(**settings))
    return call, link, transfer, asyncio.ensure_future(call.run())


async def queue_up(link, transfer):
    link.put({"dtmf": "0"})  # main menu 0: 转人工
    await link.until(lambda lk: any("请不要挂机" in t for t in lk.bot_texts()))
    assert transfer.state == "waiting"
    return transfer.ticket_id


async def test_the_queued_message_is_said_for_a_phone_and_hanging_up_cancels_the_ticket(desk):
    call, link, transfer, running = start_call(desk)
    ticket_id = await queue_up(link, transfer)
    queued = next(f for f in link.json if (f.get("custom") or {}).get("type") == "handoff_queued")
    assert queued["text"] == "已为您排队转接人工，您已排在第一位，工作人员空闲后马上为您接听，请不要挂机；按井号键可以取消排队。"
    assert "页面" not in queued["text"]
    assert (await desk.get(ticket_id)).state == TicketState.WAITING
    assert [t.id for t in await desk.waiting()] == [ticket_id]  # staff see it in the queue

    link.put({"hangup": 1})
    assert await asyncio.wait_for(running, 5) == "caller"
    assert (await desk.get(ticket_id)).state == TicketState.CANCELLED
    assert await desk.waiting() == [] and await desk.open_ticket(SENDER) is None


async def test_a_caller_whose_line_drops_leaves_no_ticket_waiting(desk):
    call, link, transfer, running = start_call(desk)
    ticket_id = await queue_up(link, transfer)
    link.put(None)  # the socket closed, or Asterisk's connection went
    assert await asyncio.wait_for(running, 5) == "disconnected"
    assert (await desk.get(ticket_id)).state == TicketState.CANCELLED and await desk.waiting() == []


async def test_waiting_on_hold_is_not_silence_but_the_maximum_call_length_still_ends_it(desk):
    call, link, transfer, running = start_call(desk, silence_timeout_s=0.2, max_call_s=4.0)
    ticket_id = await queue_up(link, transfer)
    await asyncio.sleep(0.8)  # four silence timeouts long: still on hold, no "您还在吗"
    assert not running.done() and not any("您还在吗" in t for t in link.bot_texts())
    assert await asyncio.wait_for(running, 8) == "max_length"
    assert (await desk.get(ticket_id)).state == TicketState.CANCELLED


async def test_a_silence_timeout_outside_the_queue_still_ends_the_call_and_any_ticket_it_left(desk):
    call, link, transfer, running = start_call(desk, silence_timeout_s=0.2)
    ticket_id = await queue_up(link, transfer)
    link.put({"dtmf": "#"})
    await link.until(lambda lk: tr.CANCELLED in lk.bot_texts())
    assert await asyncio.wait_for(running, 5) == "silence"  # off hold, the silence timer runs again
    assert (await desk.get(ticket_id)).state == TicketState.CANCELLED


async def test_the_hash_key_cancels_the_queue_and_the_call_goes_on_with_the_bot(desk):
    call, link, transfer, running = start_call(desk)
    ticket_id = await queue_up(link, transfer)
    link.put({"dtmf": "#"})
    await link.until(lambda lk: tr.CANCELLED in lk.bot_texts())
    assert {"type": "caller", "dtmf": "#"} in link.json
    assert (await desk.get(ticket_id)).state == TicketState.CANCELLED and transfer.state == ""
    link.put({"dtmf": "1"})  # the bot again
    await link.until(lambda lk: any(t.startswith("收到：") for t in lk.bot_texts()))
    link.put({"hangup": 1})
    assert await asyncio.wait_for(running, 5) == "caller"


async def test_a_hash_that_ends_a_keyed_number_does_not_cancel_the_queue(desk):
    call, link, transfer, running = start_call(desk, menu_wait_s=5.0)
    ticket_id = await queue_up_with_wait(link, transfer)
    link.put({"dtmf": "12"})
    link.put({"dtmf": "#"})  # ends the entry "12", which goes to the bot
    await link.until(lambda lk: "收到：12" in lk.bot_texts())
    assert (await desk.get(ticket_id)).state == TicketState.WAITING
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)


async def queue_up_with_wait(link, transfer):
    link.put({"dtmf": "0#"})
    await link.until(lambda lk: any("请不要挂机" in t for t in lk.bot_texts()))
    return transfer.ticket_id


async def test_the_position_is_said_again_when_it_changes_at_most_once_a_minute(desk):
    ahead = [await desk.enqueue(f"web-{i}", False, "request") for i in range(3)]
    clock = Clock()
    call, link, transfer, running = start_call(desk, clock=clock)
    await queue_up(link, transfer)
    assert any("您前面还有3位，预计等待约28分钟" in t for t in link.bot_texts())  # place 4 x 420 s, no staff online
    await desk.cancel(ahead[0].id, ahead[0].key)
    await asyncio.sleep(0.3)
    assert not any(t.startswith("排队位置有更新") for t in link.bot_texts())  # not a minute yet
    clock.t = 61
    await link.until(lambda lk: any("排队位置有更新：您前面还有2位" in t for t in lk.bot_texts()))
    await desk.cancel(ahead[1].id, ahead[1].key)
    await asyncio.sleep(0.3)
    assert sum(t.startswith("排队位置有更新") for t in link.bot_texts()) == 1
    clock.t = 125
    await link.until(lambda lk: any("排队位置有更新：您前面还有1位" in t for t in lk.bot_texts()))
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)


async def test_staff_accept_then_messages_are_read_out_and_the_end_returns_the_caller_to_the_bot(desk):
    call, link, transfer, running = start_call(desk)
    ticket_id = await queue_up(link, transfer)
    await desk.accept(ticket_id, "staff1")
    await link.until(lambda lk: tr.STAFF_JOINED in lk.bot_texts())
    await desk.staff_message(ticket_id, "staff1", "您好，我是公积金中心的小王，请问要办理什么？")
    await link.until(lambda lk: "您好，我是公积金中心的小王，请问要办理什么？" in lk.bot_texts())
    await desk.end(ticket_id, "staff1", note="内部", summary="已说明提取材料")
    await link.until(lambda lk: any("小结：已说明提取材料" in t for t in lk.bot_texts()))
    assert transfer.state == "" and not any("内部" in t for t in link.bot_texts())
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)
    assert (await desk.get(ticket_id)).state == TicketState.ENDED


async def test_hanging_up_during_a_session_with_staff_ends_it_and_tells_staff(desk):
    call, link, transfer, running = start_call(desk)
    ticket_id = await queue_up(link, transfer)
    await desk.accept(ticket_id, "staff1")
    await link.until(lambda lk: tr.STAFF_JOINED in lk.bot_texts())
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)
    assert (await desk.get(ticket_id)).state == TicketState.ENDED
    assert any(m.get("text") == "市民已挂断，本次视频服务结束。" for m in await desk.messages(ticket_id))


@pytest.fixture
def closed_desk():
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return HandoffDesk(redis, Settings(_env_file=None, handoff_slot_capacity=1), Ticking(SATURDAY_10), audit=FakeAudit())


async def offered_menu(link):
    link.put({"dtmf": "0"})  # 转人工 on a Saturday
    await link.until(lambda lk: any(t.startswith("现在不是人工服务时间") for t in lk.bot_texts()))
    return next(f for f in link.json if (f.get("custom") or {}).get("type") == "handoff_booking")


async def test_out_of_hours_the_caller_keys_a_slot_and_a_call_back_number_that_staff_see(closed_desk, caplog):
    caplog.set_level(logging.INFO)
    call, link, transfer, running = start_call(closed_desk)
    menu = await offered_menu(link)
    assert menu["text"] == "现在不是人工服务时间，人工服务时间为" + closed_desk.appointments.hours_text() + \
        "。可以预约工作人员在以下时间给您回电。"
    first_slot = menu["custom"]["slots"][0]
    assert first_slot["slot"].startswith("2025-03-17T09:00")  # Monday's first slot
    assert [b["title"] for b in menu["buttons"]] == [s["label"] + "回电" for s in menu["custom"]["slots"]]
    assert len(menu["buttons"]) == 3 and transfer.state == "" and await closed_desk.waiting() == []

    link.put({"dtmf": "1"})  # the first slot
    await link.until(lambda lk: any(t.startswith("您选择了") for t in lk.bot_texts()))
    assert first_slot["label"] in link.bot_texts()[-1]
    link.put({"dtmf": "2345678#"})  # not a mobile number
    await link.until(lambda lk: tr.BAD_NUMBER in lk.bot_texts())
    link.put({"dtmf": "13812345678#"})
    await link.until(lambda lk: any(t.startswith("已为您预约") for t in lk.bot_texts()))
    assert link.bot_texts()[-1] == tr.BOOKED.format(label=first_slot["label"], last4="5678")

    assert await closed_desk.appointments.callbacks() == [
        {"slot": first_slot["slot"], "label": first_slot["label"], "phone": "13812345678", "channel": "voice"}]
    assert (await closed_desk.appointments.free_slots())[0]["slot"] != first_slot["slot"]  # the slot is taken
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "138****5678" in logged and "13812345678" not in logged


async def test_the_number_is_asked_three_times_at_most_and_never_goes_to_the_bot(closed_desk):
    said_to_bot = []
    call, link, transfer, running = start_call(closed_desk)
    await offered_menu(link)
    link.put({"dtmf": "2"})
    await link.until(lambda lk: any(t.startswith("您选择了") for t in lk.bot_texts()))
    for wrong in ("23812345678#", "1381234567#", "99#"):
        link.put({"dtmf": wrong})
        await asyncio.sleep(0.2)
    await link.until(lambda lk: tr.GIVE_UP_NUMBER in lk.bot_texts())
    assert link.bot_texts().count(tr.BAD_NUMBER) == 2 and not any(t.startswith("收到：") for t in link.bot_texts())
    assert await closed_desk.appointments.callbacks() == []
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)


class RefusingMedia:
    """A media service whose room refuses every offer (the bridge must not break the call)."""

    def __init__(self):
        self.offers = 0
        self.closed = []

    async def answer(self, token, sdp, sdp_type):
        self.offers += 1
        raise RuntimeError("room refused")

    async def close(self, ticket):
        self.closed.append(ticket.id)


def start_call_with_media(desk, media):
    call, link, transfer, running = start_call(desk)
    transfer._media = media
    return call, link, transfer, running


async def test_with_media_the_caller_is_asked_about_the_recording_and_2_keeps_it_to_read_out_text(desk):
    media = RefusingMedia()
    call, link, transfer, running = start_call_with_media(desk, media)
    ticket_id = await queue_up(link, transfer)
    await desk.accept(ticket_id, "staff1")
    await link.until(lambda lk: tr.STAFF_JOINED_ASK in lk.bot_texts())
    link.put({"dtmf": "2"})
    await link.until(lambda lk: tr.TEXT_ONLY in lk.bot_texts())
    assert (await desk.get(ticket_id)).consent is False and media.offers == 0  # no media without consent
    await desk.staff_message(ticket_id, "staff1", "请说一下您的问题。")
    await link.until(lambda lk: "请说一下您的问题。" in lk.bot_texts())
    link.put({"hangup": 1})
    await asyncio.wait_for(running, 5)
    assert media.closed == [ticket_id] and (await desk.get(ticket_id)).state == TicketState.ENDED


async def test_a_room_that_refuses_the_bridge_leaves_the_call_going(desk):
    media = RefusingMedia()
    call, link, transfer, running = start_call_with_media(desk, media)
    ticket_id = await queue_up(link, transfer)
    await desk.accept(ticket_id, "staff1")
    await link.until(lambda lk: tr.STAFF_JOINED_ASK in lk.bot_texts())
    link.put({"dtmf": "1"})
    await link.until(lambda lk: tr.CONNECTING in lk.bot_texts() and media.offers >= 1)
    assert (await desk.get(ticket_id)).consent is True and not transfer.bridged and not running.done()
    link.put({"hangup": 1})
    assert await asyncio.wait_for(running, 5) == "caller"
