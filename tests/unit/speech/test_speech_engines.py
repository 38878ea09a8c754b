"""Recogniser engines: endpointing, vosk through a fake Kaldi recogniser (no Chinese vosk
model exists here), and Whisper base when scripts/setup.sh has assembled it."""
import json
import time

import numpy as np
import pytest

from speech.pcm import to_bytes, to_float
from speech.vad import Endpointer
from speech.vosk_engine import VoskEngine


def burst(seconds, rate=8000, amplitude=8000, freq=300):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def quiet(seconds, rate=8000, level=50, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * level).astype(np.int16)


def test_endpointer_cuts_two_utterances_and_ignores_a_click():
    audio = np.concatenate([quiet(0.5), burst(0.05), quiet(0.5), burst(1.0), quiet(1.0), burst(0.6), quiet(0.3)])
    ep = Endpointer(8000)
    utterances = []
    for i in range(0, len(audio), 1600):  # 200 ms frames, as clients send them
        utterances += ep.feed(audio[i:i + 1600])
    assert len(utterances) == 1 and 1.0 <= len(utterances[0]) / 8000 <= 2.0
    last = ep.flush()
    assert last is not None and 0.6 <= len(last) / 8000 <= 1.2


def test_endpointer_forces_a_cut_in_endless_speech():
    ep = Endpointer(8000, max_utterance_s=3.0)
    cuts = ep.feed(burst(7.0))
    assert len(cuts) == 2 and all(len(c) / 8000 <= 3.0 for c in cuts)


class FakeKaldi:
    """Kaldi's recogniser contract: AcceptWaveform True at an utterance end."""

    def __init__(self, model, rate, grammar):
        self.rate, self.grammar, self.fed = rate, grammar, 0

    def AcceptWaveform(self, pcm):
        self.fed += 1
        return self.fed % 3 == 0

    def PartialResult(self):
        return json.dumps({"partial": "攻击 金"})

    def Result(self):
        return json.dumps({"text": "我 想 查 攻击 金 鱼鵝"})

    def FinalResult(self):
        return json.dumps({"text": "一 万 二"})


def test_vosk_streams_partials_then_corrected_finals():
    stream = VoskEngine(object(), recogniser_factory=FakeKaldi).open_stream(8000)
    chunk = to_bytes(quiet(0.2))
    first, second, third = (stream.accept(chunk) for _ in range(3))
    assert (first.final, first.text) == (False, "攻击金")  # partials: joined, not corrected (they change)
    assert third.as_message() == {"text": "我想查公积金余额"}
    assert stream.finish().as_message() == {"text": "12000"}


def test_vosk_grammar_mode_from_a_phrase_list():
    engine = VoskEngine(object(), recogniser_factory=FakeKaldi)
    stream = engine.open_stream(16000, phrases=["是", "不是", "转人工", "是"])
    assert stream._rec.rate == 16000
    assert json.loads(stream._rec.grammar) == ["是", "不是", "转人工", "[unk]"]


def test_vosk_without_a_model_says_so(tmp_path):
    from speech.errors import ModelMissing

    with pytest.raises(ModelMissing, match="vosk model directory not found"):
        VoskEngine.from_path(tmp_path / "no-model")


def test_missing_whisper_model_says_how_to_get_it(tmp_path):
    from speech.errors import ModelMissing
    from speech.whisper_engine import WhisperEngine

    with pytest.raises(ModelMissing, match="scripts/setup.sh"):
        WhisperEngine(tmp_path)


# --- Whisper base (skips with the reason when the model is not assembled) ---------------

@pytest.fixture(scope="module")
def whisper(whisper_dir):
    from speech.whisper_engine import WhisperEngine

    return WhisperEngine(whisper_dir)


@pytest.fixture(scope="module")
def whisper_raw(whisper_dir):
    """No VAD before decoding, so noise reaches the decoder (the path that can loop)."""
    from speech.whisper_engine import WhisperEngine

    return WhisperEngine(whisper_dir, vad_filter=False)


def test_whisper_model_matches_its_checksums(whisper_dir):
    from speech.models import check_whisper_dir

    check_whisper_dir(whisper_dir, verify_checksums=True)


def test_whisper_transcribes_a_short_utterance_in_time(whisper, espeak):
    audio = to_float(espeak("我想查询公积金余额"))
    started = time.monotonic()
    text = whisper.transcribe(audio)
    assert time.monotonic() - started < whisper.limits.max_seconds
    assert text and "\ufffd" not in text
    assert len(text) <= len(audio) / 16000 * whisper.limits.chars_per_second + 4


def test_whisper_returns_within_the_cap_on_white_noise(whisper_raw):
    noise = (np.random.default_rng(7).standard_normal(5 * 16000) * 0.3).astype(np.float32)
    started = time.monotonic()
    text = whisper_raw.transcribe(noise)
    assert time.monotonic() - started < whisper_raw.limits.max_seconds + 1.0
    assert len(text) <= 5 * whisper_raw.limits.chars_per_second + 4


def test_whisper_returns_within_the_cap_on_audio_that_makes_it_loop(whisper_raw, espeak):
    # 15 s of espeak Mandarin: with faster-whisper's defaults this decoded for 21-23 s here.
    text = "今天天气很好我想查询公积金余额然后提取一部分用于装修房子请问需要什么材料还有贷款的额度是多少"
    audio = to_float(espeak(text)[:15 * 16000])
    started = time.monotonic()
    out = whisper_raw.transcribe(audio)
    assert time.monotonic() - started < whisper_raw.limits.max_seconds + 1.0
    assert len(out) <= 15 * whisper_raw.limits.chars_per_second + 4


def test_whisper_stream_cuts_8khz_telephone_audio_into_a_final(whisper, espeak):
    audio = np.concatenate([quiet(0.4), espeak("公积金余额", rate=8000), quiet(1.0, seed=1)])
    stream = whisper.open_stream(8000)
    replies = [stream.accept(to_bytes(audio[i:i + 1600])) for i in range(0, len(audio), 1600)]
    finals = [r for r in replies if r.final]
    assert len(finals) == 1 and finals[0].text
    assert all(r.text == "" for r in replies if not r.final)
    assert stream.finish().as_message() == {"text": ""}
