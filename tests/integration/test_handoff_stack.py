"""Video handoff on the real stack: trained model, action server, core, redis-server and gateway.

A citizen asks for a person over the chat API, waits in the queue, staff log in with password +
TOTP and accept; the citizen agrees to the recording (no call token before that), both sides connect
media (aiortc peers stand in for the browsers), the bot stays silent while staff chat, staff end with an
internal note and a summary, the citizen reads only the summary and the bot answers again; the recording's hash is in the core's audit hash chain. The gateway is restarted with
always-open staff hours and loopback ICE for this module (and restored afterwards).
Run inside a private network namespace: unshare -n sh -c 'ip link set lo up; pytest tests/integration/test_handoff_stack.py'
"""
import asyncio
import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import time
import uuid
from zoneinfo import ZoneInfo

import httpx
import pyotp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from websockets.asyncio.client import connect

from citizens import Citizens
from gateway_restarts import ALWAYS_OPEN, gateway_with
from gateway.settings import DEV_STAFF_ACCOUNTS
from video.loopback import allow_loopback_candidates

pytestmark = pytest.mark.integration
@pytest.fixture(scope="module")
def desk_stack(stack):
    allow_loopback_candidates()
    env = {**ALWAYS_OPEN, "VIDEO_RECORDINGS_DIR": str(stack.data_dir / "recordings")}
    with gateway_with(stack, env):
        yield stack


@pytest.fixture(scope="module")
def staff_token(desk_stack) -> str:
    account = DEV_STAFF_ACCOUNTS[0]
    code = pyotp.TOTP(account.totp_secret.get_secret_value()).now()
    resp = httpx.post(f"{desk_stack.urls['gateway']}/api/staff/login", timeout=10,
                      json={"username": account.username, "password": "dev-staff-pass", "totp": code})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def sender(prefix: str) -> str:
    return f"web-{prefix}-{uuid.uuid4().hex[:8]}"


CITIZENS: dict[str, Citizens] = {}


def citizens_of(http: httpx.AsyncClient) -> Citizens:
    base = str(http.base_url).rstrip("/")
    return CITIZENS.setdefault(base, Citizens(base))


async def say(http: httpx.AsyncClient, label: str, text: str, metadata: dict | None = None) -> list[dict]:
    """One turn of the citizen called `label`, in that citizen's own gateway-issued session."""
    return await citizens_of(http).say_async(http, label, text, metadata)


def customs(messages: list[dict], kind: str) -> list[dict]:
    return [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == kind]


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


