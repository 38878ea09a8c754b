"""Recognition through the speech server (`python -m speech`, vosk-server protocol).

The gateway never loads a model: each caller stream (a dictation, one hotline utterance) is
one WebSocket to SPEECH_URL with the shared secret in ?secret=: a config frame, binary PCM16
frames (one JSON reply each), {"eof": 1} and the final {"text": ...}. Whatever goes wrong on
the way (server down, wrong secret, a decode that fails or never answers) is one
RecognitionUnavailable, which the channels turn into a Chinese message.
"""
from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

logger = logging.getLogger(__name__)

SERVER_FRAME_BYTES = 32000  # under the speech server's 64 KiB frame limit: 1 s of 16 kHz PCM16


class RecognitionUnavailable(Exception):
    """The speech server cannot be reached or did not answer in time."""


@dataclass(frozen=True)
class Reply:
    text: str
    final: bool  # an utterance ended: {"text": ...}; else {"partial": ...}


class RemoteStream:
    """One open recognition stream on the speech server."""

    def __init__(self, ws: ClientConnection, timeout_s: float):
        self._ws = ws
        self._timeout_s = timeout_s

    async def send(self, pcm: bytes) -> list[Reply]:
        """Feeds PCM16 (split to the server's frame size); one reply per frame sent."""
        replies = []
        for start in range(0, len(pcm), SERVER_FRAME_BYTES):
            await self._call(lambda chunk=pcm[start:start + SERVER_FRAME_BYTES]: self._ws.send(chunk))
            replies.append(await self._reply())
        return replies

    async def finish(self) -> Reply:
        await self._call(lambda: self._ws.send('{"eof" : 1}'))
        return await self._reply()

    async def _reply(self) -> Reply:
        raw = await self._call(self._ws.recv)
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            raise RecognitionUnavailable("speech server sent a reply that is not JSON") from None
        if not isinstance(data, dict):
            raise RecognitionUnavailable("speech server sent a reply that is not a JSON object")
        if "text" in data:
            return Reply(str(data.get("text") or "").strip(), final=True)
        return Reply(str(data.get("partial") or "").strip(), final=False)

    async def _call(self, fn):
        try:
            return await asyncio.wait_for(fn(), self._timeout_s)
        except asyncio.TimeoutError:
            raise RecognitionUnavailable(f"speech server did not answer within {self._timeout_s:.0f}s") from None
        except WebSocketException as exc:  # closed: 1008 bad secret or message, 1011 recognition failed
            raise RecognitionUnavailable(f"speech server connection ended: {exc}") from None


class SpeechClient:
    def __init__(self, url: str, secret: str, timeout_s: float = 20.0):
        self._url = url.rstrip("/")
        self._secret = secret
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def stream(self, sample_rate: int) -> AsyncIterator[RemoteStream]:
        if not self._secret:
            raise RecognitionUnavailable("SPEECH_SECRET is not set")
        uri = f"{self._url}/?secret={quote(self._secret, safe='')}"
        try:
            ws = await connect(uri, open_timeout=min(self.timeout_s, 5.0), max_size=1 << 20, compression=None,
                               ping_interval=None)
        except (OSError, asyncio.TimeoutError, InvalidHandshake) as exc:
            logger.warning("speech.client.unreachable error=%s", type(exc).__name__)
            raise RecognitionUnavailable(f"speech server unreachable: {type(exc).__name__}") from None
        try:
            await ws.send(json.dumps({"config": {"sample_rate": sample_rate}}))
            yield RemoteStream(ws, self.timeout_s)
        except WebSocketException as exc:
            raise RecognitionUnavailable(f"speech server connection ended: {exc}") from None
        finally:
            await ws.close()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """One whole utterance (PCM16) -> its recognised text ("" when nothing was heard)."""
        async with self.stream(sample_rate) as remote:
            texts = [r.text for r in await remote.send(pcm) if r.final and r.text]
            final = await remote.finish()
        if final.text:
            texts.append(final.text)
        return " ".join(texts)
