"""The hotline and the widget's speech endpoints on the real stack: gateway, speech server with
Whisper base, espeak-ng, trained Rasa model, action server, core and redis-server.

Mandarin from espeak-ng is mostly unintelligible to Whisper (~95% character error), but a run
of digits read one by one comes through, so recognition is checked on digits made by the
gateway's own /api/tts; the conversation itself is driven by keypad, which needs no recogniser.
Figures go to stdout (pytest -s): TTS time per sentence, recognition latency on one utterance,
and on a call the time from the caller's last audio frame to the first reply audio byte.
"""
import io
import json
import re
import time
import wave

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway_restarts import ALWAYS_OPEN, gateway_with

pytestmark = pytest.mark.integration

DIGITS = "一二三四五六七八九"
_NUMERALS = str.maketrans("零一二三四五六七八九", "0123456789")


@pytest.fixture(scope="module")
def voice_stack(stack):
    with gateway_with(stack, ALWAYS_OPEN):  # staff hours always open: 转人工 queues a ticket
        yield stack


@pytest.fixture(scope="module")
def token(voice_stack) -> str:
    resp = httpx.post(f"{voice_stack.urls['gateway']}/api/session", timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def ws_url(stack, path: str) -> str:
    return stack.urls["gateway"].replace("http://", "ws://") + path


def tts(stack, token: str, text: str) -> tuple[bytes, float]:
    """(WAV bytes, seconds the request took)."""
    started = time.monotonic()
    resp = httpx.post(f"{stack.urls['gateway']}/api/tts", json={"text": text}, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    took = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "audio/wav"
    return resp.content, took


def pcm_of(wav: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


def longest_digit_run(text: str, expected: str = "123456789") -> int:
    digits = re.sub(r"\D", "", text.translate(_NUMERALS))
    return max((n for n in range(len(expected), 0, -1) for i in range(len(expected) - n + 1)
                if expected[i:i + n] in digits), default=0)


def test_tts_returns_playable_speech_with_numbers_read_out(voice_stack, token):
    sentences = ["您好，请问有什么可以帮您？", "您的公积金账户余额为 12,345.67 元。",
                 "2025年5月8日起，首套房五年以上公积金贷款利率为2.60%。", "如需人工服务，请拨打 12329 服务热线。"]
    took = []
    for text in sentences:
        wav, seconds = tts(voice_stack, token, text)
        pcm, rate = pcm_of(wav)
        samples = np.frombuffer(pcm, "<i2").astype(np.float32)
        assert rate == 16000 and len(samples) / rate > 1.0
        assert np.sqrt(np.mean(samples ** 2)) > 300  # speech, not silence
        took.append(seconds)
    # The amount is read as a quantity: far more syllables than the digits alone would take.
    amount, _ = pcm_of(tts(voice_stack, token, "12,345.67元")[0])
    assert len(amount) / 2 / 16000 > 2.0
    print(f"\nFIGURE tts_request_ms_per_sentence median={1000 * sorted(took)[len(took) // 2]:.0f} "
          f"max={1000 * max(took):.0f} (POST /api/tts, espeak-ng cmn-latn-pinyin, 16 kHz WAV)")


def test_tts_refuses_without_a_session(voice_stack):
    resp = httpx.post(f"{voice_stack.urls['gateway']}/api/tts", json={"text": "你好"}, timeout=10)
    assert resp.status_code == 401 and "会话" in resp.json()["detail"]


def test_dictation_is_recognised_by_whisper_through_the_speech_server(voice_stack, token):
    pcm, rate = pcm_of(tts(voice_stack, token, DIGITS)[0])
    with connect(ws_url(voice_stack, "/ws/speech"), additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        ws.send(json.dumps({"config": {"sample_rate": rate}}))
        frame = rate * 2 // 5  # 200 ms frames, as the widget sends them
        for i in range(0, len(pcm), frame):
            ws.send(pcm[i:i + frame])
        ws.send(b"\x00\x00" * rate)  # a second of quiet after speaking
        started = time.monotonic()
        ws.send('{"eof": 1}')
        replies = []
        while True:
            try:
                replies.append(json.loads(ws.recv(timeout=60)))
            except ConnectionClosed as closed:
                assert closed.rcvd.code == 1000
                break
        took = time.monotonic() - started
    final = replies[-1]
    assert set(final) == {"text"} and all(set(r) == {"partial"} for r in replies[:-1])
    assert longest_digit_run(final["text"]) >= 4, final  # Whisper heard the digits read out
    print(f"\nFIGURE dictation heard={final['text']!r} eof_to_final_ms={1000 * took:.0f} "
          f"(Whisper base int8 via the speech server, {len(pcm) / 2 / rate:.1f} s utterance)")


def test_dictation_with_a_wrong_rate_closes_1003(voice_stack, token):
    with connect(ws_url(voice_stack, "/ws/speech"), additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 44100}}))
        error = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert "采样率" in error["error"] and closed.value.rcvd.code == 1003


class Caller:
    """A hotline caller's side of /ws/voice: everything received, in order."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        self.audio_bytes = 0
        self.first_audio_at: float | None = None

    def until(self, pred, timeout=90.0, audio=False) -> dict | None:
        """Reads until a JSON frame matches `pred` (or, with audio=True, until audio arrives)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(msg, bytes):
                self.audio_bytes += len(msg)
                if self.first_audio_at is None:
                    self.first_audio_at = time.monotonic()
                if audio:
                    return None
                continue
            frame = json.loads(msg)
            self.frames.append(frame)
            if pred(frame):
                return frame
        raise AssertionError(f"not seen in {timeout}s; frames: {self.frames}")

    def bot_after(self, pred, timeout=90.0) -> list[dict]:
        """Bot frames from now until one matches."""
        start = len(self.frames)
        self.until(lambda f: f.get("type") == "bot" and pred(f), timeout)
        return [f for f in self.frames[start:] if f.get("type") == "bot"]


def test_a_keypad_call_gets_a_real_answer_and_reaches_a_person(voice_stack):
    with connect(ws_url(voice_stack, "/ws/voice"), open_timeout=10) as ws:
        caller = Caller(ws)
        assert caller.until(lambda f: f.get("type") == "session") == {"type": "session", "new": True}
        ws.send(json.dumps({"config": {"sample_rate": 8000, "encoding": "alaw"}}))
        greeting = caller.until(lambda f: f.get("type") == "bot")
        assert "按0，转人工" in greeting["text"]
        caller.until(lambda f: False, timeout=30, audio=True)  # the greeting is spoken (A-law, a byte a sample)

        ws.send(json.dumps({"dtmf": "2#"}))  # main menu 2: housing-fund loans; the key cuts the greeting short
        caller.until(lambda f: f.get("type") == "playback_stopped")
        assert caller.audio_bytes < 8000 * 20  # far from the whole greeting went out
        answer = caller.bot_after(lambda f: "贷款" in f["text"])
        assert any("贷款" in f["text"] and len(f["text"]) > 30 for f in answer)  # the knowledge base's answer
        heard_before = caller.audio_bytes

        ws.send(json.dumps({"dtmf": "0"}))  # a lone key: a menu choice after a short pause, no # needed
        queued = caller.bot_after(lambda f: (f.get("custom") or {}).get("type", "").startswith("handoff"))
        custom = queued[-1]["custom"]
        assert custom["type"] == "handoff_queued" and custom["ticket_id"] and custom["position"] >= 1
        assert {"type": "caller", "dtmf": "0"} in caller.frames
        caller.until(lambda f: f.get("type") in ("audio_end", "playback_stopped"), timeout=120)
        assert caller.audio_bytes > heard_before

        ws.send(json.dumps({"hangup": 1}))
        assert caller.until(lambda f: f.get("type") == "hangup") == {"type": "hangup", "reason": "caller"}


def test_a_spoken_utterance_in_a_call_is_recognised_and_answered(voice_stack, token):
    pcm, rate = pcm_of(tts(voice_stack, token, DIGITS)[0])
    with connect(ws_url(voice_stack, "/ws/voice"), open_timeout=10) as ws:
        caller = Caller(ws)
        caller.until(lambda f: f.get("type") == "session")
        ws.send(json.dumps({"config": {"sample_rate": rate}}))
        caller.until(lambda f: f.get("type") == "bot")  # the greeting starts playing
        frame = rate * 2 // 50  # 20 ms frames, as a phone bridge sends them
        quiet = b"\x00\x00" * (rate // 50)
        for i in range(0, len(pcm), frame):
            ws.send(pcm[i:i + frame])
        for _ in range(40):  # 800 ms of quiet: the endpointer ends the utterance
            ws.send(quiet)
        last_frame_at = time.monotonic()
        caller.until(lambda f: f.get("type") == "playback_stopped")  # the caller's speech cut the greeting
        heard = caller.until(lambda f: f.get("type") == "caller")
        assert longest_digit_run(heard["text"]) >= 4, heard
        caller.first_audio_at = None
        reply = caller.until(lambda f: f.get("type") == "bot")
        assert reply["text"]
        caller.until(lambda f: False, timeout=30, audio=True)
        latency = caller.first_audio_at - last_frame_at
        ws.send(json.dumps({"hangup": 1}))
        caller.until(lambda f: f.get("type") == "hangup")
    print(f"\nFIGURE call heard={heard['text']!r} last_audio_frame_to_first_reply_audio_ms={1000 * latency:.0f} "
          f"(after 800 ms of trailing quiet; Whisper base via the speech server, real Rasa, espeak-ng)")


def test_a_bad_frame_ends_only_that_call(voice_stack):
    with connect(ws_url(voice_stack, "/ws/voice"), open_timeout=10) as ws:
        Caller(ws).until(lambda f: f.get("type") == "session")
        ws.send(json.dumps({"config": {"sample_rate": 11025}}))
        error = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert "采样率" in error["error"] and closed.value.rcvd.code == 1003
    assert httpx.get(f"{voice_stack.urls['gateway']}/healthz", timeout=10).status_code == 200
