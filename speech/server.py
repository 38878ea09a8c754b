"""The speech server: the vosk-server WebSocket protocol, so any vosk client (or upstream
vosk-server in its place) works with it.

Protocol, one connection per caller or utterance stream:
  - URL query `?secret=...` (shared secret; stock clients only need the URL changed)
  - optional first text frame {"config": {"sample_rate": 8000, "phrase_list": [...]}}
    (8000 by default; phrase_list asks for grammar mode where the engine has one)
  - binary frames of 16-bit little-endian mono PCM, each answered by one JSON message:
    {"partial": "..."} while an utterance goes on, {"text": "..."} when one ended
  - {"eof": 1} (any spacing: parsed as JSON) -> the final {"text": ...}, then close 1000
Close codes: 1008 wrong secret or bad message (reason says what was expected), 1009 frame
over the size limit (websockets itself), 1011 recognition failed.

A client that leaves while its audio waits for a recognition worker takes that work with it
(the gateway starts recognition on a pause and drops it when the caller goes on talking), so
abandoned decodes do not queue ahead of live ones.
"""
import asyncio
import hmac
import json
import logging
from concurrent.futures import Executor
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from speech.errors import AudioFormatError
from speech.pcm import check_rate
from speech.recogniser import Hypothesis, RecognitionStream, Recogniser

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
DEFAULT_RATE = 8000
DEFAULT_MAX_FRAME_BYTES = 1 << 16  # 2 s of 16 kHz audio; vosk clients send 0.1-0.5 s


class ProtocolError(Exception):
    """A client broke the protocol; the message becomes the close reason (<= 123 bytes)."""


class SpeechServer:
    def __init__(self, recogniser: Recogniser, secret: str, executor: Executor,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES):
        if not secret:
            raise ValueError("the speech server needs a non-empty shared secret")
        self._recogniser = recogniser
        self._secret = secret.encode()
        self._executor = executor
        self.max_frame_bytes = max_frame_bytes

    async def start(self, host: str, port: int) -> Server:
        return await serve(self.handle, host, port, max_size=self.max_frame_bytes, compression=None)

    async def handle(self, ws: ServerConnection) -> None:
        if not self._authorised(ws.request.path if ws.request else ""):
            log.warning("speech.session.refused reason=secret peer=%s", ws.remote_address)
            await ws.close(CLOSE_POLICY, "wrong or missing secret: connect with ?secret=...")
            return
        session = _Session(self._recogniser, self._executor)
        try:
            async for message in ws:
                reply, done = await _unless_closed(ws, session.on_message(message))
                if reply is not None:
                    await ws.send(json.dumps(reply, ensure_ascii=False))
                if done:
                    await ws.close(CLOSE_NORMAL)
                    return
        except ProtocolError as exc:
            log.info("speech.session.bad_message reason=%s", exc)
            await ws.close(CLOSE_POLICY, str(exc)[:120])
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("speech.session.failed")
            await ws.close(CLOSE_INTERNAL, "recognition failed")

    def _authorised(self, path: str) -> bool:
        given = parse_qs(urlsplit(path).query).get("secret", [""])[0].encode()
        return hmac.compare_digest(given, self._secret)


async def _unless_closed(ws: ServerConnection, work):
    """`work`'s result, or ConnectionClosed (the work cancelled) if the client leaves first."""
    task = asyncio.ensure_future(work)
    if not task.done():
        closed = asyncio.ensure_future(ws.wait_closed())
        await asyncio.wait((task, closed), return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if not task.done():
            task.cancel()  # a decode still queued for a worker never starts
            await asyncio.gather(task, return_exceptions=True)
            log.info("speech.session.abandoned")
            raise ConnectionClosed(None, None)
    return task.result()


class _Session:
    def __init__(self, recogniser: Recogniser, executor: Executor):
        self._recogniser = recogniser
        self._executor = executor
        self._rate = DEFAULT_RATE
        self._phrases: list[str] | None = None
        self._stream: RecognitionStream | None = None

    async def on_message(self, message: str | bytes) -> tuple[dict | None, bool]:
        """-> (reply, finished)"""
        if isinstance(message, bytes):
            if len(message) % 2:
                raise ProtocolError(f"binary frame of {len(message)} bytes: expected 16-bit PCM (an even count)")
            return (await self._run(self._open().accept, message)).as_message(), False
        try:
            data = json.loads(message)
        except ValueError:
            raise ProtocolError('text frame is not JSON: expected {"config": {...}} or {"eof": 1}') from None
        if isinstance(data, dict) and "eof" in data:
            final = await self._run(self._open().finish) if self._stream else Hypothesis("", final=True)
            return final.as_message(), True
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            self._configure(data["config"])
            return None, False
        raise ProtocolError('unknown text frame: expected {"config": {...}} or {"eof": 1}')

    def _configure(self, config: dict) -> None:
        if self._stream is not None:
            raise ProtocolError("config after audio: send it before the first binary frame")
        try:
            self._rate = check_rate(config.get("sample_rate", DEFAULT_RATE))
        except AudioFormatError as exc:
            raise ProtocolError(str(exc)) from None
        phrases = config.get("phrase_list")
        if phrases is not None:
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases) or len(phrases) > 1000:
                raise ProtocolError("phrase_list must be a list of at most 1000 strings")
            self._phrases = phrases
        # Other vosk-server keys (words, max_alternatives) are accepted and ignored.

    def _open(self) -> RecognitionStream:
        if self._stream is None:
            self._stream = self._recogniser.open_stream(self._rate, self._phrases)
        return self._stream

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
