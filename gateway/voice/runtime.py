"""The app's speech services, made on first use from the settings (so an app without speech
still starts, and tests can put fakes on app.state.voice before a call)."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import Settings
from gateway.voice.call import CallLimits
from gateway.voice.prompts import FIXED_PROMPTS
from gateway.voice.recognition import SpeechClient
from gateway.voice.synthesis import Synthesizer, espeak_engine


@dataclass
class Voice:
    speech: SpeechClient
    tts: Synthesizer


def voice_of(app) -> Voice:
    voice = getattr(app.state, "voice", None)
    if voice is None:
        s: Settings = app.state.settings
        voice = app.state.voice = Voice(
            SpeechClient(s.speech_url, s.speech_secret.get_secret_value(), s.speech_timeout_s),
            Synthesizer(espeak_engine(s.tts_voice), FIXED_PROMPTS))
    return voice


def call_limits(s: Settings) -> CallLimits:
    return CallLimits(silence_timeout_s=s.voice_silence_timeout_s, max_call_s=s.voice_max_call_s,
                      playback_lead_s=s.voice_playback_lead_ms / 1000, max_frame_bytes=s.speech_max_frame_bytes,
                      menu_wait_s=s.voice_dtmf_menu_wait_s, entry_timeout_s=s.voice_dtmf_entry_timeout_s)
