"""The handoff's audit entries and daily figures for the supervisor page. The figures own the per-day
stats keys: the desk counts handoffs and accepted tickets through `count_*`, inside its own transactions."""
from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway import keys
from gateway.audit_client import AuditClient
from gateway.handoff.clock import DeskClock
from gateway.handoff.tickets import Ticket
from gateway.privacy import mask_text

logger = logging.getLogger(__name__)


class DeskFigures:
    def __init__(self, redis: Redis, clock: DeskClock, audit: AuditClient):
        self._r = redis
        self._clock = clock
        self._audit = audit

    async def audit_recording(self, ticket: Ticket, sha256: str, size_bytes: int, file_name: str) -> str:
        """Puts the recording's hash into the core's audit hash chain; while the core cannot be
        reached the audit client parks it in redis and merges it into the chain later."""
        return await self._audit.record(ticket.staff or "system", "video.recording", ticket.id,
                                        f"sha256={sha256} bytes={size_bytes} file={file_name}")

    def count_handoff(self, p: Pipeline) -> None:
        """Adds today's handoff count to the caller's transaction."""
        p.hincrby(keys.stats_day(self._clock.day()), "handoffs", 1)
        p.expire(keys.stats_day(self._clock.day()), keys.STATS_TTL_S)

    def count_accepted(self, p: Pipeline, waited_ms: int) -> None:
        """Adds an accepted ticket and its wait to the caller's transaction (a ticket's first wait only)."""
        p.hincrby(keys.stats_day(self._clock.day()), "accepted", 1)
        p.hincrby(keys.stats_day(self._clock.day()), "wait_ms_total", waited_ms)

    async def record_turn(self, sender_id: str, text: str, unanswered: bool) -> None:
        day = self._clock.day()
        async with self._r.pipeline(transaction=False) as p:
            p.sadd(keys.stats_senders(day), sender_id)
            p.expire(keys.stats_senders(day), keys.STATS_TTL_S)
            if unanswered:
                p.zincrby(keys.stats_unanswered(day), 1, mask_text(text)[:60])
                p.expire(keys.stats_unanswered(day), keys.STATS_TTL_S)
            await p.execute()

    async def today(self) -> dict[str, Any]:
        day = self._clock.day()
        counters = await self._r.hgetall(keys.stats_day(day))
        chats = await self._r.scard(keys.stats_senders(day))
        handoffs, accepted = int(counters.get("handoffs", 0)), int(counters.get("accepted", 0))
        wait_total = int(counters.get("wait_ms_total", 0))
        top = await self._r.zrevrange(keys.stats_unanswered(day), 0, 9, withscores=True)
        return {"day": day, "chats": chats, "handoffs": handoffs, "accepted": accepted,
                "average_wait_s": round(wait_total / accepted / 1000, 1) if accepted else None,
                "containment_rate": round(1 - min(handoffs, chats) / chats, 3) if chats else None,
                "waiting_now": await self._r.zcard(keys.handoff_queue()),
                "top_unanswered": [{"text": t, "count": int(c)} for t, c in top]}
