"""The handoff's one exception, in a module of its own so every part can raise it without importing the desk."""
from __future__ import annotations


class HandoffError(Exception):
    """A handoff request that cannot be honoured; `message` is shown to the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
