"""Media for tickets: rooms in this process (VideoService) or on media nodes (NodeVideoService).

Both answer a browser's one-POST offer for a single-use room token, close a ticket's room (the
recording's hash goes to the audit log) and, where the rooms live, put the citizen back at the
front of the queue when staff drop for good or never join after accepting (a sweep), or when a
restart lost the room (`reconcile_at_start`). A citizen's token opens media only after they
agreed to the recording. The signaling edge translates their HTTPExceptions.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import httpx
from fastapi import HTTPException
from redis.exceptions import RedisError

from gateway.handoff.desk import STAFF_NEVER_JOINED, HandoffDesk
from gateway.handoff.nodes import NoMediaNode, NodeDirectory
from gateway.handoff.tickets import Ticket, TicketState
from gateway.internal_http import internal_client
from gateway.settings import Settings
from video.captions import RoomCaptions, Transcriber
from video.loopback import allow_loopback_candidates
from video.rooms import BadOffer, RoomNotFound, RoomRegistry, ice_servers_from

logger = logging.getLogger(__name__)
TOKEN_USED = "视频通话凭证无效或已使用，请重新发起连接。"
NO_MEDIA = "视频服务暂时不可用，请稍后再试。"
NO_CONSENT = "市民尚未同意录像，不能开始视频。"
NO_CAPTIONS = "字幕服务暂时不可用。"
NOT_CONNECTED = "视频尚未接通，接通后再打开字幕。"
RETRY_S = 5.0  # after a redis outage, the sweeps and the reconciliation try again this much later


def captions_transcriber(settings: Settings) -> Optional[Transcriber]:
    """The speech server's client when one is configured (SPEECH_SECRET): captions are offered only then."""
    secret = settings.speech_secret.get_secret_value()
    if not secret:
        return None
    from gateway.voice.recognition import SpeechClient
    return SpeechClient(settings.speech_url, secret, settings.speech_timeout_s)


def make_rooms(settings: Settings) -> RoomRegistry:
    """The rooms of one media process, from settings (ICE servers, size, relay mode, recordings)."""
    if settings.video_loopback_ice:
        allow_loopback_candidates()
    ice = ice_servers_from(settings.video_ice_servers, settings.video_ice_username or None,
                           settings.video_ice_credential.get_secret_value() or None)
    return RoomRegistry(ice, settings.video_recordings_dir, None, settings.video_width, settings.video_height,
                        settings.video_fps, relay_encoded=settings.video_relay_encoded)


class VideoServiceBase:
    """What the signaling edge and the staff API need from media, wherever the rooms live."""

    desk: HandoffDesk
    browser_ice_servers: list[dict[str, Any]]

    async def answer(self, token: str, sdp: str, sdp_type: str) -> dict[str, str]:
        raise NotImplementedError

    async def close(self, ticket: Ticket) -> None:
        raise NotImplementedError

    async def media_lost(self, ticket: Ticket) -> bool:
        """True when nothing carries the ticket's call any more (its room died with a process)."""
        raise NotImplementedError

    async def requeue_unjoined(self, timeout_s: float) -> list[str]:
        """Requeues the tickets this service answers for whose staff never joined; returns their ids."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Releases what the service holds at shutdown."""

    async def set_captions(self, ticket: Ticket, on: bool, by: str) -> None:
        """Turns the room's captions on or off for both parties (gateway.handoff.captions, video.captions)."""
        raise HTTPException(status_code=503, detail=NO_CAPTIONS)

    async def watch_staff_joins(self, timeout_s: float) -> None:
        """Until cancelled: staff who accepted and did not join within timeout_s lose the ticket to the
        queue. A round that fails (redis away) is logged and the next round tries again."""
        interval_s = max(1.0, min(RETRY_S, timeout_s / 4))
        while True:
            try:
                await self.requeue_unjoined(timeout_s)
            except (OSError, RedisError) as exc:
                logger.warning("handoff.join_watch.failed error=%s", type(exc).__name__)
            except Exception:  # the sweep must outlive any one bad ticket
                logger.exception("handoff.join_watch.failed")
            await asyncio.sleep(interval_s)

    async def reconcile_at_start(self, started_ms: int) -> dict[str, int]:
        """Puts back the active tickets whose media a restart lost; retries until redis answers."""
        while True:
            try:
                return await self.desk.reconcile_active(self.media_lost, started_ms)
            except (OSError, RedisError) as exc:
                logger.warning("handoff.reconcile.failed error=%s", type(exc).__name__)
            await asyncio.sleep(RETRY_S)


