"""Citizen side of the video handoff: queue API and WebSocket, appointments, one-POST signaling.

Also holds the two objects the app wires in: HandoffHook (Conversation's handoff hook: acts on
the bot's handoff payloads and routes a handed-off sender's messages to staff) and VideoService
(rooms <-> tickets: single-use room tokens, recording hash to the audit log, staff drops).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Optional

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect

from gateway.conversation import BotMessage, Button, validate_sender_id
from gateway.handoff import HandoffDesk, HandoffError, Ticket, TicketState
from video.rooms import BadOffer, RoomNotFound, RoomRegistry

logger = logging.getLogger(__name__)
router = APIRouter(tags=["video"])
WS_BAD_MESSAGE, WS_INTERNAL = 1008, 1011
OFFER_TEXT = "需要的话，可以和工作人员视频办理，一对一帮您操作。现在转视频服务吗？"
OFFER_BUTTONS = [Button(title="好，视频办理", payload="/accept_handoff"), Button(title="不用了", payload="/decline_handoff")]
CLOSED_TEXT = "现在不在工作人员服务时间，为您预约视频办理。请选择方便的时间："
BUSY_TEXT = "目前排队人数较多，预计等待较久，建议预约视频办理。请选择方便的时间："
QUEUED_TEXT = "已为您排队转接工作人员视频服务，请留意页面上的排队位置。"


def offer_message(reason: str) -> BotMessage:
    return BotMessage(text=OFFER_TEXT, buttons=OFFER_BUTTONS, custom={"type": "handoff_offer", "reason": reason})


class HandoffHook:
    """Conversation's hook; the bot decides when to offer or start a handoff, the desk decides how."""

    def __init__(self, desk: HandoffDesk):
        self._desk = desk

    async def route_citizen_message(self, sender_id: str, text: str) -> bool:
        return await self._desk.route_citizen_message(sender_id, text)

    async def after_bot_reply(self, sender_id: str, text: str, metadata: dict[str, Any],
                              messages: list[BotMessage]) -> list[BotMessage]:
        out, unanswered = [], False
        for message in messages:
            kind = (message.custom or {}).get("type")
            if kind == "unanswered":
                unanswered = True
            elif kind == "handoff_start":
                priority = bool(message.custom.get("priority")) or bool(metadata.get("elder_mode"))
                out.extend(await self.start(sender_id, priority, str(message.custom.get("reason") or "request")))
            else:
                out.append(message)
        await self._desk.record_turn(sender_id, text, unanswered)
        if metadata.get("elder_mode") and not any((m.custom or {}).get("type", "").startswith("handoff") for m in out):
            if await self._desk.mark_offered(sender_id):
                out.append(offer_message("elder_mode"))
        return out

    async def start(self, sender_id: str, priority: bool, reason: str) -> list[BotMessage]:
        """Queues the sender, or offers appointment slots outside staff hours or when the wait is too long."""
        open_ticket = await self._desk.open_ticket(sender_id)
        if open_ticket is None and await self._desk.should_book():
            closed = not self._desk.is_open()
            slots = await self._desk.free_slots()
            return [BotMessage(text=CLOSED_TEXT if closed else BUSY_TEXT,
                               custom={"type": "handoff_booking", "reason": "closed" if closed else "busy", "slots": slots})]
        ticket = open_ticket or await self._desk.enqueue(sender_id, priority, reason)
        return [BotMessage(text=QUEUED_TEXT, custom=await queued_payload(self._desk, ticket))]


async def queued_payload(desk: HandoffDesk, ticket: Ticket) -> dict[str, Any]:
    position = await desk.position(ticket.id) or 0
    return {"type": "handoff_queued", "ticket_id": ticket.id, "key": ticket.key, "priority": ticket.priority,
            "position": position, "eta_s": await desk.eta_s(position)}


