"""Handoff desk: the video queue, each ticket's state, the staff<->citizen chat and room tokens, in redis.
(Appointments: gateway.handoff_appointments; audit entries and figures: gateway.handoff_figures.)

Queue order is one sorted-set score: priority class (elderly/disabled first) times a large
weight, plus the enqueue time in ms, so ZRANGE gives the service order. A staff member who
drops puts the citizen back with the class weight alone: the front of their class.
A sender's messages go to staff exactly while `anju:handoff:sender:<id>` names an active
ticket; routing and ending both run as WATCH/MULTI transactions on that key, so a message
in the switch is delivered once, either to staff (before the end marker) or to the bot.
"""
from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from redis.exceptions import WatchError

from gateway import keys
from gateway.handoff_appointments import AppointmentBook, HandoffError
from gateway.handoff_figures import DeskFigures
from gateway.privacy import mask_text
from gateway.settings import Settings

__all__ = ["CLASS_WEIGHT", "HandoffDesk", "HandoffError", "Ticket", "TicketState"]

logger = logging.getLogger(__name__)
CLASS_WEIGHT = 10**13  # > any epoch-ms timestamp this century
END_SUMMARY = "人工视频服务已结束。{note}如还有问题，可以继续向智能助手提问。"


class TicketState(str, enum.Enum):
    WAITING = "waiting"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


@dataclass
class Ticket:
    id: str
    sender_id: str
    key: str
    priority: bool
    reason: str
    state: TicketState
    created_ms: int
    staff: str = ""
    room_id: str = ""
    accepted_ms: int = 0
    note: str = ""

    @classmethod
    def from_hash(cls, ticket_id: str, h: dict[str, str]) -> "Ticket":
        return cls(id=ticket_id, sender_id=h["sender_id"], key=h["key"], priority=h["priority"] == "1",
                   reason=h.get("reason", ""), state=TicketState(h["state"]), created_ms=int(h["created_ms"]),
                   staff=h.get("staff", ""), room_id=h.get("room_id", ""),
                   accepted_ms=int(h.get("accepted_ms") or 0), note=h.get("note", ""))


