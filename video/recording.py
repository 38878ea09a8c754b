"""Session recording to webm (VP8 + Opus): one stream per (role, kind), all declared up front.

We do not use aiortc's MediaRecorder: it sizes a video stream from its first frame, so a
peer whose camera never sends makes the container fail to open. Here every stream has a fixed
size and starts at once; a silent peer just leaves its stream short. The file's SHA-256 is
what enters the audit log, so a file is never written twice: every opening of a room records
to a new name (`recording_path`) and the recorder refuses a path that exists.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import fractions
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from video.tracks import AUDIO_RATE, VIDEO_CLOCK

logger = logging.getLogger(__name__)


class RecordingError(Exception):
    """The recording could not be written or closed."""


@dataclass(frozen=True)
class Recording:
    path: Path
    sha256: str
    size_bytes: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recording_path(directory: Path, room_id: str, now: Optional[dt.datetime] = None) -> Path:
    """<room>-<UTC time to the microsecond>-<random>.webm: a reconnect, a re-opened room or the same room
    moved to another media node sharing the directory never lands on an earlier recording's name."""
    while True:
        stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / f"{room_id}-{stamp}-{secrets.token_hex(4)}.webm"
        if not path.exists():
            return path


class SessionRecorder:
    def __init__(self, path: Path, width: int = 640, height: int = 480, fps: int = 15,
                 video_bitrate: int = 400_000, encoded: bool = False):
        """With encoded=True the tracks carry VP8/Opus packets (video.passthrough) that are muxed as they are."""
        self.path = path
        self._encoded = encoded
        self._keyframe_seen: set[int] = set()
        self._width, self._height, self._fps, self._bitrate = width, height, fps, video_bitrate
        self._container = None
        self._streams: list = []
        self._tasks: list[asyncio.Task] = []
        # Encoding runs on one worker thread (PyAV releases the GIL): the event loop stays free for
        # signaling and RTP, and the container is only ever touched by that one thread.
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")

    def start(self, tracks: list[MediaStreamTrack]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            open(self.path, "xb").close()  # claims the name: an audited recording is never overwritten
        except FileExistsError as exc:
            raise RecordingError(f"{self.path.name} exists already; recordings are never overwritten") from exc
        self._container = av.open(str(self.path), mode="w", format="webm")
        for track in tracks:
            if track.kind == "video":
                stream = self._container.add_stream("libvpx", rate=self._fps,
                                                    options={"deadline": "realtime", "cpu-used": "16"})
                stream.width, stream.height, stream.pix_fmt = self._width, self._height, "yuv420p"
                stream.bit_rate = self._bitrate
                stream.codec_context.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            else:
                stream = self._container.add_stream("libopus", rate=AUDIO_RATE)
                stream.layout = "stereo"
                stream.codec_context.time_base = fractions.Fraction(1, AUDIO_RATE)
            self._streams.append(stream)
            self._tasks.append(asyncio.ensure_future(self._run(track, stream)))

    async def _run(self, track: MediaStreamTrack, stream) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self._encoded:
                # Muxing a packet takes microseconds; a hop to the worker thread and back can wait a GIL
                # switch interval (5 ms) each way, which fell behind ~150 packets/s on a loaded machine.
                self._mux(track.kind, stream, frame)
            else:
                await loop.run_in_executor(self._worker, self._write, track.kind, stream, frame)

    def _mux(self, kind: str, stream, packet) -> None:
        """Copies the packet (the relay shares it with a sender) and muxes it; video starts at a keyframe."""
        if kind == "video" and stream.index not in self._keyframe_seen:
            if not packet.is_keyframe:
                return
            self._keyframe_seen.add(stream.index)
        out = av.Packet(bytes(packet))
        out.pts = out.dts = packet.pts
        out.time_base, out.stream, out.is_keyframe = packet.time_base, stream, packet.is_keyframe
        try:
            self._container.mux(out)
        except (av.FFmpegError, ValueError) as exc:
            logger.warning("video.recording.packet_dropped kind=%s error=%s", kind, exc)

    def _write(self, kind: str, stream, frame) -> None:
        try:
            if kind == "video" and (frame.width, frame.height) != (self._width, self._height):
                pts, time_base = frame.pts, frame.time_base
                frame = frame.reformat(width=self._width, height=self._height, format="yuv420p")
                frame.pts, frame.time_base = pts, time_base
            for packet in stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            logger.warning("video.recording.frame_dropped kind=%s error=%s", kind, exc)

    def _close(self) -> None:
        try:
            for stream in [] if self._encoded else self._streams:
                for packet in stream.encode(None):
                    self._container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            logger.warning("video.recording.flush_failed error=%s", exc)
        try:
            self._container.close()
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise RecordingError(f"could not close {self.path.name}: {exc}") from exc

    async def stop(self, drain_s: float = 2.0) -> Recording:
        """Writes what is still queued (the tracks have ended), flushes and closes the file, then hashes
        it (in a thread: files can be large)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._container is None:
            raise RecordingError("recording was never started")
        try:
            await asyncio.get_running_loop().run_in_executor(self._worker, self._close)
        finally:
            self._container = None
            self._worker.shutdown(wait=False)
        digest = await asyncio.to_thread(sha256_of, self.path)
        return Recording(self.path, digest, self.path.stat().st_size)