class VideoService:
    """Ties media rooms to tickets; one per media process (in the gateway process for now)."""

    def __init__(self, desk: HandoffDesk, rooms: RoomRegistry, staff_reconnect_s: float,
                 browser_ice_servers: Optional[list[dict[str, Any]]] = None):
        self.desk = desk
        self.browser_ice_servers = browser_ice_servers or []  # RTCPeerConnection config for both browsers
        self.rooms = rooms
        self._reconnect_s = staff_reconnect_s
        self._tickets: dict[str, str] = {}  # room id -> ticket id
        self._watchers: set[asyncio.Task] = set()

    async def answer(self, token: str, sdp: str, sdp_type: str) -> dict[str, str]:
        grant = await self.desk.redeem_room_token(token)
        if grant is None:
            raise HTTPException(status_code=403, detail="视频通话凭证无效或已使用，请重新发起连接。")
        ticket = await self.desk.get(grant["ticket_id"])
        if ticket is None or ticket.state != TicketState.ACTIVE or ticket.room_id != grant["room_id"]:
            raise HTTPException(status_code=409, detail="这次视频服务已经结束。")
        self._tickets[ticket.room_id] = ticket.id
        try:
            answer = await self.rooms.open(ticket.room_id).join(grant["role"], sdp, sdp_type)
        except BadOffer as exc:
            logger.warning("video.offer.rejected room=%s role=%s error=%s", ticket.room_id, grant["role"], exc)
            raise HTTPException(status_code=400, detail="视频连接参数不正确，请刷新页面后重试。")
        return {"sdp": answer.sdp, "type": answer.type}

    async def close(self, ticket: Ticket) -> None:
        """Ends the media of a ticket; the recording's hash goes to the audit log."""
        self._tickets.pop(ticket.room_id, None)
        recording = await self.rooms.close(ticket.room_id) if ticket.room_id else None
        if recording is not None:
            entry = await self.desk.audit_recording(ticket, recording.sha256, recording.size_bytes, recording.path.name)
            logger.info("video.recording.audited ticket=%s sha256=%s bytes=%d entry=%s",
                        ticket.id, recording.sha256, recording.size_bytes, entry)

    async def on_peer_lost(self, room_id: str, role: str) -> None:
        if role == "staff":
            task = asyncio.ensure_future(self._staff_gone(room_id))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)

    async def _staff_gone(self, room_id: str) -> None:
        """Staff get a grace period to rejoin; after that the citizen goes back to the front of the queue."""
        await asyncio.sleep(self._reconnect_s)
        ticket_id = self._tickets.get(room_id)
        try:
            room = self.rooms.get(room_id)
        except RoomNotFound:
            return
        if room.has_peer("staff") or ticket_id is None:
            return
        ticket = await self.desk.get(ticket_id)
        if ticket and ticket.state == TicketState.ACTIVE:
            await self.close(ticket)
            await self.desk.requeue_front(ticket_id)

    async def aclose(self) -> None:
        for task in self._watchers:
            task.cancel()
        await self.rooms.close_all()


def _service(request_or_ws) -> VideoService:
    return request_or_ws.app.state.video


