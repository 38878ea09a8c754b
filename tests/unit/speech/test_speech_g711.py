"""G.711 A-law and µ-law at 8 kHz, and resampling between telephone and recogniser rates."""
import warnings

import numpy as np
import pytest

from speech import g711
from speech.errors import AudioFormatError
from speech.pcm import resample, to_bytes, to_samples

LAWS = [(g711.alaw_encode, g711.alaw_decode), (g711.ulaw_encode, g711.ulaw_decode)]


def tone(freq=440.0, seconds=0.5, rate=8000, amplitude=12000):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize("encode,decode", LAWS)
def test_round_trip_stays_within_companding_error(encode, decode):
    samples = np.concatenate([tone(amplitude=a) for a in (100, 1000, 12000, 32000)])
    coded = encode(to_bytes(samples))
    assert len(coded) == len(samples)  # one byte a sample: 160 bytes per 20 ms at 8 kHz
    back = to_samples(decode(coded)).astype(np.int32)
    error = np.abs(back - samples)
    # Logarithmic companding: the step grows with the level, about 1/16 of it at most.
    assert np.all(error <= np.maximum(np.abs(samples.astype(np.int32)) // 16, 16) + 1)
    snr = 10 * np.log10(np.sum(samples.astype(float) ** 2) / np.sum(error.astype(float) ** 2))
    assert snr > 30


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_bit_exact_with_the_stdlib_reference(law):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop left the stdlib in Python 3.13")
    every_sample = np.arange(-32768, 32768, dtype=np.int16)
    encode = getattr(g711, f"{law}_encode")
    decode = getattr(g711, f"{law}_decode")
    assert encode(to_bytes(every_sample)) == getattr(audioop, f"lin2{law}")(to_bytes(every_sample), 2)
    assert decode(bytes(range(256))) == getattr(audioop, f"{law}2lin")(bytes(range(256)), 2)


def test_odd_byte_counts_are_refused():
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        g711.alaw_encode(b"\x00\x01\x02")


def test_resampling_8k_to_16k_and_back_keeps_a_voice_band_tone():
    original = tone(freq=1000, seconds=1.0)
    up = resample(original, 8000, 16000)
    assert len(up) == 16000 and up.dtype == np.int16
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins over one second
    back = resample(up, 16000, 8000)
    inner = slice(100, -100)  # the filters' edges
    assert np.max(np.abs(back[inner].astype(int) - original[inner])) < 0.05 * 12000


def test_downsampling_removes_what_8k_cannot_carry():
    high = tone(freq=6000, seconds=1.0, rate=16000)
    down = resample(high, 16000, 8000)
    assert np.sqrt(np.mean(down[100:-100].astype(float) ** 2)) < 0.05 * np.sqrt(np.mean(high.astype(float) ** 2))
