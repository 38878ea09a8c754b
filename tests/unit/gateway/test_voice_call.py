"""The hotline socket /ws/voice as a caller's client sees it: fake recogniser and TTS, a fake Rasa
behind the real Conversation (so keyed ID numbers are tokenised as typed ones are)."""
import json
import time

import fakeredis
import pytest
from starlette.websockets import WebSocketDisconnect

from gateway_app import gateway_client
from gateway.voice import prompts
from voice_fakes import FakeRasa, FakeSpeech, FakeTTS, install, silence, tone


@pytest.fixture
def rasa():
    return FakeRasa()


@pytest.fixture
def speech():
    return FakeSpeech()


@pytest.fixture
def tts():
    return FakeTTS()


@pytest.fixture
def gateway(rasa, speech, tts):
    """gateway(**settings) -> a test client of the app, fakes installed; closed after the test."""
    opened = []

    def make(tts_engine=None, **overrides):
        settings = {"voice_playback_lead_ms": 60_000, "voice_dtmf_menu_wait_s": 0.2,
                    "voice_silence_timeout_s": 30.0, **overrides}
        ctx = gateway_client(rasa.handler, fakeredis.FakeAsyncRedis(decode_responses=True), **settings)
        client = ctx.__enter__()
        opened.append(ctx)
        install(client.app, speech, tts_engine or tts)
        return client

    yield make
    while SOCKETS:
        ws = SOCKETS.pop()
        try:
            ws.__exit__(None, None, None)
        except Exception:  # already closed by the gateway
            pass
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)


SOCKETS = []


def dial(client, config=None):
    ws = client.websocket_connect("/ws/voice").__enter__()
    SOCKETS.append(ws)
    assert ws.receive_json() == {"type": "session", "new": True}
    if config is not False:
        ws.send_text(json.dumps({"config": config or {"sample_rate": 16000}}))
    return ws


@pytest.fixture
def call(gateway):
    """call(config, **settings) -> a connected call socket, its config sent."""
    return lambda config=None, **overrides: dial(gateway(**overrides), config)


class Frames:
    """Everything the gateway sent, read until a condition holds."""

    def __init__(self, ws):
        self.ws = ws
        self.json: list[dict] = []
        self.audio = 0
        self.closed = None

    def until(self, pred, limit=400):
        for _ in range(limit):
            msg = self.ws.receive()
            if msg["type"] == "websocket.close":
                self.closed = msg.get("code")
                return None
            if msg.get("bytes") is not None:
                self.audio += len(msg["bytes"])
                continue
            frame = json.loads(msg["text"])
            self.json.append(frame)
            if pred(frame):
                return frame
        raise AssertionError(f"condition never held; got {self.json}")

    def bot_texts(self):
        return [f["text"] for f in self.json if f.get("type") == "bot"]


def test_a_call_opens_with_the_spoken_greeting_and_the_caller_hangs_up(call, tts):
    ws = call()
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "audio_end")
    assert frames.bot_texts() == [prompts.GREETING] and "按0，转人工" in prompts.GREETING
    assert frames.audio == int(0.2 * 16000) * 2  # PCM16 at 16 kHz, as the caller's config said
    assert tts.said[0] == (prompts.GREETING, 16000)
    ws.send_text(json.dumps({"hangup": 1}))
    assert frames.until(lambda f: f.get("type") == "hangup") == {"type": "hangup", "reason": "caller"}
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1000


