"""Live captions for a video room: one tap per party, on only while captions are on (issue 18.6).

The relay forwards the browsers' encoded Opus (video.passthrough), so no decoded audio exists in
the room: each tap subscribes to its party's audio track like any other consumer, takes copies of
the RTP payloads (the relay's own packets are shared, and PyAV rewrites timestamps in place),
decodes them with PyAV's Opus decoder to 16 kHz mono PCM16, cuts utterances with the project's
energy endpointer (speech/vad.py) and hands each utterance to a worker. The worker sends it to the
speech server (the hotline's client; the server applies the domain correction) and passes the text
to `on_caption`. Decoding and endpointing cost microseconds per 20 ms packet on the event loop;
recognition never runs there: a bounded backlog (`max_backlog_s` of audio) drops the oldest
utterances with a log line when the recogniser falls behind. In a room that decodes (no relay),
the track already gives AudioFrames: they are resampled the same way.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Awaitable, Callable, Optional, Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from speech.pcm import to_bytes
from speech.vad import Endpointer

logger = logging.getLogger(__name__)
RATE = 16_000
MAX_BACKLOG_S = 6.0  # audio waiting for the recogniser beyond this is dropped, oldest first
OnCaption = Callable[[str, str], Awaitable[None]]  # (role, text)


class Transcriber(Protocol):
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str: ...


class OpusDecoder:
    """Opus packets (bytes) -> 16 kHz mono int16 samples; also takes decoded AudioFrames."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("opus", "r")
        self._codec.sample_rate, self._codec.layout = 48_000, "stereo"
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.packets = 0
        self.errors = 0

    def decode(self, item) -> np.ndarray:
        if isinstance(item, av.AudioFrame):  # a decoding room's frame, shared too: resample a copy
            copy = av.AudioFrame.from_ndarray(item.to_ndarray(), format=item.format.name, layout=item.layout.name)
            copy.sample_rate = item.sample_rate
            frames = [copy]
        else:
            data = bytes(item)  # a copy: the relay's packet is shared with the other consumers
            self.packets += 1
            if not data:  # an empty av.Packet would flush the decoder for good
                return np.zeros(0, np.int16)
            try:
                frames = self._codec.decode(av.Packet(data))
            except av.error.FFmpegError as exc:  # one corrupt packet must not end the captions
                self.errors += 1
                logger.debug("video.captions.decode_failed error=%s", exc)
                return np.zeros(0, np.int16)
        out = []
        for frame in frames:
            frame.pts = None  # the resampler then keeps its own running time
            for resampled in self._resampler.resample(frame):
                out.append(resampled.to_ndarray().reshape(-1))
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


class CaptionTap:
    """One party's captions: reader (decode + endpoint, on the loop) and worker (recognition)."""

    def __init__(self, role: str, track: MediaStreamTrack, transcriber: Transcriber, on_caption: OnCaption,
                 max_backlog_s: float = MAX_BACKLOG_S):
        self.role = role
        self._track = track
        self._transcriber = transcriber
        self._on_caption = on_caption
        self._max_backlog = int(max_backlog_s * RATE)
        self._decoder = OpusDecoder()
        self._vad = Endpointer(RATE)
        self._backlog: collections.deque[np.ndarray] = collections.deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.audio_s = 0.0  # audio decoded
        self.cpu_s = 0.0  # thread CPU spent decoding and endpointing (recognition is the speech server's)
        self.dropped_s = 0.0
        self.captions = 0
        self.running = False

    def start(self) -> None:
        self.running = True
        self._tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._work())]

    async def stop(self) -> None:
        self.running = False
        self._track.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        logger.info("video.captions.tap_stopped role=%s audio_s=%.1f cpu_s=%.3f captions=%d dropped_s=%.1f",
                    self.role, self.audio_s, self.cpu_s, self.captions, self.dropped_s)

    def feed(self, item) -> None:
        """One packet or frame from the track: decode, endpoint, queue any utterance that ended."""
        started = time.thread_time()
        samples = self._decoder.decode(item)
        self.audio_s += len(samples) / RATE
        for utterance in self._vad.feed(samples):
            self.enqueue(utterance)
        self.cpu_s += time.thread_time() - started

    def enqueue(self, utterance: np.ndarray) -> None:
        self._backlog.append(utterance)
        while sum(len(u) for u in self._backlog) > self._max_backlog and len(self._backlog) > 1:
            dropped = self._backlog.popleft()
            self.dropped_s += len(dropped) / RATE
            logger.warning("video.captions.dropped role=%s seconds=%.1f reason=recogniser_behind",
                           self.role, len(dropped) / RATE)
        self._ready.set()

    @property
    def backlog_s(self) -> float:
        return sum(len(u) for u in self._backlog) / RATE

    async def _read(self) -> None:
        try:
            while True:
                self.feed(await self._track.recv())
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("video.captions.reader_failed role=%s", self.role)

    async def _work(self) -> None:
        while True:
            await self._ready.wait()
            if not self._backlog:
                self._ready.clear()
                continue
            utterance = self._backlog.popleft()
            try:
                text = (await self._transcriber.transcribe(to_bytes(utterance), RATE)).strip()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the speech server away: this line is lost, captions go on
                logger.warning("video.captions.recognition_failed role=%s error=%s", self.role, type(exc).__name__)
                continue
            if text:
                self.captions += 1
                try:
                    await self._on_caption(self.role, text)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("video.captions.deliver_failed role=%s", self.role)


class RoomCaptions:
    """The captions of one room: a tap per party while on, none while off."""

    def __init__(self, subscribe: Callable[[str], MediaStreamTrack], transcriber: Transcriber, on_caption: OnCaption,
                 roles: tuple[str, ...] = ("citizen", "staff"), max_backlog_s: float = MAX_BACKLOG_S):
        self._subscribe = subscribe
        self._transcriber = transcriber
        self._on_caption = on_caption
        self._roles = roles
        self._max_backlog_s = max_backlog_s
        self.taps: dict[str, CaptionTap] = {}
        self.started_at: Optional[float] = None
        self.stopped_taps: list[CaptionTap] = []

    @property
    def on(self) -> bool:
        return bool(self.taps)

    def start(self) -> None:
        if self.taps:
            return
        self.started_at = time.monotonic()
        for role in self._roles:
            tap = CaptionTap(role, self._subscribe(role), self._transcriber, self._on_caption, self._max_backlog_s)
            tap.start()
            self.taps[role] = tap

    async def stop(self) -> None:
        taps, self.taps = list(self.taps.values()), {}
        for tap in taps:
            await tap.stop()
        self.stopped_taps.extend(taps)
