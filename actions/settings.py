"""The action server's settings, read from the environment in this one place.

Runs in the Rasa venv (pydantic 1), so this is a plain dataclass, read on first use
rather than at import time (rasa_sdk imports every module when it starts).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

ENVIRONMENTS = ("development", "test", "production")
# Placeholders for development and tests; production refuses to start with them.
DEV_ACTION_SERVER_TOKEN = "dev-action-server-token"
DEV_IDENTITY_ASSERTION_KEY = "dev-identity-assertion-key"


class SettingsError(ValueError):
    """A setting is missing or not allowed in this environment; the message names it."""


@dataclass(frozen=True)
class ActionSettings:
    core_url: str
    core_api_token: str
    core_timeout_s: float
    anju_env: str = "production"
    action_server_host: str = "127.0.0.1"
    action_server_token: str = DEV_ACTION_SERVER_TOKEN
    identity_assertion_key: str = DEV_IDENTITY_ASSERTION_KEY
    action_deadline_s: float = 8.0

    def check_for_start(self) -> None:
        """Refuses settings a server must not start with (called when the action server starts)."""
        if self.anju_env not in ENVIRONMENTS:
            raise SettingsError(f"ANJU_ENV must be one of {', '.join(ENVIRONMENTS)}, got {self.anju_env!r}")
        if self.action_deadline_s <= 0:
            raise SettingsError(f"ACTION_DEADLINE_S must be positive, got {self.action_deadline_s}")
        if self.anju_env != "production":
            return
        for name, value in (("ACTION_SERVER_TOKEN", self.action_server_token),
                            ("IDENTITY_ASSERTION_KEY", self.identity_assertion_key)):
            if not value or value.startswith("dev-"):
                raise SettingsError(f"{name} must be set to a real secret in production (ANJU_ENV=production)")


@lru_cache(maxsize=1)
def get_settings() -> ActionSettings:
    return ActionSettings(
        core_url=os.environ.get("CORE_URL", "http://127.0.0.1:8001").rstrip("/"),
        core_api_token=os.environ.get("CORE_API_TOKEN", ""),
        core_timeout_s=float(os.environ.get("CORE_TIMEOUT_S", "5")),
        anju_env=os.environ.get("ANJU_ENV", "production"),
        action_server_host=os.environ.get("ACTION_SERVER_HOST", "127.0.0.1"),
        action_server_token=os.environ.get("ACTION_SERVER_TOKEN", DEV_ACTION_SERVER_TOKEN),
        identity_assertion_key=os.environ.get("IDENTITY_ASSERTION_KEY", DEV_IDENTITY_ASSERTION_KEY),
        action_deadline_s=float(os.environ.get("ACTION_DEADLINE_S", "8")),
    )
