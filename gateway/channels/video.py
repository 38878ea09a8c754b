"""Citizen side of the video handoff: queue API and WebSocket, appointments, one-POST signaling.

Also holds HandoffHook, which the app wires into Conversation: it acts on the bot's handoff
payloads and routes a handed-off sender's messages to staff. The media side (rooms <-> tickets)
is gateway.handoff.media: in this process or on media nodes.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from gateway import sessions
from gateway.conversation import BotMessage, Button
from gateway.limits import Rate, RateLimited, RateLimiter, client_ip, origin_allowed
from gateway.handoff import HandoffDesk, HandoffError, Ticket, TicketState, VideoServiceBase
from gateway.handoff.desk import CONSENT_TEXT
from gateway.schemas import AppointmentBody, CancelBody, HandoffBody, OfferBody, json_body
from gateway.staff_auth import CurrentStaff
from gateway.turns import read_json_object

logger = logging.getLogger(__name__)
router = APIRouter(tags=["video"])
WS_BAD_MESSAGE, WS_INTERNAL, WS_TRY_AGAIN = 1008, 1011, 1013
OFFER_TEXT = "需要的话，可以和工作人员视频办理，一对一帮您操作。现在转视频服务吗？"
OFFER_BUTTONS = [Button(title="好，视频办理", payload="/accept_handoff"), Button(title="不用了", payload="/decline_handoff")]
CLOSED_TEXT = "现在不在工作人员服务时间，为您预约视频办理。请选择方便的时间："
BUSY_TEXT = "目前排队人数较多，预计等待较久，建议预约视频办理。请选择方便的时间："
# Priority reasons that rest on verified facts: "elderly" is set from the verified ID number's age.
VERIFIED_REASONS = frozenset({"elderly"})
QUEUED_TEXT = "已为您排队转接工作人员视频服务，请留意页面上的排队位置。"
# The staff hours the bot's domain states (bot/domain/handoff.yml, utter_request_human). Editing the
# domain means retraining, so the gateway replaces them with the configured hours in every reply.
DOMAIN_STAFF_HOURS = "工作日 9:00–17:00"


def offer_message(reason: str) -> BotMessage:
    return BotMessage(text=OFFER_TEXT, buttons=OFFER_BUTTONS, custom={"type": "handoff_offer", "reason": reason})


class HandoffHook:
    """Conversation's hook; the bot decides when to offer or start a handoff, the desk decides how.

    Queue priority comes from verified facts (the actions' handoff_start payload, e.g. age from the
    ID number) or from staff, never from a request field. Self-declared elder mode still gets the
    priority lane, since SPEC puts the elderly first, but once a day per session and a few times a
    day per client IP (settings.rate_priority_ip); staff can change any ticket's priority.
    """

    def __init__(self, desk: HandoffDesk, limiter: RateLimiter, priority_ip_rate: Rate):
        self._desk = desk
        self._limiter = limiter
        self._priority_ip_rate = priority_ip_rate

    async def route_citizen_message(self, sender_id: str, text: str) -> bool:
        return await self._desk.route_citizen_message(sender_id, text)

    async def after_bot_reply(self, sender_id: str, text: str, metadata: dict[str, Any],
                              messages: list[BotMessage], client_ip: str = "", clarified: bool = False) -> list[BotMessage]:
        out, unanswered = [], False
        for message in messages:
            kind = (message.custom or {}).get("type")
            if kind == "unanswered":
                unanswered = True
            elif kind == "handoff_start":
                reason = str(message.custom.get("reason") or "request")
                priority = bool(message.custom.get("priority"))
                if priority and reason not in VERIFIED_REASONS:
                    priority = await self.self_declared_priority(sender_id, client_ip)
                out.extend(await self.start(sender_id, priority, reason))
            else:
                out.append(self.with_staff_hours(message))
        await self._desk.figures.record_turn(sender_id, text, unanswered, clarified)
        if metadata.get("elder_mode") and not any((m.custom or {}).get("type", "").startswith("handoff") for m in out):
            if await self._desk.appointments.mark_offered(sender_id):
                out.append(offer_message("elder_mode"))
        return out

    def with_staff_hours(self, message: BotMessage) -> BotMessage:
        if not message.text or DOMAIN_STAFF_HOURS not in message.text:
            return message
        hours = self._desk.appointments.hours_text()
        return message.model_copy(update={"text": message.text.replace(DOMAIN_STAFF_HOURS, hours)})

    async def self_declared_priority(self, sender_id: str, client_ip: str) -> bool:
        """The priority lane for a self-declared elder, within the per-session and per-IP allowance."""
        try:
            await self._limiter.hit("priority_session", sender_id, Rate(1, 24 * 3600))
            await self._limiter.hit("priority_ip", client_ip or "unknown", self._priority_ip_rate)
        except RateLimited:
            logger.info("handoff.priority.self_declared_refused")
            return False
        return True

    async def start(self, sender_id: str, priority: bool, reason: str) -> list[BotMessage]:
        """Queues the sender, or offers appointment slots outside staff hours or when the wait is too long."""
        open_ticket = await self._desk.open_ticket(sender_id)
        if open_ticket is None and await self._desk.appointments.should_book():
            closed = not self._desk.appointments.is_open()
            slots = await self._desk.appointments.free_slots()
            return [BotMessage(text=CLOSED_TEXT if closed else BUSY_TEXT,
                               custom={"type": "handoff_booking", "reason": "closed" if closed else "busy", "slots": slots})]
        ticket = open_ticket or await self._desk.enqueue(sender_id, priority, reason)
        return [BotMessage(text=QUEUED_TEXT, custom=await queued_payload(self._desk, ticket))]


async def queued_payload(desk: HandoffDesk, ticket: Ticket) -> dict[str, Any]:
    position = await desk.position(ticket.id) or 0
    return {"type": "handoff_queued", "ticket_id": ticket.id, "key": ticket.key, "priority": ticket.priority,
            "position": position, "eta_s": await desk.eta_s(position)}


def _service(request_or_ws) -> VideoServiceBase:
    return request_or_ws.app.state.video


async def _session_sender(request: Request) -> str:
    """The sender of the caller's chat session: the handoff never takes a sender id from the request."""
    session = await request.app.state.sessions.get(sessions.presented_id(request))
    if session is None:
        raise HTTPException(status_code=401, detail="会话已过期，请刷新页面后再试。")
    return session.sender_id


