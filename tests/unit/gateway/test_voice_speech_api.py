"""The widget's speech endpoints: POST /api/tts (real espeak-ng where installed) and WS /ws/speech
(a fake speech server behind it)."""
import io
import json
import shutil
import wave

import fakeredis
import pytest

from gateway_app import gateway_client
from gateway.voice import prompts
from gateway.voice.runtime import Voice
from gateway.voice.synthesis import Synthesizer, espeak_engine
from speech.errors import SynthesisError
from voice_fakes import FakeRasa, FakeSpeech, install, silence, tone


class SpyEngine:
    """A TTS engine that remembers what it was asked and answers 0.1 s of silence (or fails)."""

    def __init__(self, fail=False):
        self.fail = fail
        self.texts = []

    def synthesize(self, text):
        from speech.tts import Speech

        if self.fail:
            raise SynthesisError("espeak-ng not found on PATH")
        self.texts.append(text)
        return Speech(b"\x00\x00" * 1600, 16000)


@pytest.fixture
def speech():
    return FakeSpeech()


@pytest.fixture
def client(speech):
    with gateway_client(FakeRasa().handler, fakeredis.FakeAsyncRedis(decode_responses=True),
                        rate_speech_session="5/60") as test_client:
        install(test_client.app, speech, None)
        yield test_client


@pytest.fixture
def api(client):
    client.headers["Authorization"] = f"Bearer {client.post('/api/session').json()['token']}"
    return client


def use_engine(client, engine):
    client.app.state.voice = Voice(client.app.state.voice.speech, Synthesizer(lambda rate: engine))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_tts_returns_a_playable_wav_of_the_text(api):
    api.app.state.voice = Voice(None, Synthesizer(espeak_engine("cmn-latn-pinyin")))
    resp = api.post("/api/tts", json={"text": "您的公积金余额为 12,345.67 元。"})
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(resp.content)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert 1.5 < w.getnframes() / 16000 < 15


def test_tts_speaks_numbers_as_chinese_words(api):
    from speech.tts import EspeakTTS

    seen = []

    class Recording(EspeakTTS):
        def __init__(self):
            self.sample_rate = 16000

        def synthesize(self, text):
            from speech.spoken_text import speakable
            from speech.tts import Speech

            seen.append(speakable(text))
            return Speech(b"\x00\x00" * 160, 16000)

    use_engine(api, Recording())
    assert api.post("/api/tts", json={"text": "贷款利率2.6%，热线12329"}).status_code == 200
    assert seen == ["贷款利率百分之二点六，热线幺二三二九"]


def test_tts_needs_a_session(client):
    resp = client.post("/api/tts", json={"text": "你好"})
    assert resp.status_code == 401 and resp.json()["detail"] == prompts.NEED_SESSION


@pytest.mark.parametrize("body, status", [({"text": "   "}, 400), ({"text": 5}, 400), ({}, 400),
                                          ({"text": "公" * 501}, 413)])
def test_tts_refuses_text_it_cannot_read(api, body, status):
    use_engine(api, SpyEngine())
    resp = api.post("/api/tts", json=body)
    assert resp.status_code == status and "\u4e00" <= resp.json()["detail"][0] <= "\u9fff"


def test_tts_accepts_exactly_500_characters_after_strip(api):
    engine = SpyEngine()
    use_engine(api, engine)
    assert api.post("/api/tts", json={"text": "  " + "公" * 500 + "\n"}).status_code == 200
    assert engine.texts == ["公" * 500]


def test_tts_unavailable_is_a_503_naming_the_hotline(api):
    use_engine(api, SpyEngine(fail=True))
    resp = api.post("/api/tts", json={"text": "你好"})
    assert resp.status_code == 503 and "12329" in resp.json()["detail"]


def test_tts_is_rate_limited_per_session(api):
    use_engine(api, SpyEngine())
    codes = [api.post("/api/tts", json={"text": "你好"}).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def test_fixed_prompts_are_made_once():
    engine = SpyEngine()
    synth = Synthesizer(lambda rate: engine, prompts=["您好"])
    synth.speak("您好", 16000)
    synth.speak("您好", 16000)
    synth.speak("再见", 16000)
    synth.speak("再见", 16000)
    assert engine.texts == ["您好", "再见"]


# --- WS /ws/speech -------------------------------------------------------------------

def read_until_close(ws):
    frames = []
    while True:
        msg = ws.receive()
        if msg["type"] == "websocket.close":
            return frames, msg.get("code")
        frames.append(json.loads(msg["text"]))


def test_dictation_gets_partials_then_one_final_text(api, speech):
    with api.websocket_connect("/ws/speech") as ws:
        ws.send_text(json.dumps({"config": {"sample_rate": 16000}}))
        for chunk in (tone(0.5), tone(0.5), silence(0.5)):
            ws.send_bytes(chunk)
        ws.send_text('{"eof" : 1}')
        frames, code = read_until_close(ws)
    assert frames == [{"partial": "公积金"}, {"text": "公积金 余额"}] and code == 1000
    assert speech.rates == [16000] and len(speech.audio) == 3


def test_dictation_needs_a_session(client):
    with client.websocket_connect("/ws/speech") as ws:
        frames, code = read_until_close(ws)
    assert frames == [{"error": prompts.NEED_SESSION}] and code == 1008


def test_dictation_with_recognition_away_says_so_and_closes_1013(api, speech):
    speech.up = False
    with api.websocket_connect("/ws/speech") as ws:
        ws.send_text(json.dumps({"config": {"sample_rate": 8000}}))
        frames, code = read_until_close(ws)
    assert frames == [{"error": prompts.SPEECH_UNAVAILABLE}] and code == 1013


@pytest.mark.parametrize("first, then, code", [
    ('{"config": {"sample_rate": 22050}}', None, 1003),
    ('{"config": {"sample_rate": 8000, "encoding": "alaw"}}', None, 1003),  # dictation is PCM16 only
    (b"\x00\x00", None, 1003),
    ("[1, 2]", None, 1003),
    ('{"config": {"sample_rate": 16000}}', b"\x00", 1003),
    ('{"config": {"sample_rate": 16000}}', b"\x00" * 32002, 1009),
    ('{"config": {"sample_rate": 16000}}', '{"config": {"sample_rate": 8000}}', 1003),
    ('{"config": {"sample_rate": 16000}}', '{"hello": 1}', 1003),
])
def test_bad_dictation_frames_close_with_a_message(api, first, then, code):
    with api.websocket_connect("/ws/speech") as ws:
        for frame in (first, then):
            if frame is not None:
                ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame)
        frames, closed = read_until_close(ws)
    assert len(frames) == 1 and "\u4e00" <= frames[0]["error"][0] <= "\u9fff" and closed == code


def test_dictation_longer_than_the_limit_is_refused(speech):
    with gateway_client(FakeRasa().handler, fakeredis.FakeAsyncRedis(decode_responses=True),
                        speech_max_audio_s=1.0) as small:
        install(small.app, speech, None)
        token = small.post("/api/session").json()["token"]
        with small.websocket_connect("/ws/speech", headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send_text(json.dumps({"config": {"sample_rate": 16000}}))
            for _ in range(3):
                ws.send_bytes(silence(0.5))
            frames, code = read_until_close(ws)
    assert code == 1009 and "录音太长" in frames[-1]["error"]
