"""Fakes behind the gateway's speech endpoints: a recogniser and a TTS engine (no speech server)."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
import numpy as np

from gateway.voice.recognition import RecognitionUnavailable, Reply
from gateway.voice.runtime import Voice


class FakeRasa:
    """Echoes each message with one yes/no button pair, as Rasa's REST webhook would answer."""

    def __init__(self):
        self.received: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.received.append(body["message"])
        return httpx.Response(200, json=[{"recipient_id": body["sender"], "text": f"收到：{body['message']}",
                                          "buttons": [{"title": "是", "payload": "/affirm"},
                                                      {"title": "不是", "payload": "/deny"}]}])


class FakeRemote:
    def __init__(self, speech):
        self._speech = speech
        self.frames = 0

    async def send(self, pcm: bytes) -> list[Reply]:
        self.frames += 1
        self._speech.audio.append(pcm)
        return [Reply("公积金" if self.frames == 2 else "", final=self.frames == 2)]

    async def finish(self) -> Reply:
        return Reply("余额", final=True)


class FakeSpeech:
    """Answers every utterance with `answer`; `up = False` is a speech server that cannot be reached."""

    def __init__(self, answer: str = "我想查询公积金余额"):
        self.answer = answer
        self.up = True
        self.utterances: list[tuple[bytes, int]] = []
        self.audio: list[bytes] = []
        self.rates: list[int] = []

    async def transcribe(self, pcm: bytes, rate: int) -> str:
        if not self.up:
            raise RecognitionUnavailable("down")
        self.utterances.append((pcm, rate))
        return self.answer

    @asynccontextmanager
    async def stream(self, rate: int):
        if not self.up:
            raise RecognitionUnavailable("down")
        self.rates.append(rate)
        yield FakeRemote(self)


class FakeTTS:
    """`seconds` of a quiet tone per sentence; remembers what it was asked to say."""

    def __init__(self, seconds: float = 0.2, delay_s: float = 0.0):
        self.seconds = seconds
        self.delay_s = delay_s
        self.said: list[tuple[str, int]] = []

    async def speech(self, text: str, rate: int) -> bytes:
        self.said.append((text, rate))
        await asyncio.sleep(self.delay_s)
        t = np.arange(int(self.seconds * rate)) / rate
        return (1000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def install(app, speech: FakeSpeech, tts) -> None:
    app.state.voice = Voice(speech, tts)


def tone(seconds: float, rate: int = 16000, amplitude: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def silence(seconds: float, rate: int = 16000) -> bytes:
    return b"\x00\x00" * int(seconds * rate)
