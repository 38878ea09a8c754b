"""Reply latency on the hotline (issue 18 part 8): recognition starts on a short pause instead of
after the endpointer's whole wait, a caller who goes on after a pause is still heard whole, and a
long reply starts playing after its first sentence is synthesised. The real Call with a fake
link, recogniser, bot and TTS."""
import asyncio
import json
import time

import numpy as np

from gateway.conversation import BotMessage
from gateway.voice.audio import AudioFormat
from gateway.voice.call import Call, CallLimits, CallServices

RATE = 16000
ANSWER = "租房可以提取住房公积金。需要带身份证和租房合同。可以在网上办理，也可以到网点办理。"


class Link:
    def __init__(self):
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[tuple[float, object]] = []

    async def receive(self):
        return await self.incoming.get()

    async def send_json(self, data):
        self.sent.append((time.monotonic(), data))

    async def send_bytes(self, data):
        self.sent.append((time.monotonic(), data))

    async def close(self, code=1000, reason=""):
        await self.incoming.put(None)

    def first(self, pred):
        return next(((t, m) for t, m in self.sent if pred(m)), None)


class Recogniser:
    """Each recognition takes `delay_s`; what it heard, when it started and whether it was cancelled are kept."""

    def __init__(self, delay_s=0.3):
        self.delay_s = delay_s
        self.started: list[float] = []  # seconds of audio per recognition started
        self.started_at: list[float] = []
        self.cancelled = 0

    def __call__(self, pcm: bytes, rate: int):
        self.started.append(len(pcm) / 2 / rate)
        self.started_at.append(time.monotonic())
        return self._run(len(self.started))

    async def _run(self, n):
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return f"第{n}次识别"


class Bot:
    def __init__(self):
        self.heard: list[str] = []

    async def __call__(self, text):
        self.heard.append(text)
        return [BotMessage(text=ANSWER)]