@router.post("/api/handoff", openapi_extra=json_body(HandoffBody))
async def request_handoff(request: Request) -> dict:
    """The widget's own "视频办理" button: same result as the bot's handoff_start payload.
    `elder_mode: true` is a self-declaration: the priority lane within its allowance."""
    body = await read_json_object(request)
    sender_id = await _session_sender(request)
    settings = request.app.state.settings
    ip = client_ip(request, settings.trusted_proxies)
    await request.app.state.limiter.hit("handoff_session", sender_id, Rate.parse(settings.rate_handoff_session))
    hook: HandoffHook = request.app.state.conversation.handoff
    priority = bool(body.get("elder_mode")) and await hook.self_declared_priority(sender_id, ip)
    return {"messages": [m.model_dump() for m in await hook.start(sender_id, priority, "button")]}


@router.post("/api/handoff/{ticket_id}/cancel", openapi_extra=json_body(CancelBody))
async def cancel_handoff(ticket_id: str, request: Request) -> dict:
    body = await read_json_object(request)
    try:
        await _service(request).desk.cancel(ticket_id, str(body.get("key", "")))
    except HandoffError as exc:
        raise HTTPException(status_code=404, detail=exc.message)
    return {"state": "cancelled", "text": "已取消排队。需要时可以随时再找工作人员。"}


@router.post("/api/handoff/appointments", openapi_extra=json_body(AppointmentBody))
async def book_appointment(request: Request) -> dict:
    body = await read_json_object(request)
    sender_id = await _session_sender(request)
    settings, limiter = request.app.state.settings, request.app.state.limiter
    await limiter.hit("booking_session", sender_id, Rate.parse(settings.rate_booking_session))
    await limiter.hit("booking_ip", client_ip(request, settings.trusted_proxies), Rate.parse(settings.rate_booking_ip))
    try:
        label = await _service(request).desk.appointments.book(sender_id, str(body.get("slot", "")))
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    return {"slot": body["slot"], "label": label,
            "text": f"已为您预约 {label} 的视频办理，届时打开本页面点击“视频办理”即可接通工作人员。"}


