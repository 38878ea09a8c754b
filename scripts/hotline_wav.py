"""Call the hotline from a terminal: stream WAV files as the caller, save what the bot says.

    # through the gateway's WebSocket (what the widget and a SIP bridge use)
    python scripts/hotline_wav.py question.wav --url ws://127.0.0.1:8000/ws/voice --out replies.wav
    # through the Asterisk AudioSocket bridge (AUDIOSOCKET_PORT set on the gateway)
    python scripts/hotline_wav.py question.wav --audiosocket 127.0.0.1:9092 --out replies.wav

Each WAV (mono 16-bit, any rate from 8 to 48 kHz; resampled as needed) is sent in 20 ms frames at
real time, followed by a second of quiet so the hotline hears the end of the utterance. With
--dtmf, keys are pressed after the files (e.g. --dtmf 0 for 转人工). Bot text (WebSocket only: a
phone line carries no text) goes to stdout as it arrives; all reply audio goes to --out. Run it
with the app venv's python from the repository root (it uses speech/ for resampling and G.711).
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import uuid
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from speech import g711  # noqa: E402
from speech.pcm import resample, to_bytes, to_samples  # noqa: E402

FRAME_S = 0.02


def read_wav(path: Path, rate: int) -> bytes:
    try:
        with wave.open(str(path)) as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise SystemExit(f"{path}: 需要单声道 16 位 WAV（mono 16-bit），这个文件是 "
                                 f"{w.getnchannels()} 声道、{8 * w.getsampwidth()} 位")
            src, pcm = w.getframerate(), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SystemExit(f"{path}: 不是可读的 WAV 文件（{exc}）") from None
    return to_bytes(resample(to_samples(pcm), src, rate))


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class Paced:
    """Sends frames on a 20 ms clock."""

    def __init__(self, send):
        self._send = send
        self._next = time.monotonic()

    def __call__(self, data: bytes) -> None:
        self._next += FRAME_S
        pause = self._next - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._send(data)


def caller_audio(files: list[Path], rate: int) -> list[bytes]:
    """Every file, then a second of quiet, as 20 ms frames of PCM16."""
    step = int(rate * FRAME_S) * 2
    frames = []
    for path in files:
        pcm = read_wav(path, rate) + b"\x00\x00" * rate
        frames += [pcm[i:i + step].ljust(step, b"\x00") for i in range(0, len(pcm), step)]
    return frames


def over_websocket(args) -> tuple[bytes, int]:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    rate = 8000 if args.encoding != "pcm16" else args.rate
    encode = {"pcm16": lambda b: b, "alaw": g711.alaw_encode, "mulaw": g711.ulaw_encode}[args.encoding]
    decode = {"pcm16": lambda b: b, "alaw": g711.alaw_decode, "mulaw": g711.ulaw_decode}[args.encoding]
    audio = bytearray()
    last_heard = [time.monotonic()]
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    with connect(args.url, open_timeout=10, max_size=1 << 22, additional_headers=headers) as ws:
        def reader():
            try:
                for msg in ws:
                    last_heard[0] = time.monotonic()
                    if isinstance(msg, bytes):
                        audio.extend(decode(msg))
                        continue
                    frame = json.loads(msg)
                    kind = frame.get("type")
                    if kind == "bot":
                        print(f"机器人：{frame.get('text', '')}", flush=True)
                        for button in frame.get("buttons") or []:
                            print(f"    [{button.get('title')}]", flush=True)
                    elif kind == "caller":
                        print(f"识别：{frame.get('text') or frame.get('dtmf')}", flush=True)
                    elif kind == "hangup":
                        print(f"（挂断：{frame.get('reason')}）", flush=True)
                    elif "error" in frame:
                        print(f"错误：{frame['error']}", file=sys.stderr, flush=True)
            except ConnectionClosed:
                pass

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        ws.send(json.dumps({"config": {"sample_rate": rate, "encoding": args.encoding}}))
        send = Paced(ws.send)
        quiet = encode(b"\x00\x00" * int(rate * FRAME_S))
        for frame in caller_audio(args.wav, rate):
            send(encode(frame))
        for key in args.dtmf or "":
            ws.send(json.dumps({"dtmf": key}))
        last_heard[0] = stop_at = time.monotonic()  # --wait counts from the caller's last word
        stop_at += args.max_listen
        while time.monotonic() - last_heard[0] < args.wait and thread.is_alive() and time.monotonic() < stop_at:
            send(quiet)  # a phone line keeps sending while the bot answers
        try:
            ws.send(json.dumps({"hangup": 1}))
        except ConnectionClosed:
            pass
        thread.join(5)
    return bytes(audio), rate


def over_audiosocket(args) -> tuple[bytes, int]:
    from gateway.voice.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_HANGUP, KIND_UUID, frame

    host, _, port = args.audiosocket.rpartition(":")
    rate = 8000
    audio = bytearray()
    last_heard = [time.monotonic()]
    sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=10)

    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def reader():
        try:
            while True:
                header = exact(3)
                payload = exact(int.from_bytes(header[1:3], "big"))
                last_heard[0] = time.monotonic()
                if header[0] == KIND_AUDIO:
                    audio.extend(payload)
                elif header[0] == KIND_HANGUP:
                    print("（对方挂断）", flush=True)
                    return
        except (EOFError, OSError):
            return

    sock.settimeout(None)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    call_id = uuid.uuid4()
    print(f"呼叫 {host}:{port}，UUID {call_id}（电话线路只传声音，机器人的文字不会显示）", flush=True)
    sock.sendall(frame(KIND_UUID, call_id.bytes))
    send = Paced(lambda data: sock.sendall(frame(KIND_AUDIO, data)))
    for pcm in caller_audio(args.wav, rate):
        send(pcm)
    for key in args.dtmf or "":
        sock.sendall(frame(KIND_DTMF, key.encode()))
    last_heard[0] = stop_at = time.monotonic()
    stop_at += args.max_listen
    quiet = b"\x00" * 320
    try:
        while time.monotonic() - last_heard[0] < args.wait and thread.is_alive() and time.monotonic() < stop_at:
            send(quiet)
        sock.sendall(frame(KIND_HANGUP))
    except OSError:
        pass
    thread.join(5)
    sock.close()
    return bytes(audio), rate


def main() -> int:
    p = argparse.ArgumentParser(description="Stream WAV files to the hotline and save the replies.")
    p.add_argument("wav", nargs="+", type=Path, help="what the caller says, one WAV per utterance, in order")
    p.add_argument("--url", default="ws://127.0.0.1:8000/ws/voice", help="the gateway's /ws/voice")
    p.add_argument("--audiosocket", metavar="HOST:PORT", help="call through the AudioSocket bridge instead")
    p.add_argument("--rate", type=int, choices=(8000, 16000), default=16000, help="WebSocket PCM rate")
    p.add_argument("--encoding", choices=("pcm16", "alaw", "mulaw"), default="pcm16",
                   help="WebSocket audio encoding (G.711 is 8 kHz)")
    p.add_argument("--token", help="a session token to present (default: the call gets its own session)")
    p.add_argument("--dtmf", help="keys pressed after the audio, e.g. 0 for 转人工")
    p.add_argument("--wait", type=float, default=8.0,
                   help="after the audio, hang up once this many seconds pass without a frame from the hotline")
    p.add_argument("--max-listen", type=float, default=300.0,
                   help="after the audio, hang up after this many seconds even while the bot is still talking")
    p.add_argument("--out", type=Path, default=Path("hotline_replies.wav"), help="where the reply audio goes")
    args = p.parse_args()
    for path in args.wav:
        if not path.is_file():
            p.error(f"找不到文件：{path}")
    try:
        audio, rate = over_audiosocket(args) if args.audiosocket else over_websocket(args)
    except (OSError, TimeoutError) as exc:
        print(f"无法连接热线：{exc}", file=sys.stderr)
        return 1
    write_wav(args.out, audio, rate)
    print(f"回复音频 {len(audio) / 2 / rate:.1f} 秒，已保存到 {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
