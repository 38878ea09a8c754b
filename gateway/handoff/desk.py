"""Handoff desk: the video queue, each ticket's state, the staff<->citizen chat and room tokens, in redis.
It holds the desk's appointment book (`desk.appointments`) and figures (`desk.figures`), built on the same
redis, settings and clock.

Queue order is one sorted-set score: priority class (elderly/disabled first) times a large
weight, plus the enqueue time in ms, so ZRANGE gives the service order. A staff member who
drops puts the citizen back with the class weight alone: the front of their class.
A sender's messages go to staff exactly while `anju:handoff:sender:<id>` names an active
ticket; routing and ending both run as WATCH/MULTI transactions on that key, so a message
in the switch is delivered once, either to staff (before the end marker) or to the bot.

No media reaches the citizen before they agree to the recording (`record_consent`); staff's
closing note stays internal and only the summary they write for the citizen is posted to them.
No call is left stuck: `unjoined` finds staff who accepted and never joined, `reconcile_active`
puts back the calls a restart lost.
"""
from __future__ import annotations

import json
import logging
import math
import secrets
import time
from typing import Any, Awaitable, Callable, Optional

from redis.asyncio import Redis
from redis.exceptions import WatchError

from gateway import keys
from gateway.audit_client import AuditClient, AuditError
from gateway.handoff.appointments import AppointmentBook
from gateway.handoff.captions import CaptionBook
from gateway.handoff.clock import DeskClock
from gateway.handoff.errors import HandoffError
from gateway.handoff.figures import DeskFigures
from gateway.handoff.tickets import Ticket, TicketState
from gateway.privacy import mask_text
from gateway.settings import Settings

logger = logging.getLogger(__name__)
CLASS_WEIGHT = 10**13  # > any epoch-ms timestamp this century
END_SUMMARY = "人工视频服务已结束。{summary}如还有问题，可以继续向智能助手提问。"
SUMMARY_MAX_CHARS = 500
CONSENT_TEXT = "为保障服务质量，本次视频通话将全程录音录像，录像按规定保存并严格保密。同意后开始视频。"
# Shown to staff only (the stream entry has to=staff; the citizen's socket skips it).
CONSENT_NOTICE = {True: "市民已同意录像，视频即将接通。", False: "市民未同意录像：请用文字交流"}
STAFF_DROPPED = "工作人员的连接中断了，已为您优先重新排队，请稍候。"
STAFF_NEVER_JOINED = "工作人员暂时未能接通视频，已为您优先重新排队，请稍候。"
SERVICE_RESTARTED = "视频服务刚刚重新启动，已为您优先重新排队，请稍候。"
CITIZEN_HUNG_UP = "市民已挂断，本次视频服务结束。"