class Peer:
    """Stands in for one browser: synthetic camera and microphone, counts the frames it receives."""

    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(VideoStreamTrack())
        self.received = {"audio": 0, "video": 0}
        self._readers = []
        self.pc.on("track", lambda t: self._readers.append(asyncio.ensure_future(self._read(t))))

    async def _read(self, track):
        while True:
            await track.recv()
            self.received[track.kind] += 1

    async def join(self, http: httpx.AsyncClient, token: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post("/api/video/offer", json={"token": token, "sdp": self.pc.localDescription.sdp,
                                                         "type": "offer"}, timeout=15)
        assert resp.status_code == 200, resp.text
        await self.pc.setRemoteDescription(RTCSessionDescription(**resp.json()))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await self.pc.close()


async def until(check, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.1)


class CitizenSocket:
    """The widget's /ws/handoff socket: collects every frame the gateway pushes."""

    def __init__(self, base: str, ticket: dict):
        self._url = base.replace("http", "ws") + f"/ws/handoff/{ticket['ticket_id']}"
        self._key = ticket["key"]
        self.frames: list[dict] = []

    async def __aenter__(self):
        self._ws = await connect(self._url, open_timeout=10)
        await self._ws.send(json.dumps({"key": self._key}))
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        async for raw in self._ws:
            self.frames.append(json.loads(raw))

    async def __aexit__(self, *exc):
        self._reader.cancel()
        await self._ws.close()

    async def agree_and_call(self, timeout=15.0) -> dict:
        """What the citizen's browser does once staff accept: read the recording notice, agree, get the call."""
        await self.next("consent_required", timeout)
        assert not [f for f in self.frames if f.get("type") == "call"], "a call token came before consent"
        await self._ws.send(json.dumps({"type": "consent", "agree": True}))
        return await self.next("call", timeout)

    async def next(self, kind: str, timeout=15.0, **match) -> dict:
        async def found():
            return next((f for f in self.frames if f.get("type") == kind
                         and all(f.get(k) == v for k, v in match.items())), None)
        return await until(found, timeout, f"a {kind} frame {match}")


def staff_api(stack, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.urls["gateway"], timeout=15, headers={"Authorization": f"Bearer {token}"})


async def queue_ids(staff: httpx.AsyncClient) -> list[str]:
    resp = await staff.get("/api/staff/queue")
    assert resp.status_code == 200, resp.text
    return [card["ticket_id"] for card in resp.json()["waiting"]]


async def test_a_citizen_is_served_by_staff_and_returned_to_the_bot(desk_stack, staff_token):
    citizen_id = sender("served")
    async with httpx.AsyncClient(base_url=desk_stack.urls["gateway"]) as http, staff_api(desk_stack, staff_token) as staff:
        reply = await say(http, citizen_id, "转人工")
        queued = customs(reply, "handoff_queued")
        assert len(queued) == 1 and queued[0]["position"] >= 1, reply
        ticket = queued[0]
        async with CitizenSocket(desk_stack.urls["gateway"], ticket) as ws:
            assert (await ws.next("queue"))["position"] >= 1
            cards = (await staff.get("/api/staff/queue")).json()["waiting"]
            card = next(c for c in cards if c["ticket_id"] == ticket["ticket_id"])
            assert card["reason"] == "市民主动要求" and not card["priority"]

            accepted = (await staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/accept")).json()
            assert "转人工" in [line["text"] for line in accepted["transcript"]]
            call = await ws.agree_and_call()
            citizen_peer, staff_peer = Peer(), Peer()
            try:
                await citizen_peer.join(http, call["room_token"])
                await staff_peer.join(http, accepted["room_token"])

                async def both_see_and_hear():
                    return min(*citizen_peer.received.values(), *staff_peer.received.values()) > 5
                await until(both_see_and_hear, what="media both ways")

                assert await say(http, citizen_id, "我的提取申请卡住了") == []  # the bot stays silent

                async def staff_reads_it():
                    items = (await staff.get(f"/api/staff/tickets/{ticket['ticket_id']}/messages")).json()["messages"]
                    return [m["text"] for m in items if m["from"] == "citizen"]
                assert await until(staff_reads_it) == ["我的提取申请卡住了"]
                await staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/messages", json={"text": "我来帮您看看"})
                assert (await ws.next("message", **{"from": "staff"}))["text"] == "我来帮您看看"

                end = await staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/end",
                                       json={"note": "市民不熟悉流程，建议回访", "summary": "已指导完成租房提取"})
                assert end.status_code == 200 and end.json()["state"] == "ended"
                assert "已指导完成租房提取" in (await ws.next("message", **{"from": "system"}))["text"]
                await ws.next("ended")
                assert not [f for f in ws.frames if "建议回访" in json.dumps(f, ensure_ascii=False)]  # the note stays internal
            finally:
                await citizen_peer.close()
                await staff_peer.close()

        assert "2.60%" in texts(await say(http, citizen_id, "现在公积金贷款利率是多少"))
    assert_recording_in_audit_chain(desk_stack, ticket["ticket_id"], accepted)


def assert_recording_in_audit_chain(stack, ticket_id: str, accepted: dict) -> None:
    with sqlite3.connect(stack.data_dir / "core.db") as db:
        rows = db.execute("SELECT outcome FROM audit_records WHERE action = 'video.recording' AND subject = ?",
                          (ticket_id,)).fetchall()
    assert len(rows) == 1, "the recording's hash is not in the core's audit chain"
    fields = dict(part.split("=", 1) for part in rows[0][0].split())
    path = stack.data_dir / "recordings" / fields["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fields["sha256"]
    assert int(fields["bytes"]) == path.stat().st_size > 0
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                                      capture_output=True, text=True, check=True).stdout)
    assert {s["codec_type"] for s in probe["streams"]} == {"audio", "video"}
    verify = subprocess.run([str(stack.app_venv / "bin" / "python"), "-m", "fund.audit", "verify",
                             "--database-url", f"sqlite:///{stack.data_dir / 'core.db'}"],
                            capture_output=True, text=True, timeout=60, env=stack.environment())
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_two_unclear_messages_in_a_row_lead_to_a_video_offer_and_a_typed_yes_takes_it(desk_stack):
    citizen_id = sender("unclear")
    async with httpx.AsyncClient(base_url=desk_stack.urls["gateway"]) as http:
        first = await say(http, citizen_id, "嗯啊哦呃")
        assert customs(first, "handoff_offer") == [] and texts(first)
        second = await say(http, citizen_id, "呃哦啊嗯嗯")
        offers = customs(second, "handoff_offer")
        assert offers == [{"type": "handoff_offer", "reason": "fallback"}]
        assert "/accept_handoff" in [b["payload"] for m in second for b in m.get("buttons") or []]
        assert customs(second, "unanswered") == []  # counted and stripped by the gateway
        # Typing "好的" instead of pressing the button accepts the offer just made.
        third = await say(http, citizen_id, "好的")
        queued = customs(third, "handoff_queued")
        assert len(queued) == 1, texts(third)
        await http.post(f"/api/handoff/{queued[0]['ticket_id']}/cancel", json={"key": queued[0]["key"]})


