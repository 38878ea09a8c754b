"""A track whose source can be swapped, so a peer can reconnect without the other side renegotiating.

Each room has one SwitchableTrack per (role, kind). The other peer's sender and the recorder read
from it through a MediaRelay; when the peer reconnects, only the source changes. Frames are
re-stamped on a clock shared by the room, so recordings keep audio and video in step and time
never runs backwards across a reconnect.
"""
from __future__ import annotations

import asyncio
import fractions
import time
from typing import Optional

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_GAP_S = 0.25
OPUS_PACKET_SAMPLES = 960


class SwitchableTrack(MediaStreamTrack):
    def __init__(self, kind: str, epoch: float):
        super().__init__()
        self.kind = kind
        self._epoch = epoch
        self._source: Optional[MediaStreamTrack] = None
        self._changed = asyncio.Event()
        self._next_pts = 0
        self.frames = 0

    @property
    def has_source(self) -> bool:
        return self._source is not None

    def set_source(self, track: MediaStreamTrack) -> None:
        self._source = track
        self._changed.set()

    def clear_source(self, track: MediaStreamTrack) -> None:
        if self._source is track:
            self._source = None

    def stop(self) -> None:
        super().stop()
        self._source = None
        self._changed.set()

    async def recv(self):
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                frame = await source.recv()
            except MediaStreamError:
                self.clear_source(source)
                continue
            self.frames += 1
            return self._restamp(frame)

    def _restamp(self, frame):
        elapsed = time.monotonic() - self._epoch
        if self.kind == "video":
            pts = max(int(elapsed * VIDEO_CLOCK), self._next_pts)
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self._next_pts = pts + VIDEO_CLOCK // 1000  # webm keeps ms: two frames never share one
        else:
            wall = int(elapsed * AUDIO_RATE)
            # Contiguous while audio flows; jump ahead after a gap (peer away) so sound stays in step.
            pts = wall if wall - self._next_pts > AUDIO_GAP_S * AUDIO_RATE else self._next_pts
            frame.time_base = fractions.Fraction(1, AUDIO_RATE)
            # A passthrough packet (video.passthrough) has no sample count: Opus from browsers is 20 ms.
            self._next_pts = pts + getattr(frame, "samples", OPUS_PACKET_SAMPLES)
        frame.pts = pts
        return frame
