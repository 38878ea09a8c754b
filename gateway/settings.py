"""The gateway's settings: the environment is read here and nowhere else in the gateway."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    anju_env: Literal["development", "test", "production"] = "development"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: SecretStr = SecretStr("dev-rasa-token")
    rasa_timeout_s: float = 15.0
    action_server_url: str = "http://127.0.0.1:5055"
    core_url: str = "http://127.0.0.1:8001"
    health_timeout_s: float = 2.0
    chat_max_chars: int = 2000
    web_widget_dir: Path = ROOT / "web_widget"

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "Settings":
        if self.anju_env == "production" and self.rasa_token.get_secret_value().startswith("dev-"):
            raise ValueError("RASA_TOKEN must be set to a real secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
