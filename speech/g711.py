"""G.711 A-law (China, Europe) and µ-law (North America, Japan) at 8 kHz, 160 bytes per 20 ms.

Bit-exact with the stdlib `audioop` (the Sun reference code), which is deprecated in 3.11 and
gone in 3.13, so the tables are built here once with numpy.
"""
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 8000
_SEG_A_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_SEG_U_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _linear_to_alaw(sample: int) -> int:
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    seg = _segment(value, _SEG_A_END)
    if seg >= 8:
        return 0x7F ^ mask
    code = seg << 4
    code |= (value >> 1 if seg < 2 else value >> seg) & 0x0F
    return code ^ mask


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


def _linear_to_ulaw(sample: int) -> int:
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(value, _SEG_U_END)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0x0F)) ^ mask


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return _ULAW_BIAS - t if code & 0x80 else t - _ULAW_BIAS


@lru_cache(maxsize=None)
def _tables(law: str) -> tuple[np.ndarray, np.ndarray]:
    """(encode table indexed by sample + 32768, decode table indexed by code)."""
    encode, decode = {"alaw": (_linear_to_alaw, _alaw_to_linear), "ulaw": (_linear_to_ulaw, _ulaw_to_linear)}[law]
    enc = np.fromiter((encode(s) for s in range(-32768, 32768)), dtype=np.uint8, count=65536)
    dec = np.fromiter((decode(c) for c in range(256)), dtype=np.int16, count=256)
    return enc, dec


def _encode(law: str, pcm: bytes) -> bytes:
    from speech.pcm import to_samples

    samples = to_samples(pcm).astype(np.int32) + 32768
    return _tables(law)[0][samples].tobytes()


def _decode(law: str, data: bytes) -> bytes:
    return _tables(law)[1][np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit PCM -> A-law bytes (one per sample)."""
    return _encode("alaw", pcm)


def alaw_decode(data: bytes) -> bytes:
    """A-law bytes -> 16-bit PCM."""
    return _decode("alaw", data)


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit PCM -> µ-law bytes (one per sample)."""
    return _encode("ulaw", pcm)


def ulaw_decode(data: bytes) -> bytes:
    """µ-law bytes -> 16-bit PCM."""
    return _decode("ulaw", data)
