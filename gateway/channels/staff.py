"""Staff console API: login, live queue, accept, transcript and case card, chat, end; supervisor figures."""
from __future__ import annotations

import logging
from typing import Annotated, Any, Optional

import httpx
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from redis.exceptions import ResponseError

from gateway.deps import RasaDep, RedisDep
from gateway.limits import client_ip
from gateway.handoff import HandoffError, Ticket
from gateway.handoff.figures import MAX_PERIOD_DAYS
from gateway.privacy import mask_text
from gateway.rasa_client import RasaUnavailable
from gateway.vault import reveal_masked
from gateway.staff_auth import CurrentStaff, LoginRefused, Supervisor, bearer_token

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/staff", tags=["staff"])
CASE_SLOTS = ("city", "elderly", "disabled", "verified", "faq_topic")
REASONS = {"request": "市民主动要求", "button": "点击视频办理", "elderly": "60岁以上老人", "disabled": "残障人士",
           "elder_mode": "长辈模式", "fallback": "连续两次未能理解", "elder_mode_offer": "长辈模式"}


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp: str = Field(pattern=r"^\d{6}$")


class StaffText(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class EndSession(BaseModel):
    """note: internal, for staff and supervisors only; summary: what the citizen reads (masked)."""
    note: str = Field(default="", max_length=1000)
    summary: str = Field(default="", max_length=500)


class Priority(BaseModel):
    priority: bool


def _desk(request: Request):
    return request.app.state.video.desk


def card(ticket: Ticket, now_ms: int, slots: dict[str, Any]) -> dict[str, Any]:
    """What staff see before they accept: masked, with no clear personal data."""
    # Staff see the ticket id, never a session or sender id (those could continue the citizen's chat).
    return {"ticket_id": ticket.id, "channel": ticket.sender_id.split("-")[0],
            "priority": ticket.priority, "reason": REASONS.get(ticket.reason, ticket.reason),
            "waited_s": max(0, (now_ms - ticket.created_ms) // 1000), "state": ticket.state.value,
            "slots": {k: mask_text(str(v)) for k, v in slots.items() if k in CASE_SLOTS and v is not None}}


async def transcript_of(redis, events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The bot conversation as staff may read it: vault tokens shown as masked values (340***********1234)."""
    lines, slots = [], {}
    for e in events:
        if e.get("event") == "user" and e.get("text"):
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            text = mask_text(await reveal_masked(redis, e["text"]))
            lines.append({"from": "citizen", "text": text, "intent": intent, "at": e.get("timestamp")})
        elif e.get("event") == "bot" and e.get("text"):
            lines.append({"from": "bot", "text": mask_text(e["text"]), "at": e.get("timestamp")})
        elif e.get("event") == "slot":
            slots[e.get("name")] = e.get("value")
    return lines, slots


async def audited(request: Request, staff: str, action: str, subject: str, outcome: str = "ok") -> None:
    """Every staff action goes into the core's audit chain (subjects are ticket ids, never personal data)."""
    await request.app.state.audit.record(staff, action, subject, outcome)


async def _ticket_for(request: Request, ticket_id: str, staff: str) -> Ticket:
    ticket = await _desk(request).get(ticket_id)
    if ticket is None or ticket.staff != staff:
        raise HTTPException(status_code=404, detail="找不到该会话，或不由您接待。")
    return ticket


@router.post("/login")
async def login(body: Login, request: Request) -> dict:
    ip = client_ip(request, request.app.state.settings.trusted_proxies)
    try:
        token, session = await request.app.state.staff_auth.login(body.username, body.password, body.totp, client_ip=ip)
    except LoginRefused as exc:
        await audited(request, body.username[:64], "staff.login", "-", "refused")
        if exc.retry_after_s:
            raise HTTPException(status_code=429, detail=exc.message, headers={"Retry-After": str(exc.retry_after_s)})
        raise HTTPException(status_code=401, detail=exc.message)
    await audited(request, session.username, "staff.login", "-")
    return {"token": token, "username": session.username, "role": session.role, "display_name": session.display_name}


@router.post("/logout")
async def logout(request: Request, staff: CurrentStaff) -> dict:
    await request.app.state.staff_auth.logout(bearer_token(request))
    return {"ok": True}


@router.get("/queue")
async def queue(request: Request, staff: CurrentStaff) -> dict:
    """Polled by the console every couple of seconds; also counts the caller as online for wait estimates."""
    desk = _desk(request)
    await desk.heartbeat(staff.username)
    now_ms = desk.clock.ms()
    waiting = [card(t, now_ms, {}) for t in await desk.waiting()]
    return {"waiting": waiting, "staff_online": await desk.staff_online(), "open": desk.appointments.is_open()}


@router.post("/tickets/{ticket_id}/accept")
async def accept(ticket_id: str, request: Request, staff: CurrentStaff, rasa: RasaDep, redis: RedisDep) -> dict:
    desk = _desk(request)
    try:
        ticket = await desk.accept(ticket_id, staff.username)
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    await audited(request, staff.username, "staff.accept", ticket_id)
    lines, slots, available = await _transcript(rasa, redis, ticket.sender_id)
    if available:
        await audited(request, staff.username, "staff.transcript.read", ticket_id)
    return {"ticket": card(ticket, ticket.accepted_ms, slots), "room_token": await desk.issue_room_token(ticket, "staff"),
            "ice_servers": request.app.state.video.browser_ice_servers,
            "transcript": lines, "transcript_available": available}


async def _transcript(rasa, redis, sender_id: str) -> tuple[list, dict, bool]:
    try:
        lines, slots = await transcript_of(redis, await rasa.tracker_events(sender_id))
        return lines, slots, True
    except (httpx.HTTPError, RasaUnavailable, ValueError) as exc:
        logger.warning("staff.transcript.unavailable error=%s", type(exc).__name__)
        return [], {}, False


@router.get("/tickets/{ticket_id}/transcript")
async def transcript(ticket_id: str, request: Request, staff: CurrentStaff, rasa: RasaDep, redis: RedisDep) -> dict:
    ticket = await _ticket_for(request, ticket_id, staff.username)
    lines, slots, available = await _transcript(rasa, redis, ticket.sender_id)
    if available:
        await audited(request, staff.username, "staff.transcript.read", ticket_id)
    return {"ticket": card(ticket, ticket.accepted_ms, slots), "transcript": lines, "transcript_available": available}


@router.post("/tickets/{ticket_id}/room-token")
async def room_token(ticket_id: str, request: Request, staff: CurrentStaff) -> dict:
    """A fresh single-use token to rejoin the call after a dropped connection."""
    ticket = await _ticket_for(request, ticket_id, staff.username)
    if ticket.state.value != "active":
        raise HTTPException(status_code=409, detail="该会话已经结束。")
    return {"room_token": await _desk(request).issue_room_token(ticket, "staff")}


@router.get("/tickets/{ticket_id}/messages")
async def messages(ticket_id: str, request: Request, staff: CurrentStaff, after: str = "0") -> dict:
    ticket = await _ticket_for(request, ticket_id, staff.username)
    try:
        items = await _desk(request).messages(ticket_id, after)
    except ResponseError:  # a malformed stream id from the client
        raise HTTPException(status_code=422, detail="参数 after 不正确。")
    return {"messages": [{**m, "text": mask_text(m["text"])} for m in items], "state": ticket.state.value}


@router.post("/tickets/{ticket_id}/messages")
async def send_message(ticket_id: str, body: StaffText, request: Request, staff: CurrentStaff) -> dict:
    try:
        await _desk(request).staff_message(ticket_id, staff.username, body.text)
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    return {"ok": True}


@router.post("/tickets/{ticket_id}/end")
async def end(ticket_id: str, body: EndSession, request: Request, staff: CurrentStaff) -> dict:
    desk = _desk(request)
    ticket = await _ticket_for(request, ticket_id, staff.username)
    try:
        ticket = await desk.end(ticket_id, staff.username, note=body.note, summary=body.summary)
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    written = ("note" if body.note.strip() else "no_note", "summary" if body.summary.strip() else "no_summary")
    await audited(request, staff.username, "staff.end", ticket_id, " ".join(written))
    await request.app.state.video.close(ticket)
    return {"state": ticket.state.value}


@router.post("/tickets/{ticket_id}/priority")
async def reprioritise(ticket_id: str, body: Priority, request: Request, staff: CurrentStaff) -> dict:
    """Staff decide priority where the citizen's own word was not enough (or was too generous)."""
    try:
        ticket = await _desk(request).set_priority(ticket_id, body.priority)
    except HandoffError as exc:
        raise HTTPException(status_code=409, detail=exc.message)
    await audited(request, staff.username, "staff.priority", ticket_id, "priority" if body.priority else "normal")
    return {"ticket_id": ticket.id, "priority": ticket.priority}


@router.get("/callbacks")
async def callbacks(request: Request, staff: CurrentStaff) -> dict:
    """Hotline callers' call-back appointments (slot, number), soonest first; each read is audited, since
    the numbers are in clear: staff dial them."""
    found = await _desk(request).appointments.callbacks()
    await audited(request, staff.username, "staff.callbacks.read", "-", f"count={len(found)}")
    return {"callbacks": found}


@router.get("/stats")
async def stats(request: Request, supervisor: Supervisor,
                days: Annotated[Optional[int], Query(ge=1, le=MAX_PERIOD_DAYS)] = None) -> dict:
    """Today's figures; with `days`, the last `days` days' (containment, handoff rate, wait, top questions)."""
    figures = _desk(request).figures
    return await figures.period(days) if days else await figures.today()
