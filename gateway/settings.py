"""The gateway's settings: the environment is read here and nowhere else in the gateway."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class StaffAccount(BaseModel):
    """One console login. password_hash from `python -m gateway.staff_auth hash`; totp_secret is base32."""

    username: str
    display_name: str = ""
    role: Literal["staff", "supervisor", "reviewer"] = "staff"   # reviewers (and supervisors) decide applications
    password_hash: SecretStr
    totp_secret: SecretStr


# Demo accounts for development and tests only (passwords dev-staff-pass / dev-super-pass / dev-review-pass);
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
    StaffAccount(username="dev-reviewer", display_name="赵审核", role="reviewer",
                 password_hash=SecretStr("scrypt$3df86f50f251fbbb9367384e1ec39346$c2d147e3d598e86a750813dc90ac17d3"
                                         "7aad839e1bc638dc555212450efb76d9"),
                 totp_secret=SecretStr("7HPIMHGJT2GC3HFHWJZ4CG2ILAYGUJFW")),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Fails closed: unset means production, which refuses every development secret below.
    anju_env: Literal["development", "test", "production"] = "production"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # One Rasa, or several separated by commas (one per core; gateway/rasa_client.py routes by conversation).
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: SecretStr = SecretStr("dev-rasa-token")
    rasa_gateway_token: SecretStr = SecretStr("dev-rasa-gateway-token")  # the gateway channel's header
    rasa_timeout_s: float = 15.0
    action_server_url: str = "http://127.0.0.1:5055"
    core_url: str = "http://127.0.0.1:8001"
    core_api_token: SecretStr = SecretStr("dev-core-token")
    # The core's review API (/review, staff reviewers): CORE_REVIEWER_TOKEN, the same value the core has;
    # dev-reviewer-token outside production, unset in production (the console's review tab then answers 503).
    core_reviewer_token: Optional[SecretStr] = Field(default=None, validate_default=True)
    # Citizen notices (gateway/notices.py): how often the core's outbox is read.
    notice_poll_s: float = Field(default=5.0, gt=0)
    # Signs the channel identities (a WeChat openid, a verified caller) the actions may trust (bot/identity_assertion.py).
    identity_assertion_key: SecretStr = SecretStr("dev-identity-assertion-key")
    identity_assertion_ttl_s: int = 300
    health_timeout_s: float = 2.0
    chat_max_chars: int = 2000
    # Chat sessions (gateway/sessions.py): how long an idle conversation is kept, and how long
    # verified state survives without a turn (the core forgets verification after 15 idle minutes too).
    session_idle_ttl_s: int = 7 * 24 * 3600
    session_verified_idle_s: int = 15 * 60
    # Set when a TLS-terminating proxy serves the gateway: session cookies are then marked Secure.
    behind_tls: bool = False
    # WebSockets: a silent socket is closed after ws_idle_timeout_s (clients send {"type": "ping"}); a frame
    # over ws_max_frame_bytes is refused (a chat message is at most chat_max_chars characters).
    ws_idle_timeout_s: float = 10 * 60
    ws_first_frame_timeout_s: float = 10.0
    ws_max_frame_bytes: int = 16 * 1024
    # uvicorn's WebSocket server (gateway/__main__.py; bench/idle_sockets.py measures them): the
    # implementation, permessage-deflate, and protocol pings (they find dead peers; not activity).
    # "auto" is uvicorn's websockets-sansio, made leaner per socket. Deflate is off: its zlib state is
    # ~45 KB on every open socket, for chat frames of a few hundred bytes.
    ws_protocol: Literal["auto", "websockets", "websockets-sansio", "wsproto"] = "auto"
    ws_per_message_deflate: bool = False
    ws_ping_interval_s: float = 20.0
    # Limits on public endpoints (gateway/limits.py). Bodies in bytes; rates "count/window_s",
    # counted in redis per session (sender) and per client IP. The load benches set their own.
    limit_body_default_bytes: int = 32 * 1024
    limit_body_chat_bytes: int = 16 * 1024
    limit_body_sdp_bytes: int = 64 * 1024
    rate_chat_session: str = "30/60"
    rate_chat_ip: str = "300/60"       # many citizens may share one IP (an office, a carrier NAT)
    rate_session_new_ip: str = "60/60"
    rate_handoff_session: str = "6/600"
    rate_booking_session: str = "3/86400"
    rate_booking_ip: str = "10/86400"
    rate_priority_ip: str = "3/86400"  # self-declared elder mode: priority tickets per IP a day
    # Material uploads (gateway/channels/uploads.py → the core's OCR): one file plus its multipart envelope,
    # uploads per session, and how long the core may take to read a file (OCR waits its turn there).
    limit_body_upload_bytes: int = 10 * 1024 * 1024 + 16 * 1024
    rate_upload_session: str = "12/600"
    upload_timeout_s: float = 90.0
    # X-Forwarded-For is believed only from these addresses/networks (the TLS proxy); empty: never.
    trusted_proxies: list[str] = []
    # WebSocket Origins allowed besides this site's own (e.g. the WeChat mini-program's web-view host).
    allowed_origins: list[str] = []
    web_widget_dir: Path = ROOT / "web_widget"
    # While Rasa cannot answer, FAQ questions are answered from the knowledge base (gateway/faq_fallback.py):
    # indexed from the bot's own examples, answers fetched from the core.
    faq_fallback_nlu_dir: Path = ROOT / "nlu_data"
    faq_fallback_policy_dir: Path = ROOT / "fund" / "policy"
    # GET /metrics (Prometheus) with this bearer token; off (404) while empty.
    metrics_token: SecretStr = SecretStr("")

    # Video handoff (gateway/handoff/, video/). Hours are local time in handoff_timezone.
    handoff_timezone: str = "Asia/Shanghai"
    handoff_staff_hours: str = "09:00-17:00"
    handoff_staff_days: list[int] = [1, 2, 3, 4, 5]
    handoff_avg_session_s: int = 420
    handoff_max_wait_s: int = 1800
    handoff_grace_s: int = 120
    handoff_staff_reconnect_s: int = 20
    # A staff member who accepts and has not joined the call this long after is taken off it: the citizen
    # goes back to the front of the queue (gateway.handoff.media, swept where the rooms live).
    handoff_staff_join_timeout_s: int = 60
    handoff_slot_minutes: int = 30
    handoff_slot_capacity: int = 2
    video_room_token_ttl_s: int = 120
    video_ice_servers: list[str] = []
    video_ice_username: str = ""
    video_ice_credential: SecretStr = SecretStr("")
    video_recordings_dir: Path = ROOT / "var" / "recordings"
    # Recordings older than this are deleted, each deletion audited (gateway.handoff.retention, hourly).
    video_recording_retention_days: int = Field(default=180, ge=1)
    video_width: int = 640
    video_height: int = 480
    video_fps: int = 15
    video_loopback_ice: bool = False  # tests only: offer 127.0.0.1 candidates
    # Forward the browsers' VP8/Opus instead of decoding and re-encoding (video.passthrough): ~6x less CPU.
    video_relay_encoded: bool = True
    # Media on separate node processes (python -m gateway.handoff.node) found through redis, not in the gateway.
    video_media_nodes: bool = False
    video_node_host: str = "127.0.0.1"
    video_node_token: SecretStr = SecretStr("dev-video-node-token")
    video_node_heartbeat_s: float = 2.0
    video_node_timeout_s: float = 10.0
    staff_accounts: list[StaffAccount] = DEV_STAFF_ACCOUNTS
    staff_session_ttl_s: int = 8 * 3600
    staff_session_idle_s: int = 30 * 60
    # Audit records go to the core (POST /audit/records); parked in redis while it is away and
    # merged into the chain every audit_drain_interval_s (gateway/audit_client.py).
    audit_timeout_s: float = 5.0
    audit_drain_interval_s: float = 30.0

    # WeChat (gateway/wechat/): the mini-program's login and chat, and the message-push callback.
    # WECHAT_AES_KEY empty means plaintext mode; the API base is a setting so tests use a simulator.
    wechat_token: SecretStr = SecretStr("dev-wechat-token")
    wechat_appid: str = "wx-dev-appid"
    wechat_app_secret: SecretStr = SecretStr("dev-wechat-app-secret")
    wechat_aes_key: SecretStr = SecretStr("")
    wechat_msg_format: Literal["xml", "json"] = "xml"
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_s: float = 5.0
    limit_body_wechat_bytes: int = 64 * 1024

    # Speech (gateway/voice/): recognition only through the speech server (python -m speech,
    # vosk-server protocol, secret in ?secret=); espeak-ng text-to-speech in this process.
    speech_url: str = "ws://127.0.0.1:2700"
    speech_secret: SecretStr = SecretStr("")
    speech_timeout_s: float = 20.0
    speech_max_frame_bytes: int = 32000  # 1 s of 16 kHz PCM16 per binary frame
    speech_max_audio_s: float = 60.0  # one dictation on /ws/speech
    tts_voice: str = "cmn-latn-pinyin"
    tts_max_chars: int = 500
    rate_speech_session: str = "30/60"  # /api/tts and /ws/speech, each counted apart from chat
    rate_speech_ip: str = "300/60"
    # The hotline (/ws/voice): silence prompts once then hangs up; calls end at the maximum length.
    voice_silence_timeout_s: float = 10.0
    voice_max_call_s: float = 30 * 60
    voice_playback_lead_ms: int = 300  # reply audio is sent this far ahead of real time
    voice_dtmf_menu_wait_s: float = 2.0  # a lone key with nothing after it is a menu choice
    voice_dtmf_entry_timeout_s: float = 5.0  # a digit entry without `#` ends after this pause
    # Asterisk AudioSocket bridge (gateway/voice/audiosocket.py, docs/telephony.md): 0 = off.
    audiosocket_port: int = 0
    audiosocket_host: str = "127.0.0.1"  # the PBX's private address at most, never the internet

    @field_validator("core_reviewer_token", mode="before")
    @classmethod
    def _dev_reviewer_outside_production(cls, value: Any, info: ValidationInfo) -> Any:
        if value in (None, ""):
            return None if info.data.get("anju_env") == "production" else "dev-reviewer-token"
        return value

    @model_validator(mode="after")
    def _wechat_aes_key_shape(self) -> "Settings":
        key = self.wechat_aes_key.get_secret_value()
        if key and len(key) != 43:
            raise ValueError(f"WECHAT_AES_KEY must be the 43-character EncodingAESKey, got {len(key)} characters")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "Settings":
        """Production refuses each development secret with one error that names the setting."""
        if self.anju_env != "production":
            return self
        secrets = {"RASA_TOKEN": self.rasa_token, "RASA_GATEWAY_TOKEN": self.rasa_gateway_token,
                   "CORE_API_TOKEN": self.core_api_token, "VIDEO_NODE_TOKEN": self.video_node_token,
                   "IDENTITY_ASSERTION_KEY": self.identity_assertion_key, "WECHAT_TOKEN": self.wechat_token,
                   "WECHAT_APP_SECRET": self.wechat_app_secret}
        for name, value in secrets.items():
            clear = value.get_secret_value()
            if clear.startswith("dev-") or len(clear) < 16:
                raise ValueError(f"{name} must be set to a real secret (16+ characters) in production")
        reviewer = self.core_reviewer_token.get_secret_value() if self.core_reviewer_token else ""
        if reviewer and (reviewer.startswith("dev-") or len(reviewer) < 16):
            raise ValueError("CORE_REVIEWER_TOKEN must be a real secret (16+ characters) in production, or unset")
        metrics_token = self.metrics_token.get_secret_value()
        if metrics_token and (metrics_token.startswith("dev-") or len(metrics_token) < 16):
            raise ValueError("METRICS_TOKEN must be a real secret (16+ characters) in production, or empty")
        dev_names = {a.username for a in DEV_STAFF_ACCOUNTS}
        dev_secrets = {a.totp_secret.get_secret_value() for a in DEV_STAFF_ACCOUNTS}
        if any(a.username in dev_names or a.totp_secret.get_secret_value() in dev_secrets for a in self.staff_accounts):
            raise ValueError("STAFF_ACCOUNTS must replace the demo staff accounts in production")
        if not self.wechat_aes_key.get_secret_value():
            raise ValueError("WECHAT_AES_KEY must be set in production (safe mode; plaintext is for development)")
        if self.wechat_appid.startswith("wx-dev") or not self.wechat_appid:
            raise ValueError("WECHAT_APPID must be set to the mini-program's real appid in production")
        if not self.wechat_api_base.startswith("https://"):
            raise ValueError("WECHAT_API_BASE must be an https:// URL in production")
        if self.video_loopback_ice:
            raise ValueError("VIDEO_LOOPBACK_ICE is for tests only and refused in production")
        return self


def settings_or_exit() -> Settings:
    """For process entry points: a refused setting is one clear line and exit code 2, not a traceback."""
    try:
        return get_settings()
    except ValueError as exc:
        reasons = "; ".join(str(e.get("msg", e)).removeprefix("Value error, ") for e in getattr(exc, "errors", lambda: [])())
        raise SystemExit(f"gateway: refusing to start: {reasons or exc}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
