"""vosk (Kaldi): streaming recognition with partial results, and grammar mode for menus,
yes/no and digits. Used only with an operator's Chinese vosk model: none is obtainable here
(docs/PLATFORM_NOTES.md, speech).
"""
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from speech.models import load_vosk
from speech.pcm import check_rate, to_samples
from speech.recogniser import Hypothesis
from speech.transcript import TranscriptCleaner
from speech.vocabulary import DEFAULT_TERMS

# vosk's Chinese models put spaces between words; the bot expects running text.
_SPACE_IN_HAN = re.compile(r"(?<=[\u3400-\u9fff]) +(?=[\u3400-\u9fff])")


def _kaldi_recogniser(model, sample_rate: int, grammar: str | None):
    import vosk

    if grammar is None:
        return vosk.KaldiRecognizer(model, sample_rate)
    return vosk.KaldiRecognizer(model, sample_rate, grammar)


class VoskEngine:
    def __init__(self, model, *, terms: Iterable[str] = DEFAULT_TERMS,
                 recogniser_factory: Callable[[object, int, str | None], object] = _kaldi_recogniser):
        self._model = model
        self._factory = recogniser_factory
        self._cleaner = TranscriptCleaner(terms)

    @classmethod
    def from_path(cls, model_dir: Path, **kwargs) -> "VoskEngine":
        return cls(load_vosk(Path(model_dir)), **kwargs)

    def open_stream(self, sample_rate: int, phrases: Sequence[str] | None = None) -> "VoskStream":
        grammar = None
        if phrases:
            # "[unk]" lets anything outside the list come out as unknown instead of a forced phrase.
            grammar = json.dumps([*dict.fromkeys(p.strip() for p in phrases if p.strip()), "[unk]"], ensure_ascii=False)
        return VoskStream(self._factory(self._model, check_rate(sample_rate), grammar), self._cleaner, grammar is not None)


class VoskStream:
    def __init__(self, recogniser, cleaner: TranscriptCleaner, grammar_mode: bool):
        self._rec = recogniser
        self._cleaner = cleaner
        self._grammar_mode = grammar_mode

    def accept(self, pcm: bytes) -> Hypothesis:
        to_samples(pcm)  # rejects odd byte counts before Kaldi sees them
        if self._rec.AcceptWaveform(pcm):
            return Hypothesis(self._clean(json.loads(self._rec.Result()).get("text", "")), final=True)
        return Hypothesis(self._join(json.loads(self._rec.PartialResult()).get("partial", "")), final=False)

    def finish(self) -> Hypothesis:
        return Hypothesis(self._clean(json.loads(self._rec.FinalResult()).get("text", "")), final=True)

    def _join(self, text: str) -> str:
        return _SPACE_IN_HAN.sub("", text.replace("[unk]", "").strip())

    def _clean(self, text: str) -> str:
        text = self._join(text)
        # Grammar output is already the bot's own phrases; correcting it could only hurt.
        return text if self._grammar_mode else self._cleaner.clean(text)
