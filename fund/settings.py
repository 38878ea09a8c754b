"""The sandbox core's settings: read from the environment here and nowhere else."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

POLICY_DIR = Path(__file__).resolve().parent / "policy"


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    anju_env: str = "development"
    core_database_url: str = "sqlite:///var/core.db"
    core_api_token: SecretStr = SecretStr("dev-core-token")
    core_policy_dir: Path = POLICY_DIR

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "CoreSettings":
        if self.anju_env == "production" and self.core_api_token.get_secret_value().startswith("dev-"):
            raise ValueError("CORE_API_TOKEN must be set to a real secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    return CoreSettings()