def test_a_calls_own_session_ends_with_the_call_and_a_presented_one_is_kept(gateway):
    client = gateway()
    redis = client.app.state.sessions._r  # the fakeredis behind the sessions
    ws = dial(client)
    Frames(ws).until(lambda f: f.get("type") == "bot")
    assert client.portal.call(redis.keys, "anju:session:*")  # the call's session while it lasts
    ws.send_text(json.dumps({"hangup": 1}))
    Frames(ws).until(lambda f: False)
    assert client.portal.call(redis.keys, "anju:session:*") == []

    token = client.post("/api/session").json()["token"]
    with client.websocket_connect("/ws/voice", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json() == {"type": "session", "new": False}
        ws.send_text(json.dumps({"config": {"sample_rate": 16000}}))
        ws.send_text(json.dumps({"hangup": 1}))
        Frames(ws).until(lambda f: False)
    resp = client.post("/api/chat", json={"text": "你好"}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and "token" not in resp.json()  # still the same live session


def test_keypad_zero_asks_for_a_person_and_the_bots_buttons_become_keys(call, rasa, tts):
    ws = call()
    frames = Frames(ws)
    ws.send_text(json.dumps({"dtmf": "0#"}))  # a key cuts the greeting short
    frames.until(lambda f: f.get("type") == "bot" and f["text"] == "收到：转人工")
    assert {"type": "caller", "dtmf": "0"} in frames.json
    assert rasa.received == ["转人工"]
    frames.until(lambda f: f.get("type") == "audio_end")  # the reply's last sentence is made while its first plays
    assert any(text.endswith("请按键选择：按1，是；按2，不是。") for text, _ in tts.said)
    ws.send_text(json.dumps({"dtmf": "2"}))  # a lone key, no #: a menu choice after the short wait
    frames.until(lambda f: f.get("type") == "bot" and f["text"] == "收到：/deny")
    assert rasa.received == ["转人工", "/deny"]


def test_a_keyed_id_number_with_star_for_x_is_tokenised_like_a_typed_one(call, rasa):
    ws = call()
    frames = Frames(ws)
    for key in "11010519491231002*":
        ws.send_text(json.dumps({"dtmf": key}))
    ws.send_text(json.dumps({"dtmf": "#"}))
    frames.until(lambda f: f.get("type") == "bot" and f["text"].startswith("收到："))
    assert len(rasa.received) == 1
    assert "11010519491231002" not in rasa.received[0] and rasa.received[0].startswith("pii_id_")


def test_an_utterance_is_recognised_and_answered_by_the_bot(call, rasa, speech):
    ws = call()
    frames = Frames(ws)
    for chunk in (tone(0.6), silence(1.0)):
        for i in range(0, len(chunk), 3200):
            ws.send_bytes(chunk[i:i + 3200])
    frames.until(lambda f: f.get("type") == "bot" and f["text"].startswith("收到："))
    assert {"type": "caller", "text": "我想查询公积金余额"} in frames.json
    assert rasa.received == ["我想查询公积金余额"]
    (pcm, rate), = speech.utterances
    assert rate == 16000 and 0.6 <= len(pcm) / 2 / 16000 <= 1.6


def test_barge_in_cuts_a_long_reply_short(gateway):
    ws = dial(gateway(FakeTTS(seconds=6.0), voice_playback_lead_ms=0))
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "bot")  # the 6 s greeting starts playing
    time.sleep(0.5)
    voiced = tone(0.5)
    for i in range(0, len(voiced), 1600):
        ws.send_bytes(voiced[i:i + 1600])
    frames.until(lambda f: f.get("type") == "playback_stopped")
    assert frames.audio < 2.5 * 16000 * 2  # far less than the 6 s greeting went out
    assert not any(f.get("type") == "audio_end" for f in frames.json)


def test_a_key_pressed_while_a_reply_is_being_made_keeps_that_reply_silent(gateway, rasa):
    ws = dial(gateway(FakeTTS(seconds=3.0, delay_s=0.5), voice_playback_lead_ms=0))
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "bot")
    ws.send_text(json.dumps({"dtmf": "1#"}))
    frames.until(lambda f: f.get("type") == "bot" and f["text"].startswith("收到："))
    audio_before = frames.audio
    ws.send_text(json.dumps({"dtmf": "0#"}))  # while the first answer's speech is still being made
    frames.until(lambda f: f.get("type") == "bot" and f["text"] == "收到：转人工")
    assert frames.audio == audio_before  # not a byte of the first answer was played
    assert [f["type"] for f in frames.json].count("playback_stopped") == 2  # the greeting's, then the answer's
    frames.until(lambda f: f.get("type") == "audio_end")  # the answer to the last key is spoken in full


