"""Tells a citizen queued through the message push what the widget's page shows live.

The web widget follows its ticket over /ws/handoff/<ticket>; a citizen who wrote in WeChat's
customer-service chat has no page open, so this relay follows the ticket for them and sends, as
customer-service text: the queue position (only when it changed, and at most every
`queue_update_min_s`, so the reply cap of the window is not spent on it), staff joining, staff's
messages and the end. Whatever arrives in one look goes out as one message. While it follows a
waiting ticket it keeps the citizen's place (they are waiting in WeChat, not on a page).

One process relays a ticket at a time (a lease in redis, renewed while it runs); how far the
citizen was told is kept in redis, so a restarted or other gateway picks up where it stopped
without repeating anything.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from typing import Awaitable, Callable, Optional

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import keys
from gateway.handoff import HandoffDesk, TicketState
from gateway.wechat.video import queue_text

logger = logging.getLogger(__name__)
LEASE_S = 15
ACCEPTED_TEXT = ("工作人员已接入。请点开上面的“视频办理”卡片，阅读录像说明并同意后开始视频；"
                 "也可以直接在这里回复文字，和工作人员交流。")
CANCELLED_TEXT = "视频排队已取消。需要时可以随时回复“转人工”。"
QUEUE_PREFIX = "视频排队："

Send = Callable[[str, str], Awaitable[None]]


class HandoffRelay:
    def __init__(self, redis: Redis, desk: HandoffDesk, send: Send, block_ms: Optional[int] = 1000,
                 queue_update_min_s: float = 60.0, clock: Callable[[], float] = time.time):
        self._r = redis
        self._desk = desk
        self._send = send
        self._block_ms = block_ms
        self._queue_update_min_s = queue_update_min_s
        self._clock = clock
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._following: dict[str, asyncio.Future] = {}
        self._wake = asyncio.Event()

    async def follow(self, ticket_id: str, openid: str, position: int) -> None:
        """The citizen was just queued (and told `position`); asking twice keeps what they were told."""
        key = keys.wechat_relay(ticket_id)
        if not await self._r.exists(key):
            async with self._r.pipeline(transaction=True) as p:
                p.hset(key, mapping={"openid": openid, "after": "0", "after_event": "0", "state": "waiting",
                                     "position": position, "told_at": self._clock()})
                p.expire(key, keys.HANDOFF_TICKET_TTL_S)
                p.sadd(keys.wechat_relays(), ticket_id)
                p.expire(keys.wechat_relays(), keys.HANDOFF_TICKET_TTL_S)
                await p.execute()
        self._wake.set()   # run() starts relaying it now rather than at its next look

    async def run(self, every_s: float = 2.0) -> None:
        """Until cancelled: picks up tickets no process relays (one stopped, or this one restarted)."""
        try:
            while True:
                try:
                    for ticket_id in await self._r.smembers(keys.wechat_relays()):
                        self._start(ticket_id)
                except RedisError as exc:
                    logger.warning("wechat.relay.redis_unavailable error=%s", type(exc).__name__)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), every_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            for task in list(self._following.values()):
                task.cancel()

    def _start(self, ticket_id: str) -> None:
        if ticket_id in self._following:
            return
        task = asyncio.ensure_future(self._relay(ticket_id))
        self._following[ticket_id] = task
        task.add_done_callback(lambda _t: self._following.pop(ticket_id, None))

    async def _relay(self, ticket_id: str) -> None:
        lease = keys.wechat_relay_lease(ticket_id)
        if not await self._r.set(lease, self._owner, nx=True, ex=LEASE_S):
            return   # another process relays it
        try:
            while await self.step(ticket_id):
                if await self._r.get(lease) != self._owner:
                    return
                await self._r.expire(lease, LEASE_S)
        except asyncio.CancelledError:
            raise
        except Exception:   # logged; the lease lapses and a later look starts over from what was told
            logger.exception("wechat.relay.failed ticket=%s", ticket_id)
            await asyncio.sleep(1)
        finally:
            try:
                if await self._r.get(lease) == self._owner:
                    await self._r.delete(lease)
            except RedisError:
                pass

    async def step(self, ticket_id: str) -> bool:
        """One look at the ticket: tells the citizen what changed; False once there is nothing more to follow."""
        key = keys.wechat_relay(ticket_id)
        told = await self._r.hgetall(key)
        if not told:
            await self._r.srem(keys.wechat_relays(), ticket_id)
            return False
        block = self._block_ms   # None: do not wait (tests)
        desk, lines, update = self._desk, [], {}
        messages, update["after_event"] = await desk.updates(ticket_id, told["after"], told["after_event"], block)
        update["after"] = self._lines(messages, lines) or told["after"]
        ticket = await desk.get(ticket_id)
        finished = ticket is None or ticket.state in (TicketState.ENDED, TicketState.CANCELLED)
        if ticket is not None and ticket.state == TicketState.ENDED and not lines:
            # staff's summary is posted just after the end: give it a moment to arrive
            later, _ = await desk.updates(ticket_id, update["after"], update["after_event"], block)
            update["after"] = self._lines(later, lines) or update["after"]
        if finished and (ticket is None or ticket.state == TicketState.CANCELLED):
            lines.append(CANCELLED_TEXT)
        elif ticket is not None and ticket.state == TicketState.WAITING:
            await desk.touch(ticket_id)
            position = await desk.position(ticket_id) or 0
            now = self._clock()
            due = now - float(told.get("told_at") or 0) >= self._queue_update_min_s
            if told.get("state") != "waiting" or (position != int(told.get("position") or 0) and (due or lines)):
                lines.append(QUEUE_PREFIX + queue_text(position, await desk.eta_s(position)))
                update.update(state="waiting", position=position, told_at=now)
        elif ticket is not None and ticket.state == TicketState.ACTIVE and told.get("state") != "active":
            lines.insert(0, ACCEPTED_TEXT)   # staff joined, then what they already wrote
            update["state"] = "active"
        if lines:
            await self._send(told["openid"], "\n\n".join(lines))
        if finished:
            async with self._r.pipeline(transaction=True) as p:
                p.delete(key)
                p.srem(keys.wechat_relays(), ticket_id)
                await p.execute()
            logger.info("wechat.relay.done ticket=%s state=%s", ticket_id, ticket.state.value if ticket else "gone")
            return False
        await self._r.hset(key, mapping=update)
        return True

    @staticmethod
    def _lines(messages: list[dict[str, str]], lines: list[str]) -> str:
        """Adds what the citizen reads of the chat (staff and system, not their own or staff-only notes);
        returns the last stream id seen ("" for none)."""
        last = ""
        for message in messages:
            last = message["id"]
            if message.get("to") == "staff" or message.get("from") == "citizen" or not message.get("text"):
                continue
            text = message["text"]
            lines.append(f"工作人员：{text}" if message.get("from") == "staff" else text)
        return last
