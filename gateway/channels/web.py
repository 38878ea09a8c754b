"""Web widget and API clients: sessions, POST /api/chat and WebSocket /ws/chat.

The session comes from the `anju_session` cookie (widget) or `Authorization: Bearer` (API
clients); without a valid one a new session starts. A `sender_id` sent by an old client is
ignored. After identity verification the session id is rotated: at once on /api/chat, and
over the WebSocket by telling the widget (`session_rotate`), which calls /api/session/rotate,
because a cookie cannot be set over an open socket; sockets of the old id are then closed.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable, Optional

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from redis.exceptions import RedisError

from gateway import sessions
from gateway.limits import RateLimited, client_ip, origin_allowed
from gateway.conversation import BOT_UNAVAILABLE, BotMessage, BotUnavailable, ChatInputError, is_identity_verified
from gateway.deps import ConversationDep, LimiterDep, SessionsDep, SettingsDep
from gateway.schemas import ChatBody, json_body
from gateway.sessions import Session, SessionStore
from gateway.turns import count_turn, new_session, read_json_object, session_or_unavailable, session_turn

logger = logging.getLogger(__name__)
router = APIRouter(tags=["web"])

WS_BAD_MESSAGE, WS_TOO_BIG, WS_INTERNAL = 1008, 1009, 1011
WS_SESSION_GONE = 4001  # the session was rotated or ended: reconnect with the current cookie
ENDED_TEXT = "您已退出，本次会话的身份验证已失效。如需继续办理，请重新提问。"
SESSION_GONE = "会话已更新或已结束，正在重新连接。"
SESSION_UNAVAILABLE = "服务暂时繁忙，请稍后再试；急需办理可拨打 12329 服务热线。"
PONG = {"type": "pong"}  # the answer to a keepalive {"type": "ping"}


class ChatReply(BaseModel):
    messages: list[BotMessage]
    # Present only when this reply issued a new session or rotated it (API clients keep the new one).
    token: Optional[str] = None


class Issued:
    """What a reply must hand back to the client: a new session id as cookie or as token."""

    def __init__(self, request: Request, settings, cookie: bool):
        self._request, self._settings, self.cookie = request, settings, cookie
        self.session_id: Optional[str] = None

    def apply(self, response: Response) -> Optional[str]:
        if self.session_id is None:
            return None
        if self.cookie:
            sessions.set_cookie(response, self._request, self.session_id, self._settings.session_idle_ttl_s,
                                self._settings.behind_tls)
            return None
        return self.session_id


@router.post("/api/session")
async def new_api_session(request: Request, store: SessionsDep, limiter: LimiterDep, settings: SettingsDep) -> dict:
    """API clients: a fresh session, sent back as `Authorization: Bearer <token>`."""
    session = await new_session(store, limiter, settings, request, "api")
    return {"token": session.id}


@router.post("/api/session/web")
async def web_session(request: Request, response: Response, store: SessionsDep, limiter: LimiterDep,
                      settings: SettingsDep) -> dict:
    """The widget on load: keeps a valid cookie session, or sets a new one (HttpOnly, never readable by JS)."""
    session = await session_or_unavailable(store, request.cookies.get(sessions.COOKIE))
    if session is None:
        session = await new_session(store, limiter, settings, request, "web")
        sessions.set_cookie(response, request, session.id, settings.session_idle_ttl_s, settings.behind_tls)
    return {"active": True, "verified": session.verified}


@router.post("/api/session/rotate")
async def rotate_session(request: Request, response: Response, store: SessionsDep, settings: SettingsDep) -> dict:
    session = await session_or_unavailable(store, sessions.presented_id(request))
    if session is None:
        raise ChatInputError("会话不存在或已过期，请刷新页面。", status_code=401)
    fresh = await store.rotate(session)
    if sessions.uses_cookie(request):
        sessions.set_cookie(response, request, fresh.id, settings.session_idle_ttl_s, settings.behind_tls)
        return {"rotated": True}
    return {"rotated": True, "token": fresh.id}


@router.post("/api/session/end")
async def end_session(request: Request, response: Response, store: SessionsDep, conversation: ConversationDep) -> dict:
    """The widget's “退出”: the session and its verified state end; the next visit starts afresh."""
    session = await session_or_unavailable(store, sessions.presented_id(request))
    sessions.clear_cookie(response)
    if session is not None:
        await store.end(session)
        if session.verified:
            await conversation.forget_verification(session.sender_id)
    return {"ended": True, "text": ENDED_TEXT}


@router.post("/api/chat", response_model=ChatReply, response_model_exclude_none=True, openapi_extra=json_body(ChatBody))
async def chat(request: Request, response: Response, conversation: ConversationDep, store: SessionsDep,
               limiter: LimiterDep, settings: SettingsDep) -> ChatReply:
    body = await read_json_object(request)
    session = await session_or_unavailable(store, sessions.presented_id(request))
    issued = Issued(request, settings, cookie=sessions.uses_cookie(request))
    if session is None:
        session = await new_session(store, limiter, settings, request, "web" if issued.cookie else "api")
        issued.session_id = session.id
    ip = client_ip(request, settings.trusted_proxies)
    await count_turn(limiter, settings, session, ip)
    messages = await session_turn(conversation, store, session, body.get("text"), body.get("metadata"), ip)
    if any(is_identity_verified(m) for m in messages):
        session = await store.rotate(session)
        issued.session_id = session.id
    shown = [m for m in messages if not is_identity_verified(m)]
    return ChatReply(messages=shown, token=issued.apply(response))


