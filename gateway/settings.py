"""The gateway's settings: the environment is read here and nowhere else in the gateway."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class StaffAccount(BaseModel):
    """One console login. password_hash from `python -m gateway.staff_auth hash`; totp_secret is base32."""

    username: str
    display_name: str = ""
    role: Literal["staff", "supervisor"] = "staff"
    password_hash: SecretStr
    totp_secret: SecretStr


# Demo accounts for development and tests only (passwords dev-staff-pass / dev-super-pass);
# production refuses to start with any of them.
DEV_STAFF_ACCOUNTS = [
    StaffAccount(username="dev-staff", display_name="王柜员", role="staff",
                 password_hash=SecretStr("scrypt$32b81385604f61109df6d9abe8e3820f$486ca0ef753b3f97671881321063c456"
                                         "5932a7682afc4a9c671da822a09d10c6"),
                 totp_secret=SecretStr("ST5IAXGQNGOKHXSNWOHH6WTXKUZYLWPC")),
    StaffAccount(username="dev-supervisor", display_name="李主管", role="supervisor",
                 password_hash=SecretStr("scrypt$a16ebc763bddf2e0d574149b4f27a770$a7c8e066acc31299d99debab58d56b8d"
                                         "010e2d5c314ede6c38df9420048636f2"),
                 totp_secret=SecretStr("3R7MJJTMVDGRTQ3DIGSBTAJQORHUYONJ")),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    anju_env: Literal["development", "test", "production"] = "development"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: SecretStr = SecretStr("dev-rasa-token")
    rasa_timeout_s: float = 15.0
    action_server_url: str = "http://127.0.0.1:5055"
    core_url: str = "http://127.0.0.1:8001"
    core_api_token: SecretStr = SecretStr("dev-core-token")
    health_timeout_s: float = 2.0
    chat_max_chars: int = 2000
    web_widget_dir: Path = ROOT / "web_widget"

    # Video handoff (gateway/handoff.py, video/). Hours are local time in handoff_timezone.
    handoff_timezone: str = "Asia/Shanghai"
    handoff_staff_hours: str = "09:00-17:00"
    handoff_staff_days: list[int] = [1, 2, 3, 4, 5]
    handoff_avg_session_s: int = 420
    handoff_max_wait_s: int = 1800
    handoff_grace_s: int = 120
    handoff_staff_reconnect_s: int = 20
    handoff_slot_minutes: int = 30
    handoff_slot_capacity: int = 2
    video_room_token_ttl_s: int = 120
    video_ice_servers: list[str] = []
    video_ice_username: str = ""
    video_ice_credential: SecretStr = SecretStr("")
    video_recordings_dir: Path = ROOT / "var" / "recordings"
    video_width: int = 640
    video_height: int = 480
    video_fps: int = 15
    video_loopback_ice: bool = False  # tests only: offer 127.0.0.1 candidates
    # Forward the browsers' VP8/Opus instead of decoding and re-encoding (video.passthrough): ~6x less CPU.
    video_relay_encoded: bool = True
    # Media on separate node processes (python -m gateway.handoff_node) found through redis, not in the gateway.
    video_media_nodes: bool = False
    video_node_host: str = "127.0.0.1"
    video_node_token: SecretStr = SecretStr("dev-video-node-token")
    video_node_heartbeat_s: float = 2.0
    video_node_timeout_s: float = 10.0
    staff_accounts: list[StaffAccount] = DEV_STAFF_ACCOUNTS
    staff_session_ttl_s: int = 8 * 3600

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "Settings":
        if self.anju_env == "production" and self.rasa_token.get_secret_value().startswith("dev-"):
            raise ValueError("RASA_TOKEN must be set to a real secret in production")
        if self.anju_env == "production":
            dev_names = {a.username for a in DEV_STAFF_ACCOUNTS}
            dev_secrets = {a.totp_secret.get_secret_value() for a in DEV_STAFF_ACCOUNTS}
            if any(a.username in dev_names or a.totp_secret.get_secret_value() in dev_secrets
                   for a in self.staff_accounts):
                raise ValueError("STAFF_ACCOUNTS must replace the demo staff accounts in production")
            if self.video_node_token.get_secret_value().startswith("dev-"):
                raise ValueError("VIDEO_NODE_TOKEN must be set to a real secret in production")
            if self.video_loopback_ice:
                raise ValueError("VIDEO_LOOPBACK_ICE is for tests only")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
