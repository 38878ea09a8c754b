"""Audio frames on the gateway's speech sockets: the config frame, PCM16 / G.711, WAV.

Callers declare their audio in a first text frame {"config": {"sample_rate": 8000|16000,
"encoding": "pcm16"|"mulaw"|"alaw"}}; G.711 is 8 kHz telephone audio only. Anything else
is a FrameError that names what was expected and the close code to use.
"""
from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass

from speech import g711

RATES = (8000, 16000)
ENCODINGS = ("pcm16", "mulaw", "alaw")
CLOSE_UNSUPPORTED = 1003  # malformed frame, wrong rate or encoding
CLOSE_TOO_BIG = 1009


class FrameError(Exception):
    """A frame the socket cannot take; `message` goes to the client, `code` closes the socket."""

    def __init__(self, message: str, code: int = CLOSE_UNSUPPORTED):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int = 16000
    encoding: str = "pcm16"

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm16" else 1

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.bytes_per_sample

    def decode(self, data: bytes) -> bytes:
        """A caller's frame -> 16-bit little-endian PCM at the same rate."""
        if self.encoding == "mulaw":
            return g711.ulaw_decode(data)
        if self.encoding == "alaw":
            return g711.alaw_decode(data)
        if len(data) % 2:
            raise FrameError(f"音频帧长度为 {len(data)} 字节，16 位 PCM 需要偶数字节。")
        return data

    def encode(self, pcm: bytes) -> bytes:
        """16-bit PCM at this rate -> the caller's encoding."""
        if self.encoding == "mulaw":
            return g711.ulaw_encode(pcm)
        if self.encoding == "alaw":
            return g711.alaw_encode(pcm)
        return pcm


def parse_json_frame(raw: str) -> dict:
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        raise FrameError("消息格式错误：文字帧必须是 JSON 对象，例如 {\"config\": {\"sample_rate\": 16000}}。")
    return frame


def parse_config(frame: dict, allow_g711: bool = False) -> AudioFormat:
    """{"config": {...}} -> AudioFormat, or FrameError with a clear message."""
    config = frame.get("config")
    if not isinstance(config, dict):
        raise FrameError("请先发送音频格式：{\"config\": {\"sample_rate\": 16000}}，再发送音频。")
    rate = config.get("sample_rate", 16000)
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    if isinstance(rate, bool) or rate not in RATES:
        raise FrameError(f"不支持的采样率 {rate!r}：只接受 8000 或 16000 Hz。")
    encoding = config.get("encoding", "pcm16")
    allowed = ENCODINGS if allow_g711 else ("pcm16",)
    if encoding not in allowed:
        raise FrameError(f"不支持的音频编码 {encoding!r}：只接受 {'、'.join(allowed)}。")
    if encoding != "pcm16" and rate != 8000:
        raise FrameError("G.711（mulaw/alaw）音频的采样率必须是 8000 Hz。")
    return AudioFormat(rate, encoding)


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Mono 16-bit PCM -> a complete WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return out.getvalue()
