"""The call's audio to and from the staff console (issue 18 part 4): an aiortc peer that joins the ticket's
media room as the citizen, the same way a citizen's browser does (a single-use room token, one offer).

Caller → staff: the call's PCM16 (8 or 16 kHz) is resampled to 48 kHz and sent as 20 ms frames, paced at
real time (silence when the caller's audio is late). Staff → caller: the staff browser's Opus, decoded by
aiortc, resampled to the call's rate with PyAV and handed to `send_pcm`, which writes it down the call
socket as the hotline writes bot audio.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import time
from typing import Any, Awaitable, Callable, Optional

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

WEBRTC_RATE = 48000
FRAME_S = 0.02
MAX_BUFFER_S = 1.0  # caller audio waiting to go out; older audio is dropped rather than delayed


def upsample(pcm: bytes, rate: int, to_rate: int = WEBRTC_RATE) -> np.ndarray:
    """PCM16 at `rate` -> int16 samples at `to_rate` (linear interpolation)."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float32)
    if rate == to_rate or not len(samples):
        return samples.astype(np.int16)
    n = int(round(len(samples) * to_rate / rate))
    out = np.interp(np.arange(n) * (rate / to_rate), np.arange(len(samples)), samples)
    return np.clip(out, -32768, 32767).astype(np.int16)


class CallerAudioTrack(MediaStreamTrack):
    """The caller's voice as a WebRTC audio track: 48 kHz mono frames of 20 ms, at real time."""

    kind = "audio"

    def __init__(self, rate: int):
        super().__init__()
        self._rate = rate
        self._buffer = bytearray()
        self._start: Optional[float] = None
        self._pts = 0

    def push(self, pcm: bytes) -> None:
        self._buffer += pcm
        limit = int(self._rate * MAX_BUFFER_S) * 2
        if len(self._buffer) > limit:
            del self._buffer[:len(self._buffer) - limit]

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples_out = int(WEBRTC_RATE * FRAME_S)
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += samples_out
            wait = self._start + self._pts / WEBRTC_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        need = int(self._rate * FRAME_S) * 2
        chunk = bytes(self._buffer[:need])
        del self._buffer[:need]
        chunk += b"\x00" * (need - len(chunk))
        samples = upsample(chunk, self._rate)[:samples_out]
        if len(samples) < samples_out:
            samples = np.pad(samples, (0, samples_out - len(samples)))
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE)
        return frame


class StaffBridge:
    """One call's audio link to the staff member in the ticket's room."""

    def __init__(self, rate: int, send_pcm: Callable[[bytes], Awaitable[None]]):
        self.rate = rate
        self._send_pcm = send_pcm
        self.track = CallerAudioTrack(rate)
        self._pc: Optional[RTCPeerConnection] = None
        self._readers: list[asyncio.Task] = []
        self.frames_to_caller = 0
        self.closed = False

    @property
    def live(self) -> bool:
        return self._pc is not None and not self.closed and self._pc.connectionState not in ("failed", "closed")

    def feed(self, pcm: bytes) -> None:
        """Caller audio (PCM16 at the call's rate) for staff."""
        if not self.closed:
            self.track.push(pcm)

    async def connect(self, answer: Callable[[str, str, str], Awaitable[dict[str, Any]]], token: str) -> None:
        """Joins the room as the citizen: `answer(token, sdp, "offer")` is the media service's signaling."""
        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(self.track)
        pc.on("track", lambda track: self._readers.append(asyncio.ensure_future(self._to_caller(track)))
                                      if track.kind == "audio" else None)
        await pc.setLocalDescription(await pc.createOffer())
        reply = await answer(token, pc.localDescription.sdp, "offer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type=reply["type"]))
        logger.info("voice.bridge.connecting rate=%d", self.rate)

    async def _to_caller(self, track) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        try:
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):
                    await self._send_pcm(out.to_ndarray().astype("<i2").tobytes())
                    self.frames_to_caller += 1
        except MediaStreamError:
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("voice.bridge.to_caller_failed")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self.track.stop()
        if self._pc is not None:
            await self._pc.close()
        logger.info("voice.bridge.closed frames_to_caller=%d", self.frames_to_caller)
