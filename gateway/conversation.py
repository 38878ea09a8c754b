"""One citizen turn, whatever the channel: validate, hand to Rasa, shape the bot's reply.

Every channel (web, WebSocket, WeChat, hotline) calls `Conversation.turn`, so validation,
error wording and logging are the same everywhere.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Optional

from pydantic import BaseModel

from redis.exceptions import RedisError

from bot.observability import REQUEST_ID, REQUEST_ID_METADATA, current_request_id, new_request_id
from gateway import keys
from gateway.faq_fallback import FaqFallback
from gateway.metrics import Metrics, channel_of, outcome_of
from gateway.privacy import mask_text
from gateway.rasa_client import RasaClient, RasaUnavailable
from gateway.vault import tokenize

logger = logging.getLogger(__name__)

# The only metadata a citizen's client may set; anything else (e.g. a signed identity
# assertion) is set by the gateway from an authenticated session.
CLIENT_METADATA_KEYS = frozenset({"elder_mode", "accessibility_mode"})
BOT_UNAVAILABLE = "智能助手暂时无法应答，请稍后再试；急需办理可拨打 12329 服务热线联系人工。"
NOT_PROCESSED = "抱歉，刚才这条消息没有处理成功，请再发一次；急需办理可以说“转人工”或拨打 12329 服务热线。"


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


def validate_text(text: Any, max_chars: int) -> str:
    if not isinstance(text, str):
        raise ChatInputError("消息内容 text 必须是文字。")
    text = text.strip()
    if not text:
        raise ChatInputError("消息不能为空，请输入您的问题。")
    try:
        text.encode("utf-8")  # JSON may carry a lone surrogate (\ud800), which no store can keep
    except UnicodeEncodeError:
        raise ChatInputError("消息中含有无法识别的字符，请检查后重新输入。", status_code=400) from None
    if len(text) > max_chars:
        raise ChatInputError(f"消息太长了（{len(text)} 字），请控制在 {max_chars} 字以内。", status_code=413)
    return text


def client_metadata(metadata: Any) -> dict[str, Any]:
    """Keeps only the keys a client may set, with boolean values."""
    if not isinstance(metadata, dict):
        return {}
    return {k: bool(v) for k, v in metadata.items() if k in CLIENT_METADATA_KEYS}


# Markers the actions send as custom payloads for the gateway, never shown to the citizen.
EXPECTS = "expects"                    # {"type": "expects", "slot": "person_name"}: the next answer is a name
IDENTITY_VERIFIED = "identity_verified"  # verification just succeeded: the channel rotates the session
CLARIFY = "clarify"                      # the bot asked which topic was meant (a metric)
EXPECTS_NAME_TTL_S = 10 * 60


class Conversation:
    def __init__(self, rasa: RasaClient, max_chars: int, redis,
                 actions_alive: Optional[Callable[[], Awaitable[bool]]] = None,
                 fallback: Optional[FaqFallback] = None, metrics: Optional[Metrics] = None):
        self._rasa = rasa
        self.metrics = metrics or Metrics()
        # Answers FAQ questions from the knowledge base while Rasa or the action server cannot.
        self._fallback = fallback
        self._max_chars = max_chars
        self._redis = redis
        # Rasa answers 200 with no messages when the action server is down (it logs the failure and
        # goes on): asked only then, so an empty reply becomes a clear 503 instead of silence.
        self._actions_alive = actions_alive
        # Set by the app (gateway.channels.video.HandoffHook): while a sender is handed off to
        # staff their messages go there and the bot stays silent; it also acts on handoff payloads.
        self.handoff: Optional[Any] = None

    async def turn(self, sender_id: str, text: Any, metadata: Any = None,
                   trusted_metadata: Optional[dict[str, Any]] = None, client_ip: str = "") -> list[BotMessage]:
        """One turn for a sender the channel took from an authenticated session (never from the client).

        `metadata` comes from the client and is filtered; `trusted_metadata` only from the gateway
        itself (e.g. a signed identity assertion); `client_ip` only limits self-declared queue
        priority and never reaches Rasa. A message with custom type IDENTITY_VERIFIED in
        the result tells the channel to rotate the session.
        """
        # One id for the turn through Rasa, the actions and the core (HTTP requests bring theirs).
        request_id = current_request_id() or new_request_id()
        reset = REQUEST_ID.set(request_id)
        trusted_metadata = {**(trusted_metadata or {}), REQUEST_ID_METADATA: request_id}
        try:
            return await self._measured_turn(sender_id, text, metadata, trusted_metadata, client_ip)
        finally:
            REQUEST_ID.reset(reset)

    async def _measured_turn(self, sender_id: str, text: Any, metadata: Any, trusted_metadata: dict[str, Any],
                             client_ip: str) -> list[BotMessage]:
        with self.metrics.timed_turn(sender_id):
            try:
                messages, outcome = await self._turn(sender_id, text, metadata, trusted_metadata, client_ip)
            except ChatInputError:
                self.metrics.count_turn(sender_id, "refused")
                raise
            except BotUnavailable:
                self.metrics.count_turn(sender_id, "unavailable")
                raise
        self.metrics.count_turn(sender_id, outcome)
        if any((m.custom or {}).get("type") == "handoff_queued" for m in messages):
            self.metrics.handoffs.labels(channel_of(sender_id)).inc()
        return messages

    async def _turn(self, sender_id: str, text: Any, metadata: Any, trusted_metadata: Optional[dict[str, Any]],
                    client_ip: str) -> tuple[list[BotMessage], str]:
        text = validate_text(text, self._max_chars)
        metadata = {**client_metadata(metadata), **(trusted_metadata or {})}
        try:
            # Rasa's tracker keeps every text for good: ID, phone and card numbers and names never reach it.
            expecting_name = bool(await self._redis.getdel(keys.chat_expects_name(sender_id)))
            text = await tokenize(self._redis, text, expecting_name=expecting_name)
        except RedisError as exc:
            logger.warning("chat.vault.unavailable error=%s", type(exc).__name__)
            self.metrics.failed("redis")
            raise BotUnavailable() from exc
        logger.info("chat.turn sender=%s chars=%d text=%s", sender_id, len(text), mask_text(text)[:40])
        if self.handoff is not None and await self.handoff.route_citizen_message(sender_id, text):
            return [], "to_staff"
        try:
            raw = await self._rasa.send(sender_id, text, metadata)
        except RasaUnavailable:
            return await self._without_the_bot(text, "rasa"), "knowledge_base"
        if not raw:
            # Rasa says nothing when an action call failed: the action server is down (the knowledge base
            # answers, or a clear 503), or it died mid-turn and is already back (bench/faults.py). Every
            # rule of the bot says something, so a silent turn is a failure: never leave the citizen
            # without an answer.
            alive = self._actions_alive is None or await self._actions_alive()
            logger.warning("chat.reply.empty actions_alive=%s", alive)
            if not alive:
                return await self._without_the_bot(text, "actions"), "knowledge_base"
            self.metrics.failed("actions")
            answer = await self._fallback.answer(text) if self._fallback is not None else None
            return ([to_bot_message(m) for m in answer] if answer else [BotMessage(text=NOT_PROCESSED)]), "unavailable"
        messages = [to_bot_message(m) for m in raw]
        outcome = outcome_of(messages)
        messages = await self._take_markers(sender_id, messages)
        if self.handoff is not None:
            messages = await self.handoff.after_bot_reply(sender_id, text, metadata, messages, client_ip,
                                                          clarified=outcome == "clarified")
        return messages, outcome

    async def _without_the_bot(self, text: str, failed: str) -> list[BotMessage]:
        """`failed` (rasa or actions) could not answer: the knowledge base's answer to an FAQ
        question, or BotUnavailable (503 with the hotline)."""
        self.metrics.failed(failed)
        answer = await self._fallback.answer(text) if self._fallback is not None else None
        if answer is None:
            raise BotUnavailable()
        return [to_bot_message(m) for m in answer]

    async def _take_markers(self, sender_id: str, messages: list[BotMessage]) -> list[BotMessage]:
        """Acts on the actions' EXPECTS markers and drops them; IDENTITY_VERIFIED goes on to the channel."""
        kept = []
        for message in messages:
            custom = message.custom or {}
            if custom.get("type") == CLARIFY and not message.text:
                continue  # counted by the metrics; nothing for the citizen
            if custom.get("type") == EXPECTS and not message.text:
                if custom.get("slot") == "person_name":
                    await self._redis.set(keys.chat_expects_name(sender_id), "1", ex=EXPECTS_NAME_TTL_S)
                continue
            kept.append(message)
        return kept

    async def forget_verification(self, sender_id: str) -> None:
        """Verified state lapsed at the gateway: the bot forgets the person too (best effort)."""
        try:
            await self._rasa.reset_verification(sender_id)
        except RasaUnavailable:
            logger.warning("chat.verification.reset_failed")


def is_identity_verified(message: BotMessage) -> bool:
    return (message.custom or {}).get("type") == IDENTITY_VERIFIED


def to_bot_message(raw: dict[str, Any]) -> BotMessage:
    return BotMessage(
        text=raw.get("text"),
        buttons=[Button(title=b.get("title", ""), payload=b.get("payload", "")) for b in raw.get("buttons") or []],
        custom=raw.get("custom"),
        image=raw.get("image"),
    )