async def _json_object(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise HTTPException(status_code=400, detail="请求格式错误：需要 JSON 对象。")
    return body


@router.post("/api/handoff")
async def request_handoff(request: Request) -> dict:
    """The widget's own "视频办理" button: same result as the bot's handoff_start payload."""
    body = await _json_object(request)
    try:
        sender_id = validate_sender_id(body.get("sender_id"))
    except ValueError:
        raise HTTPException(status_code=422, detail="缺少或错误的会话标识 sender_id。")
    hook: HandoffHook = request.app.state.conversation.handoff
    return {"messages": [m.model_dump() for m in await hook.start(sender_id, bool(body.get("priority")), "button")]}


@router.post("/api/handoff/{ticket_id}/cancel")
async def cancel_handoff(ticket_id: str, request: Request) -> dict:
    body = await _json_object(request)
    try:
        await _service(request).desk.cancel(ticket_id, str(body.get("key", "")))
    except HandoffError as exc:
        raise HTTPException(status_code=404, detail=exc.message)
    return {"state": "cancelled", "text": "已取消排队。需要时可以随时再找工作人员。"}


@router.post("/api/handoff/appointments")
async def book_appointment(request: Request) -> dict:
    body = await _json_object(request)
    try:
        sender_id = validate_sender_id(body.get("sender_id"))
        label = await _service(request).desk.book(sender_id, str(body.get("slot", "")))
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    except ValueError:
        raise HTTPException(status_code=422, detail="缺少或错误的会话标识 sender_id。")
    return {"slot": body["slot"], "label": label,
            "text": f"已为您预约 {label} 的视频办理，届时打开本页面点击“视频办理”即可接通工作人员。"}


@router.post("/api/video/offer")
async def video_offer(request: Request) -> dict:
    """One POST with the complete offer (non-trickle ICE); the answer carries the server's candidates."""
    body = await _json_object(request)
    token, sdp, sdp_type = body.get("token"), body.get("sdp"), body.get("type", "offer")
    if not isinstance(token, str) or not isinstance(sdp, str) or sdp_type != "offer":
        raise HTTPException(status_code=422, detail="需要 token、sdp 和 type=offer。")
    return await _service(request).answer(token, sdp, sdp_type)


@router.websocket("/ws/handoff/{ticket_id}")
async def handoff_socket(websocket: WebSocket, ticket_id: str) -> None:
    """First frame {"key": ...}; then queue position, call tokens, staff messages and the end, live."""
    service = _service(websocket)
    await websocket.accept()
    try:
        first = json.loads(await websocket.receive_text())
        ticket = await service.desk.get(ticket_id)
        if not isinstance(first, dict) or not ticket or first.get("key") != ticket.key:
            await websocket.close(code=WS_BAD_MESSAGE, reason="bad ticket or key")
            return
        wants_call = asyncio.Event()
        reader = asyncio.ensure_future(_read_citizen(websocket, service, ticket, wants_call))
        pusher = asyncio.ensure_future(_push_citizen(websocket, service, ticket_id, wants_call))
        done, pending = await asyncio.wait({reader, pusher}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
    except (WebSocketDisconnect, ValueError):
        logger.info("handoff.ws.closed ticket=%s", ticket_id)
    except Exception:
        logger.exception("handoff.ws.failed ticket=%s", ticket_id)
        await websocket.close(code=WS_INTERNAL)


async def _read_citizen(websocket: WebSocket, service: VideoService, ticket: Ticket, wants_call: asyncio.Event) -> None:
    while True:
        frame = json.loads(await websocket.receive_text())
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "cancel":
            await service.desk.cancel(ticket.id, ticket.key)
        elif kind == "rejoin":
            wants_call.set()
        elif kind != "ping":
            await websocket.send_json({"type": "error", "text": "消息格式错误。"})


async def _push_citizen(websocket: WebSocket, service: VideoService, ticket_id: str, wants_call: asyncio.Event) -> None:
    desk, after, last_status, called_room = service.desk, "0", None, ""
    while True:
        for message in await desk.messages(ticket_id, after, block_ms=1000):
            after = message["id"]
            await websocket.send_json({"type": "message", **message})
        ticket = await desk.get(ticket_id)
        if ticket is None or ticket.state in (TicketState.ENDED, TicketState.CANCELLED):
            for message in await desk.messages(ticket_id, after):
                await websocket.send_json({"type": "message", **message})
            await websocket.send_json({"type": ticket.state.value if ticket else "cancelled"})
            await websocket.close(code=1000)
            return
        await desk.touch(ticket_id)
        if ticket.state == TicketState.WAITING:
            position = await desk.position(ticket_id) or 0
            status = {"type": "queue", "position": position, "eta_s": await desk.eta_s(position)}
            called_room = ""
        else:
            status = {"type": "active", "staff": ticket.staff}
            if ticket.room_id != called_room or wants_call.is_set():
                wants_call.clear()
                called_room = ticket.room_id
                await websocket.send_json({"type": "call", "room_token": await desk.issue_room_token(ticket, "citizen"),
                                           "ice_servers": service.browser_ice_servers})
        if status != last_status:
            last_status = status
            await websocket.send_json(status)
