"""`python -m speech`: the speech server on loopback (vosk-server protocol; see speech/server.py)."""
import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.observability import configure_logging
from speech.errors import SpeechError
from speech.server import DEFAULT_MAX_FRAME_BYTES, SpeechServer
from speech.vocabulary import DEFAULT_TERMS

log = logging.getLogger("speech")

DEFAULT_WHISPER = Path.home() / ".cache" / "anju" / "models" / "whisper-base-ct2"


def _loopback(host: str) -> str:
    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"the speech server listens on loopback only, got {host!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m speech",
        description="Speech recognition over WebSocket, vosk-server protocol: optional text frame "
                    '{"config": {"sample_rate": 8000}}, binary 16-bit PCM frames, {"eof": 1}; replies '
                    '{"partial": ...} / {"text": ...}. Connect to ws://HOST:PORT/?secret=SECRET.')
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--host", type=_loopback, default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    secret = p.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret", help="shared secret clients pass as ?secret=... (visible in ps: prefer --secret-file)")
    secret.add_argument("--secret-file", type=Path, help="file holding the shared secret")
    p.add_argument("--whisper-model", type=Path, default=DEFAULT_WHISPER,
                   help=f"Whisper base (faster-whisper) directory that scripts/setup.sh assembles (default {DEFAULT_WHISPER})")
    p.add_argument("--vosk-model", type=Path,
                   help="an operator's Chinese vosk model directory; when given, vosk replaces Whisper")
    p.add_argument("--terms-file", type=Path,
                   help="domain terms for the homophone correction, one a line (default: built-in fund terms)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per Whisper decode (default 2)")
    p.add_argument("--workers", type=int, default=2, help="recognitions running at once (default 2)")
    p.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES,
                   help=f"larger binary frames close the connection with 1009 (default {DEFAULT_MAX_FRAME_BYTES})")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def build_recogniser(args: argparse.Namespace):
    terms = DEFAULT_TERMS
    if args.terms_file:
        terms = [line.strip() for line in args.terms_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.vosk_model:
        from speech.vosk_engine import VoskEngine

        return VoskEngine.from_path(args.vosk_model, terms=terms)
    from speech.whisper_engine import WhisperEngine

    return WhisperEngine(args.whisper_model, terms=terms, cpu_threads=args.threads)


async def _serve(args: argparse.Namespace, secret: str) -> None:
    recogniser = build_recogniser(args)  # loads the model once, before the port opens
    with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="speech") as executor:
        server = await SpeechServer(recogniser, secret, executor, args.max_frame_bytes).start(args.host, args.port)
        log.info("speech.server.listening host=%s port=%d engine=%s", args.host, args.port, type(recogniser).__name__)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()
        log.info("speech.server.stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    secret = args.secret if args.secret is not None else args.secret_file.read_text(encoding="utf-8").strip()
    if not secret:
        log.error("speech.server.refused reason=empty_secret")
        return 2
    try:
        asyncio.run(_serve(args, secret))
    except SpeechError as exc:
        log.error("speech.server.failed error=%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
