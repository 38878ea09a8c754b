"""The hotline channel: WS /ws/voice, one phone call per socket (gateway/voice/call.py).

A call is a server-issued session: a new one per call (ended when the call ends), unless the
client presents a valid one (the widget's cookie, a bearer token), which it keeps. The first
frame out is {"type": "session", "new": bool}; the first frame in is the audio config
{"config": {"sample_rate": 8000|16000, "encoding": "pcm16"|"mulaw"|"alaw"}}; the greeting is
spoken at once. Every utterance or keypad entry goes through `Conversation.turn` like any
channel's message (ID numbers said aloud or keyed are tokenised there). Recognition is the
speech server's; when it is away the call goes on by keypad.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional, Union

from fastapi import APIRouter, WebSocket
from redis.exceptions import RedisError
from starlette.websockets import WebSocketDisconnect

from gateway import sessions
from gateway.channels.speech_api import refuse
from gateway.conversation import BOT_UNAVAILABLE, BotMessage, BotUnavailable, ChatInputError, is_identity_verified
from gateway.limits import RateLimited, client_ip, origin_allowed
from gateway.sessions import Session
from gateway.settings import Settings
from gateway.turns import count_turn, new_session, session_turn
from gateway.voice import prompts
from gateway.voice.audio import FrameError, parse_config, parse_json_frame
from gateway.voice.call import Call, CallGone, CallServices
from gateway.voice.runtime import call_limits, voice_of
from gateway.voice.transfer import transfer_for

logger = logging.getLogger(__name__)
router = APIRouter(tags=["voice"])

WS_POLICY, WS_INTERNAL = 1008, 1011


class SocketLink:
    """Call <-> Starlette WebSocket; sends after the caller left are dropped, not raised."""

    def __init__(self, websocket: WebSocket):
        self._ws = websocket
        self.open = True

    async def receive(self) -> Union[str, bytes, None]:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            self.open = False
            return None
        if message.get("bytes") is not None:
            return message["bytes"]
        return message.get("text") or ""

    async def send_json(self, data: dict) -> None:
        await self._guard(self._ws.send_json(data))

    async def send_bytes(self, data: bytes) -> None:
        await self._guard(self._ws.send_bytes(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._guard(self._ws.close(code=code, reason=reason or None))
        self.open = False

    async def _guard(self, coro) -> None:
        if not self.open:
            coro.close()
            return
        try:
            await coro
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.open = False


class CallTurns:
    """Turns of one call against its session; errors become spoken messages, a lost session ends the call."""

    def __init__(self, app, session: Session, ip: str):
        self._app = app
        self.session = session
        self._ip = ip

    async def __call__(self, text: str) -> list[BotMessage]:
        store, settings = self._app.state.sessions, self._app.state.settings
        try:
            current = await store.get(self.session.id)
        except RedisError:
            return [BotMessage(text=prompts.SESSION_BUSY)]
        if current is None:
            raise CallGone()
        try:
            await count_turn(self._app.state.limiter, settings, current, self._ip)
            # Not rotated on verification, unlike the web: a call's own session id never leaves the gateway,
            # and rotating a presented one would silently log the widget's cookie out.
            messages = await session_turn(self._app.state.conversation, store, current, text, None, self._ip)
        except RateLimited as exc:
            return [BotMessage(text=exc.message)]
        except ChatInputError as exc:
            return [BotMessage(text=exc.message)]
        except (BotUnavailable, RedisError):
            return [BotMessage(text=BOT_UNAVAILABLE)]
        self.session = current
        return [m for m in messages if not is_identity_verified(m)]


@router.websocket("/ws/voice")
async def voice_socket(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    store = app.state.sessions
    if not origin_allowed(websocket, settings.allowed_origins):
        logger.warning("voice.ws.origin_refused")
        await websocket.close(code=WS_POLICY)
        return
    await websocket.accept()
    try:
        presented = await store.get(sessions.presented_id(websocket))
        session = presented or await new_session(store, app.state.limiter, settings, websocket, "voice")
    except RateLimited as exc:
        await refuse(websocket, exc.message, WS_POLICY, retry_after_s=exc.retry_after_s)
        return
    except (RedisError, BotUnavailable):
        await refuse(websocket, prompts.SESSION_BUSY, WS_INTERNAL)
        return
    turns = CallTurns(app, session, client_ip(websocket, settings.trusted_proxies))
    try:
        await websocket.send_json({"type": "session", "new": presented is None})
        fmt = await _config(websocket, settings)
        if fmt is None:
            return
        voice = voice_of(app)
        services = CallServices(recognise=voice.speech.transcribe, turn=turns, speak=voice.tts.speech,
                                transfer=transfer_for(app, turns.session.sender_id))
        logger.info("voice.call.started rate=%d encoding=%s", fmt.sample_rate, fmt.encoding)
        reason = await Call(SocketLink(websocket), services, fmt, call_limits(settings)).run()
        logger.info("voice.call.ended reason=%s", reason)
    except FrameError as exc:
        await refuse(websocket, exc.message, exc.code)
    except WebSocketDisconnect:
        logger.info("voice.call.ended reason=disconnected")
    finally:
        if presented is None:
            await _end_call_session(app, turns.session)


async def _config(websocket: WebSocket, settings: Settings):
    try:
        message = await asyncio.wait_for(websocket.receive(), settings.ws_first_frame_timeout_s)
    except asyncio.TimeoutError:
        await refuse(websocket, prompts.FIRST_FRAME_LATE, 1000)
        return None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("bytes") is not None:
        raise FrameError(prompts.AUDIO_BEFORE_CONFIG)
    return parse_config(parse_json_frame(message.get("text") or ""), allow_g711=True)


async def _end_call_session(app, session: Optional[Session]) -> None:
    """A call's own session ends with the call, and the bot forgets any verification in it."""
    try:
        await app.state.sessions.end(session)
        if session.verified:
            await app.state.conversation.forget_verification(session.sender_id)
    except (RedisError, BotUnavailable):
        logger.warning("voice.call.session_end_failed")