class VideoService(VideoServiceBase):
    """Ties media rooms to tickets in this process (the gateway's, or a media node's).

    all_rooms_here: the gateway's in-process media, where every ticket's room lives; a media node
    passes False and answers only for the rooms it hosts."""

    def __init__(self, desk: HandoffDesk, rooms: RoomRegistry, staff_reconnect_s: float,
                 browser_ice_servers: Optional[list[dict[str, Any]]] = None, all_rooms_here: bool = True,
                 transcriber: Optional[Transcriber] = None):
        """transcriber: the speech server's client for live captions; None: no captions offered."""
        self.desk = desk
        self._transcriber = transcriber
        self._captions: dict[str, RoomCaptions] = {}  # room id -> its captions while on
        self.browser_ice_servers = browser_ice_servers or []  # RTCPeerConnection config for both browsers
        self.rooms = rooms
        self._reconnect_s = staff_reconnect_s
        self._all_rooms_here = all_rooms_here
        self._tickets: dict[str, str] = {}  # room id -> ticket id
        self._watchers: set[asyncio.Task] = set()

    async def answer(self, token: str, sdp: str, sdp_type: str) -> dict[str, str]:
        grant = await self.desk.redeem_room_token(token)
        if grant is None:
            raise HTTPException(status_code=403, detail=TOKEN_USED)
        ticket = await self.desk.get(grant["ticket_id"])
        if ticket is None or ticket.state != TicketState.ACTIVE or ticket.room_id != grant["room_id"]:
            raise HTTPException(status_code=409, detail="这次视频服务已经结束。")
        if grant["role"] == "citizen" and ticket.consent is not True:
            raise HTTPException(status_code=403, detail=NO_CONSENT)
        self._tickets[ticket.room_id] = ticket.id
        try:
            answer = await self.rooms.open(ticket.room_id).join(grant["role"], sdp, sdp_type)
        except BadOffer as exc:
            logger.warning("video.offer.rejected room=%s role=%s error=%s", ticket.room_id, grant["role"], exc)
            raise HTTPException(status_code=400, detail="视频连接参数不正确，请刷新页面后重试。")
        await self.desk.mark_joined(ticket.id, grant["role"])
        if self._transcriber is not None and grant["role"] == "staff":
            # Both pages learn that captions can be had (and the current state) from the message stream.
            await self.desk.captions.post_state(ticket.id, True, ticket.room_id in self._captions)
        return {"sdp": answer.sdp, "type": answer.type}

    async def set_captions(self, ticket: Ticket, on: bool, by: str) -> None:
        if self._transcriber is None:
            raise HTTPException(status_code=503, detail=NO_CAPTIONS)
        if ticket.state != TicketState.ACTIVE or not ticket.room_id or ticket.room_id not in self.rooms:
            raise HTTPException(status_code=409, detail=NOT_CONNECTED)
        room_id, ticket_id = ticket.room_id, ticket.id
        captions = self._captions.get(room_id)
        if on and captions is None:
            room = self.rooms.get(room_id)

            async def deliver(role: str, text: str) -> None:
                await self.desk.captions.post_caption(ticket_id, role, text)

            # A private relayed feed of the party's audio (video.rooms.Room._subscribe), as the recorder has.
            captions = RoomCaptions(lambda role: room._subscribe((role, "audio")), self._transcriber, deliver)
            captions.start()
            self._captions[room_id] = captions
            logger.info("video.captions.on room=%s by=%s", room_id, by)
        elif not on and captions is not None:
            await self._stop_captions(room_id)
        await self.desk.captions.post_state(ticket_id, True, on, by)

    async def _stop_captions(self, room_id: str) -> None:
        captions = self._captions.pop(room_id, None)
        if captions is None:
            return
        await captions.stop()
        taps = captions.stopped_taps
        audio_s, cpu_s = sum(t.audio_s for t in taps), sum(t.cpu_s for t in taps)
        logger.info("video.captions.off room=%s audio_s=%.1f decode_cpu_s=%.3f captions=%d dropped_s=%.1f",
                    room_id, audio_s, cpu_s, sum(t.captions for t in taps), sum(t.dropped_s for t in taps))

    async def close(self, ticket: Ticket) -> None:
        """Ends the media of a ticket; the recording's hash goes to the audit log."""
        self._tickets.pop(ticket.room_id, None)
        await self._stop_captions(ticket.room_id)
        recording = await self.rooms.close(ticket.room_id) if ticket.room_id else None
        if recording is not None:
            entry = await self.desk.figures.audit_recording(ticket, recording.sha256, recording.size_bytes, recording.path.name)
            logger.info("video.recording.audited ticket=%s sha256=%s bytes=%d entry=%s",
                        ticket.id, recording.sha256, recording.size_bytes, entry)

    async def media_lost(self, ticket: Ticket) -> bool:
        return ticket.room_id not in self.rooms

    async def requeue_unjoined(self, timeout_s: float) -> list[str]:
        requeued = []
        for ticket in await self.desk.unjoined(timeout_s):
            if not (self._all_rooms_here or ticket.room_id in self.rooms):
                continue  # a room on another node, or not placed yet: the gateway or that node sees to it
            if ticket.room_id in self.rooms and self.rooms.get(ticket.room_id).has_peer("staff"):
                continue  # joined a moment ago; the mark is on its way
            if await self.desk.requeue_front(ticket.id, STAFF_NEVER_JOINED, room_id=ticket.room_id):
                logger.warning("handoff.staff.never_joined ticket=%s staff=%s", ticket.id, ticket.staff)
                requeued.append(ticket.id)
                await self.close(ticket)
        return requeued

    async def on_peer_lost(self, room_id: str, role: str) -> None:
        if role == "staff":
            task = asyncio.ensure_future(self._staff_gone(room_id))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)

    async def _staff_gone(self, room_id: str) -> None:
        """Staff get a grace period to rejoin; after that the citizen goes back to the front of the queue.
        A redis outage delays the decision, it does not drop it."""
        await asyncio.sleep(self._reconnect_s)
        while True:
            try:
                await self._requeue_if_staff_gone(room_id)
                return
            except (OSError, RedisError) as exc:
                logger.warning("handoff.staff_gone.failed room=%s error=%s", room_id, type(exc).__name__)
            await asyncio.sleep(RETRY_S)

    async def _requeue_if_staff_gone(self, room_id: str) -> None:
        ticket_id = self._tickets.get(room_id)
        try:
            room = self.rooms.get(room_id)
        except RoomNotFound:
            return
        if room.has_peer("staff") or ticket_id is None:
            return
        ticket = await self.desk.get(ticket_id)
        if ticket and ticket.state == TicketState.ACTIVE and ticket.room_id == room_id:
            await self.close(ticket)
            await self.desk.requeue_front(ticket_id, room_id=room_id)

    async def aclose(self) -> None:
        for task in self._watchers:
            task.cancel()
        for room_id in list(self._captions):
            await self._stop_captions(room_id)
        await self.rooms.close_all()


