"""The sandbox core's settings: read from the environment here and nowhere else.

Fails closed: ANJU_ENV defaults to production, and production refuses to start with any
development placeholder (core token, audit key) or with demo seeding switched on.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

POLICY_DIR = Path(__file__).resolve().parent / "policy"
Environment = Literal["development", "test", "production"]
DEV_PREFIX = "dev-"                 # every development placeholder secret starts with it
MIN_AUDIT_KEY_CHARS = 32            # production: e.g. `openssl rand -hex 32`


def anchor_path_for(database_url: str) -> Path:
    """audit-anchor.log next to a SQLite file; var/audit-anchor.log for any other database."""
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:///:memory:"):
        return Path(database_url.removeprefix("sqlite:///").split("?", 1)[0]).parent / "audit-anchor.log"
    return Path("var") / "audit-anchor.log"


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    anju_env: Environment = "production"
    core_database_url: str = "sqlite:///var/core.db"
    core_api_token: SecretStr = SecretStr("dev-core-token")
    core_audit_key: SecretStr = SecretStr("dev-audit-key")   # HMAC key of the audit chain
    core_audit_anchor_path: Path = Field(default=None, validate_default=True)  # default: anchor_path_for(db)
    core_audit_anchor_every: int = Field(default=50, ge=1)
    core_policy_dir: Path = POLICY_DIR
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = 2.0
    # Create and seed an empty database at start; default on in development/test, off in production.
    core_auto_seed: bool = Field(default=None, validate_default=True)
    core_seed: int = 2026
    core_idle_timeout_s: int = 15 * 60   # verified session, sliding
    core_code_ttl_s: int = 5 * 60        # one-time code
    core_lock_s: int = 15 * 60
    core_max_failures: int = 5
    core_codes_per_window: int = Field(default=5, ge=1)  # SMS codes per ID number per lock window
    # Staff reviewers (X-Reviewer-Token): default dev-reviewer-token in development/test; unset in
    # production means the review API answers 403 until a real token is configured.
    core_reviewer_token: Optional[SecretStr] = Field(default=None, validate_default=True)
    # Sandbox review rule: a complete 免提交 application is approved this long after submission,
    # and any approved application is paid this long after approval.
    core_auto_approve_s: int = Field(default=120, ge=0)
    core_auto_pay_s: int = Field(default=300, ge=0)
    # Uploaded materials (fund.materials): stored by sha256 here, outside any web root; size limit per file.
    core_upload_dir: Path = Path("var") / "uploads"
    core_upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    @property
    def rules_dir(self) -> Path:
        return self.core_policy_dir / "rules"

    @property
    def dev_endpoints(self) -> bool:
        """The SMS outbox (/dev/outbox) is mounted in development and test only."""
        return self.anju_env in ("development", "test")

    @field_validator("core_audit_anchor_path", mode="before")
    @classmethod
    def _anchor_next_to_the_database(cls, value: Any, info: ValidationInfo) -> Any:
        return anchor_path_for(info.data.get("core_database_url", "")) if value in (None, "") else value

    @field_validator("core_auto_seed", mode="before")
    @classmethod
    def _seed_outside_production_only(cls, value: Any, info: ValidationInfo) -> Any:
        return info.data.get("anju_env") != "production" if value in (None, "") else value

    @field_validator("core_reviewer_token", mode="before")
    @classmethod
    def _dev_reviewer_outside_production(cls, value: Any, info: ValidationInfo) -> Any:
        if value in (None, ""):
            return None if info.data.get("anju_env") == "production" else "dev-reviewer-token"
        return value

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> "CoreSettings":
        if not self.core_api_token.get_secret_value().strip():
            raise ValueError("CORE_API_TOKEN is empty: every business call would pass without a token")
        reviewer = self.core_reviewer_token.get_secret_value() if self.core_reviewer_token else None
        if reviewer is not None and reviewer == self.core_api_token.get_secret_value():
            raise ValueError("CORE_REVIEWER_TOKEN equals CORE_API_TOKEN: every caller would be a reviewer")
        if self.anju_env != "production":
            return self
        problems = []
        if self.core_api_token.get_secret_value().startswith(DEV_PREFIX):
            problems.append("CORE_API_TOKEN is a development placeholder (dev-…), set a real secret")
        key = self.core_audit_key.get_secret_value()
        if key.startswith(DEV_PREFIX) or len(key) < MIN_AUDIT_KEY_CHARS:
            problems.append(f"CORE_AUDIT_KEY is missing, short or a development placeholder, set a random "
                            f"secret of at least {MIN_AUDIT_KEY_CHARS} characters")
        if reviewer is not None and reviewer.startswith(DEV_PREFIX):
            problems.append("CORE_REVIEWER_TOKEN is a development placeholder (dev-…), set a real secret or unset it")
        if self.core_auto_seed:
            problems.append("CORE_AUTO_SEED must be false in production (it creates demo persons)")
        if problems:
            raise ValueError("ANJU_ENV=production refuses to start: " + "; ".join(problems))
        return self


def describe(error: ValidationError) -> str:
    """One line naming each bad setting as its environment variable, never echoing a secret."""
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:
            parts.append(message)
            continue
        name = str(item["loc"][0])
        field = CoreSettings.model_fields.get(name)
        shown = "" if field is None or field.annotation is SecretStr else f" (got {item.get('input')!r})"
        parts.append(f"{name.upper()}: {message}{shown}")
    return "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    return CoreSettings()