@router.post("/api/video/offer", openapi_extra=json_body(OfferBody))
async def video_offer(request: Request) -> dict:
    """One POST with the complete offer (non-trickle ICE); the answer carries the server's candidates."""
    body = await read_json_object(request)
    token, sdp, sdp_type = body.get("token"), body.get("sdp"), body.get("type", "offer")
    if not isinstance(token, str) or not isinstance(sdp, str) or sdp_type != "offer":
        raise HTTPException(status_code=422, detail="需要 token、sdp 和 type=offer。")
    return await _service(request).answer(token, sdp, sdp_type)


@router.websocket("/ws/handoff/{ticket_id}")
async def handoff_socket(websocket: WebSocket, ticket_id: str) -> None:
    """First frame {"key": ...}; then queue position, the recording notice, call tokens (only after the
    citizen agreed to the recording), staff messages and the end, live.

    Server -> citizen: queue, consent_required {text} (once staff accepted, until answered), active
    {staff, consent: true|false|null}, call {room_token, ice_servers} (consent true only), message,
    ended/cancelled. Citizen -> server: ping, cancel, hangup, rejoin, consent {agree: true|false}.
    """
    service = _service(websocket)
    settings = websocket.app.state.settings
    if not origin_allowed(websocket, settings.allowed_origins):
        await websocket.close(code=WS_BAD_MESSAGE)
        return
    await websocket.accept()
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), timeout=settings.ws_first_frame_timeout_s)
        if len(raw) > 1024:
            raise ValueError("first frame too long")
        first = json.loads(raw)
        if not isinstance(first, dict):
            raise TypeError("first frame is not an object")
        ticket = await service.desk.get(ticket_id)
        if not ticket or first.get("key") != ticket.key:
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
    except WebSocketDisconnect:
        logger.info("handoff.ws.closed ticket=%s", ticket_id)
    except (ValueError, KeyError, TypeError):  # not JSON, a binary frame, a frame of the wrong shape
        logger.info("handoff.ws.bad_frame ticket=%s", ticket_id)
        await _close_quietly(websocket, WS_BAD_MESSAGE, "消息格式错误")
    except RedisError as exc:
        logger.warning("handoff.ws.redis_unavailable ticket=%s error=%s", ticket_id, type(exc).__name__)
        await _close_quietly(websocket, WS_TRY_AGAIN, "服务暂时不可用，请稍后再试")
    except asyncio.TimeoutError:
        logger.info("handoff.ws.silent ticket=%s", ticket_id)
        await websocket.close(code=WS_BAD_MESSAGE, reason="no key")
    except Exception:
        logger.exception("handoff.ws.failed ticket=%s", ticket_id)
        await websocket.close(code=WS_INTERNAL)


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code=code, reason=reason)
    except RuntimeError:  # already closed by the other side
        pass


async def _read_citizen(websocket: WebSocket, service: VideoServiceBase, ticket: Ticket, wants_call: asyncio.Event) -> None:
    while True:
        frame = json.loads(await websocket.receive_text())
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "cancel":
            await service.desk.cancel(ticket.id, ticket.key)
        elif kind == "hangup":
            ended = await service.desk.hang_up(ticket.id, ticket.key)
            if ended is not None:
                await service.close(ended)
        elif kind == "rejoin":
            wants_call.set()
        elif kind == "captions" and isinstance(frame.get("on"), bool):
            current = await service.desk.get(ticket.id)
            try:
                if current is None:
                    raise HTTPException(status_code=409, detail="这次视频服务已经结束。")
                await service.set_captions(current, frame["on"], "citizen")  # the state comes back through the stream
            except HTTPException as exc:
                await websocket.send_json({"type": "error", "text": exc.detail})
        elif kind == "consent" and isinstance(frame.get("agree"), bool):
            await service.desk.record_consent(ticket.id, frame["agree"])  # wakes the pusher, which sends the call
        elif kind != "ping":
            await websocket.send_json({"type": "error", "text": "消息格式错误。"})


