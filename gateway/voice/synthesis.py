"""Text-to-speech for the gateway: speech.tts (espeak-ng, numbers spoken first) in worker threads.

One engine per output rate (8 kHz for telephone calls, 16 kHz for the widget), each created on
first use with the hotline's fixed prompts cached, so a greeting costs nothing after the first
call. An engine that is missing or fails is SynthesisUnavailable; the channels say so in Chinese.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterable
from typing import Callable, Optional

from speech.errors import SynthesisError
from speech.tts import CachedTTS, EspeakTTS, TextToSpeech

logger = logging.getLogger(__name__)


class SynthesisUnavailable(Exception):
    """No speech can be made right now (engine not installed, or it failed)."""


_SENTENCE_END = re.compile(r"[。！？；!?;]")
_CLAUSE_END = re.compile(r"[，、：,:]")


def first_sentence(text: str, min_chars: int = 6, max_chars: int = 40) -> tuple[str, str]:
    """(what to say first, the rest): the first sentence of at least `min_chars`, or, when that runs
    past `max_chars`, its first clause; a reply can start playing after that much is synthesised."""
    end = next((m.end() for m in _SENTENCE_END.finditer(text) if m.end() >= min_chars), len(text))
    if end > max_chars:
        end = next((m.end() for m in _CLAUSE_END.finditer(text, 0, max_chars) if m.end() >= min_chars), end)
    head, rest = text[:end], text[end:]
    return (head, rest) if head.strip() and rest.strip() else (text, "")


def espeak_engine(voice: str) -> Callable[[int], TextToSpeech]:
    return lambda rate: EspeakTTS(voice=voice, sample_rate=rate)


class Synthesizer:
    def __init__(self, make_engine: Callable[[int], TextToSpeech], prompts: Iterable[str] = (),
                 max_entries: int = 256):
        self._make = make_engine
        self._prompts = tuple(prompts)
        self._max = max_entries
        self._engines: dict[int, CachedTTS] = {}
        self._lock = threading.Lock()

    def _engine(self, rate: int) -> CachedTTS:
        with self._lock:
            if rate not in self._engines:
                self._engines[rate] = CachedTTS(self._make(rate), self._prompts, self._max)
            return self._engines[rate]

    def speak(self, text: str, rate: int) -> bytes:
        """Blocking: text as the bot wrote it -> PCM16 at `rate`."""
        try:
            return self._engine(rate).synthesize(text).pcm
        except SynthesisError as exc:
            logger.warning("voice.tts.failed error=%s", exc)
            raise SynthesisUnavailable(str(exc)) from exc

    async def speech(self, text: str, rate: int, executor: Optional[object] = None) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(executor, self.speak, text, rate)
