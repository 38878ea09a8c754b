"""One citizen turn, whatever the channel: validate, hand to Rasa, shape the bot's reply.

Every channel (web, WebSocket, WeChat, hotline) calls `Conversation.turn`, so validation,
error wording and logging are the same everywhere.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Optional

from pydantic import BaseModel

from redis.exceptions import RedisError

from gateway.privacy import mask_text
from gateway.rasa_client import RasaClient, RasaUnavailable
from gateway.vault import tokenize

logger = logging.getLogger(__name__)

# The only metadata a citizen's client may set; anything else (e.g. wechat_openid, which
# skips identity checks) is set by the gateway from an authenticated session.
CLIENT_METADATA_KEYS = frozenset({"elder_mode", "accessibility_mode"})
SENDER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
BOT_UNAVAILABLE = "智能助手暂时无法应答，请稍后再试；急需办理可拨打 12329 服务热线联系人工。"


class ChatInputError(ValueError):
    """The citizen's message cannot be processed as sent; the text is shown to them."""

    def __init__(self, message: str, status_code: int = 422):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class BotUnavailable(Exception):
    """Rasa is down; the channel answers 503 with BOT_UNAVAILABLE and keeps running."""


class Button(BaseModel):
    title: str
    payload: str


class BotMessage(BaseModel):
    text: Optional[str] = None
    buttons: list[Button] = []
    custom: Optional[dict[str, Any]] = None
    image: Optional[str] = None


def validate_sender_id(sender_id: Any) -> str:
    if not isinstance(sender_id, str) or not sender_id:
        raise ChatInputError("缺少会话标识 sender_id。")
    if not SENDER_ID.match(sender_id):
        raise ChatInputError("会话标识 sender_id 格式不正确：只能包含字母、数字和 _ . : -，最长 64 个字符。")
    return sender_id


def validate_text(text: Any, max_chars: int) -> str:
    if not isinstance(text, str):
        raise ChatInputError("消息内容 text 必须是文字。")
    text = text.strip()
    if not text:
        raise ChatInputError("消息不能为空，请输入您的问题。")
    if len(text) > max_chars:
        raise ChatInputError(f"消息太长了（{len(text)} 字），请控制在 {max_chars} 字以内。", status_code=413)
    return text


def client_metadata(metadata: Any) -> dict[str, Any]:
    """Keeps only the keys a client may set, with boolean values."""
    if not isinstance(metadata, dict):
        return {}
    return {k: bool(v) for k, v in metadata.items() if k in CLIENT_METADATA_KEYS}


class Conversation:
    def __init__(self, rasa: RasaClient, max_chars: int, redis):
        self._rasa = rasa
        self._max_chars = max_chars
        self._redis = redis
        # Set by the app (gateway.channels.video.HandoffHook): while a sender is handed off to
        # staff their messages go there and the bot stays silent; it also acts on handoff payloads.
        self.handoff: Optional[Any] = None

    async def turn(self, sender_id: Any, text: Any, metadata: Any = None,
                   trusted_metadata: Optional[dict[str, Any]] = None) -> list[BotMessage]:
        """One turn. `metadata` comes from the client and is filtered; `trusted_metadata`
        only from the gateway's own authenticated sessions (e.g. a WeChat openid)."""
        sender_id = validate_sender_id(sender_id)
        text = validate_text(text, self._max_chars)
        metadata = {**client_metadata(metadata), **(trusted_metadata or {})}
        try:
            # Rasa's tracker keeps every text for good: ID and phone numbers never reach it.
            text = await tokenize(self._redis, text)
        except RedisError as exc:
            logger.warning("chat.vault.unavailable sender=%s error=%s", sender_id, type(exc).__name__)
            raise BotUnavailable() from exc
        logger.info("chat.turn sender=%s chars=%d text=%s", sender_id, len(text), mask_text(text)[:80])
        if self.handoff is not None and await self.handoff.route_citizen_message(sender_id, text):
            return []
        try:
            raw = await self._rasa.send(sender_id, text, metadata)
        except RasaUnavailable as exc:
            raise BotUnavailable() from exc
        messages = [to_bot_message(m) for m in raw]
        if self.handoff is not None:
            messages = await self.handoff.after_bot_reply(sender_id, text, metadata, messages)
        return messages


def to_bot_message(raw: dict[str, Any]) -> BotMessage:
    return BotMessage(
        text=raw.get("text"),
        buttons=[Button(title=b.get("title", ""), payload=b.get("payload", "")) for b in raw.get("buttons") or []],
        custom=raw.get("custom"),
        image=raw.get("image"),
    )
