"""Endpointing for the hotline: pauses inside a sentence never cut it in two, and a pause is
reported early (with the utterance so far) so recognition can start while the end is awaited."""
import sys
from pathlib import Path

import numpy as np
import pytest

from speech.vad import END, PAUSE, RESUMED, Endpointer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "zh"))
from zh_fixtures import utterances  # noqa: E402


def burst(seconds, rate=16000, amplitude=8000):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def quiet(seconds, rate=16000, level=50, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * level).astype(np.int16)


def run(ep, audio, frame_s=0.02):
    step = int(ep.sample_rate * frame_s)
    return [e for i in range(0, len(audio), step) for e in ep.events(audio[i:i + step])]


def test_speech_after_a_half_second_pause_is_one_utterance_and_the_pause_is_reported():
    ep = Endpointer(16000, pause_ms=300)
    audio = np.concatenate([quiet(0.3), burst(0.8), quiet(0.5), burst(0.6), quiet(1.0)])
    events = run(ep, audio)
    assert [e.kind for e in events] == [PAUSE, RESUMED, PAUSE, END]
    first, _, last, end = events
    assert len(end.samples) / 16000 >= 0.8 + 0.5 + 0.6  # both bursts and the pause between them
    assert 1.0 <= len(first.samples) / 16000 <= 1.4  # the first burst and 0.3 s of quiet
    assert np.array_equal(end.samples[:len(last.samples)], last.samples)  # the guess heard all but quiet
    assert len(end.samples) - len(last.samples) == int(0.4 * 16000)  # 700 ms end less the 300 ms pause


def test_feed_reports_only_ends_and_no_pause_without_pause_ms():
    audio = np.concatenate([burst(0.8), quiet(0.5), burst(0.6), quiet(1.0)])
    assert [e.kind for e in run(Endpointer(16000), audio)] == [END]
    cuts = Endpointer(16000, pause_ms=300).feed(audio)
    assert len(cuts) == 1


def test_a_large_frame_with_a_pause_and_more_speech_keeps_the_events_in_order():
    ep = Endpointer(8000, pause_ms=300)
    audio = np.concatenate([burst(0.5, 8000), quiet(0.4, 8000), burst(0.5, 8000), quiet(0.8, 8000)])
    assert [e.kind for e in ep.events(audio)] == [PAUSE, RESUMED, PAUSE, END]  # one 2.2 s frame


@pytest.mark.parametrize("rate", [16000, 8000])
def test_no_mandarin_fixture_is_cut_in_two_and_the_last_pause_holds_the_whole_sentence(rate):
    for u in utterances():
        samples = u.samples(rate)  # the speech and 0.8 s of quiet after it (A-law at 8 kHz)
        ep = Endpointer(rate, pause_ms=300)
        events = run(ep, np.concatenate([samples, np.zeros(rate // 2, np.int16)]))
        ends = [e for e in events if e.kind == END]
        assert len(ends) == 1, f"{u.file} was cut into {len(ends)} utterances at {rate} Hz"
        pauses = [e for e in events if e.kind == PAUSE]
        assert events[-2].kind == PAUSE, u.file  # recognition of the last guess is the utterance's
        assert np.array_equal(ends[0].samples[:len(pauses[-1].samples)], pauses[-1].samples)


def test_an_utterance_cut_by_the_gateway_is_not_trimmed_again_by_the_servers_endpointer():
    # The speech server endpoints what the gateway sends: an utterance that starts mid-speech. A dip
    # between its first syllables is not the line's noise floor (once taken for it, the quieter
    # speech after it fell under 3x that "floor" and the onset was cut off: 付房租… heard as 能不能…).
    rate = 8000
    audio = np.concatenate([burst(0.16, rate), burst(0.02, rate, amplitude=240), burst(0.4, rate, amplitude=650),
                            burst(0.5, rate)])
    ep = Endpointer(rate)
    assert ep.feed(audio) == []
    assert len(ep.flush()) == len(audio)
