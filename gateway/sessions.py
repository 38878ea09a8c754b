"""Chat sessions issued by the gateway: the only way a client is tied to a conversation.

A session id is 256 random bits, handed to the widget in an HttpOnly, SameSite=Strict cookie
and to API clients as a bearer token; the client never chooses or sees the Rasa sender_id,
which is random and kept here, on the server. Redis holds the session under the sha256 of its
id (a dump of redis gives no usable id). Rotating a session (after identity verification)
gives a new id for the same sender_id, so the conversation goes on and an id seen before
verification is worth nothing. Verified state lapses after `verified_idle_s` without a turn.
A session may carry a channel identity (a WeChat openid from the login code exchange): it is
kept in the session hash, travels with rotation and is never sent to the client.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

from fastapi import Request, Response
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from gateway import keys

logger = logging.getLogger(__name__)
COOKIE = "anju_session"
ID_BYTES = 32  # 256 bits: far beyond guessing


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    id: str
    sender_id: str
    channel: str
    created_ms: int
    last_seen_ms: int
    verified_ms: int = 0
    # A channel identity the gateway itself established, e.g. ("wechat_openid", openid); "" when none.
    identity_kind: str = ""
    identity: str = ""

    @property
    def verified(self) -> bool:
        return self.verified_ms > 0

    def to_hash(self) -> dict[str, str | int]:
        return {"sender_id": self.sender_id, "channel": self.channel, "created_ms": self.created_ms,
                "last_seen_ms": self.last_seen_ms, "verified_ms": self.verified_ms,
                "identity_kind": self.identity_kind, "identity": self.identity}


class SessionStore:
    def __init__(self, redis: Redis, idle_ttl_s: int, verified_idle_s: int,
                 clock: Callable[[], float] = time.time):
        self._r = redis
        self._ttl = idle_ttl_s
        self._verified_idle_ms = verified_idle_s * 1000
        self._clock = clock

    def _ms(self) -> int:
        return int(self._clock() * 1000)

    async def create(self, channel: str = "web", identity_kind: str = "", identity: str = "",
                     session_id: Optional[str] = None) -> Session:
        """A new session; `session_id` only for server-side sessions whose id the gateway derives itself
        (the WeChat message callback), never one a client chose."""
        now = self._ms()
        session = Session(id=session_id or secrets.token_urlsafe(ID_BYTES),
                          sender_id=f"{channel}-{secrets.token_hex(16)}", channel=channel, created_ms=now,
                          last_seen_ms=now, identity_kind=identity_kind, identity=identity)
        await self._save(session)
        logger.info("session.created channel=%s", channel)
        return session

    async def _save(self, session: Session) -> None:
        key = keys.chat_session(_digest(session.id))
        async with self._r.pipeline(transaction=True) as p:
            p.hset(key, mapping=session.to_hash())
            p.expire(key, self._ttl)
            await p.execute()

    async def get(self, session_id: Optional[str]) -> Optional[Session]:
        """The live session for this id, or None; a malformed id is simply unknown."""
        if not session_id or len(session_id) > 128:
            return None
        h = await self._r.hgetall(keys.chat_session(_digest(session_id)))
        if not h:
            return None
        return Session(id=session_id, sender_id=h["sender_id"], channel=h.get("channel", "web"),
                       created_ms=int(h.get("created_ms") or 0), last_seen_ms=int(h.get("last_seen_ms") or 0),
                       verified_ms=int(h.get("verified_ms") or 0), identity_kind=h.get("identity_kind", ""),
                       identity=h.get("identity", ""))

    async def touch(self, session: Session) -> bool:
        """Records a turn. Returns True when verified state had lapsed (idle too long) and was dropped."""
        now = self._ms()
        lapsed = session.verified and now - session.last_seen_ms > self._verified_idle_ms
        session.last_seen_ms = now
        if lapsed:
            session.verified_ms = 0
            logger.info("session.verified.lapsed channel=%s", session.channel)
        key = keys.chat_session(_digest(session.id))
        async with self._r.pipeline(transaction=True) as p:
            p.hset(key, mapping={"last_seen_ms": now, "verified_ms": session.verified_ms})
            p.expire(key, self._ttl)
            await p.execute()
        return lapsed

    async def mark_verified(self, session: Session) -> None:
        session.verified_ms = self._ms()
        await self._r.hset(keys.chat_session(_digest(session.id)), "verified_ms", session.verified_ms)

    async def mark_unverified(self, session: Session) -> None:
        session.verified_ms = 0
        await self._r.hset(keys.chat_session(_digest(session.id)), "verified_ms", 0)

    async def rotate(self, session: Session) -> Session:
        """A new id for the same conversation; the old id stops working at once."""
        fresh = Session(id=secrets.token_urlsafe(ID_BYTES), sender_id=session.sender_id, channel=session.channel,
                        created_ms=session.created_ms, last_seen_ms=self._ms(), verified_ms=session.verified_ms,
                        identity_kind=session.identity_kind, identity=session.identity)
        await self._save(fresh)
        await self._r.delete(keys.chat_session(_digest(session.id)))
        logger.info("session.rotated channel=%s", session.channel)
        return fresh

    async def end(self, session: Session) -> None:
        await self._r.delete(keys.chat_session(_digest(session.id)))
        logger.info("session.ended channel=%s", session.channel)


# --- how a session id travels: cookie (widget) or bearer token (API clients) ---
def bearer(conn: HTTPConnection) -> Optional[str]:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def presented_id(conn: HTTPConnection) -> Optional[str]:
    """The session id the client sent: a bearer token wins over the cookie."""
    return bearer(conn) or conn.cookies.get(COOKIE)


def uses_cookie(conn: HTTPConnection) -> bool:
    return bearer(conn) is None and "authorization" not in conn.headers and COOKIE in conn.cookies


def set_cookie(response: Response, request: Request, session_id: str, max_age_s: int, behind_tls: bool) -> None:
    response.set_cookie(COOKIE, session_id, max_age=max_age_s, path="/", httponly=True, samesite="strict",
                        secure=behind_tls or request.url.scheme == "https")


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
