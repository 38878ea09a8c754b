"""A hotline caller talks with staff in the console, in Chromium (issue 18 part 4, step 3).

A test caller dials /ws/voice, keys 0 (转人工) and streams a tone at real time; staff log in, see the
ticket as 电话, accept, and the console opens an audio-only session (no camera); the caller keys 1 to
agree to the recording and the gateway bridges the call's audio into the room. Audio arrives at both
ends: the staff page's inbound-rtp audio bytes rise (getStats), and the caller's socket carries loud
audio from Chromium's fake microphone (tests/conftest.py CHROMIUM_ARGS).

Reuses the video handoff test's own stack (redis-server, scripted Rasa, gateway with loopback ICE).
Run inside a private network namespace: unshare -n sh -c 'ip link set lo up; pytest tests/browser/test_voice_console.py'
"""
import json
import threading
import time

import numpy as np
import pytest
from websockets.sync.client import connect

from gateway.voice import transfer as tr
from test_video_handoff import chromium, log_in_as_staff, stack, wait_js  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

INBOUND_AUDIO_BYTES = """async (pc) => {
  if (!pc) return 0;
  const stats = await pc.getStats();
  let bytes = 0;
  stats.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes += s.bytesReceived; });
  return bytes;
}"""


class TestCaller(threading.Thread):
    """The phone side, in a thread of its own: dials, asks for a person, agrees to the recording, then
    talks (a 300 Hz tone at real time) for `talk_s` while counting the loud audio frames it hears."""

    __test__ = False

    def __init__(self, url: str, talk_s: float = 10.0, rate: int = 16000):
        super().__init__(daemon=True)
        self.url, self.talk_s, self.rate = url, talk_s, rate
        self.frames: list[dict] = []
        self.loud_after_bridge = 0
        self.bot_done = False  # the connecting words have played: what comes after is staff
        self.ticket_id = ""
        self.joined = threading.Event()
        self.error: BaseException | None = None

    def _until(self, ws, pred, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(msg, str):
                self.frames.append(json.loads(msg))
                if pred(self.frames[-1]):
                    return self.frames[-1]
        raise AssertionError(f"not seen: {self.frames}")

    def run(self):
        try:
            with connect(self.url.replace("http://", "ws://") + "/ws/voice", open_timeout=10) as ws:
                self._until(ws, lambda f: f.get("type") == "session")
                ws.send(json.dumps({"config": {"sample_rate": self.rate}}))
                self._until(ws, lambda f: f.get("type") == "bot")
                ws.send(json.dumps({"dtmf": "0"}))
                queued = self._until(ws, lambda f: (f.get("custom") or {}).get("type") == "handoff_queued")
                self.ticket_id = queued["custom"]["ticket_id"]
                self._until(ws, lambda f: f.get("text") == tr.STAFF_JOINED_ASK, timeout=90)
                self.joined.set()
                ws.send(json.dumps({"dtmf": "1"}))
                self._until(ws, lambda f: f.get("text") == tr.CONNECTING)
                self._talk(ws)
                ws.send(json.dumps({"hangup": 1}))
                self._until(ws, lambda f: f.get("type") == "hangup")
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _talk(self, ws):
        n = self.rate // 50
        t = np.arange(n) / self.rate
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < self.talk_s or not self.bot_done:
            ws.send((8000 * np.sin(2 * np.pi * 300 * (t + i / 50))).astype("<i2").tobytes())
            i += 1
            while True:  # read what came meanwhile without blocking the 20 ms pace
                try:
                    msg = ws.recv(timeout=0.0)
                except TimeoutError:
                    break
                if isinstance(msg, bytes) and self.bot_done:
                    samples = np.frombuffer(msg, "<i2").astype(np.float64)
                    if len(samples) and np.sqrt(np.mean(samples ** 2)) > 300:
                        self.loud_after_bridge += 1
                elif isinstance(msg, str):
                    self.frames.append(json.loads(msg))
                    self.bot_done = self.bot_done or self.frames[-1].get("type") in ("audio_end", "playback_stopped")
            time.sleep(max(0.0, started + i * 0.02 - time.monotonic()))


def test_staff_accept_a_phone_call_in_the_console_and_talk_with_the_caller(stack, chromium):
    caller = TestCaller(stack["url"])
    caller.start()
    ctx = chromium.new_context()
    staff = ctx.new_page()
    try:
        staff.goto(stack["url"] + "/console")
        log_in_as_staff(staff, at=time.time())
        staff.wait_for_selector("#queue >> text=电话", timeout=60000)
        staff.get_by_role("button", name="接待").click(timeout=10000)
        staff.wait_for_selector("#call-title >> text=电话服务", timeout=10000)
        assert staff.locator("#local").is_hidden() and staff.locator("#enlarge").is_hidden()  # no camera
        assert caller.joined.wait(30), f"the caller never heard staff join: {caller.frames}"
        wait_js(staff, "window.AnjuConsole.pc && window.AnjuConsole.pc.connectionState === 'connected'")
        senders = staff.evaluate("window.AnjuConsole.pc.getSenders().map(s => s.track && s.track.kind)")
        assert "video" not in senders and "audio" in senders
        pc = staff.evaluate_handle("window.AnjuConsole.pc")
        first = staff.evaluate(INBOUND_AUDIO_BYTES, pc)
        time.sleep(3)
        later = staff.evaluate(INBOUND_AUDIO_BYTES, pc)
        print(f"\nconsole inbound audio bytes {first} -> {later} in 3 s")
        assert later > first + 5000, f"inbound audio bytes {first} -> {later}"
        caller.join(60)
        assert caller.error is None, caller.error
        print(f"caller heard {caller.loud_after_bridge} loud frames from staff's fake microphone")
        assert caller.loud_after_bridge > 10
    finally:
        ctx.close()
