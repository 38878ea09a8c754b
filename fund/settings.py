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
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = 2.0
    core_auto_seed: bool = True          # embedded default: create and seed an empty database at start
    core_seed: int = 2026
    core_idle_timeout_s: int = 15 * 60   # verified session, sliding
    core_code_ttl_s: int = 5 * 60        # one-time code
    core_lock_s: int = 15 * 60
    core_max_failures: int = 5

    @property
    def rules_dir(self) -> Path:
        return self.core_policy_dir / "rules"

    @property
    def dev_endpoints(self) -> bool:
        """The SMS outbox is readable over HTTP only outside production."""
        return self.anju_env != "production"

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "CoreSettings":
        if self.anju_env == "production" and self.core_api_token.get_secret_value().startswith("dev-"):
            raise ValueError("CORE_API_TOKEN must be set to a real secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    return CoreSettings()
