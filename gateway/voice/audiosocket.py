"""Phone calls from Asterisk: a TCP listener speaking AudioSocket, bridged to the hotline's Call.

Asterisk's AudioSocket() dialplan application (docs/telephony.md) opens one TCP connection per
call and exchanges frames of [kind: 1 byte][length: 2 bytes big-endian][payload]:

    0x01 the call's UUID (16 bytes), first and once       0x10 audio: 8 kHz 16-bit signed linear,
    0x03 a DTMF digit (1 ASCII byte)                           little-endian, mono (20 ms = 320 bytes)
    0x00 hang-up (no payload)                             0xff an error code from Asterisk

Each connection becomes one hotline call (gateway/voice/call.py) with its own server-issued
session, exactly like /ws/voice: audio goes through the endpointer and the speech server, keys
through the keypad, every turn through `Conversation.turn`. Bot audio goes back as 0x10 frames
of 320 bytes paced at 20 ms; bot text has no place on a phone line and is only logged (masked).
A frame that is malformed, unknown, oversized or out of order ends that call with a log line and
a hang-up frame; nothing a peer sends can stop the listener. Off unless AUDIOSOCKET_PORT is set;
loopback by default (put it behind the PBX's private network, never the internet).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Optional, Union

from redis.exceptions import RedisError

from gateway.conversation import BotUnavailable
from gateway.limits import Rate, RateLimited
from gateway.privacy import mask_text
from gateway.voice.audio import AudioFormat
from gateway.voice.call import Call, CallServices
from gateway.voice.runtime import call_limits, voice_of
from gateway.voice.transfer import transfer_for

logger = logging.getLogger(__name__)

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
SAMPLE_RATE = 8000
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit audio
FRAME_S = 0.02
DTMF_KEYS = set("0123456789*#")
DRAIN_S = 2.0  # longest wait for queued bot audio when the call ends


class ProtocolError(Exception):
    """A frame this bridge cannot take; the call ends."""


def frame(kind: int, payload: bytes = b"") -> bytes:
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ValueError("AudioSocket frames carry a 1-byte kind and at most 65535 bytes")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


async def read_frame(reader: asyncio.StreamReader) -> Optional[tuple[int, bytes]]:
    """The next (kind, payload), or None when the peer closed between frames."""
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a frame header") from None
        return None
    length = int.from_bytes(header[1:3], "big")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"connection closed inside a {length}-byte payload") from None
    return header[0], payload


class AudioSocketLink:
    """Call <-> one AudioSocket connection (the Link protocol of gateway/voice/call.py)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_id: str):
        self._reader = reader
        self._writer = writer
        self.call_id = call_id
        self.open = True
        self.ended: Optional[str] = None  # why the peer side ended: hangup, closed, error, bad_frame
        self._out = bytearray()
        self._has_audio = asyncio.Event()
        self._pacer = asyncio.ensure_future(self._pace())

    async def receive(self) -> Union[str, bytes, None]:
        while True:
            try:
                got = await read_frame(self._reader)
            except (ProtocolError, ConnectionError) as exc:
                logger.warning("voice.audiosocket.bad_frame call=%s error=%s", self.call_id, exc)
                self.ended = "bad_frame"
                return None
            if got is None:
                self.ended = "closed"
                return None
            kind, payload = got
            if kind == KIND_AUDIO:
                return payload  # odd lengths and oversized frames are the Call's FrameError
            if kind == KIND_DTMF:
                key = payload.decode("ascii", "replace")
                if len(payload) != 1 or key not in DTMF_KEYS:
                    logger.warning("voice.audiosocket.bad_frame call=%s error=dtmf payload of %d bytes",
                                   self.call_id, len(payload))
                    self.ended = "bad_frame"
                    return None
                return json.dumps({"dtmf": key})
            if kind == KIND_HANGUP:
                self.ended = "hangup"
                return json.dumps({"hangup": 1})
            if kind == KIND_ERROR:
                logger.warning("voice.audiosocket.peer_error call=%s code=%s", self.call_id, payload.hex()[:8])
                self.ended = "error"
                return None
            logger.warning("voice.audiosocket.bad_frame call=%s error=unexpected kind 0x%02x", self.call_id, kind)
            self.ended = "bad_frame"
            return None

    async def send_json(self, data: dict) -> None:
        kind = data.get("type")
        if kind == "bot":
            logger.debug("voice.audiosocket.bot call=%s text=%s", self.call_id, mask_text(data.get("text") or "")[:40])
        elif kind == "playback_stopped":
            self._out.clear()  # barge-in: what was queued is not played
        elif "error" in data:
            logger.info("voice.audiosocket.call_error call=%s", self.call_id)

    async def send_bytes(self, data: bytes) -> None:
        if self.open:
            self._out += data
            self._has_audio.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.open:
            return
        if code == 1000 and self.ended is None:  # a normal end: let the last words play out
            deadline = time.monotonic() + DRAIN_S
            while self._out and time.monotonic() < deadline:
                await asyncio.sleep(FRAME_S)
        self.open = False
        self._pacer.cancel()
        await asyncio.gather(self._pacer, return_exceptions=True)
        try:
            if self.ended not in ("hangup", "closed"):
                self._writer.write(frame(KIND_HANGUP))
            await self._writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self._writer.close()

    async def _pace(self) -> None:
        """Writes queued audio as 320-byte frames, one every 20 ms (Asterisk plays what arrives)."""
        try:
            while True:
                await self._has_audio.wait()
                next_at = time.monotonic()
                while self._out:
                    chunk = bytes(self._out[:FRAME_BYTES])
                    del self._out[:FRAME_BYTES]
                    if len(chunk) < FRAME_BYTES:
                        chunk += b"\x00" * (FRAME_BYTES - len(chunk))
                    self._writer.write(frame(KIND_AUDIO, chunk))
                    await self._writer.drain()
                    next_at += FRAME_S
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                self._has_audio.clear()
        except (ConnectionError, RuntimeError):
            self.open = False


