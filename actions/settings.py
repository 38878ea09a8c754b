"""The action server's settings, read from the environment in this one place.

Runs in the Rasa venv (pydantic 1), so this is a plain dataclass, read on first use
rather than at import time (rasa_sdk imports every module when it starts).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ActionSettings:
    core_url: str
    core_api_token: str
    core_timeout_s: float


@lru_cache(maxsize=1)
def get_settings() -> ActionSettings:
    return ActionSettings(
        core_url=os.environ.get("CORE_URL", "http://127.0.0.1:8001").rstrip("/"),
        core_api_token=os.environ.get("CORE_API_TOKEN", ""),
        core_timeout_s=float(os.environ.get("CORE_TIMEOUT_S", "5")),
    )
