"""Limits on every public endpoint: body size, request rates, client IP and WebSocket origin.

Rates are fixed windows counted in redis (INCR + EXPIRE in one transaction), so every gateway
process shares them; going over answers 429 with a Chinese message and Retry-After. The client
IP comes from X-Forwarded-For only when the connection itself comes from a configured proxy,
so a client cannot choose the IP it is limited under.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import keys

logger = logging.getLogger(__name__)
TOO_MANY = "操作太频繁了，请 {seconds} 秒后再试。急需办理可拨打 12329 服务热线。"
TOO_BIG = "提交的内容太大了（上限 {limit} KB），请精简后再试。"


@dataclass(frozen=True)
class Rate:
    """At most `count` hits per `window_s` seconds."""

    count: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """'30/60' -> 30 per 60 s: the form rate settings take in the environment."""
        count, _, window = text.partition("/")
        return cls(int(count), int(window or 60))


class RateLimited(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"rate limited for {retry_after_s}s")
        self.retry_after_s = max(1, retry_after_s)
        self.message = TOO_MANY.format(seconds=self.retry_after_s)


class RateLimiter:
    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time):
        self._r = redis
        self._clock = clock

    async def hit(self, scope: str, subject: str, rate: Rate) -> None:
        """Counts one hit of `subject` (a session digest, an IP) in `scope`; raises RateLimited when over."""
        now = self._clock()
        window = int(now // rate.window_s)
        key = keys.rate(scope, subject, window)
        async with self._r.pipeline(transaction=True) as p:
            p.incr(key)
            p.expire(key, rate.window_s + 1)
            count, _ = await p.execute()
        if count > rate.count:
            retry = math.ceil((window + 1) * rate.window_s - now)
            logger.warning("limits.rate.exceeded scope=%s count=%d", scope, count)
            raise RateLimited(retry)


def _networks(items: Iterable[str]) -> list:
    return [ipaddress.ip_network(item, strict=False) for item in items]


def client_ip(conn: HTTPConnection, trusted_proxies: Iterable[str]) -> str:
    """The peer address, or, when the peer is a trusted proxy, the nearest untrusted hop of X-Forwarded-For."""
    peer = conn.client.host if conn.client else "unknown"
    proxies = _networks(trusted_proxies)

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in proxies)

    if not proxies or not trusted(peer):
        return peer
    hops = [h.strip() for h in conn.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed header from behind the proxy: limit the proxy's own address
    return peer


def origin_allowed(conn: HTTPConnection, allowed_origins: Iterable[str]) -> bool:
    """Browsers always send Origin on a WebSocket; it must be this site or one configured.
    Clients that are not browsers send none and are let through (they cannot ride a citizen's cookie)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    if origin in set(allowed_origins):
        return True
    return urlsplit(origin).netloc.lower() == conn.headers.get("host", "").lower()


class BodyLimit:
    """Pure ASGI: refuses a request body over the limit for its path (413), by Content-Length at once
    or, for a chunked body, after reading at most limit + 1 bytes, before any route sees it.
    WebSockets are not touched."""

    def __init__(self, app: ASGIApp, default_bytes: int, per_path: dict[str, int]):
        self.app = app
        self.default = default_bytes
        self.per_path = per_path

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.per_path.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body here, at most limit + 1 bytes, then replay it.
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = ('{"detail": "' + TOO_BIG.format(limit=max(1, limit // 1024)) + '"}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

