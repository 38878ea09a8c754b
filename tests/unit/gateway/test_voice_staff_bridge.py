"""The call side of the staff audio bridge (gateway/voice/staff_bridge.py), without a network: the
caller's PCM becomes 48 kHz WebRTC frames with the same sound, paced at real time, silence when late."""
import asyncio
import time

import numpy as np

from gateway.voice.staff_bridge import CallerAudioTrack, upsample


def tone(hz: float, seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples.astype(np.float64)))) * rate / len(samples))


def test_upsampling_keeps_the_pitch_and_the_length_in_time():
    for rate in (8000, 16000):
        out = upsample(tone(300, 0.5, rate), rate)
        assert len(out) == 24000 and abs(peak_hz(out, 48000) - 300) < 5
        assert 5000 < np.abs(out).max() <= 8000


async def test_the_callers_track_sends_20_ms_frames_at_48_khz_in_real_time_and_silence_when_late():
    track = CallerAudioTrack(8000)
    track.push(tone(300, 0.2, 8000))  # 10 frames of the caller's voice, then nothing
    started = time.monotonic()
    frames = [await track.recv() for _ in range(20)]
    took = time.monotonic() - started
    assert 0.3 < took < 0.6  # 20 frames of 20 ms: paced, not sent at once
    assert all(f.sample_rate == 48000 and f.samples == 960 for f in frames)
    assert [f.pts for f in frames] == [960 * i for i in range(20)]
    loud = [np.abs(f.to_ndarray()).max() > 4000 for f in frames]
    assert loud == [True] * 10 + [False] * 10
    voice = np.concatenate([f.to_ndarray().ravel() for f in frames[:10]])
    assert abs(peak_hz(voice, 48000) - 300) < 10


def test_a_backlog_of_caller_audio_is_cut_to_a_second_rather_than_delaying_staff():
    track = CallerAudioTrack(16000)
    track.push(tone(300, 3.0, 16000))
    assert len(track._buffer) == 16000 * 2
