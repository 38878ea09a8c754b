"""Energy-based endpointing: cuts a caller's audio into utterances as it streams in.

Cheap enough to run on every 20 ms frame; Whisper's own (Silero) VAD then trims each
utterance before decoding. The noise floor adapts, so line hiss does not count as speech.

An utterance ends after `end_silence_ms` of quiet. People pause inside a sentence (up to
0.54 s in the Mandarin fixtures, before an ID number), so that wait cannot be much shorter;
instead `events` also reports a *pause* after `pause_ms` of quiet, with the utterance so far,
so a caller can start recognising it while the endpointer waits, and *resumed* when speech
goes on after such a pause (whatever was started on the pause is then stale).
"""
from dataclasses import dataclass, field

import numpy as np

FRAME_MS = 20

PAUSE, RESUMED, END = "pause", "resumed", "end"


@dataclass(frozen=True)
class Event:
    kind: str  # PAUSE (speech may have ended: samples so far), RESUMED (it had not), END (the utterance)
    samples: np.ndarray | None = None


@dataclass
class Endpointer:
    sample_rate: int
    end_silence_ms: int = 700  # this much quiet after speech ends an utterance
    min_speech_ms: int = 200  # shorter bursts (clicks, coughs) are not utterances
    max_utterance_s: float = 15.0  # forced cut: keeps one Whisper decode inside one 30 s window
    pre_roll_ms: int = 200  # kept before the first voiced frame so onsets are not clipped
    min_level: float = 300.0  # RMS (16-bit scale) below which nothing is speech
    floor_ratio: float = 3.0  # speech is this many times louder than the noise floor
    pause_ms: int = 0  # quiet after speech that `events` reports as a pause (0: never)
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16), repr=False)
    _frames: list = field(default_factory=list, repr=False)
    _voiced_frames: int = 0
    _silent_run: int = 0
    _in_speech: bool = False
    _paused: bool = False
    _floor: float = 0.0

    @property
    def frame_len(self) -> int:
        return self.sample_rate * FRAME_MS // 1000

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add int16 samples; returns the utterances that ended within them."""
        return [e.samples for e in self.events(samples) if e.kind == END]

    def events(self, samples: np.ndarray) -> list[Event]:
        """Add int16 samples; returns what happened within them, in order: pauses, resumptions, ends."""
        buf = np.concatenate([self._pending, np.asarray(samples, np.int16)])
        n = len(buf) // self.frame_len * self.frame_len
        self._pending = buf[n:]
        done = []
        for frame in buf[:n].reshape(-1, self.frame_len):
            event = self._frame(frame)
            if event is not None:
                done.append(event)
        return done

    def flush(self) -> np.ndarray | None:
        """End of audio: the utterance in progress, if it held enough speech."""
        if self._pending.size:
            self._frames.append(self._pending)
            self._pending = np.zeros(0, np.int16)
        return self._cut() if self._in_speech else None

    def _frame(self, frame: np.ndarray) -> Event | None:
        level = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))
        voiced = level > max(self.min_level, self._floor * self.floor_ratio)
        if not voiced:  # track the floor on quiet frames only; fast down, slow up (from 0: a stream may
            # start mid-speech, e.g. an utterance the gateway cut, and a dip between syllables is no floor)
            self._floor = min(level, 0.95 * self._floor + 0.05 * level)
        self._frames.append(frame)
        if not self._in_speech:
            self._voiced_frames = self._voiced_frames + 1 if voiced else 0
            self._frames = self._frames[-((self.min_speech_ms + self.pre_roll_ms) // FRAME_MS):]
            if self._voiced_frames * FRAME_MS >= self.min_speech_ms:
                self._in_speech, self._silent_run = True, 0
            return None
        self._silent_run = 0 if voiced else self._silent_run + 1
        if self._silent_run * FRAME_MS >= self.end_silence_ms or len(self._frames) * FRAME_MS >= self.max_utterance_s * 1000:
            return Event(END, self._cut())
        if voiced and self._paused:
            self._paused = False
            return Event(RESUMED)
        if self.pause_ms and not self._paused and self._silent_run and self._silent_run * FRAME_MS >= self.pause_ms:
            self._paused = True
            return Event(PAUSE, np.concatenate(self._frames))
        return None

    def _cut(self) -> np.ndarray:
        utterance = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
        self._frames, self._in_speech, self._voiced_frames, self._silent_run = [], False, 0, 0
        self._paused = False
        return utterance
