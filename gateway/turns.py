"""A turn bound to a gateway session, shared by every channel that has one (web, API, WeChat).

Finding or creating the session, counting the turn against the limits, dropping verified state
that lapsed, and marking the session verified when the actions say so happen here once, so a
channel only decides where the session id comes from and what identity it may vouch for.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Optional

from redis.exceptions import RedisError
from starlette.requests import HTTPConnection, Request

from gateway.conversation import BotMessage, BotUnavailable, ChatInputError, Conversation, is_identity_verified
from gateway.limits import Rate, RateLimiter, client_ip
from gateway.sessions import Session, SessionStore
from gateway.settings import Settings

logger = logging.getLogger(__name__)


async def read_json_object(request: Request) -> dict:
    """Parses the body ourselves so that bad JSON gets a clear Chinese 400, not a stack of pydantic errors."""
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ChatInputError("请求格式错误：请求体必须是 JSON。", status_code=400)
    if not isinstance(body, dict):
        raise ChatInputError("请求格式错误：需要 JSON 对象，例如 {\"text\": \"...\"}。", status_code=400)
    return body


async def session_or_unavailable(store: SessionStore, session_id: Optional[str]) -> Optional[Session]:
    try:
        return await store.get(session_id)
    except RedisError as exc:
        logger.warning("session.store.unavailable error=%s", type(exc).__name__)
        raise BotUnavailable() from exc


async def new_session(store: SessionStore, limiter: RateLimiter, settings: Settings, conn: HTTPConnection,
                      channel: str, identity_kind: str = "", identity: str = "") -> Session:
    """A new session, limited per client IP so nobody can fill redis with them."""
    try:
        await limiter.hit("session_new", client_ip(conn, settings.trusted_proxies), Rate.parse(settings.rate_session_new_ip))
        return await store.create(channel, identity_kind=identity_kind, identity=identity)
    except RedisError as exc:
        raise BotUnavailable() from exc


async def count_turn(limiter: RateLimiter, settings: Settings, session: Session, ip: Optional[str]) -> None:
    """One turn against the session's rate and, for a client with an address, the IP's."""
    try:
        await limiter.hit("chat_session", session.sender_id, Rate.parse(settings.rate_chat_session))
        if ip is not None:
            await limiter.hit("chat_ip", ip, Rate.parse(settings.rate_chat_ip))
    except RedisError as exc:
        raise BotUnavailable() from exc


async def session_turn(conversation: Conversation, store: SessionStore, session: Session, text: Any, metadata: Any,
                       ip: str, trusted_metadata: Optional[dict[str, Any]] = None) -> list[BotMessage]:
    try:
        if await store.touch(session):
            await conversation.forget_verification(session.sender_id)
    except RedisError as exc:
        raise BotUnavailable() from exc
    messages = await conversation.turn(session.sender_id, text, metadata, trusted_metadata=trusted_metadata,
                                       client_ip=ip)
    if any(is_identity_verified(m) for m in messages):
        await store.mark_verified(session)
    return messages
