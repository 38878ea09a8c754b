"""Speech test helpers: where the Whisper model is (assembled by scripts/setup.sh), and audio."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from speech.errors import ModelMissing
from speech.models import WHISPER_DIR_NAME, check_whisper_dir
from speech.pcm import resample


def whisper_model_dir() -> Path:
    if os.environ.get("WHISPER_MODEL_PATH"):
        return Path(os.environ["WHISPER_MODEL_PATH"])
    cache = Path(os.environ.get("ANJU_CACHE", Path.home() / ".cache" / "anju"))
    return cache / "models" / WHISPER_DIR_NAME


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    path = whisper_model_dir()
    try:
        return check_whisper_dir(path)
    except ModelMissing as exc:
        pytest.skip(f"Whisper model not assembled ({exc})")


@pytest.fixture(scope="session")
def espeak():
    """espeak-ng audio as int16 at the asked rate (any voice: these are load inputs, not
    intelligible Mandarin: Whisper transcribes espeak Mandarin at ~95% character error)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs the Debian package)")

    def speak(text: str, rate: int = 16000, voice: str = "cmn-latn-pinyin") -> np.ndarray:
        from speech.tts import _read_wav

        out = subprocess.run(["espeak-ng", "-v", voice, "--stdout"], input=text.encode(), capture_output=True,
                             check=True, timeout=10).stdout
        samples, src = _read_wav(out)
        return resample(samples, src, rate)

    return speak
