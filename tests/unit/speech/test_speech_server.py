"""The speech server through a real websockets client: the vosk-server protocol."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from speech.recogniser import Hypothesis
from speech.server import SpeechServer

SECRET = "s3cret-for-tests"
ROOT = Path(__file__).resolve().parents[3]


class FakeStream:
    def __init__(self, rate, phrases, delay):
        self.rate, self.phrases, self.delay, self.frames = rate, phrases, delay, 0

    def accept(self, pcm):
        time.sleep(self.delay)
        self.frames += 1
        if self.frames % 3 == 0:
            return Hypothesis(f"第{self.frames}帧", final=True)
        return Hypothesis("说话中", final=False)

    def finish(self):
        return Hypothesis(f"完 {self.rate}", final=True)


class FakeRecogniser:
    def __init__(self, delay=0.0):
        self.delay, self.streams = delay, []

    def open_stream(self, sample_rate, phrases=None):
        self.streams.append(FakeStream(sample_rate, phrases, self.delay))
        return self.streams[-1]


@pytest.fixture
async def served():
    executor = ThreadPoolExecutor(max_workers=4)
    servers = []

    async def start(recogniser=None, max_frame_bytes=8000):
        recogniser = recogniser or FakeRecogniser()
        server = await SpeechServer(recogniser, SECRET, executor, max_frame_bytes).start("127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return recogniser, f"ws://127.0.0.1:{port}/?secret={SECRET}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
    executor.shutdown(wait=True)


PCM = b"\x00\x01" * 800  # 0.1 s at 8 kHz


async def test_config_frames_and_eof_with_the_space(served):
    recogniser, url = await served()
    async with connect(url) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": 16000, "words": 1}}))
        replies = []
        for _ in range(4):
            await ws.send(PCM)
            replies.append(json.loads(await ws.recv()))
        await ws.send('{"eof" : 1}')  # the exact string upstream clients send
        assert json.loads(await ws.recv()) == {"text": "完 16000"}
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000
    assert replies == [{"partial": "说话中"}, {"partial": "说话中"}, {"text": "第3帧"}, {"partial": "说话中"}]
    assert recogniser.streams[0].rate == 16000


async def test_eof_without_the_space_and_the_default_rate(served):
    _, url = await served()
    async with connect(url) as ws:
        await ws.send(PCM)
        assert json.loads(await ws.recv()) == {"partial": "说话中"}
        await ws.send('{"eof":1}')
        assert json.loads(await ws.recv()) == {"text": "完 8000"}


async def test_eof_before_any_audio_answers_an_empty_text(served):
    _, url = await served()
    async with connect(url) as ws:
        await ws.send('{"eof": 1}')
        assert json.loads(await ws.recv()) == {"text": ""}


async def test_phrase_list_reaches_the_engine(served):
    recogniser, url = await served()
    async with connect(url) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": 8000, "phrase_list": ["是", "不是"]}}, ensure_ascii=False))
        await ws.send(PCM)
        await ws.recv()
    assert recogniser.streams[0].phrases == ["是", "不是"]


async def closed_with(url, *messages):
    """Send, then read until the server closes; -> (close code, reason)."""
    ws = await connect(url)
    with pytest.raises(ConnectionClosed):  # a send may already find the connection closed
        for message in messages:
            await ws.send(message)
        while True:
            await ws.recv()
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize("secret_part", ["?secret=wrong", "", "?other=1"])
async def test_a_wrong_or_missing_secret_is_refused(served, secret_part):
    recogniser, url = await served()
    code, reason = await closed_with(url.split("?")[0] + secret_part, PCM)
    assert code == 1008 and "secret" in reason
    assert recogniser.streams == []


@pytest.mark.parametrize("message,expected", [
    ("not json", "not JSON"),
    ('{"config": {"sample_rate": 44}}', "sample rate"),
    ('{"config": {"sample_rate": "8000"}}', "sample rate"),
    ('{"config": {"phrase_list": "是"}}', "phrase_list"),
    ('{"hello": 1}', "unknown text frame"),
    ('[1, 2]', "unknown text frame"),
    (b"\x00\x01\x02", "even"),
])
async def test_bad_messages_close_with_1008_and_say_why(served, message, expected):
    _, url = await served()
    code, reason = await closed_with(url, message)
    assert code == 1008 and expected in reason


async def test_config_after_audio_is_refused(served):
    _, url = await served()
    async with connect(url) as ws:
        await ws.send(PCM)
        await ws.recv()
        await ws.send('{"config": {"sample_rate": 16000}}')
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1008 and "config after audio" in ws.close_reason


async def test_an_oversized_frame_closes_with_1009(served):
    _, url = await served(max_frame_bytes=4000)
    code, _ = await closed_with(url, b"\x00" * 4002)
    assert code == 1009


async def test_engine_failure_closes_with_1011(served):
    class Broken(FakeRecogniser):
        def open_stream(self, sample_rate, phrases=None):
            raise RuntimeError("model fell over")

    _, url = await served(Broken())
    code, reason = await closed_with(url, PCM)
    assert code == 1011 and reason == "recognition failed"


async def test_slow_recognition_does_not_block_other_callers(served):
    slow = FakeRecogniser(delay=1.0)
    _, url = await served(slow)
    loop_thread = threading.get_ident()
    async with connect(url) as busy, connect(url) as other:
        await busy.send(PCM)  # occupies a worker for a second
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await other.send('{"eof": 1}')
        assert json.loads(await other.recv()) == {"text": ""}
        assert time.monotonic() - started < 0.5
        assert json.loads(await busy.recv()) == {"partial": "说话中"}
    assert threading.get_ident() == loop_thread


async def test_audio_of_a_client_that_left_is_never_decoded():
    """The gateway starts recognition on a pause and drops it when the caller goes on: the
    dropped decode must not hold up the live ones behind it."""
    recogniser = FakeRecogniser(delay=0.6)
    executor = ThreadPoolExecutor(max_workers=1)
    server = await SpeechServer(recogniser, SECRET, executor).start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/?secret={SECRET}"
    try:
        async with connect(url) as busy:
            await busy.send(PCM)  # the only worker is busy for 0.6 s
            async with connect(url) as dropped:
                await dropped.send(PCM)  # waits for the worker...
                await asyncio.sleep(0.1)
            # ...and its client has gone
            assert json.loads(await busy.recv()) == {"partial": "说话中"}
            await asyncio.sleep(0.8)
        assert [s.frames for s in recogniser.streams] == [1, 0]
    finally:
        server.close()
        await server.wait_closed()
        executor.shutdown(wait=True)


# --- the real thing: Whisper behind the server, and `python -m speech` ------------------

async def test_whisper_behind_the_server_answers_8khz_speech(served, whisper_dir, espeak):
    from speech.whisper_engine import WhisperEngine

    _, url = await served(WhisperEngine(whisper_dir), max_frame_bytes=1 << 16)
    quiet = np.zeros(4000, np.int16)
    audio = np.concatenate([quiet, espeak("我想查询公积金余额", rate=8000), quiet]).astype("<i2").tobytes()
    texts = []
    async with connect(url) as ws:
        await ws.send('{"config": {"sample_rate": 8000}}')
        for i in range(0, len(audio), 3200):  # 0.2 s frames
            await ws.send(audio[i:i + 3200])
            reply = json.loads(await ws.recv())
            assert set(reply) <= {"partial", "text"}
            texts += [reply["text"]] if "text" in reply else []
        await ws.send('{"eof" : 1}')
        texts.append(json.loads(await ws.recv())["text"])
    assert any(texts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_documents_the_arguments():
    out = subprocess.run([sys.executable, "-m", "speech", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for flag in ("--port", "--secret", "--secret-file", "--whisper-model", "--vosk-model", "--host"):
        assert flag in out


def test_only_loopback_addresses_are_accepted():
    done = subprocess.run([sys.executable, "-m", "speech", "--port", "1", "--secret", "x", "--host", "0.0.0.0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "loopback only" in done.stderr


async def test_python_m_speech_serves_and_refuses_a_wrong_secret(whisper_dir):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "speech", "--port", str(port), "--secret", SECRET,
                             "--whisper-model", str(whisper_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                async with connect(f"ws://127.0.0.1:{port}/?secret={SECRET}") as ws:
                    await ws.send('{"eof": 1}')
                    assert json.loads(await ws.recv()) == {"text": ""}
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("python -m speech did not start listening within 30 s")
        code, _ = await closed_with(f"ws://127.0.0.1:{port}/?secret=nope", PCM)
        assert code == 1008
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert b"speech.server.listening" in out and b"speech.server.stopped" in out
