"""Two-party media rooms on aiortc: relay each peer's tracks to the other and record both.

Like aiortc's examples/server (one POST with the whole offer, non-trickle ICE), but the rooms
live in a registry the application owns, and every peer connection is closed on failure and at
shutdown. A peer that drops can join again: its outgoing tracks feed the same SwitchableTracks,
so the other side keeps its connection.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Awaitable, Callable, Optional

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from video import passthrough
from video.recording import Recording, RecordingError, SessionRecorder, recording_path
from video.tracks import PrivateFrameTrack, SwitchableTrack

logger = logging.getLogger(__name__)

ROLES = ("citizen", "staff")
KINDS = ("audio", "video")
MAX_VIDEO_KBPS = 600  # what a browser may send in a relayed-as-is room: ~4.5 MB per minute and stream at most
PeerLost = Callable[[str, str], Awaitable[None]]


class RoomError(Exception):
    """Base of the media errors the signaling edge translates."""


class RoomNotFound(RoomError):
    pass


class BadOffer(RoomError):
    """The SDP offer could not be applied or answered."""


def other_role(role: str) -> str:
    return "staff" if role == "citizen" else "citizen"


class Room:
    def __init__(self, room_id: str, ice_servers: list[RTCIceServer], record_path: Optional[Path],
                 on_peer_lost: Optional[PeerLost] = None, width: int = 640, height: int = 480, fps: int = 15,
                 relay_encoded: bool = False):
        """relay_encoded: forward the browsers' VP8/Opus as they are (video.passthrough) instead of
        decoding and re-encoding every stream; frames are then never skipped, as that would break decoding."""
        self.room_id = room_id
        self._encoded = relay_encoded
        self.max_video_kbps = MAX_VIDEO_KBPS
        self._receivers: dict[tuple[str, str], object] = {}
        self._ice_servers = ice_servers
        self._on_peer_lost = on_peer_lost
        self.created_at = time.monotonic()
        self.sources = {(r, k): SwitchableTrack(k, self.created_at) for r in ROLES for k in KINDS}
        self._relay = MediaRelay()
        self.peers: dict[str, RTCPeerConnection] = {}
        self._recorder = SessionRecorder(record_path, width, height, fps, encoded=relay_encoded) if record_path else None
        if self._recorder:
            # Decoded video to the recorder is unbuffered: if encoding falls behind it skips frames, never piles them up.
            self._recorder.start([self._subscribe((r, k)) for r in ROLES for k in KINDS])
        self.closed = False

    def _buffered(self, kind: str) -> bool:
        return kind == "audio" or self._encoded

    def _subscribe(self, source: tuple[str, str]) -> MediaStreamTrack:
        """A new consumer's feed of a source: decoded video comes as its own copies, since each
        consumer's encoder rewrites the frames it gets (video.tracks.PrivateFrameTrack)."""
        relayed = self._relay.subscribe(self.sources[source], buffered=self._buffered(source[1]))
        return PrivateFrameTrack(relayed) if source[1] == "video" and not self._encoded else relayed

    def has_peer(self, role: str) -> bool:
        pc = self.peers.get(role)
        return pc is not None and pc.connectionState not in ("failed", "closed")

    async def join(self, role: str, sdp: str, sdp_type: str = "offer") -> RTCSessionDescription:
        """Answers a complete offer; a second join for the same role replaces the first peer."""
        if role not in ROLES or self.closed:
            raise BadOffer(f"cannot join room {self.room_id} as {role}")
        old = self.peers.pop(role, None)
        if old is not None:
            await old.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        self.peers[role] = pc

        @pc.on("track")
        def on_track(track) -> None:
            if self._encoded:
                receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
                passthrough.mark(receiver)
                self._receivers[(role, track.kind)] = receiver
            self.sources[(role, track.kind)].set_source(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            logger.info("video.peer.state room=%s role=%s state=%s", self.room_id, role, pc.connectionState)
            if pc.connectionState == "connected" and self._encoded:
                # The other browser has been sending for a while: ask it for a keyframe this peer can start from.
                await passthrough.request_keyframe(self._receivers.get((other_role(role), "video")))
            # "closed" while still our peer means the far end hung up (DTLS close_notify): a drop too.
            if pc.connectionState in ("failed", "closed") and self.peers.get(role) is pc:
                await self._drop(role, pc)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sdp_type))
            offered = {t.kind for t in pc.getTransceivers()}
            if not offered & set(KINDS):
                raise ValueError("the offer has no audio or video section")
            for kind in KINDS:
                if kind in offered:
                    source = (other_role(role), kind)
                    sender = pc.addTrack(self._subscribe(source))
                    if self._encoded:
                        passthrough.forward_keyframe_requests(sender, lambda s=source: self._receivers.get(s))
            if self._encoded:
                for transceiver in pc.getTransceivers():
                    passthrough.keep_relayable_codecs(transceiver)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises many types for bad SDP; all mean "this offer failed"
            await self._close_peer(role, pc)
            raise BadOffer(f"offer rejected: {type(exc).__name__}: {exc}") from exc
        logger.info("video.peer.joined room=%s role=%s kinds=%s", self.room_id, role, ",".join(sorted(offered)))
        if self._encoded:
            return RTCSessionDescription(passthrough.cap_video_bitrate(pc.localDescription.sdp, self.max_video_kbps), "answer")
        return pc.localDescription

    async def _close_peer(self, role: str, pc: RTCPeerConnection) -> None:
        if self.peers.get(role) is pc:
            del self.peers[role]
        await pc.close()

    async def _drop(self, role: str, pc: RTCPeerConnection) -> None:
        await self._close_peer(role, pc)
        if self._on_peer_lost and not self.closed:
            await self._on_peer_lost(self.room_id, role)

    async def close(self) -> Optional[Recording]:
        """Closes both peers and the recording; returns the recording (or None) for the audit log."""
        if self.closed:
            return None
        self.closed = True
        for role, pc in list(self.peers.items()):
            await self._close_peer(role, pc)
        for track in self.sources.values():
            track.stop()
        if not self._recorder:
            return None
        try:
            return await self._recorder.stop()
        except RecordingError as exc:
            logger.error("video.recording.failed room=%s error=%s", self.room_id, exc)
            return None


