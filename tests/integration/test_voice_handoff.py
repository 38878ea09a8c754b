"""A hotline caller reaching a person, on the real stack (issue 18 part 4): trained Rasa model, action
server, core, redis-server, gateway with espeak-ng. Driven by keypad (no recogniser needed).

The caller keys 0 (转人工) and hears a queued message made for the phone; staff see the ticket as a
phone call; a caller whose line drops or who keys # leaves no ticket waiting; staff who accept are
announced, their messages are read out, and the caller hanging up ends the session for staff; out of
hours the caller books a call-back slot and keys a mobile number, which staff read in the console's list.
"""
import asyncio
import contextlib
import datetime as dt
import json
import socket
import time
import uuid
from zoneinfo import ZoneInfo

import httpx
import pytest
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import connect

from gateway.settings import DEV_STAFF_ACCOUNTS
from gateway.voice import transfer as tr
from gateway.voice.audiosocket import KIND_DTMF, KIND_HANGUP, KIND_UUID, frame
from gateway_restarts import ALWAYS_OPEN, gateway_with
from review_applicants import staff_login
from video.loopback import allow_loopback_candidates

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def open_stack(stack):
    from stack import free_port

    allow_loopback_candidates()  # this process's aiortc peer (staff's stand-in) on the loopback-only network
    port = free_port(frozenset(vars(stack.ports).values()))
    with gateway_with(stack, {**ALWAYS_OPEN, "AUDIOSOCKET_PORT": str(port)}):
        stack.audiosocket_port = port
        yield stack


def staff_client(stack) -> httpx.Client:
    headers = staff_login(stack, DEV_STAFF_ACCOUNTS[0].username, "dev-staff-pass")  # waits out a used TOTP step
    return httpx.Client(base_url=stack.urls["gateway"], timeout=15, headers=headers)


@pytest.fixture(scope="module")
def staff(open_stack):
    with staff_client(open_stack) as client:
        yield client


