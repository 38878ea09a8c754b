"""16-bit little-endian PCM as numpy arrays, and sample-rate conversion (8 kHz telephony <-> 16 kHz ASR)."""
from functools import lru_cache

import numpy as np

from speech.errors import AudioFormatError

MIN_RATE = 8000
MAX_RATE = 48000


def check_rate(sample_rate: int) -> int:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioFormatError(f"sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {sample_rate!r}")
    return sample_rate


def to_samples(pcm: bytes) -> np.ndarray:
    """Signed 16-bit little-endian bytes -> int16 array."""
    if len(pcm) % 2:
        raise AudioFormatError(f"16-bit PCM needs an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def to_bytes(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), the input Whisper expects."""
    return (np.asarray(samples, dtype=np.float32) / 32768.0).astype(np.float32)


def from_float(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples) * 32768.0), -32768, 32767).astype(np.int16)


@lru_cache(maxsize=16)
def _lowpass(cutoff: float, taps: int = 63) -> np.ndarray:
    """Hamming-windowed sinc; cutoff as a fraction of the sample rate (0 < cutoff < 0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    return (h / h.sum()).astype(np.float32)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole buffer (an utterance, a synthesised prompt); returns the input's dtype.

    Low-pass below the lower Nyquist rate, then linear interpolation: enough for speech
    between 8, 16 and 22.05 kHz, with no scipy in the venv.
    """
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples).copy()
    dtype = np.asarray(samples).dtype
    x = np.asarray(samples, dtype=np.float32)
    if dst_rate < src_rate:
        x = np.convolve(x, _lowpass(0.45 * dst_rate / src_rate), mode="same")
    n_out = int(round(len(x) * dst_rate / src_rate))
    t = np.arange(n_out) * (src_rate / dst_rate)
    y = np.interp(t, np.arange(len(x)), x).astype(np.float32)
    if dst_rate > src_rate:
        y = np.convolve(y, _lowpass(0.45 * src_rate / dst_rate), mode="same")
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.round(y), -32768, 32767).astype(dtype)
    return y.astype(dtype)