async def chat_socket(websocket: WebSocket) -> None:
    """Frames in: {"text": "..."}, or the keepalive {"type": "ping"} (answered {"type": "pong"}); frames
    out: {"messages": [...]}, {"error": "..."} or {"type": ...}.

    The first frame out is {"type": "session", "new": bool}, plus "token" for a new session of a
    client without cookies, or "renew" (then the socket closes) for a stale cookie. Every frame in is checked against the live session, so a socket of a
    rotated or ended session id is closed (4001) and cannot go on with the conversation.
    """
    app = websocket.app
    conversation, store, settings = app.state.conversation, app.state.sessions, app.state.settings
    if not origin_allowed(websocket, settings.allowed_origins):
        logger.warning("chat.ws.origin_refused")
        await websocket.close(code=WS_BAD_MESSAGE)  # before accept: the handshake is answered 403
        return
    await websocket.accept()
    try:
        session = await store.get(sessions.presented_id(websocket))
        if session is None and sessions.uses_cookie(websocket):
            # A stale cookie: only an HTTP call can set a new one, so the widget renews and reconnects.
            await websocket.send_json({"type": "session", "new": True, "renew": True})
            await websocket.close(code=WS_SESSION_GONE)
            return
        new = session is None
        if new:
            session = await new_session(store, app.state.limiter, settings, websocket, "api")
    except RateLimited as exc:
        await websocket.send_json({"error": exc.message, "retry_after_s": exc.retry_after_s})
        await websocket.close(code=WS_BAD_MESSAGE)
        return
    except (RedisError, BotUnavailable):
        await websocket.send_json({"error": SESSION_UNAVAILABLE, "retry": True})
        await websocket.close(code=WS_INTERNAL)
        return
    first = {"type": "session", "new": new}
    if new and not sessions.uses_cookie(websocket):
        first["token"] = session.id
    await websocket.send_json(first)

    async def turn(current: Session, frame: dict, ip: str) -> list[BotMessage]:
        return await session_turn(conversation, store, current, frame.get("text"), frame.get("metadata"), ip)

    try:
        await serve_chat_socket(websocket, store, settings, session, turn)
    except WebSocketDisconnect:
        logger.info("chat.ws.closed channel=%s", session.channel)


# A plain Starlette route rather than @router.websocket: the socket takes no dependencies, and FastAPI's
# per-connection exit stacks and frames cost ~3.5 KB on every idle socket (bench/idle_sockets.py).
router.add_websocket_route("/ws/chat", chat_socket)


SocketTurn = Callable[[Session, dict, str], Awaitable[list[BotMessage]]]


async def serve_chat_socket(websocket: WebSocket, store: SessionStore, settings, session: Session,
                            turn: SocketTurn) -> None:
    """The frame loop of a chat socket (web and WeChat): idle and size limits, the live-session check
    on every frame, keepalives, rate limits and error frames; `turn` runs the channel's own turn.

    A client keeps an idle socket open by sending {"type": "ping"} (answered {"type": "pong"}, not
    a turn) more often than ws_idle_timeout_s. asyncio.timeout rather than wait_for: no extra task
    per waiting socket, which matters with many thousands of them idle."""
    while True:
        try:
            async with asyncio.timeout(settings.ws_idle_timeout_s):
                raw = await websocket.receive_text()
        except TimeoutError:
            await websocket.close(code=1000, reason="idle")
            return
        if len(raw) > settings.ws_max_frame_bytes:
            await websocket.send_json({"error": f"消息太长了，请控制在 {settings.chat_max_chars} 字以内。"})
            await websocket.close(code=WS_TOO_BIG)
            return
        try:
            current = await store.get(session.id)
        except RedisError as exc:
            logger.warning("chat.ws.session_check_failed error=%s: %s", type(exc).__name__, exc)
            await websocket.send_json({"error": SESSION_UNAVAILABLE, "retry": True})
            continue
        if current is None:
            await websocket.send_json({"error": SESSION_GONE, "reconnect": True})
            await websocket.close(code=WS_SESSION_GONE)
            return
        session = current
        try:
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                raise ValueError
        except ValueError:
            await websocket.send_json({"error": "消息格式错误：需要 JSON 对象 {\"text\": \"...\"}。"})
            continue
        if frame.get("type") == "ping":
            await websocket.send_json(PONG)
            continue
        try:
            ip = client_ip(websocket, settings.trusted_proxies)
            await count_turn(websocket.app.state.limiter, settings, session, ip)
            messages = await turn(session, frame, ip)
        except RateLimited as exc:
            await websocket.send_json({"error": exc.message, "retry_after_s": exc.retry_after_s})
            continue
        except ChatInputError as exc:
            await websocket.send_json({"error": exc.message})
            continue
        except BotUnavailable:
            await websocket.send_json({"error": BOT_UNAVAILABLE, "retry": True})
            continue
        out = [m.model_dump() for m in messages if not is_identity_verified(m)]
        await websocket.send_json({"messages": out})
        if len(out) < len(messages):
            await websocket.send_json({"type": "session_rotate"})
