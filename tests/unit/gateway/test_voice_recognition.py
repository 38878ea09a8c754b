"""The gateway's speech client against the real speech server code (python -m speech's
SpeechServer) with a scripted recogniser: the vosk protocol both ways, and every failure
turned into RecognitionUnavailable."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.voice.recognition import SERVER_FRAME_BYTES, RecognitionUnavailable, SpeechClient
from speech.recogniser import Hypothesis
from speech.server import SpeechServer

SECRET = "voice-test-secret"


class Stream:
    def __init__(self, rate, delay):
        self.rate, self.delay, self.fed = rate, delay, []

    def accept(self, pcm):
        time.sleep(self.delay)
        self.fed.append(len(pcm))
        return Hypothesis("公积金" if len(self.fed) == 2 else "", final=len(self.fed) == 2)

    def finish(self):
        return Hypothesis(f"余额{self.rate}", final=True)


class Recogniser:
    def __init__(self, delay=0.0):
        self.delay, self.streams = delay, []

    def open_stream(self, sample_rate, phrases=None):
        self.streams.append(Stream(sample_rate, self.delay))
        return self.streams[-1]


@pytest.fixture
async def server():
    executor = ThreadPoolExecutor(max_workers=2)
    started = []

    async def start(recogniser):
        srv = await SpeechServer(recogniser, SECRET, executor).start("127.0.0.1", 0)
        started.append(srv)
        return f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in started:
        srv.close()
        await srv.wait_closed()
    executor.shutdown(wait=False)


async def test_an_utterance_is_split_to_the_servers_frame_size_and_every_text_kept(server):
    recogniser = Recogniser()
    client = SpeechClient(await server(recogniser), SECRET, timeout_s=5)
    text = await client.transcribe(b"\x00\x00" * 40000, 16000)  # 80,000 bytes: three frames
    assert text == "公积金 余额16000"
    stream, = recogniser.streams
    assert stream.rate == 16000 and stream.fed == [SERVER_FRAME_BYTES, SERVER_FRAME_BYTES, 16000]


async def test_a_wrong_secret_is_unavailable_not_a_crash(server):
    client = SpeechClient(await server(Recogniser()), "not-the-secret", timeout_s=5)
    with pytest.raises(RecognitionUnavailable):
        await client.transcribe(b"\x00\x00" * 1600, 8000)


async def test_no_server_or_no_secret_is_unavailable():
    with pytest.raises(RecognitionUnavailable):
        await SpeechClient("ws://127.0.0.1:9", SECRET, timeout_s=2).transcribe(b"\x00\x00", 8000)
    with pytest.raises(RecognitionUnavailable, match="SPEECH_SECRET"):
        await SpeechClient("ws://127.0.0.1:9", "", timeout_s=2).transcribe(b"\x00\x00", 8000)


async def test_a_decode_that_never_ends_times_out(server):
    client = SpeechClient(await server(Recogniser(delay=3.0)), SECRET, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(RecognitionUnavailable, match="did not answer"):
        await client.transcribe(b"\x00\x00" * 1600, 8000)
    assert time.monotonic() - started < 2.5