async def handle_connection(app, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One Asterisk call, start to end; every failure ends only this connection."""
    from gateway.channels.voice import CallTurns, _end_call_session

    settings = app.state.settings
    peer = (writer.get_extra_info("peername") or ("?",))[0]
    session = None
    turns = None
    try:
        try:
            first = await asyncio.wait_for(read_frame(reader), settings.ws_first_frame_timeout_s)
        except asyncio.TimeoutError:
            first = None
        if first is None or first[0] != KIND_UUID or len(first[1]) != 16:
            what = "nothing" if first is None else f"kind 0x{first[0]:02x} with {len(first[1])} bytes"
            logger.warning("voice.audiosocket.refused peer=%s error=first frame must be a 16-byte UUID, got %s",
                           peer, what)
            writer.write(frame(KIND_HANGUP))
            return
        call_id = str(uuid.UUID(bytes=first[1]))[:8]
        try:
            await app.state.limiter.hit("session_new", peer, Rate.parse(settings.rate_session_new_ip))
            session = await app.state.sessions.create("voice")
        except (RateLimited, RedisError, BotUnavailable) as exc:
            logger.warning("voice.audiosocket.refused call=%s error=%s", call_id, type(exc).__name__)
            writer.write(frame(KIND_HANGUP))
            return
        turns = CallTurns(app, session, peer)
        voice = voice_of(app)
        services = CallServices(recognise=voice.speech.transcribe, turn=turns, speak=voice.tts.speech,
                                transfer=transfer_for(app, turns.session.sender_id))
        link = AudioSocketLink(reader, writer, call_id)
        logger.info("voice.audiosocket.call_started call=%s", call_id)
        reason = await Call(link, services, AudioFormat(SAMPLE_RATE, "pcm16"), call_limits(settings)).run()
        await link.close(1000 if reason in ("caller", "silence", "max_length", "gone") else 1003)
        logger.info("voice.audiosocket.call_ended call=%s reason=%s peer=%s", call_id, reason, link.ended or "-")
    except ProtocolError as exc:
        logger.warning("voice.audiosocket.bad_frame peer=%s error=%s", peer, exc)
    except (ConnectionError, asyncio.IncompleteReadError):
        logger.info("voice.audiosocket.connection_lost peer=%s", peer)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("voice.audiosocket.call_failed peer=%s", peer)
    finally:
        if session is not None:
            await _end_call_session(app, turns.session if turns else session)
        try:
            writer.close()
        except RuntimeError:
            pass


class AudioSocketServer:
    """The listener; `start` returns None when AUDIOSOCKET_PORT is 0 (off)."""

    def __init__(self, app):
        self._app = app
        self._server: Optional[asyncio.AbstractServer] = None
        self._calls: set[asyncio.Task] = set()

    @property
    def port(self) -> Optional[int]:
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> Optional["AudioSocketServer"]:
        if not port:
            return None
        self._server = await asyncio.start_server(self._accept, host, port)
        logger.info("voice.audiosocket.listening host=%s port=%d", host, self.port)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._calls.add(task)
        try:
            await handle_connection(self._app, reader, writer)
        finally:
            self._calls.discard(task)

    async def aclose(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        await self._server.wait_closed()