class HandoffDesk(AppointmentBook, DeskFigures):
    """Queue, tickets, the staff<->citizen chat and room tokens; appointments and figures come from the mixins."""

    def __init__(self, redis: Redis, settings: Settings, clock: Callable[[], float] = time.time):
        self._r = redis
        self._s = settings
        self._clock = clock
        self._tz = ZoneInfo(settings.handoff_timezone)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), self._tz)

    def _ms(self) -> int:
        return int(self._clock() * 1000)

    # --- tickets and the queue ---
    async def get(self, ticket_id: str) -> Optional[Ticket]:
        h = await self._r.hgetall(keys.handoff_ticket(ticket_id))
        return Ticket.from_hash(ticket_id, h) if h else None

    async def open_ticket(self, sender_id: str) -> Optional[Ticket]:
        ticket_id = await self._r.get(keys.handoff_sender(sender_id))
        return await self.get(ticket_id) if ticket_id else None

    async def enqueue(self, sender_id: str, priority: bool, reason: str) -> Ticket:
        """Queues the sender, or returns their open ticket: asking twice keeps one place."""
        existing = await self.open_ticket(sender_id)
        if existing and existing.state in (TicketState.WAITING, TicketState.ACTIVE):
            return existing
        ticket = Ticket(id=secrets.token_hex(8), sender_id=sender_id, key=secrets.token_urlsafe(16),
                        priority=priority, reason=reason, state=TicketState.WAITING, created_ms=self._ms())
        score = (0 if priority else 1) * CLASS_WEIGHT + ticket.created_ms
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket.id), mapping={
                "sender_id": sender_id, "key": ticket.key, "priority": "1" if priority else "0", "reason": reason,
                "state": ticket.state.value, "created_ms": ticket.created_ms})
            p.expire(keys.handoff_ticket(ticket.id), keys.HANDOFF_TICKET_TTL_S)
            p.set(keys.handoff_sender(sender_id), ticket.id, ex=keys.HANDOFF_TICKET_TTL_S)
            p.zadd(keys.handoff_queue(), {ticket.id: score})
            p.set(keys.handoff_presence(ticket.id), "1", ex=self._s.handoff_grace_s)
            p.hincrby(keys.stats_day(self._day()), "handoffs", 1)
            p.expire(keys.stats_day(self._day()), keys.STATS_TTL_S)
            await p.execute()
        logger.info("handoff.ticket.created ticket=%s sender=%s priority=%s reason=%s",
                    ticket.id, sender_id, priority, reason)
        return ticket

    async def touch(self, ticket_id: str) -> None:
        """The citizen is still on the page: their place is kept for the grace period from now."""
        await self._r.set(keys.handoff_presence(ticket_id), "1", ex=self._s.handoff_grace_s)

    async def position(self, ticket_id: str) -> Optional[int]:
        await self.purge_abandoned()
        rank = await self._r.zrank(keys.handoff_queue(), ticket_id)
        return None if rank is None else rank + 1

    async def staff_online(self) -> int:
        return await self._r.zcount(keys.staff_online(), self._clock() - 60, "+inf")

    async def heartbeat(self, username: str) -> None:
        await self._r.zadd(keys.staff_online(), {username: self._clock()})

    async def eta_s(self, position: int) -> int:
        return math.ceil(position * self._s.handoff_avg_session_s / max(1, await self.staff_online()))

    async def waiting(self) -> list[Ticket]:
        await self.purge_abandoned()
        ids = await self._r.zrange(keys.handoff_queue(), 0, -1)
        tickets = [await self.get(i) for i in ids]
        return [t for t in tickets if t]

    async def purge_abandoned(self) -> None:
        """Tickets whose citizen left more than the grace period ago lose their place."""
        for ticket_id in await self._r.zrange(keys.handoff_queue(), 0, -1):
            if not await self._r.exists(keys.handoff_presence(ticket_id)):
                await self._finish(ticket_id, TicketState.CANCELLED, "abandoned")

    async def cancel(self, ticket_id: str, key: str) -> None:
        ticket = await self.get(ticket_id)
        if not ticket or not secrets.compare_digest(ticket.key, key):
            raise HandoffError("找不到这次排队，可能已经结束。")
        if ticket.state == TicketState.WAITING:
            await self._finish(ticket_id, TicketState.CANCELLED, "cancelled")

    async def accept(self, ticket_id: str, staff: str) -> Ticket:
        """First staff member to take the ticket off the queue wins; the others get an error."""
        if not await self._r.zrem(keys.handoff_queue(), ticket_id):
            raise HandoffError("该市民已被其他工作人员接待或已离开队列。")
        ticket = await self.get(ticket_id)
        if ticket is None:
            raise HandoffError("该排队记录已过期。")
        now = self._ms()
        room_id = ticket.room_id or secrets.token_hex(8)
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket_id), mapping={
                "state": TicketState.ACTIVE.value, "staff": staff, "room_id": room_id, "accepted_ms": now})
            if not ticket.accepted_ms:  # a requeued ticket counts its first wait only
                p.hincrby(keys.stats_day(self._day()), "accepted", 1)
                p.hincrby(keys.stats_day(self._day()), "wait_ms_total", now - ticket.created_ms)
            await p.execute()
        await self._signal(ticket_id)
        logger.info("handoff.ticket.accepted ticket=%s staff=%s waited_ms=%d", ticket_id, staff, now - ticket.created_ms)
        return await self.get(ticket_id)

    async def requeue_front(self, ticket_id: str) -> None:
        """Staff dropped for good: the citizen goes back to the front of their priority class."""
        ticket = await self.get(ticket_id)
        if not ticket or ticket.state != TicketState.ACTIVE:
            return
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket_id), mapping={"state": TicketState.WAITING.value, "staff": "", "room_id": ""})
            p.zadd(keys.handoff_queue(), {ticket_id: (0 if ticket.priority else 1) * CLASS_WEIGHT})
            p.set(keys.handoff_presence(ticket_id), "1", ex=self._s.handoff_grace_s)
            await p.execute()
        await self._post(ticket_id, "system", "工作人员的连接中断了，已为您优先重新排队，请稍候。")
        logger.info("handoff.ticket.requeued ticket=%s", ticket_id)

    async def end(self, ticket_id: str, staff: str, note: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if not ticket or ticket.state != TicketState.ACTIVE or ticket.staff != staff:
            raise HandoffError("该会话不在进行中，或不由您接待。")
        await self._r.hset(keys.handoff_ticket(ticket_id), "note", note)
        await self._finish(ticket_id, TicketState.ENDED, "ended", signal=False)  # the summary below wakes the socket
        summary = f"小结：{mask_text(note.strip())[:200]}。" if note.strip() else ""
        await self._post(ticket_id, "system", END_SUMMARY.format(note=summary))
        return await self.get(ticket_id)

    async def _finish(self, ticket_id: str, state: TicketState, why: str, signal: bool = True) -> None:
        """Leaves the queue and releases the sender in one transaction with the routing check."""
        ticket = await self.get(ticket_id)
        if not ticket:
            return
        sender_key = keys.handoff_sender(ticket.sender_id)
        async with self._r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(sender_key)
                    current = await p.get(sender_key)
                    p.multi()
                    if current == ticket_id:
                        p.delete(sender_key)
                    p.zrem(keys.handoff_queue(), ticket_id)
                    p.hset(keys.handoff_ticket(ticket_id), "state", state.value)
                    await p.execute()
                    break
                except WatchError:
                    continue
        if signal:
            await self._signal(ticket_id)
        logger.info("handoff.ticket.%s ticket=%s", why, ticket_id)

    # --- the chat between citizen and staff ---
    async def route_citizen_message(self, sender_id: str, text: str) -> bool:
        """Delivers to staff and returns True while the sender is in an active session."""
        sender_key = keys.handoff_sender(sender_id)
        async with self._r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(sender_key)
                    ticket_id = await p.get(sender_key)
                    if not ticket_id or await p.hget(keys.handoff_ticket(ticket_id), "state") != TicketState.ACTIVE.value:
                        await p.unwatch()
                        return False
                    p.multi()
                    p.xadd(keys.handoff_messages(ticket_id), {"from": "citizen", "text": text})
                    p.expire(keys.handoff_messages(ticket_id), keys.HANDOFF_TICKET_TTL_S)
                    await p.execute()
                    return True
                except WatchError:
                    continue

    async def staff_message(self, ticket_id: str, staff: str, text: str) -> None:
        ticket = await self.get(ticket_id)
        if not ticket or ticket.state != TicketState.ACTIVE or ticket.staff != staff:
            raise HandoffError("该会话不在进行中，或不由您接待。")
        await self._post(ticket_id, "staff", text)

    async def _post(self, ticket_id: str, sender: str, text: str) -> None:
        await self._r.xadd(keys.handoff_messages(ticket_id), {"from": sender, "text": text})
        await self._r.expire(keys.handoff_messages(ticket_id), keys.HANDOFF_TICKET_TTL_S)

    async def messages(self, ticket_id: str, after: str = "0", block_ms: Optional[int] = None) -> list[dict[str, str]]:
        """Messages after stream id `after`, oldest first; with block_ms, waits for the next one."""
        reply = await self._r.xread({keys.handoff_messages(ticket_id): after}, block=block_ms)
        return [{"id": mid, **fields} for _stream, entries in reply or [] for mid, fields in entries]

    async def _signal(self, ticket_id: str) -> None:
        """Wakes the citizen's socket (see `updates`) at once when the ticket changes state."""
        await self._r.xadd(keys.handoff_events(ticket_id), {"changed": "1"}, maxlen=8, approximate=True)
        await self._r.expire(keys.handoff_events(ticket_id), keys.HANDOFF_TICKET_TTL_S)

    async def updates(self, ticket_id: str, after: str, after_event: str, block_ms: int) -> tuple[list[dict[str, str]], str]:
        """Waits for a chat message or a state change: a call starts as soon as staff accept, not at the next poll.
        Returns the messages after `after` and the id of the last state-change event seen."""
        streams = {keys.handoff_messages(ticket_id): after, keys.handoff_events(ticket_id): after_event}
        reply = await self._r.xread(streams, block=block_ms)
        messages = []
        for stream, entries in reply or []:
            if stream == keys.handoff_events(ticket_id):
                after_event = entries[-1][0]
            else:
                messages.extend({"id": mid, **fields} for mid, fields in entries)
        return messages, after_event

    # --- room tokens ---
    async def issue_room_token(self, ticket: Ticket, role: str) -> str:
        token = secrets.token_urlsafe(24)
        value = json.dumps({"room_id": ticket.room_id, "ticket_id": ticket.id, "role": role})
        await self._r.set(keys.video_room_token(token), value, ex=self._s.video_room_token_ttl_s)
        return token

    async def peek_room_token(self, token: str) -> Optional[dict[str, Any]]:
        """Reads a grant without using it up: the gateway routes the offer, the media node redeems it."""
        raw = await self._r.get(keys.video_room_token(token))
        return json.loads(raw) if raw else None

    async def redeem_room_token(self, token: str) -> Optional[dict[str, Any]]:
        """Single use: the token is deleted by the read that accepts it."""
        raw = await self._r.getdel(keys.video_room_token(token))
        return json.loads(raw) if raw else None

    def _day(self) -> str:
        return self.now().date().isoformat()