class NodeVideoService(VideoServiceBase):
    """The gateway's side when media runs on media nodes: routes each room to its node over HTTP."""

    def __init__(self, desk: HandoffDesk, nodes: NodeDirectory, node_token: str, timeout_s: float,
                 browser_ice_servers: Optional[list[dict[str, Any]]] = None):
        self.desk = desk
        self.nodes = nodes
        self.browser_ice_servers = browser_ice_servers or []
        self._http = internal_client(timeout=timeout_s, headers={"Authorization": f"Bearer {node_token}"})

    async def answer(self, token: str, sdp: str, sdp_type: str) -> dict[str, str]:
        grant = await self.desk.peek_room_token(token)  # the node redeems it; here it only picks the node
        if grant is None:
            raise HTTPException(status_code=403, detail=TOKEN_USED)
        try:
            node = await self.nodes.node_for(grant["room_id"])
            resp = await self._http.post(f"{node.url}/node/offer", json={"token": token, "sdp": sdp, "type": sdp_type})
        except (NoMediaNode, httpx.HTTPError) as exc:
            logger.error("video.node.unavailable room=%s error=%s", grant["room_id"], type(exc).__name__)
            raise HTTPException(status_code=503, detail=NO_MEDIA)
        if resp.status_code != 200:
            detail = resp.json().get("detail", NO_MEDIA) if resp.headers.get("content-type", "").startswith("application/json") else NO_MEDIA
            raise HTTPException(status_code=resp.status_code if resp.status_code < 500 else 503, detail=detail)
        return resp.json()

    async def set_captions(self, ticket: Ticket, on: bool, by: str) -> None:
        """The room's node runs the taps (it holds the audio); it posts the state and the lines itself."""
        node = await self.nodes.hosting(ticket.room_id) if ticket.room_id else None
        if node is None:
            raise HTTPException(status_code=409, detail=NOT_CONNECTED)
        try:
            resp = await self._http.post(f"{node.url}/node/tickets/{ticket.id}/captions", json={"on": on, "by": by})
        except httpx.HTTPError as exc:
            logger.error("video.node.captions_failed ticket=%s error=%s", ticket.id, type(exc).__name__)
            raise HTTPException(status_code=503, detail=NO_CAPTIONS)
        if resp.status_code != 200:
            raise HTTPException(status_code=resp.status_code if resp.status_code < 500 else 503, detail=NO_CAPTIONS)

    async def close(self, ticket: Ticket) -> None:
        """Asks the room's node to close it; the node audits the recording, as it holds the file."""
        node = await self.nodes.hosting(ticket.room_id) if ticket.room_id else None
        if node is None:
            return
        try:
            resp = await self._http.post(f"{node.url}/node/tickets/{ticket.id}/close")
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            logger.error("video.node.close_failed ticket=%s node=%s error=%s", ticket.id, node.node_id, type(exc).__name__)
            return
        await self.nodes.forget(ticket.room_id)

    async def _node_dead(self, ticket: Ticket) -> Optional[bool]:
        """None: the room was never placed on a node; True: its node stopped sending heartbeats."""
        placed = await self.nodes.placed_on(ticket.room_id) if ticket.room_id else None
        if placed is None:
            return None
        return placed not in {n.node_id for n in await self.nodes.live()}

    async def media_lost(self, ticket: Ticket) -> bool:
        """Only a dead node loses media: a room not placed yet may still start, and the join sweep sees to it."""
        return bool(await self._node_dead(ticket))

    async def requeue_unjoined(self, timeout_s: float) -> list[str]:
        """Tickets whose room is on a live node are that node's to sweep; here, the rest: a room never
        placed (neither browser joined) or placed on a node that died."""
        requeued = []
        for ticket in await self.desk.unjoined(timeout_s):
            if await self._node_dead(ticket) is False:
                continue
            if await self.desk.requeue_front(ticket.id, STAFF_NEVER_JOINED, room_id=ticket.room_id):
                logger.warning("handoff.staff.never_joined ticket=%s staff=%s", ticket.id, ticket.staff)
                requeued.append(ticket.id)
                if ticket.room_id:
                    await self.nodes.forget(ticket.room_id)
        return requeued

    async def aclose(self) -> None:
        await self._http.aclose()
