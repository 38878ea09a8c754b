"""What happens to recognised text before it reaches the bot: simplified characters, domain
vocabulary, digits."""
from collections.abc import Iterable

from speech.numbers import normalise_numbers
from speech.vocabulary import DEFAULT_TERMS, DomainCorrector


class TranscriptCleaner:
    def __init__(self, terms: Iterable[str] = DEFAULT_TERMS):
        import opencc  # Whisper may answer in traditional characters

        self._to_simplified = opencc.OpenCC("t2s")
        self._corrector = DomainCorrector(terms)

    def clean(self, text: str) -> str:
        text = self._to_simplified.convert(text.strip())
        return normalise_numbers(self._corrector.correct(text))
