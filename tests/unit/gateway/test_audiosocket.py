"""The Asterisk AudioSocket bridge as a PBX sees it: TCP frames in and out of a running gateway
(fake recogniser, TTS and Rasa behind the real Call and Conversation, fakeredis)."""
import asyncio
import socket
import time
import uuid

import fakeredis
import pytest

from gateway.voice.audiosocket import (FRAME_BYTES, KIND_AUDIO, KIND_DTMF, KIND_ERROR, KIND_HANGUP, KIND_UUID,
                                       ProtocolError, frame, read_frame)
from gateway_app import gateway_client
from voice_fakes import FakeRasa, FakeSpeech, FakeTTS, install, silence, tone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rasa():
    return FakeRasa()


@pytest.fixture
def speech():
    return FakeSpeech()


@pytest.fixture
def bridge(rasa, speech):
    """(test client, AudioSocket port) of a gateway with the bridge on."""
    port = free_port()
    settings = {"audiosocket_port": port, "voice_playback_lead_ms": 60_000, "voice_dtmf_menu_wait_s": 0.2,
                "voice_silence_timeout_s": 30.0, "ws_first_frame_timeout_s": 1.0}
    with gateway_client(rasa.handler, fakeredis.FakeAsyncRedis(decode_responses=True), **settings) as client:
        install(client.app, speech, FakeTTS(seconds=0.2))
        yield client, port


class Pbx:
    """Asterisk's side of one call."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.audio_frames: list[tuple[float, bytes]] = []

    def send(self, kind: int, payload: bytes = b"") -> None:
        self.sock.sendall(frame(kind, payload))

    def dial(self) -> "Pbx":
        self.send(KIND_UUID, uuid.uuid4().bytes)
        return self

    def speak(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), FRAME_BYTES):
            self.send(KIND_AUDIO, pcm[i:i + FRAME_BYTES])

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def next_frame(self) -> tuple[int, bytes]:
        header = self._exact(3)
        return header[0], self._exact(int.from_bytes(header[1:3], "big"))

    def until(self, kind: int, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        while True:
            got_kind, payload = self.next_frame()
            if got_kind == KIND_AUDIO:
                self.audio_frames.append((time.monotonic(), payload))
            if got_kind == kind:
                return payload

    def closed_after_hangup(self, timeout: float = 10.0) -> bool:
        """True when the bridge sent a hang-up frame and then closed the connection."""
        self.until(KIND_HANGUP, timeout)
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(4096):
                pass
        except ConnectionError:
            pass
        return True


# -- framing --------------------------------------------------------------------------------
async def reader_of(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_frames_round_trip_with_a_big_endian_length():
    assert frame(KIND_AUDIO, b"\x01\x02" * 160)[:3] == bytes([0x10, 0x01, 0x40])
    reader = await reader_of(frame(KIND_UUID, b"u" * 16) + frame(KIND_DTMF, b"5") + frame(KIND_HANGUP))
    assert await read_frame(reader) == (KIND_UUID, b"u" * 16)
    assert await read_frame(reader) == (KIND_DTMF, b"5")
    assert await read_frame(reader) == (KIND_HANGUP, b"")
    assert await read_frame(reader) is None  # closed between frames: the call is over


@pytest.mark.parametrize("data", [b"\x10\x01", frame(KIND_AUDIO, b"\x00" * 320)[:100]])
async def test_a_connection_cut_inside_a_frame_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        await read_frame(await reader_of(data))


def test_a_payload_over_65535_bytes_cannot_be_framed():
    with pytest.raises(ValueError):
        frame(KIND_AUDIO, b"\x00" * 65536)


# -- calls ----------------------------------------------------------------------------------
def test_the_bridge_is_off_unless_a_port_is_set(rasa):
    with gateway_client(rasa.handler, fakeredis.FakeAsyncRedis(decode_responses=True)) as client:
        assert client.app.state.audiosocket is None


def test_a_phone_call_is_greeted_answered_and_keyed_then_hangs_up(bridge, rasa, speech):
    client, port = bridge
    pbx = Pbx(port).dial()
    pbx.until(KIND_AUDIO)  # the greeting, as 20 ms frames of 8 kHz audio
    while len(pbx.audio_frames) < 10:
        pbx.until(KIND_AUDIO)
    greeting = pbx.audio_frames[:10]
    assert all(len(p) == FRAME_BYTES for _, p in greeting)
    assert greeting[-1][0] - greeting[0][0] >= 0.12  # paced at 20 ms, not dumped at once

    pbx.speak(tone(0.6, 8000) + silence(1.0, 8000))
    deadline = time.monotonic() + 10
    while not rasa.received and time.monotonic() < deadline:
        pbx.until(KIND_AUDIO, timeout=10)
    assert rasa.received == [speech.answer]
    assert speech.utterances and speech.utterances[0][1] == 8000  # recognised at the phone's rate

    pbx.send(KIND_DTMF, b"0")  # a lone key: the keypad's menu choice 0, 转人工
    deadline = time.monotonic() + 10
    while len(rasa.received) < 2 and time.monotonic() < deadline:
        pbx.until(KIND_AUDIO, timeout=10)
    assert rasa.received[1] == "转人工"

    pbx.send(KIND_HANGUP)
    pbx.sock.settimeout(10)
    with pytest.raises((EOFError, ConnectionError)):
        while True:
            pbx.next_frame()  # whatever was in flight, then the bridge closes


@pytest.mark.parametrize("first", [
    frame(KIND_AUDIO, b"\x00" * 320),  # audio before the call's UUID
    frame(KIND_UUID, b"short"),  # a UUID is 16 bytes
    b"",  # nothing at all: the first-frame timeout
])
def test_a_call_that_does_not_start_with_its_uuid_is_hung_up(bridge, first, rasa):
    _, port = bridge
    pbx = Pbx(port)
    if first:
        pbx.sock.sendall(first)
    assert pbx.closed_after_hangup()
    assert rasa.received == []


@pytest.mark.parametrize("bad", [
    frame(0x42, b"??"),  # a kind AudioSocket does not have
    frame(KIND_AUDIO, b"\x00" * 321),  # 16-bit audio in an odd number of bytes
    frame(KIND_AUDIO, b"\x00" * 40000),  # more than a second of audio in one frame
    frame(KIND_DTMF, b"12"),  # one key per frame
    frame(KIND_UUID, uuid.uuid4().bytes),  # a second UUID
    frame(KIND_ERROR, b"\x04"),  # Asterisk reporting an error
])
def test_a_bad_frame_ends_only_that_call(bridge, bad):
    _, port = bridge
    pbx = Pbx(port).dial()
    pbx.until(KIND_AUDIO)
    pbx.sock.sendall(bad)
    assert pbx.closed_after_hangup()
    # The listener and the gateway go on: a new call is greeted.
    assert Pbx(port).dial().until(KIND_AUDIO)


def test_a_connection_dropped_mid_frame_leaves_the_listener_up(bridge):
    _, port = bridge
    pbx = Pbx(port).dial()
    pbx.until(KIND_AUDIO)
    pbx.sock.sendall(frame(KIND_AUDIO, b"\x00" * 320)[:50])
    pbx.sock.close()
    assert Pbx(port).dial().until(KIND_AUDIO)

