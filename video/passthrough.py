"""Relay encoded media without decoding or re-encoding it: the room forwards what the browsers send.

aiortc decodes every incoming stream and re-encodes it for each sender, which costs ~20% of a core
per 640x480@15 stream pair and caps one machine at a few recorded sessions. Its sender already
accepts encoded packets (`Encoder.pack`), so only the receiving side needs work below the public
API: a received track marked here gets its reassembled RTP frames as `av.Packet`s instead of
decoded frames. Keyframe requests (PLI/FIR) from a consumer are forwarded to the browser that
sends the stream, since no encoder of ours could honour them. Both legs must use the same codec,
so passthrough rooms offer VP8 and Opus only.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import queue
from typing import Callable, Optional

import av
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import rtcrtpreceiver

logger = logging.getLogger(__name__)
CLOCKS = {"audio": 48_000, "video": 90_000}
CODECS = {"audio": "audio/opus", "video": "video/vp8"}
_MARK = "anju_passthrough"
_original_worker = rtcrtpreceiver.decoder_worker


def _worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue, decode_error) -> None:
    """Replaces aiortc's decoder thread: marked tracks get packets, every other track decoded frames."""
    if not getattr(output_q, _MARK, None):
        return _original_worker(loop, input_q, output_q, decode_error)
    kind = getattr(output_q, _MARK)
    time_base = fractions.Fraction(1, CLOCKS[kind])
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        _codec, encoded = task
        packet = av.Packet(encoded.data)
        packet.pts, packet.time_base = encoded.timestamp, time_base
        if kind == "video":
            packet.is_keyframe = is_vp8_keyframe(encoded.data)
        asyncio.run_coroutine_threadsafe(output_q.put(packet), loop)


def install() -> None:
    """Idempotent; only tracks passed to `mark` change behaviour."""
    rtcrtpreceiver.decoder_worker = _worker


def mark(receiver: RTCRtpReceiver) -> None:
    """Call from the "track" event, before the connection starts receiving."""
    setattr(receiver.track._queue, _MARK, receiver.track.kind)


def is_marked(receiver: RTCRtpReceiver) -> bool:
    return bool(getattr(receiver.track._queue, _MARK, None))


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return bool(data) and not data[0] & 0x01


def keep_relayable_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Both legs of a relayed stream must speak one codec: VP8 video, Opus audio (and VP8's RTX).

    Call between setRemoteDescription and createAnswer: the negotiated list (`_codecs`, below the
    public API: setCodecPreferences cannot reach an answerer's transceivers in time) is narrowed."""
    wanted = CODECS[transceiver.kind]
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == wanted]
    if not kept:
        raise ValueError(f"the offer has no {wanted} for its {transceiver.kind} section")
    types = {c.payloadType for c in kept}
    transceiver._codecs = kept + [c for c in transceiver._codecs if c.mimeType.lower().endswith("/rtx")
                                  and c.parameters.get("apt") in types]


async def request_keyframe(receiver: Optional[RTCRtpReceiver]) -> None:
    """Sends a PLI to the browser behind `receiver` (below aiortc's public API, see module doc)."""
    if receiver is None:
        return
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)


def forward_keyframe_requests(sender: RTCRtpSender, upstream: Callable[[], Optional[RTCRtpReceiver]]) -> None:
    """A PLI/FIR that reaches our sender goes to whoever currently sends the stream."""
    def on_keyframe_request() -> None:
        task = asyncio.ensure_future(request_keyframe(upstream()))
        task.add_done_callback(_log_failure)

    sender._send_keyframe = on_keyframe_request


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("video.keyframe_request.failed error=%s", task.exception())


def cap_video_bitrate(sdp: str, kbps: int) -> str:
    """Adds b=AS to each video section of our answer: the browsers then send at most `kbps`, which
    bounds both the relay's bandwidth and the recording's size (nothing of ours re-encodes to cap it)."""
    out, in_video = [], False
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("b="):
            continue
        out.append(line)
        if in_video and line.startswith("c="):
            out.append(f"b=AS:{kbps}")
    return "\r\n".join(out)