class SlowTTS:
    """espeak-like: time grows with the text; 0.1 s of tone per character."""

    def __init__(self, per_char_s=0.01):
        self.per_char_s = per_char_s
        self.calls: list[tuple[str, float, float]] = []  # text, started, finished

    async def __call__(self, text, rate):
        started = time.monotonic()
        await asyncio.sleep(self.per_char_s * len(text))
        self.calls.append((text, started, time.monotonic()))
        t = np.arange(int(0.1 * len(text) * rate)) / rate
        return (1000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def tone(seconds):
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def silence(seconds):
    return b"\x00\x00" * int(seconds * RATE)


async def speak_into(link, *chunks, frame_s=0.02, pace_s=0.0) -> list[float]:
    """Puts the audio in as 20 ms frames; returns when each frame went in."""
    step, put = int(RATE * frame_s) * 2, []
    for chunk in chunks:
        for i in range(0, len(chunk), step):
            await link.incoming.put(chunk[i:i + step])
            put.append(time.monotonic())
            await asyncio.sleep(pace_s)
    return put


async def until(pred, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def start(recogniser, bot, tts, **limits):
    link = Link()
    services = CallServices(recognise=recogniser, turn=bot, speak=tts)
    limits = {"playback_lead_s": 60.0, "silence_timeout_s": 30.0, **limits}
    call = asyncio.ensure_future(Call(link, services, AudioFormat(RATE), CallLimits(**limits)).run())
    return link, call


async def hang_up(link, call):
    await link.incoming.put(json.dumps({"hangup": 1}))
    assert await asyncio.wait_for(call, 5) == "caller"


async def test_recognition_starts_after_a_short_pause_and_its_text_is_the_turns():
    recogniser, bot = Recogniser(delay_s=0.3), Bot()
    link, call = start(recogniser, bot, SlowTTS(0.0))
    put = await speak_into(link, tone(0.8), silence(1.0), pace_s=0.02)  # 20 ms frames at real time
    await until(lambda: bot.heard)
    await hang_up(link, call)
    assert bot.heard == ["第1次识别"] and len(recogniser.started) == 1  # one decode, not a guess and a redo
    assert recogniser.started[0] < 0.8 + 0.2 + 0.2 + 0.4  # decoded with 0.3 s of quiet, not the 0.7 s end
    voiced = 40  # frames of tone
    assert put[voiced + 14] <= recogniser.started_at[0] < put[voiced + 25]  # on the pause, long before the end
    heard_at, _ = link.first(lambda m: isinstance(m, dict) and m.get("type") == "caller")
    assert heard_at - put[voiced + 34] < 0.25  # the text was ready when the endpointer's 0.7 s ran out


async def test_a_caller_who_goes_on_after_a_pause_is_heard_whole():
    recogniser, bot = Recogniser(delay_s=0.5), Bot()
    link, call = start(recogniser, bot, SlowTTS(0.0))
    await speak_into(link, tone(0.8), silence(0.45), tone(0.6), silence(1.0), pace_s=0.02)
    await until(lambda: bot.heard)
    await hang_up(link, call)
    assert len(recogniser.started) == 2 and recogniser.cancelled == 1  # the guess on the pause was dropped
    assert recogniser.started[1] >= 0.8 + 0.45 + 0.6  # the second decode heard both parts
    assert bot.heard == ["第2次识别"]


async def test_without_guessing_recognition_waits_for_the_end():
    recogniser, bot = Recogniser(delay_s=0.0), Bot()
    link, call = start(recogniser, bot, SlowTTS(0.0), guess_after_ms=0)
    await speak_into(link, tone(0.8), silence(1.0))
    await until(lambda: bot.heard)
    await hang_up(link, call)
    assert len(recogniser.started) == 1 and recogniser.started[0] >= 0.8 + 0.7


def sent_after(link, at):
    return [(t, m) for t, m in link.sent if t > at]


async def test_the_first_audio_byte_goes_out_before_the_whole_reply_is_synthesised():
    recogniser, bot, tts = Recogniser(delay_s=0.0), Bot(), SlowTTS(per_char_s=0.01)
    link, call = start(recogniser, bot, tts)
    await until(lambda: tts.calls)  # the greeting, cached whole in production: said in one piece
    await speak_into(link, tone(0.8), silence(1.0))
    await until(lambda: link.first(lambda m: isinstance(m, dict) and m.get("text") == ANSWER))
    bot_at, _ = link.first(lambda m: isinstance(m, dict) and m.get("text") == ANSWER)
    whole = 2 * int(0.1 * len(ANSWER) * RATE)
    await until(lambda: sum(len(m) for _, m in sent_after(link, bot_at) if isinstance(m, bytes)) >= whole - 4)
    await hang_up(link, call)
    (head, _, _), (rest, _, rest_done) = tts.calls[1:]
    assert head == "租房可以提取住房公积金。" and head + rest == ANSWER
    first_audio = next(t for t, m in sent_after(link, bot_at) if isinstance(m, bytes))
    assert first_audio < rest_done  # the caller hears the first sentence while the rest is made
    assert first_audio - bot_at < 0.01 * len(ANSWER)  # sooner than the whole reply's synthesis


async def test_barge_in_during_the_first_sentence_stops_the_rest_of_the_reply():
    recogniser, bot, tts = Recogniser(delay_s=0.0), Bot(), SlowTTS(per_char_s=0.01)
    link, call = start(recogniser, bot, tts, playback_lead_s=0.0)
    await until(lambda: tts.calls)
    await speak_into(link, tone(0.8), silence(1.0))
    await until(lambda: link.first(lambda m: isinstance(m, dict) and m.get("text") == ANSWER))
    bot_at, _ = link.first(lambda m: isinstance(m, dict) and m.get("text") == ANSWER)
    await until(lambda: any(isinstance(m, bytes) for _, m in sent_after(link, bot_at)))
    await speak_into(link, tone(0.4))  # the caller cuts in while the first sentence plays (1.2 s of it)
    await until(lambda: any(isinstance(m, dict) and m.get("type") == "playback_stopped"
                            for _, m in sent_after(link, bot_at)))
    await hang_up(link, call)
    after = sent_after(link, bot_at)
    assert sum(len(m) for _, m in after if isinstance(m, bytes)) < 2 * int(0.1 * 12 * RATE)  # not even all of it
    assert not any(isinstance(m, dict) and m.get("type") == "audio_end" for _, m in after)


def test_a_reply_is_split_after_its_first_sentence_or_a_long_ones_first_clause():
    from gateway.voice.synthesis import first_sentence

    assert first_sentence("好的。请问还有什么可以帮您？") == ("好的。请问还有什么可以帮您？", "")  # 3 characters: too short
    assert first_sentence("租房可以提取公积金。需要带身份证。") == ("租房可以提取公积金。", "需要带身份证。")
    long = "租房提取公积金需要以下材料：身份证、租房合同和完税证明，以及本人的银行卡，材料齐全后到任一网点办理。然后。"
    head, rest = first_sentence(long)
    assert head == "租房提取公积金需要以下材料：" and head + rest == long
    assert first_sentence("没有标点的一句话") == ("没有标点的一句话", "")
