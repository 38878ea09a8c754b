"""Text-to-speech behind one interface, so a better licensed voice can replace espeak-ng.

espeak-ng (a Debian package) is the always-present engine: robotic but instant (~13 ms a
sentence). Its `cmn-latn-pinyin` voice reads Latin as pinyin; plain `cmn` reads it as
English. Text goes through `speakable` first, since espeak reads digits poorly.
"""
import logging
import shutil
import struct
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from speech.errors import SynthesisError
from speech.pcm import resample, to_bytes
from speech.spoken_text import speakable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Speech:
    pcm: bytes  # 16-bit little-endian mono
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class TextToSpeech(Protocol):
    def synthesize(self, text: str) -> Speech:
        """Text as the bot wrote it -> audio at the engine's configured rate."""


class EspeakTTS:
    def __init__(self, voice: str = "cmn-latn-pinyin", sample_rate: int = 8000, words_per_minute: int = 160,
                 executable: str = "espeak-ng", timeout_s: float = 10.0):
        path = shutil.which(executable)
        if path is None:
            raise SynthesisError(f"{executable} not found on PATH; scripts/setup.sh installs the Debian package espeak-ng")
        self._command = [path, "-v", voice, "-s", str(words_per_minute), "--stdout"]
        self.sample_rate = sample_rate
        self._timeout_s = timeout_s

    def synthesize(self, text: str) -> Speech:
        spoken = speakable(text).strip()
        if not spoken:
            return Speech(b"", self.sample_rate)
        try:  # text on stdin, never on the command line: it may start with "-"
            done = subprocess.run(self._command, input=spoken.encode(), capture_output=True,
                                  timeout=self._timeout_s, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            raise SynthesisError(f"espeak-ng failed: {exc}") from exc
        samples, rate = _read_wav(done.stdout)
        return Speech(to_bytes(resample(samples, rate, self.sample_rate)), self.sample_rate)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng's --stdout WAV: its chunk sizes are placeholders (0x7ffff...), so walk the chunks
    and take everything after `data`."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesisError(f"espeak-ng did not write a WAV file (first bytes {data[:12]!r})")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            channels, rate, bits = struct.unpack("<HI", data[pos + 10:pos + 16]) + struct.unpack("<H", data[pos + 22:pos + 24])
            if channels != 1 or bits != 16:
                raise SynthesisError(f"expected 16-bit mono from espeak-ng, got {bits}-bit with {channels} channels")
        elif chunk == b"data":
            if rate is None:
                raise SynthesisError("espeak-ng WAV has no fmt chunk before its data")
            body = data[pos + 8:]
            return np.frombuffer(body[:len(body) // 2 * 2], dtype="<i2"), rate
        pos += 8 + size
    raise SynthesisError("espeak-ng WAV has no data chunk")


class CachedTTS:
    """Keeps the audio of fixed prompts (greetings, menus, 'please hold') so they cost nothing
    after the first time; other sentences share a small LRU."""

    def __init__(self, inner: TextToSpeech, prompts: Iterable[str] = (), max_entries: int = 256):
        self._inner = inner
        self._max = max_entries
        self._lock = threading.Lock()
        self._fixed: dict[str, Speech] = {p: inner.synthesize(p) for p in prompts}
        self._recent: OrderedDict[str, Speech] = OrderedDict()

    def synthesize(self, text: str) -> Speech:
        if text in self._fixed:
            return self._fixed[text]
        with self._lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text]
        speech = self._inner.synthesize(text)
        with self._lock:
            self._recent[text] = speech
            while len(self._recent) > self._max:
                self._recent.popitem(last=False)
        return speech
