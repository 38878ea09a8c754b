"""Tells citizens of their online application's status changes on the channel they applied from.

The core writes a notice (and an SMS) with every status change; this task reads them in order
(GET /notifications?after=<cursor>, every NOTICE_POLL_S) and delivers each by the sender id's
prefix: web and API chats get it as a bot message in their conversation (appended to the Rasa
tracker) and in a redis list the widget fetches (GET /api/notices); WeChat citizens get a
customer-service text to the openid their account is bound to; hotline callers have the SMS
already. One gateway delivers at a time (a lease in redis, renewed while it works); the
cursor lives in redis and moves only past a notice that was delivered or parked, so a restart
loses nothing (a notice may at worst be delivered twice). A failure is retried with growing
back-off; after MAX_ATTEMPTS the notice is parked (kept in redis, logged) and the next one
goes out, the citizen having had the SMS. Nothing a notice does stops the loop.

Redis keys (here rather than in gateway/keys.py while this is new): anju:notices:lease,
anju:notices:cursor (no TTL: it is the delivery's position), anju:notices:web:<sender> (TTL of
a chat session), anju:notices:parked.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from typing import Awaitable, Callable, Optional

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.internal_http import internal_client
from gateway.wechat.api import UserUnreachable, WeChatError, WeChatUnavailable

logger = logging.getLogger(__name__)
LEASE_KEY = "anju:notices:lease"
CURSOR_KEY = "anju:notices:cursor"
PARKED_KEY = "anju:notices:parked"
PARKED_TTL_S = 30 * 24 * 3600
WEB_LIST_MAX = 50
MAX_ATTEMPTS = 6
BACKOFF_MAX_S = 300.0
WEB_PREFIXES = ("web", "api")
WECHAT_PREFIXES = ("wx", "wxmsg", "wechat")

SendText = Callable[[str, str], Awaitable[None]]


def web_notices_key(sender_id: str) -> str:
    """Notices waiting for one web chat, fetched and cleared by GET /api/notices."""
    return f"anju:notices:web:{sender_id}"


def channel_of(channel_ref: str) -> str:
    return channel_ref.split("-", 1)[0]


class DeliveryFailed(Exception):
    """This try failed; the notice is tried again later."""


class NoticeDelivery:
    def __init__(self, redis: Redis, core_url: str, core_token: str, rasa_url: str, rasa_token: str,
                 timeout_s: float, poll_s: float, web_ttl_s: int, send_wechat: Optional[SendText] = None,
                 core_transport: Optional[httpx.AsyncBaseTransport] = None,
                 rasa_transport: Optional[httpx.AsyncBaseTransport] = None,
                 clock: Callable[[], float] = time.monotonic):
        self._r = redis
        self._core = internal_client(base_url=core_url.rstrip("/"), timeout=timeout_s, transport=core_transport,
                                     headers={"Authorization": f"Bearer {core_token}"})
        self._rasa = internal_client(base_url=rasa_url.rstrip("/"), timeout=timeout_s, transport=rasa_transport)
        self._rasa_token = rasa_token
        self._poll_s = poll_s
        self._web_ttl_s = web_ttl_s
        self._send_wechat = send_wechat
        self._clock = clock
        self._lease_s = max(15, int(poll_s * 3))
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._attempts: dict[int, int] = {}
        self._listed: set[int] = set()     # web notices already in the widget's list (the tracker part may lag)
        self._retry_at = 0.0
        self._core_down = False

    async def aclose(self) -> None:
        await self._core.aclose()
        await self._rasa.aclose()

    async def run(self) -> None:
        """Until cancelled: one look every poll_s, while this process holds the lease."""
        try:
            while True:
                try:
                    if await self.hold_lease():
                        await self.poll_once()
                except asyncio.CancelledError:
                    raise
                except RedisError as exc:
                    logger.warning("notice.redis_unavailable error=%s", type(exc).__name__)
                except Exception:   # never let one bad look end the delivery
                    logger.exception("notice.poll.failed")
                await asyncio.sleep(self._poll_s)
        finally:
            try:
                if await self._r.get(LEASE_KEY) == self._owner:
                    await self._r.delete(LEASE_KEY)
            except RedisError:
                pass

    async def hold_lease(self) -> bool:
        if await self._r.set(LEASE_KEY, self._owner, nx=True, ex=self._lease_s):
            return True
        if await self._r.get(LEASE_KEY) == self._owner:
            await self._r.expire(LEASE_KEY, self._lease_s)
            return True
        return False

    async def poll_once(self) -> int:
        """Delivers what is new, in order; returns how many notices the cursor moved past."""
        if self._clock() < self._retry_at:
            return 0
        cursor = int(await self._r.get(CURSOR_KEY) or 0)
        try:
            response = await self._core.get("/notifications", params={"after": cursor, "limit": 100})
            response.raise_for_status()
            batch = response.json()["notifications"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            if not self._core_down:   # once per outage, not every poll
                logger.warning("notice.core.unavailable error=%s", type(exc).__name__)
            self._core_down = True
            return 0
        if self._core_down:
            logger.info("notice.core.back")
            self._core_down = False
        moved = 0
        for notice in batch:
            if not await self.hold_lease():     # another gateway took over: it goes on from the cursor
                return moved
            notice_id = int(notice["id"])
            try:
                outcome = await self.deliver(notice)
            except DeliveryFailed as exc:
                attempts = self._attempts.get(notice_id, 0) + 1
                self._attempts[notice_id] = attempts
                if attempts < MAX_ATTEMPTS:
                    delay = min(BACKOFF_MAX_S, self._poll_s * 2 ** attempts)
                    self._retry_at = self._clock() + delay
                    logger.warning("notice.retry id=%s channel=%s attempt=%s in_s=%.0f error=%s", notice_id,
                                   channel_of(notice["channel_ref"]), attempts, delay, exc)
                    return moved
                outcome = await self._park(notice, f"failed after {attempts} attempts: {exc}")
            await self._r.set(CURSOR_KEY, notice_id)
            self._attempts.pop(notice_id, None)
            self._listed.discard(notice_id)
            logger.info("notice.%s id=%s application=%s status=%s channel=%s", outcome, notice_id,
                        notice["application"], notice["status"], channel_of(notice["channel_ref"]))
            moved += 1
        return moved

    async def deliver(self, notice: dict) -> str:
        """delivered, sms_only or parked; DeliveryFailed to try again later."""
        channel = channel_of(notice["channel_ref"])
        if channel in WEB_PREFIXES:
            await self._to_web(notice)
            return "delivered"
        if channel in WECHAT_PREFIXES:
            return await self._to_wechat(notice)
        return "sms_only"   # the hotline (voice-…) and anything else: the core's SMS is the notice

    async def _to_web(self, notice: dict) -> None:
        sender, notice_id = notice["channel_ref"], int(notice["id"])
        if notice_id not in self._listed:
            item = json.dumps({k: notice[k] for k in ("id", "application", "status", "text", "created_at")},
                              ensure_ascii=False)
            key = web_notices_key(sender)
            async with self._r.pipeline(transaction=True) as p:
                p.rpush(key, item)
                p.ltrim(key, -WEB_LIST_MAX, -1)
                p.expire(key, self._web_ttl_s)
                await p.execute()
            self._listed.add(notice_id)
        event = [{"event": "bot", "text": notice["text"], "timestamp": time.time(),
                  "metadata": {"notice_id": notice_id, "application": notice["application"]}}]
        try:
            response = await self._rasa.post(f"/conversations/{sender}/tracker/events", json=event,
                                             params={"token": self._rasa_token})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"rasa {type(exc).__name__}") from exc

    async def _to_wechat(self, notice: dict) -> str:
        openid = notice.get("openid")
        if not openid or self._send_wechat is None:
            return await self._park(notice, "no bound openid" if not openid else "wechat not configured")
        try:
            await self._send_wechat(openid, notice["text"])
        except UserUnreachable as exc:   # outside WeChat's reply window: the SMS has told them
            return await self._park(notice, f"wechat errcode {exc.errcode}")
        except (WeChatError, WeChatUnavailable) as exc:
            raise DeliveryFailed(f"wechat {type(exc).__name__}") from exc
        return "delivered"

    async def _park(self, notice: dict, why: str) -> str:
        entry = json.dumps({"id": notice["id"], "application": notice["application"], "status": notice["status"],
                            "channel": channel_of(notice["channel_ref"]), "why": why}, ensure_ascii=False)
        async with self._r.pipeline(transaction=True) as p:
            p.rpush(PARKED_KEY, entry)
            p.expire(PARKED_KEY, PARKED_TTL_S)
            await p.execute()
        logger.warning("notice.parked id=%s application=%s channel=%s why=%s", notice["id"], notice["application"],
                       channel_of(notice["channel_ref"]), why)
        return "parked"


async def take_web_notices(redis: Redis, sender_id: str) -> list[dict]:
    """The notices waiting for this chat, removed as they are handed over."""
    key = web_notices_key(sender_id)
    async with redis.pipeline(transaction=True) as p:
        p.lrange(key, 0, -1)
        p.delete(key)
        items, _ = await p.execute()
    return [json.loads(item) for item in items]
