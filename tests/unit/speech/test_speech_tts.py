"""Text-to-speech: espeak-ng as the always-present engine, cached prompts."""
import shutil

import numpy as np
import pytest

from speech.tts import CachedTTS, EspeakTTS, Speech

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (scripts/setup.sh installs the Debian package)")


@needs_espeak
def test_espeak_speaks_a_sentence_at_8khz():
    speech = EspeakTTS(sample_rate=8000).synthesize("您的公积金余额是1,234.5元，请拨打12329。")
    assert speech.sample_rate == 8000
    assert 1.0 < speech.seconds < 20.0
    samples = np.frombuffer(speech.pcm, dtype="<i2")
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 100  # audible, not silence


@needs_espeak
def test_text_starting_with_a_dash_is_spoken_not_taken_as_an_option():
    assert EspeakTTS().synthesize("-v 您好").seconds > 0.3


def test_missing_engine_says_what_to_install():
    from speech.errors import SynthesisError

    with pytest.raises(SynthesisError, match="espeak-ng"):
        EspeakTTS(executable="espeak-ng-not-here")


class CountingTTS:
    def __init__(self):
        self.calls = []

    def synthesize(self, text):
        self.calls.append(text)
        return Speech(b"\x00\x00" * len(text), 8000)


def test_fixed_prompts_are_synthesised_once():
    inner = CountingTTS()
    tts = CachedTTS(inner, prompts=["您好，这里是公积金热线"], max_entries=1)
    for _ in range(3):
        tts.synthesize("您好，这里是公积金热线")
    tts.synthesize("一")
    tts.synthesize("二")  # evicts 一 from the small LRU; the fixed prompt stays
    tts.synthesize("一")
    assert inner.calls == ["您好，这里是公积金热线", "一", "二", "一"]