class HandoffDesk:
    """Queue, tickets, the staff<->citizen chat and room tokens; `appointments` and `figures` do the rest."""

    def __init__(self, redis: Redis, settings: Settings, clock: Callable[[], float] = time.time,
                 audit: Optional[AuditClient] = None):
        self._r = redis
        self._s = settings
        self.clock = DeskClock(settings.handoff_timezone, clock)
        # Staff actions and recording hashes go to the core's audit chain (parked in redis while it is away).
        self.audit = audit or AuditClient(redis, settings.core_url, settings.core_api_token.get_secret_value(),
                                          settings.audit_timeout_s)
        self.appointments = AppointmentBook(redis, settings, self.clock, self.joining_eta_s)
        self.figures = DeskFigures(redis, self.clock, self.audit)
        self.captions = CaptionBook(redis, self.clock.ms)  # live captions' state, lines and transcript (issue 18.6)

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
                        priority=priority, reason=reason, state=TicketState.WAITING, created_ms=self.clock.ms())
        score = (0 if priority else 1) * CLASS_WEIGHT + ticket.created_ms
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket.id), mapping={
                "sender_id": sender_id, "key": ticket.key, "priority": "1" if priority else "0", "reason": reason,
                "state": ticket.state.value, "created_ms": ticket.created_ms})
            p.expire(keys.handoff_ticket(ticket.id), keys.HANDOFF_TICKET_TTL_S)
            p.set(keys.handoff_sender(sender_id), ticket.id, ex=keys.HANDOFF_TICKET_TTL_S)
            p.zadd(keys.handoff_queue(), {ticket.id: score})
            p.set(keys.handoff_presence(ticket.id), "1", ex=self._s.handoff_grace_s)
            self.figures.count_handoff(p)
            await p.execute()
        logger.info("handoff.ticket.created ticket=%s sender=%s priority=%s reason=%s",
                    ticket.id, sender_id, priority, reason)
        return ticket

    async def set_priority(self, ticket_id: str, priority: bool) -> Ticket:
        """Staff move a waiting ticket into or out of the priority class, keeping its place in time."""
        ticket = await self.get(ticket_id)
        if ticket is None or ticket.state != TicketState.WAITING:
            raise HandoffError("只能调整仍在排队的市民的优先级。")
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket_id), "priority", "1" if priority else "0")
            p.zadd(keys.handoff_queue(), {ticket_id: (0 if priority else 1) * CLASS_WEIGHT + ticket.created_ms}, xx=True)
            await p.execute()
        await self._signal(ticket_id)
        logger.info("handoff.ticket.priority ticket=%s priority=%s", ticket_id, priority)
        return await self.get(ticket_id)

    async def touch(self, ticket_id: str) -> None:
        """The citizen is still on the page: their place is kept for the grace period from now."""
        await self._r.set(keys.handoff_presence(ticket_id), "1", ex=self._s.handoff_grace_s)

    async def position(self, ticket_id: str) -> Optional[int]:
        await self.purge_abandoned()
        rank = await self._r.zrank(keys.handoff_queue(), ticket_id)
        return None if rank is None else rank + 1

    async def staff_online(self) -> int:
        return await self._r.zcount(keys.staff_online(), self.clock() - 60, "+inf")

    async def heartbeat(self, username: str) -> None:
        await self._r.zadd(keys.staff_online(), {username: self.clock()})

    async def eta_s(self, position: int) -> int:
        return math.ceil(position * self._s.handoff_avg_session_s / max(1, await self.staff_online()))

    async def joining_eta_s(self) -> int:
        """The wait of a citizen who joins the queue now: the appointment book's reason to offer a slot."""
        return await self.eta_s(await self._r.zcard(keys.handoff_queue()) + 1)

    async def queue_figures(self) -> tuple[int, float]:
        """(citizens waiting now, the longest current wait in seconds), for /metrics."""
        tickets = await self.waiting()
        now = self.clock.ms()
        return len(tickets), max(((now - t.created_ms) / 1000 for t in tickets), default=0.0)

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
        now = self.clock.ms()
        room_id = ticket.room_id or secrets.token_hex(8)
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.handoff_ticket(ticket_id), mapping={
                "state": TicketState.ACTIVE.value, "staff": staff, "room_id": room_id, "accepted_ms": now})
            p.zadd(keys.handoff_active(), {ticket_id: now})
            p.expire(keys.handoff_active(), keys.HANDOFF_TICKET_TTL_S)
            if not ticket.accepted_ms:  # a requeued ticket counts its first wait only
                self.figures.count_accepted(p, now - ticket.created_ms)
            await p.execute()
        await self._signal(ticket_id)
        logger.info("handoff.ticket.accepted ticket=%s staff=%s waited_ms=%d", ticket_id, staff, now - ticket.created_ms)
        return await self.get(ticket_id)

    async def requeue_front(self, ticket_id: str, text: str = STAFF_DROPPED, room_id: Optional[str] = None) -> bool:
        """The call with staff did not happen or broke for good: the citizen goes back to the front of their
        priority class and is told why (`text`). With room_id, only while the ticket still has that room,
        so a sweep that read the ticket a moment ago cannot requeue a newer call. True if requeued."""
        key = keys.handoff_ticket(ticket_id)
        async with self._r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(key)  # the gateway's and the nodes' sweeps may look at one ticket at once
                    h = await p.hgetall(key)
                    ticket = Ticket.from_hash(ticket_id, h) if h else None
                    if not ticket or ticket.state != TicketState.ACTIVE or room_id not in (None, ticket.room_id):
                        await p.unwatch()
                        return False
                    p.multi()
                    p.hset(key, mapping={"state": TicketState.WAITING.value, "staff": "", "room_id": ""})
                    p.zadd(keys.handoff_queue(), {ticket_id: (0 if ticket.priority else 1) * CLASS_WEIGHT})
                    p.zrem(keys.handoff_active(), ticket_id)
                    p.set(keys.handoff_presence(ticket_id), "1", ex=self._s.handoff_grace_s)
                    await p.execute()
                    break
                except WatchError:
                    continue
        await self._post(ticket_id, "system", text)
        await self._signal(ticket_id)
        logger.info("handoff.ticket.requeued ticket=%s staff=%s", ticket_id, ticket.staff)
        return True

    async def end(self, ticket_id: str, staff: str, note: str = "", summary: str = "") -> Ticket:
        """Ends the session. `note` is internal (kept on the ticket for staff and supervisors); only
        `summary`, masked, is posted to the citizen."""
        ticket = await self.get(ticket_id)
        if not ticket or ticket.state != TicketState.ACTIVE or ticket.staff != staff:
            raise HandoffError("该会话不在进行中，或不由您接待。")
        await self._r.hset(keys.handoff_ticket(ticket_id), mapping={"note": note, "summary": summary})
        await self._finish(ticket_id, TicketState.ENDED, "ended", signal=False)  # the summary below wakes the socket
        await self._post(ticket_id, "system", citizen_summary(summary))
        return await self.get(ticket_id)

    async def hang_up(self, ticket_id: str, key: str) -> Optional[Ticket]:
        """The citizen leaves: a waiting ticket is cancelled, an active call ends and staff are told.
        Returns the ended ticket (its media must be closed), else None."""
        ticket = await self.get(ticket_id)
        if not ticket or not secrets.compare_digest(ticket.key, key):
            raise HandoffError("找不到这次排队，可能已经结束。")
        if ticket.state == TicketState.WAITING:
            await self._finish(ticket_id, TicketState.CANCELLED, "cancelled")
            return None
        if ticket.state != TicketState.ACTIVE:
            return None
        await self._finish(ticket_id, TicketState.ENDED, "citizen_hung_up", signal=False)
        await self._post(ticket_id, "system", CITIZEN_HUNG_UP)  # wakes the citizen's socket, tells staff
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
                    p.zrem(keys.handoff_active(), ticket_id)
                    p.hset(keys.handoff_ticket(ticket_id), "state", state.value)
                    await p.execute()
                    break
                except WatchError:
                    continue
        if signal:
            await self._signal(ticket_id)
        logger.info("handoff.ticket.%s ticket=%s", why, ticket_id)

    # --- recording consent, staff who never join, restarts ---
    async def record_consent(self, ticket_id: str, agree: bool) -> Optional[bool]:
        """Keeps the citizen's first answer to the recording notice, with its time, on the ticket; a later
        answer changes nothing. Asked only once staff accepted. Returns the consent on record (None: not asked)."""
        ticket = await self.get(ticket_id)
        if ticket is None or (ticket.consent is None and ticket.state != TicketState.ACTIVE):
            return None
        if ticket.consent is not None:
            return ticket.consent
        if not await self._r.hsetnx(keys.handoff_ticket(ticket_id), "consent", "1" if agree else "0"):
            return (await self.get(ticket_id)).consent  # a second socket answered first
        await self._r.hset(keys.handoff_ticket(ticket_id), "consent_ms", self.clock.ms())
        await self._r.xadd(keys.handoff_messages(ticket_id), {"from": "system", "to": "staff", "event": "consent",
                                                              "consent": "agreed" if agree else "declined",
                                                              "text": CONSENT_NOTICE[agree]})
        await self._r.expire(keys.handoff_messages(ticket_id), keys.HANDOFF_TICKET_TTL_S)
        await self._signal(ticket_id)
        logger.info("handoff.consent.%s ticket=%s", "agreed" if agree else "declined", ticket_id)
        try:
            await self.audit.record("citizen", "video.consent", ticket_id, "agreed" if agree else "declined")
        except AuditError as exc:  # the answer is on the ticket already; the call must not hang on the audit
            logger.error("handoff.consent.audit_failed ticket=%s error=%s", ticket_id, type(exc).__name__)
        return agree

    async def mark_joined(self, ticket_id: str, role: str) -> None:
        """A peer joined the ticket's room: staff who joined since the accept are not swept as never joined."""
        await self._r.hset(keys.handoff_ticket(ticket_id), f"{role}_joined_ms", self.clock.ms())

    async def unjoined(self, timeout_s: float) -> list[Ticket]:
        """Active tickets whose staff accepted more than timeout_s ago and have not joined the call since."""
        cutoff = self.clock.ms() - int(timeout_s * 1000)
        found = []
        for ticket_id in await self._r.zrangebyscore(keys.handoff_active(), "-inf", cutoff):
            ticket = await self.get(ticket_id)
            if ticket is None or ticket.state != TicketState.ACTIVE:
                await self._r.zrem(keys.handoff_active(), ticket_id)  # expired or finished elsewhere
            elif ticket.accepted_ms <= cutoff and ticket.staff_joined_ms < ticket.accepted_ms:
                found.append(ticket)
        return found

    async def reconcile_active(self, media_lost: Callable[[Ticket], Awaitable[bool]], started_ms: int) -> dict[str, int]:
        """After a restart: each ticket accepted before `started_ms` whose media `media_lost` says is gone goes
        back to the front of its class, or ends if its citizen has left (no presence key). Scans every ticket,
        not the active index, so tickets from before the index existed are found too."""
        counts = {"requeued": 0, "ended": 0}
        async for key in self._r.scan_iter(match=keys.handoff_ticket_match(), count=500):
            ticket = await self.get(key.rsplit(":", 1)[1])
            if ticket is None or ticket.state != TicketState.ACTIVE or ticket.accepted_ms >= started_ms:
                continue
            if not await media_lost(ticket):
                await self._r.zadd(keys.handoff_active(), {ticket.id: ticket.accepted_ms})
                continue
            if await self._r.exists(keys.handoff_presence(ticket.id)):
                counts["requeued"] += int(await self.requeue_front(ticket.id, SERVICE_RESTARTED, room_id=ticket.room_id))
            else:
                await self._finish(ticket.id, TicketState.ENDED, "ended_after_restart")
                counts["ended"] += 1
        logger.info("handoff.reconciled requeued=%d ended=%d", counts["requeued"], counts["ended"])
        return counts

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


def citizen_summary(summary: str) -> str:
    """The closing message the citizen reads: staff's summary for them, masked; never the internal note.
    The staff console shows the same wording as its preview."""
    text = mask_text(summary.strip())[:SUMMARY_MAX_CHARS].rstrip("。.")
    return END_SUMMARY.format(summary=f"小结：{text}。" if text else "")
