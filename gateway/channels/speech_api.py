"""Speech for the widget: POST /api/tts (a bot message read aloud) and WS /ws/speech (dictation).

Both need a live session (cookie `anju_session` or `Authorization: Bearer`), like /api/chat,
and are rate-limited per session and per client IP apart from chat turns.

POST /api/tts {"text": "..."} (1-500 characters) -> 200 audio/wav, mono 16-bit PCM at 16 kHz,
with numbers, amounts, dates and ID digits read as spoken Chinese. 401 without a session,
400/413 for bad text, 429 over the rate, 503 when no speech can be made.

WS /ws/speech: {"config": {"sample_rate": 16000}} (or 8000), binary frames of PCM16 LE mono,
{"eof": 1}. Out: {"partial": "..."} while it hears something, one final {"text": "..."}
(simplified Chinese, corrected toward the fund's vocabulary), then close 1000. Recognition
away: {"error": ...} and 1013. A bad frame: {"error": ...} and 1003 (malformed, wrong rate)
or 1009 (too big, too long). Recognition runs on the speech server, never here.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from gateway import sessions
from gateway.conversation import ChatInputError
from gateway.deps import LimiterDep, SessionsDep, SettingsDep
from gateway.limits import Rate, RateLimited, RateLimiter, client_ip, origin_allowed
from gateway.schemas import TtsBody, json_body
from gateway.sessions import Session
from gateway.settings import Settings
from gateway.turns import read_json_object, session_or_unavailable
from gateway.voice import prompts
from gateway.voice.audio import CLOSE_TOO_BIG, FrameError, parse_config, parse_json_frame, wav_bytes
from gateway.voice.recognition import RecognitionUnavailable, RemoteStream
from gateway.voice.runtime import voice_of
from gateway.voice.synthesis import SynthesisUnavailable

logger = logging.getLogger(__name__)
router = APIRouter(tags=["speech"])

TTS_RATE = 16000
WS_POLICY, WS_INTERNAL, WS_TRY_LATER = 1008, 1011, 1013


async def count_speech(limiter: RateLimiter, settings: Settings, scope: str, session: Session, ip: str) -> None:
    await limiter.hit(f"{scope}_session", session.sender_id, Rate.parse(settings.rate_speech_session))
    await limiter.hit(f"{scope}_ip", ip, Rate.parse(settings.rate_speech_ip))


def tts_text(body: dict, max_chars: int) -> str:
    text = body.get("text")
    if not isinstance(text, str):
        raise ChatInputError("请求参数不正确：text 必须是要朗读的文字。", status_code=400)
    text = text.strip()
    if not text:
        raise ChatInputError("朗读内容不能为空。", status_code=400)
    if len(text) > max_chars:
        raise ChatInputError(f"朗读内容太长了（{len(text)} 字），请控制在 {max_chars} 字以内。", status_code=413)
    return text


@router.post("/api/tts", response_class=Response, openapi_extra=json_body(TtsBody),
             responses={200: {"content": {"audio/wav": {}}, "description": "mono 16-bit PCM WAV"}})
async def text_to_speech(request: Request, store: SessionsDep, limiter: LimiterDep, settings: SettingsDep) -> Response:
    session = await session_or_unavailable(store, sessions.presented_id(request))
    if session is None:
        raise ChatInputError(prompts.NEED_SESSION, status_code=401)
    text = tts_text(await read_json_object(request), settings.tts_max_chars)
    await count_speech(limiter, settings, "tts", session, client_ip(request, settings.trusted_proxies))
    try:
        pcm = await voice_of(request.app).tts.speech(text, TTS_RATE)
    except SynthesisUnavailable:
        return JSONResponse({"detail": prompts.TTS_UNAVAILABLE}, status_code=503, headers={"Retry-After": "30"})
    return Response(wav_bytes(pcm, TTS_RATE), media_type="audio/wav", headers={"Cache-Control": "no-store"})


async def refuse(websocket: WebSocket, message: str, code: int, **extra) -> None:
    """The speech sockets' refusal: one {"error": Chinese message} frame, then the close code."""
    await websocket.send_json({"error": message, **extra})
    await websocket.close(code=code)


