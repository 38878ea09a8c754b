"""The recogniser interface every engine implements, modelled on vosk's recogniser so the
speech server can hand the protocol straight through.

Streams are synchronous and may take a while (Whisper decodes a whole utterance when it
ends): callers with an event loop run `accept` and `finish` in a thread pool.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Hypothesis:
    text: str
    final: bool  # True when an utterance ended: vosk's {"text": ...}; else {"partial": ...}

    def as_message(self) -> dict[str, str]:
        return {"text": self.text} if self.final else {"partial": self.text}


class RecognitionStream(Protocol):
    def accept(self, pcm: bytes) -> Hypothesis:
        """Feed 16-bit mono PCM; returns a final hypothesis when an utterance ended in it."""

    def finish(self) -> Hypothesis:
        """End of audio: the final hypothesis for whatever is left (possibly empty)."""


class Recogniser(Protocol):
    def open_stream(self, sample_rate: int, phrases: Sequence[str] | None = None) -> RecognitionStream:
        """A stream for one caller. `phrases` asks for grammar mode where the engine has one."""
