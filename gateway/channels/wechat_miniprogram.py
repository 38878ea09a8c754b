"""The WeChat mini-program: POST /api/wx/login, POST /api/wx/chat, WebSocket /ws/wx/chat, the /wx/video page.

The mini-program sends the code of wx.login(); the gateway exchanges it with WeChat
(code2Session) for the openid and issues a bearer session of channel "wx" that keeps the
openid server-side. Every turn carries the openid to the actions as a signed assertion, so a
bound citizen is verified without typing anything; after an ID + code verification the
actions bind the openid and the session id is rotated, as on /api/chat. A queued video handoff
carries `page` (gateway/wechat/video.py), which the chat page opens: a web-view on /wx/video.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from redis.exceptions import RedisError

from gateway import sessions
from gateway.channels.web import (SESSION_UNAVAILABLE, WS_BAD_MESSAGE, WS_INTERNAL, WS_SESSION_GONE, ChatReply,
                                  serve_chat_socket)
from gateway.conversation import BotMessage, BotUnavailable, ChatInputError, is_identity_verified
from gateway.deps import LimiterDep, SessionsDep, SettingsDep
from gateway.limits import Rate, client_ip, origin_allowed
from gateway.schemas import ChatBody, WxLoginBody, json_body
from gateway.sessions import Session
from gateway.turns import count_turn, read_json_object, session_or_unavailable
from gateway.wechat import OPENID_KIND, WeChat
from gateway.wechat.api import InvalidCode, WeChatError, WeChatUnavailable
from gateway.wechat.video import for_mini_program

logger = logging.getLogger(__name__)
router = APIRouter(tags=["wechat"])
CHANNEL = "wx"
BAD_CODE = "微信登录凭证无效或已过期，请重新打开小程序登录。"
NOT_LOGGED_IN = "登录已过期或无效，请重新打开小程序登录。"
WECHAT_DOWN = "暂时无法连接微信服务器完成登录，请稍后再试；急需办理可拨打 12329 服务热线。"


def _wechat(request: Request) -> WeChat:
    return request.app.state.wechat


async def _wx_session(store, session_id: Optional[str]) -> Session:
    session = await session_or_unavailable(store, session_id)
    if session is None or session.channel != CHANNEL or session.identity_kind != OPENID_KIND:
        raise ChatInputError(NOT_LOGGED_IN, status_code=401)
    return session


@router.post("/api/wx/login", openapi_extra=json_body(WxLoginBody))
async def wx_login(request: Request, store: SessionsDep, limiter: LimiterDep, settings: SettingsDep) -> dict:
    """{"code": <wx.login() code>} -> {"token"}: a bearer session bound to the openid (never returned)."""
    body = await read_json_object(request)
    code = body.get("code")
    if not isinstance(code, str) or not 1 <= len(code.strip()) <= 128:
        raise ChatInputError("请求格式错误：需要微信登录凭证 code。", status_code=400)
    try:
        await limiter.hit("session_new", client_ip(request, settings.trusted_proxies),
                          Rate.parse(settings.rate_session_new_ip))
    except RedisError as exc:
        raise BotUnavailable() from exc
    try:
        openid = await _wechat(request).api.code2session(code.strip())
    except InvalidCode:
        raise ChatInputError(BAD_CODE, status_code=401)
    except (WeChatUnavailable, WeChatError):
        raise ChatInputError(WECHAT_DOWN, status_code=503)
    try:
        session = await store.create(CHANNEL, identity_kind=OPENID_KIND, identity=openid)
    except RedisError as exc:
        raise BotUnavailable() from exc
    logger.info("wechat.login.ok")
    return {"token": session.id}


@router.post("/api/wx/chat", response_model=ChatReply, response_model_exclude_none=True,
             openapi_extra=json_body(ChatBody))
async def wx_chat(request: Request, store: SessionsDep, limiter: LimiterDep, settings: SettingsDep) -> ChatReply:
    session = await _wx_session(store, sessions.bearer(request))
    body = await read_json_object(request)
    ip = client_ip(request, settings.trusted_proxies)
    await count_turn(limiter, settings, session, ip)
    messages = await _wechat(request).turns.turn(session, body.get("text"), body.get("metadata"), ip)
    token = None
    if any(is_identity_verified(m) for m in messages):
        token = (await store.rotate(session)).id
    return ChatReply(messages=for_mini_program([m for m in messages if not is_identity_verified(m)]), token=token)


@router.websocket("/ws/wx/chat")
async def wx_chat_socket(websocket: WebSocket) -> None:
    """Like /ws/chat with `Authorization: Bearer <token from /api/wx/login>`; without a live wx
    session the socket gets {"error", "status": 401} and is closed (4001)."""
    app = websocket.app
    store, settings, wechat = app.state.sessions, app.state.settings, app.state.wechat
    if not origin_allowed(websocket, settings.allowed_origins):
        await websocket.close(code=WS_BAD_MESSAGE)
        return
    await websocket.accept()
    try:
        session = await _wx_session(store, sessions.bearer(websocket))
    except ChatInputError as exc:
        await websocket.send_json({"error": exc.message, "status": exc.status_code})
        await websocket.close(code=WS_SESSION_GONE)
        return
    except BotUnavailable:
        await websocket.send_json({"error": SESSION_UNAVAILABLE, "retry": True})
        await websocket.close(code=WS_INTERNAL)
        return
    await websocket.send_json({"type": "session", "new": False})

    async def turn(current: Session, frame: dict, ip: str) -> list[BotMessage]:
        return for_mini_program(await wechat.turns.turn(current, frame.get("text"), frame.get("metadata"), ip))

    try:
        await serve_chat_socket(websocket, store, settings, session, turn)
    except WebSocketDisconnect:
        logger.info("chat.ws.closed channel=%s", CHANNEL)


VIDEO_PAGE_DIR = Path(__file__).resolve().parent.parent / "wechat"


@router.get("/wx/video", response_class=FileResponse)
async def wx_video_page() -> FileResponse:
    """The video handoff page the mini-program's web-view opens: /wx/video#ticket=<id>&key=<key>."""
    return FileResponse(VIDEO_PAGE_DIR / "video_page.html", media_type="text/html")


@router.get("/wx/video.js", include_in_schema=False)
async def wx_video_script() -> FileResponse:
    return FileResponse(VIDEO_PAGE_DIR / "video_page.js", media_type="text/javascript")