class Caller:
    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []

    def until(self, pred, timeout=60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(msg, bytes):
                continue
            frame = json.loads(msg)
            self.frames.append(frame)
            if pred(frame):
                return frame
        raise AssertionError(f"not seen in {timeout}s; frames: {self.frames}")

    def bot(self, pred, timeout=60.0) -> dict:
        return self.until(lambda f: f.get("type") == "bot" and pred(f["text"]), timeout)


@contextlib.contextmanager
def dial(stack):
    with connect(stack.urls["gateway"].replace("http://", "ws://") + "/ws/voice", open_timeout=10) as ws:
        caller = Caller(ws)
        caller.until(lambda f: f.get("type") == "session")
        ws.send(json.dumps({"config": {"sample_rate": 8000}}))
        caller.until(lambda f: f.get("type") == "bot")  # the greeting starts
        yield ws, caller


def queue_up(ws, caller) -> dict:
    ws.send(json.dumps({"dtmf": "0"}))  # main menu 0: 转人工
    queued = caller.until(lambda f: (f.get("custom") or {}).get("type") == "handoff_queued", timeout=90)
    assert "请不要挂机" in queued["text"] and "按井号键可以取消排队" in queued["text"]
    assert "页面" not in queued["text"]
    return queued["custom"]


def queue_cards(staff) -> dict[str, dict]:
    resp = staff.get("/api/staff/queue")
    assert resp.status_code == 200, resp.text
    return {c["ticket_id"]: c for c in resp.json()["waiting"]}


def until(check, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {timeout}s")


def test_a_caller_whose_line_drops_or_who_keys_hash_leaves_no_ticket_waiting(open_stack, staff):
    with dial(open_stack) as (ws, caller):
        ticket = queue_up(ws, caller)
        assert queue_cards(staff)[ticket["ticket_id"]]["channel"] == "voice"  # the console shows 电话
        ws.close()  # no hang-up frame: the line just drops
    until(lambda: ticket["ticket_id"] not in queue_cards(staff), what="the dropped caller's ticket leaving the queue")

    with dial(open_stack) as (ws, caller):
        ticket = queue_up(ws, caller)
        assert ticket["ticket_id"] in queue_cards(staff)
        ws.send(json.dumps({"dtmf": "#"}))
        caller.bot(lambda t: t == tr.CANCELLED)
        assert ticket["ticket_id"] not in queue_cards(staff)
        ws.send(json.dumps({"hangup": 1}))
        caller.until(lambda f: f.get("type") == "hangup")


@pytest.mark.parametrize("ending", ["hangup_frame", "connection_closed"])
def test_an_asterisk_caller_who_hangs_up_in_the_queue_leaves_no_ticket(open_stack, staff, ending):
    before = set(queue_cards(staff))
    sock = socket.create_connection(("127.0.0.1", open_stack.audiosocket_port), timeout=10)
    try:
        sock.sendall(frame(KIND_UUID, uuid.uuid4().bytes))
        time.sleep(1.0)
        sock.sendall(frame(KIND_DTMF, b"0"))  # keypad 0: 转人工
        new: list[str] = []

        def queued():
            new[:] = [t for t in queue_cards(staff) if t not in before]
            return bool(new)
        until(queued, timeout=60, what="the caller's ticket in the queue")
        assert queue_cards(staff)[new[0]]["channel"] == "voice"
        if ending == "hangup_frame":
            sock.sendall(frame(KIND_HANGUP))
    finally:
        sock.close()
    until(lambda: new[0] not in queue_cards(staff), what="the ticket leaving the queue after the hang-up")


def test_staff_accept_a_phone_caller_talk_in_read_out_text_and_the_hang_up_ends_it(open_stack, staff):
    with dial(open_stack) as (ws, caller):
        ticket = queue_up(ws, caller)
        accepted = staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["ticket"]["channel"] == "voice"
        caller.bot(lambda t: t == tr.STAFF_JOINED_ASK, timeout=15)
        ws.send(json.dumps({"dtmf": "2"}))  # no recording: staff type, the call reads it out
        caller.bot(lambda t: t == tr.TEXT_ONLY)
        sent = staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/messages", json={"text": "您好，我是工作人员小王。"})
        assert sent.status_code == 200, sent.text
        caller.bot(lambda t: t == "您好，我是工作人员小王。", timeout=15)
        ws.send(json.dumps({"hangup": 1}))
        caller.until(lambda f: f.get("type") == "hangup")

    def told():
        resp = staff.get(f"/api/staff/tickets/{ticket['ticket_id']}/messages")
        body = resp.json()
        return body["state"] == "ended" and any("市民已挂断" in m["text"] for m in body["messages"])
    until(told, what="staff being told the caller hung up")


def test_out_of_hours_the_caller_books_a_call_back_that_staff_see(open_stack, staff):
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday()
    other_days = json.dumps([d for d in range(1, 8) if d != today])
    with gateway_with(open_stack, {**ALWAYS_OPEN, "HANDOFF_STAFF_DAYS": other_days}):
        with dial(open_stack) as (ws, caller):
            ws.send(json.dumps({"dtmf": "0"}))
            menu = caller.until(lambda f: (f.get("custom") or {}).get("type") == "handoff_booking", timeout=90)
            assert menu["text"].startswith("现在不是人工服务时间") and menu["buttons"]
            slot = menu["custom"]["slots"][0]
            ws.send(json.dumps({"dtmf": "1"}))
            caller.bot(lambda t: t.startswith("您选择了") and slot["label"] in t)
            ws.send(json.dumps({"dtmf": "13812345678#"}))
            caller.bot(lambda t: t == tr.BOOKED.format(label=slot["label"], last4="5678"))
            ws.send(json.dumps({"hangup": 1}))
            caller.until(lambda f: f.get("type") == "hangup")
        resp = staff.get("/api/staff/callbacks")  # the staff session (in redis) outlives the restart
        assert resp.status_code == 200, resp.text
        assert {"slot": slot["slot"], "label": slot["label"], "phone": "13812345678", "channel": "voice"} \
            in resp.json()["callbacks"]


class StaffMic(AudioStreamTrack):
    """Staff's microphone: silence until `speak()`, then a 440 Hz tone, paced like a real one (aiortc's
    silent track, filled in); `spoke_at` is when the first tone frame went to the encoder."""

    def __init__(self):
        super().__init__()
        self.speaking = False
        self.spoke_at: float | None = None

    async def recv(self):
        frame = await super().recv()
        if not self.speaking:
            return frame
        if self.spoke_at is None:
            self.spoke_at = time.monotonic()
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        tone = av.AudioFrame.from_ndarray((6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).reshape(1, -1),
                                          format="s16", layout="mono")
        tone.sample_rate, tone.pts, tone.time_base = frame.sample_rate, frame.pts, frame.time_base
        return tone


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


async def test_staff_talk_with_the_caller_both_ways_once_the_caller_agrees_to_the_recording(open_stack, staff):
    """Audio-only WebRTC: the caller's tone reaches staff's peer, staff's tone comes down the call socket."""
    rate = 8000
    url = open_stack.urls["gateway"].replace("http://", "ws://") + "/ws/voice"
    async with aconnect(url, open_timeout=10) as ws, httpx.AsyncClient(
            base_url=open_stack.urls["gateway"], timeout=15, headers=staff.headers) as http:
        frames: list[dict] = []
        heard: list[tuple[float, float]] = []  # (time, rms) of each audio frame reaching the caller
        audio = bytearray()  # what reached the caller after staff began to speak

        async def reader():
            async for msg in ws:
                if isinstance(msg, bytes):
                    heard.append((time.monotonic(), rms(np.frombuffer(msg, "<i2"))))
                    if mic.spoke_at is not None:
                        audio.extend(msg)
                else:
                    frames.append(json.loads(msg))

        async def seen(pred, timeout=60.0, since=0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                found = [f for f in frames[since:] if pred(f)]
                if found:
                    return found[-1]
                await asyncio.sleep(0.1)
            raise AssertionError(f"not seen in {timeout}s; frames: {frames}")

        mic = StaffMic()
        reading = asyncio.ensure_future(reader())
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        await seen(lambda f: f.get("type") == "bot")
        await ws.send(json.dumps({"dtmf": "0"}))
        queued = await seen(lambda f: (f.get("custom") or {}).get("type") == "handoff_queued", 90)
        ticket_id = queued["custom"]["ticket_id"]

        accepted = await http.post(f"/api/staff/tickets/{ticket_id}/accept")
        assert accepted.status_code == 200, accepted.text
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # the console's audio-only session
        pc.addTrack(mic)
        got: list[float] = []

        async def staff_ears(track):
            while True:
                frame = await track.recv()
                got.append(rms(frame.to_ndarray()))
        pc.on("track", lambda track: asyncio.ensure_future(staff_ears(track)))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await http.post("/api/video/offer", json={"token": accepted.json()["room_token"],
                                                            "sdp": pc.localDescription.sdp, "type": "offer"})
        assert answer.status_code == 200, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(**answer.json()))

        await seen(lambda f: f.get("type") == "bot" and f["text"] == tr.STAFF_JOINED_ASK, 15)
        await ws.send(json.dumps({"dtmf": "1"}))
        connecting = await seen(lambda f: f.get("type") == "bot" and f["text"] == tr.CONNECTING)
        await seen(lambda f: f.get("type") in ("audio_end", "playback_stopped"),  # the connecting words played
                   since=frames.index(connecting))
        await asyncio.sleep(1)
        quiet_since = time.monotonic() - 0.5
        assert not [r for at, r in heard if at > quiet_since and r > 500]  # staff are silent: so is the line
        mic.speaking = True

        started = time.monotonic()
        t = np.arange(rate // 50) / rate
        for i in range(250):  # five seconds of the caller saying "ah" (a 300 Hz tone), 20 ms frames
            chunk = (8000 * np.sin(2 * np.pi * 300 * (t + i / 50))).astype("<i2").tobytes()
            await ws.send(chunk)
            await asyncio.sleep(0.02)
        staff_heard = [r for r in got[-200:] if r > 500]
        caller_heard = [r for at, r in heard if at > started and r > 500]
        first_loud = next(at for at, r in heard if at > mic.spoke_at and r > 500)
        samples = np.frombuffer(bytes(audio[-rate * 2:]), "<i2").astype(np.float64)  # the last second
        peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples)
        print(f"\nvoice bridge staff->caller: first tone after {1000 * (first_loud - mic.spoke_at):.0f} ms, "
              f"peak {peak_hz:.0f} Hz")
        assert abs(peak_hz - 440) < 15  # staff's tone, not the bot's voice
        print(f"\nvoice bridge: staff got {len(got)} frames ({len(staff_heard)} loud of the last 200); "
              f"the caller got {len(caller_heard)} loud frames from staff in 5 s")
        assert len(staff_heard) > 50, f"staff heard {len(got)} frames, rms {got[-20:]}"
        assert len(caller_heard) > 50, f"caller heard {len(heard)} frames after the bridge"

        ended = await http.post(f"/api/staff/tickets/{ticket_id}/end", json={"note": "", "summary": "已电话答复"})
        assert ended.status_code == 200, ended.text
        await seen(lambda f: f.get("type") == "bot" and "小结：已电话答复" in f["text"], 15)
        await ws.send(json.dumps({"hangup": 1}))
        await seen(lambda f: f.get("type") == "hangup")
        reading.cancel()
        await pc.close()
