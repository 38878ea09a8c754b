"""Whisper base through faster-whisper: the embedded default recogniser.

Whisper is not streaming: the endpointer cuts utterances and each is decoded when it ends.
Unintelligible audio can make Whisper loop (temperature fallback re-decoded one utterance
for 31 s; one 8 kHz utterance came out as 冒冒冒…), so decoding is bounded three ways:
fewer fallback temperatures, a token budget proportional to the audio, and a deadline
checked between segments; the text is then cut to a length a person could have said.
"""
import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.models import load_whisper
from speech.pcm import check_rate, resample, to_float, to_samples
from speech.recogniser import Hypothesis
from speech.transcript import TranscriptCleaner
from speech.vad import Endpointer
from speech.vocabulary import DEFAULT_TERMS

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
_MODEL_TOKEN_ROOM = 440  # Whisper decodes at most 448 tokens, prompt included
_REPEAT = re.compile(r"([^\s,，。、]{1,6}?)(?:[\s,，。、]*\1){4,}")  # a unit said five or more times in a row: a decoding loop


@dataclass(frozen=True)
class DecodeLimits:
    max_seconds: float = 6.0  # wall-clock budget for one utterance
    tokens_per_second: float = 8.0  # token budget: fast Mandarin is ~5 characters a second
    max_tokens: int = 160
    chars_per_second: float = 7.0  # output cap
    temperatures: tuple[float, ...] = (0.0, 0.4)  # the default six let noise re-decode for tens of seconds


class WhisperEngine:
    def __init__(self, model_dir: Path, *, terms: Iterable[str] = DEFAULT_TERMS, cpu_threads: int = 2,
                 limits: DecodeLimits = DecodeLimits(), beam_size: int = 5, vad_filter: bool = True):
        self._model = load_whisper(Path(model_dir), cpu_threads=cpu_threads)
        self._cleaner = TranscriptCleaner(terms)
        self.limits = limits
        self._beam_size = beam_size
        self._vad_filter = vad_filter

    def open_stream(self, sample_rate: int, phrases: Sequence[str] | None = None) -> "WhisperStream":
        # Whisper has no grammar mode; phrase lists are for the vosk engine.
        return WhisperStream(self, check_rate(sample_rate))

    def transcribe(self, audio: np.ndarray) -> str:
        """One utterance, float32 at 16 kHz -> cleaned text, within the decode limits."""
        duration = len(audio) / WHISPER_RATE
        if duration < 0.1:
            return ""
        started = time.monotonic()
        deadline = started + self.limits.max_seconds
        segments, _ = self._model.transcribe(
            audio, language="zh", beam_size=self._beam_size, temperature=list(self.limits.temperatures),
            condition_on_previous_text=False, without_timestamps=True, vad_filter=self._vad_filter,
            max_new_tokens=min(self.limits.max_tokens, _MODEL_TOKEN_ROOM, int(duration * self.limits.tokens_per_second) + 8),
        )
        parts = []
        for segment in segments:  # a generator: each step decodes one window
            parts.append(segment.text)
            if time.monotonic() > deadline:
                log.warning("speech.whisper.deadline audio_s=%.1f", duration)
                break
        text = _REPEAT.sub(r"\1", "".join(parts).replace("\ufffd", ""))  # U+FFFD: a character cut by the token budget
        text = _cap(text, int(duration * self.limits.chars_per_second) + 4)
        log.debug("speech.whisper.decoded audio_s=%.1f took_s=%.2f", duration, time.monotonic() - started)
        return self._cleaner.clean(text)

    async def transcribe_async(self, audio: np.ndarray, executor: Executor | None = None) -> str:
        """`transcribe` in a worker thread, so the caller's event loop stays free."""
        return await asyncio.get_running_loop().run_in_executor(executor, self.transcribe, audio)


def _cap(text: str, limit: int) -> str:
    return text.strip()[:max(limit, 0)]


class WhisperStream:
    """One caller's audio: partials are empty while speech goes on; each utterance is final."""

    def __init__(self, engine: WhisperEngine, sample_rate: int):
        self._engine = engine
        self._rate = sample_rate
        self._endpointer = Endpointer(sample_rate)

    def accept(self, pcm: bytes) -> Hypothesis:
        utterances = self._endpointer.feed(to_samples(pcm))
        if not utterances:
            return Hypothesis("", final=False)
        return Hypothesis(" ".join(t for t in map(self._decode, utterances) if t), final=True)

    def finish(self) -> Hypothesis:
        rest = self._endpointer.flush()
        return Hypothesis(self._decode(rest) if rest is not None else "", final=True)

    def _decode(self, samples: np.ndarray) -> str:
        return self._engine.transcribe(to_float(resample(samples, self._rate, WHISPER_RATE)))