async def test_elder_mode_is_offered_video_once_and_queued_first(desk_stack, staff_token):
    elder_id, other_id = sender("elder"), sender("plain")
    async with httpx.AsyncClient(base_url=desk_stack.urls["gateway"]) as http, staff_api(desk_stack, staff_token) as staff:
        plain = customs(await say(http, other_id, "转人工"), "handoff_queued")[0]
        first = await say(http, elder_id, "你好", {"elder_mode": True})
        assert [o["reason"] for o in customs(first, "handoff_offer")] == ["elder_mode"]
        assert customs(await say(http, elder_id, "租房可以提取公积金吗", {"elder_mode": True}), "handoff_offer") == []
        queued = customs(await say(http, elder_id, "/accept_handoff", {"elder_mode": True}), "handoff_queued")
        assert len(queued) == 1 and queued[0]["priority"] is True
        order = await queue_ids(staff)
        assert order.index(queued[0]["ticket_id"]) < order.index(plain["ticket_id"])
        for ticket in (plain, queued[0]):
            await http.post(f"/api/handoff/{ticket['ticket_id']}/cancel", json={"key": ticket["key"]})


async def test_staff_drop_puts_the_citizen_back_at_the_front_of_their_class(desk_stack, staff_token):
    first_id, later_id = sender("dropped"), sender("later")
    async with httpx.AsyncClient(base_url=desk_stack.urls["gateway"]) as http, staff_api(desk_stack, staff_token) as staff:
        first = customs(await say(http, first_id, "转人工"), "handoff_queued")[0]
        async with CitizenSocket(desk_stack.urls["gateway"], first) as ws:
            accepted = (await staff.post(f"/api/staff/tickets/{first['ticket_id']}/accept")).json()
            later = customs(await say(http, later_id, "找工作人员"), "handoff_queued")[0]
            call = await ws.agree_and_call()
            citizen_peer, staff_peer = Peer(), Peer()
            try:
                await citizen_peer.join(http, call["room_token"])
                await staff_peer.join(http, accepted["room_token"])

                async def connected():
                    return citizen_peer.received["video"] > 3 and staff_peer.received["video"] > 3
                await until(connected, what="media both ways")
                await staff_peer.close()  # staff's browser goes away and does not come back
                note = await ws.next("message", timeout=20, **{"from": "system"})
                assert "重新排队" in note["text"]
                order = await queue_ids(staff)
                assert order.index(first["ticket_id"]) < order.index(later["ticket_id"])
                assert (await ws.next("queue"))["position"] == order.index(first["ticket_id"]) + 1
            finally:
                await citizen_peer.close()
        for ticket in (first, later):
            await http.post(f"/api/handoff/{ticket['ticket_id']}/cancel", json={"key": ticket["key"]})


async def test_outside_staff_hours_the_citizen_gets_booking_buttons(desk_stack):
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday()
    other_days = json.dumps([d for d in range(1, 8) if d != today])
    citizen_id = sender("closed")
    with gateway_with(desk_stack, {**ALWAYS_OPEN, "HANDOFF_STAFF_DAYS": other_days}):
        async with httpx.AsyncClient(base_url=desk_stack.urls["gateway"]) as http:
            reply = await say(http, citizen_id, "转人工")
            assert customs(reply, "handoff_queued") == []
            booking = customs(reply, "handoff_booking")
            assert len(booking) == 1 and booking[0]["reason"] == "closed" and booking[0]["slots"]
            slot = booking[0]["slots"][0]
            assert dt.datetime.fromisoformat(slot["slot"]).isoweekday() != today
            booked = await http.post("/api/handoff/appointments", json={"slot": slot["slot"]},
                                     headers=citizens_of(http).headers(citizen_id))
            assert booked.status_code == 200 and slot["label"] in booked.json()["text"]