class RoomRegistry:
    """All rooms of this media process; the app creates one and closes it at shutdown."""

    def __init__(self, ice_servers: list[RTCIceServer], recordings_dir: Optional[Path],
                 on_peer_lost: Optional[PeerLost] = None, width: int = 640, height: int = 480, fps: int = 15,
                 relay_encoded: bool = False):
        self._ice_servers = ice_servers
        self._dir = recordings_dir
        self._on_peer_lost = on_peer_lost
        self._size = (width, height, fps)
        self._encoded = relay_encoded
        if relay_encoded:
            passthrough.install()
        self._rooms: dict[str, Room] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def set_peer_lost(self, on_peer_lost: PeerLost) -> None:
        """Called with (room_id, role) when a peer's connection fails (not when we close it)."""
        self._on_peer_lost = on_peer_lost

    def get(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomNotFound(room_id)
        return room

    def open(self, room_id: str) -> Room:
        """Returns the room, creating it (and starting its recording, in a file of its own) on first use."""
        if room_id not in self._rooms:
            path = recording_path(self._dir, room_id) if self._dir else None
            self._rooms[room_id] = Room(room_id, self._ice_servers, path, self._peer_lost, *self._size,
                                        relay_encoded=self._encoded)
            logger.info("video.room.opened room=%s recording=%s", room_id, path.name if path else "-")
        return self._rooms[room_id]

    async def _peer_lost(self, room_id: str, role: str) -> None:
        if self._on_peer_lost:
            await self._on_peer_lost(room_id, role)

    async def close(self, room_id: str) -> Optional[Recording]:
        room = self._rooms.pop(room_id, None)
        return await room.close() if room else None

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(r) for r in list(self._rooms)), return_exceptions=True)


def ice_servers_from(urls: list[str], username: Optional[str] = None, credential: Optional[str] = None) -> list[RTCIceServer]:
    """ICE servers from plain settings values; an empty list means host candidates only."""
    return [RTCIceServer(urls=url, username=username, credential=credential) for url in urls]
