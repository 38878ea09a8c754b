"""Whisper base through faster-whisper: the embedded default recogniser.

Whisper is not streaming: the endpointer cuts utterances and each is decoded when it ends.
Unintelligible audio can make Whisper loop (temperature fallback re-decoded one utterance
for 31 s; one 8 kHz utterance came out as 冒冒冒…), so decoding is bounded three ways:
fewer fallback temperatures, a token budget proportional to the audio, and a deadline
checked between decoding attempts; the text is then cut to a length a person could have said.

Cost: faster-whisper always encodes a 30 s window, and for a 3 s utterance the padding is
most of the work (a decode took ~1.0 s on this 2-core machine, the encoder most of it). The
engine instead encodes a shorter window with CTranslate2 directly (`Window`: 15 s, or the
utterance and a second of quiet when longer; ~0.3-0.4 s a decode) and applies faster-whisper's
decoding rules itself: the same prompt (zh, transcribe, no timestamps), suppressed tokens,
temperature fallback on a repetitive or improbable result, silence dropped. The window's
length changes what Whisper hears; on the fixtures as the hotline cuts them (CER 16 kHz /
8 kHz A-law, 2026-12-06): 6 s 12.4% / 19.7% (without VAD), 12 s 9.4% / 19.7%, 15 s 9.9% /
16.3%, 20 s 8.2% / 18.5%, 30 s 8.6% / 18.9%. Silero VAD still trims each utterance first:
without it a cough or a burst of line noise came out as text (啊啊, 副) instead of nothing.
"""
import asyncio
import logging
import math
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


@dataclass(frozen=True)
class Window:
    """How much audio the encoder reads for one utterance (Whisper was trained on 30 s)."""
    min_s: float = 15.0  # shorter windows change what Whisper hears (see bench/hotline.py)
    margin_s: float = 1.0  # quiet after the utterance inside the window
    max_s: float = 30.0


# faster-whisper's decoding rules (TranscriptionOptions defaults)
_COMPRESSION_RATIO_MAX = 2.4
_LOGPROB_MIN = -1.0
_NO_SPEECH_MIN = 0.6
_BEST_OF = 5


class WhisperEngine:
    def __init__(self, model_dir: Path, *, terms: Iterable[str] = DEFAULT_TERMS, cpu_threads: int = 2,
                 limits: DecodeLimits = DecodeLimits(), beam_size: int = 5, vad_filter: bool = True,
                 window: Window | None = Window()):
        """window=None decodes through faster-whisper's own transcribe (a 30 s window, as before)."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = load_whisper(Path(model_dir), cpu_threads=cpu_threads)
        self._cleaner = TranscriptCleaner(terms)
        self.limits = limits
        self._beam_size = beam_size
        self._vad_filter = vad_filter
        self.window = window
        tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language="zh")
        self._tokenizer = tokenizer
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(tokenizer, [-1]))

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
        max_new_tokens = min(self.limits.max_tokens, _MODEL_TOKEN_ROOM, int(duration * self.limits.tokens_per_second) + 8)
        if self.window is None or duration + self.window.margin_s > self.window.max_s:
            raw = self._transcribe_30s(audio, duration, max_new_tokens, deadline)
        else:
            raw = self._decode_window(audio, max_new_tokens, deadline)
        text = _REPEAT.sub(r"\1", raw.replace("\ufffd", ""))  # U+FFFD: a character cut by the token budget
        text = _cap(text, int(duration * self.limits.chars_per_second) + 4)
        log.debug("speech.whisper.decoded audio_s=%.1f took_s=%.2f", duration, time.monotonic() - started)
        return self._cleaner.clean(text)

    def _transcribe_30s(self, audio: np.ndarray, duration: float, max_new_tokens: int, deadline: float) -> str:
        segments, _ = self._model.transcribe(
            audio, language="zh", beam_size=self._beam_size, temperature=list(self.limits.temperatures),
            condition_on_previous_text=False, without_timestamps=True, vad_filter=self._vad_filter,
            max_new_tokens=max_new_tokens,
        )
        parts = []
        for segment in segments:  # a generator: each step decodes one window
            parts.append(segment.text)
            if time.monotonic() > deadline:
                log.warning("speech.whisper.deadline audio_s=%.1f", duration)
                break
        return "".join(parts)

    def _decode_window(self, audio: np.ndarray, max_new_tokens: int, deadline: float) -> str:
        """One utterance in one fitted window, with faster-whisper's fallback and silence rules."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_compression_ratio

        if self._vad_filter:
            audio = _speech_only(audio)
            if len(audio) < 0.1 * WHISPER_RATE:
                return ""
        model = self._model
        features = model.feature_extractor(audio)
        needed = math.ceil(len(audio) / WHISPER_RATE + self.window.margin_s)
        seconds = min(self.window.max_s, max(self.window.min_s, needed))
        frames = int(seconds * WHISPER_RATE) // model.feature_extractor.hop_length
        window = np.ascontiguousarray(pad_or_trim(features, frames)[None])
        encoded = model.model.encode(ctranslate2.StorageView.from_array(window))
        tried, chosen = [], None  # (avg logprob, repetitive, text, no-speech probability)
        for temperature in self.limits.temperatures:
            sampling = {"beam_size": 1, "num_hypotheses": _BEST_OF, "sampling_topk": 0,
                        "sampling_temperature": temperature}
            result = model.model.generate(
                encoded, [self._prompt], max_length=len(self._prompt) + max_new_tokens, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True, suppress_tokens=self._suppress,
                **(sampling if temperature > 0 else {"beam_size": self._beam_size}))[0]
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            text = self._tokenizer.decode(tokens).strip()
            repetitive = get_compression_ratio(text) > _COMPRESSION_RATIO_MAX
            tried.append((avg_logprob, repetitive, text, result.no_speech_prob))
            silence = result.no_speech_prob > _NO_SPEECH_MIN and avg_logprob < _LOGPROB_MIN
            if silence or (not repetitive and avg_logprob >= _LOGPROB_MIN):
                chosen = tried[-1]
                break
            if time.monotonic() > deadline:
                log.warning("speech.whisper.deadline audio_s=%.1f", len(audio) / WHISPER_RATE)
                break
        if chosen is None:  # every attempt failed (or time ran out): the likeliest that does not loop
            chosen = max([t for t in tried if not t[1]] or tried, key=lambda t: t[0])
        avg_logprob, _, text, no_speech = chosen
        if no_speech > _NO_SPEECH_MIN and avg_logprob <= _LOGPROB_MIN:
            return ""  # Whisper says nobody spoke
        return text

    async def transcribe_async(self, audio: np.ndarray, executor: Executor | None = None) -> str:
        """`transcribe` in a worker thread, so the caller's event loop stays free."""
        return await asyncio.get_running_loop().run_in_executor(executor, self.transcribe, audio)


def _speech_only(audio: np.ndarray) -> np.ndarray:
    """Silero VAD's speech parts (faster-whisper's vad_filter), joined."""
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    chunks, _ = collect_chunks(audio, get_speech_timestamps(audio, VadOptions()))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


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
