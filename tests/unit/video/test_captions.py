"""The caption tap (video/captions.py) on real Opus: packets encoded with PyAV from the Mandarin
fixtures, decoded back, cut into utterances by the project's endpointer, handed to a recogniser
that stands in for the speech server; the backlog drop; masking of what is stored (gateway/handoff/captions.py)."""
import asyncio
import fractions
import json
import wave
from pathlib import Path

import av
import fakeredis
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.handoff.captions import CaptionBook, captions_key
from video.captions import RATE, CaptionTap, OpusDecoder, RoomCaptions

ZH = Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "zh"


def samples_of(name: str) -> np.ndarray:
    with wave.open(str(ZH / name)) as w:
        assert (w.getframerate(), w.getnchannels()) == (RATE, 1)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def opus_packets(pcm16k: np.ndarray) -> list[av.Packet]:
    """What a browser sends: 20 ms Opus packets at 48 kHz, as av.Packets stamped like the relay's."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 48_000, "mono", "s16", 32_000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
    frame = av.AudioFrame.from_ndarray(pcm16k.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    data = []
    for resampled in resampler.resample(frame) + resampler.resample(None):
        data += [bytes(p) for p in encoder.encode(resampled)]
    data += [bytes(p) for p in encoder.encode(None)]
    packets = []
    for i, payload in enumerate(data):
        packet = av.Packet(payload)
        packet.pts, packet.time_base = i * 960, fractions.Fraction(1, 48_000)
        packets.append(packet)
    return packets


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


class PacketTrack(MediaStreamTrack):
    """A relayed audio feed: yields the given packets, then waits (a quiet line) until stopped."""
    kind = "audio"

    def __init__(self, packets):
        super().__init__()
        self._packets = list(packets)
        self.handed_out = []

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if not self._packets:
            while self.readyState == "live":
                await asyncio.sleep(0.01)
            raise MediaStreamError
        packet = self._packets.pop(0)
        self.handed_out.append((packet, packet.pts))
        await asyncio.sleep(0)
        return packet


class Recogniser:
    """Stands in for the speech server: records each utterance and answers a fixed text."""

    def __init__(self, answer="我想问一下租房可以提取公积金吗", gate: asyncio.Event | None = None):
        self.answer = answer
        self.utterances: list[float] = []
        self.gate = gate

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        assert sample_rate == RATE
        if self.gate is not None:
            await self.gate.wait()
        self.utterances.append(len(pcm) / 2 / RATE)
        return self.answer


def test_opus_from_the_browser_decodes_to_16k_mono_of_the_same_length_and_sound():
    pcm = samples_of("rent_01.wav")
    decoder = OpusDecoder()
    out = np.concatenate([decoder.decode(p) for p in opus_packets(pcm)])
    assert decoder.packets > 200 and decoder.errors == 0
    assert abs(len(out) - len(pcm)) < 0.05 * RATE  # codec delay and padding only
    n = min(len(out), len(pcm))
    # Same sound: the decoded signal follows the original closely once the codec delay is aligned.
    best = max(np.corrcoef(out[lag:n].astype(float), pcm[:n - lag].astype(float))[0, 1] for lag in range(0, 400, 4))
    assert best > 0.8


def test_decoded_frames_of_a_decoding_room_are_resampled_from_a_copy():
    pcm = samples_of("yes_01.wav")
    stereo48 = np.repeat(np.interp(np.arange(len(pcm) * 3) / 3, np.arange(len(pcm)), pcm).astype(np.int16), 2)
    frame = av.AudioFrame.from_ndarray(stereo48.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48_000, 123_456, fractions.Fraction(1, 48_000)
    out = OpusDecoder().decode(frame)
    assert abs(len(out) - len(pcm)) < 0.01 * RATE
    assert (frame.pts, frame.sample_rate) == (123_456, 48_000)  # the shared frame is untouched


def test_a_corrupt_packet_is_skipped_and_decoding_goes_on():
    decoder = OpusDecoder()
    packets = opus_packets(samples_of("yes_01.wav"))
    good = np.concatenate([decoder.decode(p) for p in packets[:10]])
    assert len(decoder.decode(b"")) == 0  # an empty payload (it must not flush the decoder)
    decoder.decode(b"\xff\xfe\x00garbage")  # not Opus
    after = np.concatenate([decoder.decode(p) for p in packets[10:12]])
    assert len(good) > 0 and len(after) > 0


async def test_the_tap_cuts_two_utterances_and_sends_each_caption_with_its_speaker():
    first, second = samples_of("rent_01.wav"), samples_of("balance_01.wav")
    pcm = np.concatenate([silence(0.5), first, silence(1.2), second, silence(1.2)])
    packets = opus_packets(pcm)
    track, recogniser, captions = PacketTrack(packets), Recogniser(), []

    async def on_caption(role, text):
        captions.append((role, text))

    tap = CaptionTap("citizen", track, recogniser, on_caption)
    tap.start()
    for _ in range(500):
        if len(captions) == 2:
            break
        await asyncio.sleep(0.01)
    await tap.stop()
    assert captions == [("citizen", recogniser.answer)] * 2
    # Each utterance is about its fixture's length (endpointing adds the pre-roll and trailing quiet).
    for got, want in zip(recogniser.utterances, (len(first) / RATE, len(second) / RATE)):
        assert want - 0.3 < got < want + 1.2
    assert track.readyState == "ended"  # stopping the tap ends its feed of the relay
    assert len(pcm) / RATE - 1.3 < tap.audio_s < len(pcm) / RATE + 0.05  # decoded up to the second cut at least
    # The relay's own packets are never changed: other consumers (the browser, the recording) share them.
    assert all(packet.pts == pts for packet, pts in track.handed_out)


async def test_the_backlog_drops_the_oldest_audio_when_the_recogniser_falls_behind(caplog):
    gate = asyncio.Event()
    recogniser = Recogniser(gate=gate)
    captions = []

    async def on_caption(role, text):
        captions.append(text)

    tap = CaptionTap("staff", PacketTrack([]), recogniser, on_caption, max_backlog_s=4.0)
    tap.start()
    tap.enqueue(np.ones(2 * RATE, np.int16))
    await asyncio.sleep(0.01)  # the worker takes the first utterance and waits on the recogniser
    for _ in range(5):
        tap.enqueue(np.ones(2 * RATE, np.int16))
    assert tap.backlog_s <= 4.0
    assert tap.dropped_s >= 4.0
    assert "video.captions.dropped role=staff" in caplog.text
    gate.set()
    for _ in range(200):
        if len(captions) >= 3:
            break
        await asyncio.sleep(0.01)
    await tap.stop()
    assert len(captions) == 3  # the one in flight and the two the backlog kept


async def test_room_captions_run_a_tap_per_party_only_while_on():
    subscribed = []

    def subscribe(role):
        track = PacketTrack([])
        subscribed.append((role, track))
        return track

    async def on_caption(role, text):
        pass

    room = RoomCaptions(subscribe, Recogniser(), on_caption)
    assert not room.on and subscribed == []  # nothing decodes before captions are turned on
    room.start()
    room.start()  # a second "on" does not add taps
    assert room.on and sorted(r for r, _ in subscribed) == ["citizen", "staff"]
    await room.stop()
    assert not room.on and all(t.readyState == "ended" for _, t in subscribed)
    assert all(not tap.running for tap in room.stopped_taps)


async def test_caption_lines_are_stored_and_sent_with_id_and_phone_numbers_masked():
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    book = CaptionBook(redis, lambda: 1_700_000_000_000)
    await book.post_state("T1", available=True, on=True, by="staff")
    await book.post_caption("T1", "citizen", "我的身份证号是110101199003071234，电话13812345678")
    stored = [json.loads(x) for x in await redis.lrange(captions_key("T1"), 0, -1)]
    assert stored == [{"from": "citizen", "at_ms": 1_700_000_000_000,
                       "text": stored[0]["text"]}]
    text = stored[0]["text"]
    assert "110101199003071234" not in text and "13812345678" not in text
    assert "1234" in text and "5678" in text and "*" in text
    entries = [fields for _, fields in await redis.xrange("anju:handoff:messages:T1")]
    assert entries[0]["event"] == "captions" and entries[0]["on"] == "1" and entries[0]["text"] == "工作人员打开了字幕"
    assert entries[1] == {"from": "citizen", "event": "caption", "text": text}
    assert await book.transcript("T1") == stored
