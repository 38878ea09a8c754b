"""A track whose source can be swapped, so a peer can reconnect without the other side renegotiating.

Each room has one SwitchableTrack per (role, kind). The other peer's sender and the recorder read
from it through a MediaRelay; when the peer reconnects, only the source changes. Frames are
re-stamped on a clock shared by the room, so recordings keep audio and video in step and time
never runs backwards across a reconnect. Decoded video reaches each consumer as copies of its own
(PrivateFrameTrack), because encoding a frame changes it.
"""
from __future__ import annotations

import asyncio
import fractions
import time
from typing import Optional

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

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


class PrivateFrameTrack(MediaStreamTrack):
    """One consumer's feed of a relayed video track, in copies that no other consumer sees.

    MediaRelay hands every subscriber the same frame, and encoding mutates it: PyAV rescales pts
    and time_base in place to the encoder's time base, on the encoder's thread. The recorder
    (1/90000) and aiortc's VP8 sender (1/1000000) rewrote each other's timestamps mid-encode,
    libvpx refused a pts below its first ("pts is smaller than initial pts"), and the sender sent
    no more video for the rest of the call. All consumers copy on the event loop, so the shared
    frame is only ever read.
    """

    kind = "video"

    def __init__(self, relayed: MediaStreamTrack):
        super().__init__()
        self._relayed = relayed

    async def recv(self) -> VideoFrame:
        return copy_of(await self._relayed.recv())

    def stop(self) -> None:
        super().stop()
        self._relayed.stop()


def copy_of(frame: VideoFrame) -> VideoFrame:
    """The same picture and timestamp in buffers of its own, as yuv420p (what every encoder here takes)."""
    picture = frame.reformat(format="yuv420p")
    copy = VideoFrame(picture.width, picture.height, "yuv420p")
    for source, target in zip(picture.planes, copy.planes):
        if source.line_size == target.line_size:
            target.update(source)
            continue
        # The decoder pads its rows its own way (e.g. odd widths): copy each row's pixels, not the padding.
        pixels_in, pixels_out = memoryview(source), memoryview(target)
        for row in range(source.height):
            start_in, start_out = row * source.line_size, row * target.line_size
            pixels_out[start_out:start_out + source.width] = pixels_in[start_in:start_in + source.width]
    copy.pts, copy.time_base = frame.pts, frame.time_base
    return copy
