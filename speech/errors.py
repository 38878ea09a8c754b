"""The small exception tree of the speech library; edges translate these into close codes."""


class SpeechError(Exception):
    """Base of every error this package raises on purpose."""


class ModelMissing(SpeechError):
    """A recogniser's model is not where it was expected, or is incomplete."""


class AudioFormatError(SpeechError):
    """Audio that cannot be what it claims: odd byte counts, unsupported sample rates."""


class SynthesisError(SpeechError):
    """The text-to-speech engine failed or is not installed."""