def test_the_phone_hears_no_source_citations():
    from gateway.voice.call import spoken_form

    text = "申请条件：\n· 连续缴存6个月；\n· 本人没有未结清的贷款\n（依据：某市实施细则；自2019年起适用。）\n（提示：以当地公告为准。）"
    assert spoken_form(text) == "申请条件：连续缴存6个月；本人没有未结清的贷款。（提示：以当地公告为准。）"


def test_silence_prompts_once_then_hangs_up_with_a_goodbye(call):
    ws = call(voice_silence_timeout_s=0.4)
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "hangup")
    assert frames.bot_texts() == [prompts.GREETING, prompts.STILL_THERE, prompts.GOODBYE_SILENCE]
    assert frames.json[-1] == {"type": "hangup", "reason": "silence"}
    frames.until(lambda f: False)
    assert frames.closed == 1000


def test_a_call_ends_at_the_maximum_length(call):
    ws = call(voice_max_call_s=0.5)
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "hangup")
    assert frames.json[-1] == {"type": "hangup", "reason": "max_length"}
    assert prompts.GOODBYE_MAX in frames.bot_texts()


def test_recognition_away_the_call_goes_on_by_keypad(call, speech, rasa):
    speech.up = False
    ws = call()
    frames = Frames(ws)
    for chunk in (tone(0.6), silence(1.0)):
        ws.send_bytes(chunk)
    frames.until(lambda f: f.get("type") == "bot" and f["text"] == prompts.RECOGNITION_DOWN)
    ws.send_text(json.dumps({"dtmf": "1#"}))
    frames.until(lambda f: f.get("type") == "bot" and f["text"].startswith("收到："))
    assert rasa.received == ['/faq{"faq_topic": "withdraw_overview"}']


def test_mulaw_telephone_audio_in_and_out(call, speech, tts):
    from speech.g711 import ulaw_encode

    ws = call({"sample_rate": 8000, "encoding": "mulaw"})
    frames = Frames(ws)
    frames.until(lambda f: f.get("type") == "audio_end")
    assert frames.audio == int(0.2 * 8000)  # one byte a sample: the reply is µ-law too
    assert tts.said[0][1] == 8000
    for chunk in (tone(0.6, 8000), silence(1.0, 8000)):
        for i in range(0, len(chunk), 320):
            ws.send_bytes(ulaw_encode(chunk[i:i + 320]))  # 160 bytes: 20 ms of G.711
    frames.until(lambda f: f.get("type") == "caller")
    (pcm, rate), = speech.utterances
    assert rate == 8000 and 0.6 <= len(pcm) / 2 / 8000 <= 1.6


@pytest.mark.parametrize("config, first, code", [
    (False, b"\x00\x00", 1003),  # audio before the config frame
    ({"sample_rate": 44100}, None, 1003),
    ({"sample_rate": 16000, "encoding": "mulaw"}, None, 1003),
    ({"sample_rate": 16000}, b"\x00\x00\x00", 1003),  # odd PCM16 byte count
    ({"sample_rate": 16000}, b"\x00" * 40000, 1009),
    ({"sample_rate": 16000}, '{"dtmf": "12a"}', 1003),
    ({"sample_rate": 16000}, "not json", 1003),
    ({"sample_rate": 16000}, '{"config": {"sample_rate": 8000}}', 1003),
])
def test_bad_frames_close_with_a_clear_message_and_code(call, config, first, code):
    ws = call(config)
    if first is not None:
        ws.send_bytes(first) if isinstance(first, bytes) else ws.send_text(first)
    frames = Frames(ws)
    error = frames.until(lambda f: "error" in f)
    assert any("\u4e00" <= c <= "\u9fff" for c in error["error"])  # a message a citizen can read
    frames.until(lambda f: False)
    assert frames.closed == code


def test_the_gateway_survives_a_bad_call(gateway):
    client = gateway()
    ws = dial(client)
    ws.send_bytes(b"\x01")
    Frames(ws).until(lambda f: "error" in f)
    ws2 = dial(client)
    ws2.send_text(json.dumps({"dtmf": "0#"}))
    Frames(ws2).until(lambda f: f.get("type") == "bot" and f["text"] == "收到：转人工")