def citizen_frame(message: dict[str, str]) -> dict[str, Any]:
    """A ticket stream entry as the citizen's page reads it: captions state and lines have frames of their own."""
    event = message.get("event")
    if event == "captions":
        return {"type": "captions", "available": message.get("available") == "1", "on": message.get("on") == "1",
                "by": message.get("by", "")}
    if event == "caption":
        return {"type": "caption", "from": message.get("from"), "text": message.get("text", ""), "final": True}
    return {"type": "message", **message}


@router.post("/api/staff/tickets/{ticket_id}/captions")
async def staff_captions(ticket_id: str, request: Request, staff: CurrentStaff) -> dict:
    """Staff turn the call's live captions on or off (body {"on": true|false}); both pages follow."""
    body = await read_json_object(request)
    if not isinstance(body.get("on"), bool):
        raise HTTPException(status_code=422, detail="需要 on: true 或 false。")
    service = _service(request)
    ticket = await service.desk.get(ticket_id)
    if ticket is None or ticket.staff != staff.username or ticket.state != TicketState.ACTIVE:
        raise HTTPException(status_code=404, detail="该会话不在进行中，或不由您接待。")
    await service.set_captions(ticket, body["on"], "staff")
    return {"on": body["on"]}


@router.get("/api/staff/tickets/{ticket_id}/captions")
async def staff_caption_transcript(ticket_id: str, request: Request, staff: CurrentStaff) -> dict:
    """The session's caption transcript (who, when, text; ID and phone numbers masked), with the note and
    summary: the session's record for the staff member who served it."""
    service = _service(request)
    ticket = await service.desk.get(ticket_id)
    if ticket is None or ticket.staff != staff.username:
        raise HTTPException(status_code=404, detail="没有这次服务的记录，或不由您接待。")
    return {"ticket_id": ticket.id, "state": ticket.state.value, "note": ticket.note, "summary": ticket.summary,
            "captions": await service.desk.captions.transcript(ticket.id)}


async def _push_citizen(websocket: WebSocket, service: VideoServiceBase, ticket_id: str, wants_call: asyncio.Event) -> None:
    desk, after, after_event, last_status, called_room, asked = service.desk, "0", "0", None, "", False
    while True:
        messages, after_event = await desk.updates(ticket_id, after, after_event, block_ms=1000)
        for message in messages:
            after = message["id"]
            if message.get("to") != "staff":  # notices for staff only (e.g. the consent answer)
                await websocket.send_json(citizen_frame(message))
        ticket = await desk.get(ticket_id)
        if ticket is None or ticket.state in (TicketState.ENDED, TicketState.CANCELLED):
            for message in await desk.messages(ticket_id, after):
                if message.get("to") != "staff" and not message.get("event"):
                    await websocket.send_json(citizen_frame(message))
            await websocket.send_json({"type": ticket.state.value if ticket else "cancelled"})
            await websocket.close(code=1000)
            return
        await desk.touch(ticket_id)
        if ticket.state == TicketState.WAITING:
            position = await desk.position(ticket_id) or 0
            status = {"type": "queue", "position": position, "eta_s": await desk.eta_s(position)}
            called_room, asked = "", False
        else:
            status = {"type": "active", "staff": ticket.staff, "consent": ticket.consent}
            if ticket.consent is None:
                wants_call.clear()
                if not asked:  # asked once per socket; a reconnect asks again only if it was never answered
                    asked = True
                    await websocket.send_json({"type": "consent_required", "text": CONSENT_TEXT})
            elif ticket.consent and (ticket.room_id != called_room or wants_call.is_set()):
                wants_call.clear()
                called_room = ticket.room_id
                await websocket.send_json({"type": "call", "room_token": await desk.issue_room_token(ticket, "citizen"),
                                           "ice_servers": service.browser_ice_servers})
        if status != last_status:
            last_status = status
            await websocket.send_json(status)