@router.websocket("/ws/speech")
async def speech_socket(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    if not origin_allowed(websocket, settings.allowed_origins):
        logger.warning("speech.ws.origin_refused")
        await websocket.close(code=WS_POLICY)  # before accept: the handshake is answered 403
        return
    await websocket.accept()
    try:
        session = await app.state.sessions.get(sessions.presented_id(websocket))
        if session is None:
            await refuse(websocket, prompts.NEED_SESSION, WS_POLICY)
            return
        await count_speech(app.state.limiter, settings, "speech", session,
                           client_ip(websocket, settings.trusted_proxies))
    except RateLimited as exc:
        await refuse(websocket, exc.message, WS_POLICY, retry_after_s=exc.retry_after_s)
        return
    except RedisError:
        await refuse(websocket, prompts.SESSION_BUSY, WS_INTERNAL)
        return
    try:
        fmt = await _config(websocket, settings)
        if fmt is None:
            return
        async with voice_of(app).speech.stream(fmt.sample_rate) as remote:
            await _dictation(websocket, remote, settings, fmt.bytes_per_second)
    except FrameError as exc:
        logger.info("speech.ws.bad_frame code=%d", exc.code)
        await refuse(websocket, exc.message, exc.code)
    except RecognitionUnavailable as exc:
        logger.warning("speech.ws.recognition_unavailable error=%s", exc)
        await refuse(websocket, prompts.SPEECH_UNAVAILABLE, WS_TRY_LATER)
    except _Disconnected:
        logger.info("speech.ws.client_gone")


class _Disconnected(Exception):
    pass


async def _receive(websocket: WebSocket, timeout_s: float) -> Optional[str | bytes]:
    """The next frame; None on timeout; _Disconnected when the client left."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout_s)
    except asyncio.TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        raise _Disconnected()
    if message.get("bytes") is not None:
        return message["bytes"]
    return message.get("text") or ""


async def _config(websocket: WebSocket, settings: Settings):
    frame = await _receive(websocket, settings.ws_first_frame_timeout_s)
    if frame is None:
        await refuse(websocket, prompts.FIRST_FRAME_LATE, 1000)
        return None
    if isinstance(frame, bytes):
        raise FrameError(prompts.AUDIO_BEFORE_CONFIG)
    return parse_config(parse_json_frame(frame))


async def _dictation(websocket: WebSocket, remote: RemoteStream, settings: Settings, bytes_per_second: int) -> None:
    heard: list[str] = []
    received, shown = 0, ""
    limit = int(settings.speech_max_audio_s * bytes_per_second)
    while True:
        frame = await _receive(websocket, settings.ws_first_frame_timeout_s * 3)
        if frame is None:
            await refuse(websocket, prompts.IDLE, 1000)
            return
        if isinstance(frame, str):
            data = parse_json_frame(frame)
            if "eof" in data:
                final = await remote.finish()
                text = " ".join([*heard, final.text] if final.text else heard)
                await websocket.send_json({"text": text})
                await websocket.close(code=1000)
                return
            raise FrameError(prompts.CONFIG_TWICE if "config" in data else prompts.UNKNOWN_FRAME)
        if len(frame) > settings.speech_max_frame_bytes:
            raise FrameError(prompts.FRAME_TOO_BIG.format(limit=settings.speech_max_frame_bytes), CLOSE_TOO_BIG)
        if len(frame) % 2:
            raise FrameError(f"音频帧长度为 {len(frame)} 字节，16 位 PCM 需要偶数字节。")
        received += len(frame)
        if received > limit:
            raise FrameError(prompts.AUDIO_TOO_LONG.format(seconds=int(settings.speech_max_audio_s)), CLOSE_TOO_BIG)
        partial = ""
        for reply in await remote.send(frame):
            if reply.final and reply.text:
                heard.append(reply.text)
            elif not reply.final:
                partial = reply.text
        current = " ".join([*heard, partial] if partial else heard)
        if current and current != shown:
            await websocket.send_json({"partial": current})
            shown = current
