"""The handoff's audit entries and daily figures for the supervisor page. The figures own the per-day
stats keys: the desk counts handoffs and accepted tickets through `count_*`, inside its own transactions."""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway import keys
from gateway.audit_client import AuditClient
from gateway.handoff.clock import DeskClock
from gateway.handoff.tickets import Ticket
from gateway.privacy import mask_text

logger = logging.getLogger(__name__)
MAX_PERIOD_DAYS = 31  # the daily keys live keys.STATS_TTL_S (40 days)


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

    async def record_turn(self, sender_id: str, text: str, unanswered: bool, clarified: bool = False) -> None:
        """One bot turn: who chatted, and (masked) what the bot could not answer or had to ask about."""
        day = self._clock.day()
        async with self._r.pipeline(transaction=False) as p:
            p.sadd(keys.stats_senders(day), sender_id)
            p.expire(keys.stats_senders(day), keys.STATS_TTL_S)
            p.hincrby(keys.stats_day(day), "turns", 1)
            p.expire(keys.stats_day(day), keys.STATS_TTL_S)
            for happened, field, key in ((unanswered, "unanswered", keys.stats_unanswered(day)),
                                         (clarified, "clarified", keys.stats_clarified(day))):
                if happened:
                    p.hincrby(keys.stats_day(day), field, 1)
                    p.zincrby(key, 1, mask_text(text)[:60])
                    p.expire(key, keys.STATS_TTL_S)
            await p.execute()

    async def period(self, days: int) -> dict[str, Any]:
        """The figures a centre manager asks for over the last `days` days (today included, at most
        MAX_PERIOD_DAYS): containment and handoff rates, average wait, and the questions the bot
        could not answer or had to ask about most often (masked) — what to add to the knowledge base."""
        days = max(1, min(days, MAX_PERIOD_DAYS))
        today = dt.date.fromisoformat(self._clock.day())
        day_ids = [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        totals: Counter[str] = Counter()
        per_day = []
        for day in day_ids:
            counters = {k: int(v) for k, v in (await self._r.hgetall(keys.stats_day(day))).items()}
            chats = await self._r.scard(keys.stats_senders(day))
            totals.update(counters)
            per_day.append({"day": day, "chats": chats, "turns": counters.get("turns", 0),
                            "handoffs": counters.get("handoffs", 0), "accepted": counters.get("accepted", 0)})
        chats = len(await self._r.sunion([keys.stats_senders(d) for d in day_ids]))
        handoffs, accepted = totals["handoffs"], totals["accepted"]
        return {"from": day_ids[0], "to": day_ids[-1], "days": days, "chats": chats, "turns": totals["turns"],
                "handoffs": handoffs, "accepted": accepted,
                "containment_rate": round(1 - min(handoffs, chats) / chats, 3) if chats else None,
                "handoff_rate": round(min(handoffs, chats) / chats, 3) if chats else None,
                "average_wait_s": round(totals["wait_ms_total"] / accepted / 1000, 1) if accepted else None,
                "unanswered": totals["unanswered"], "clarified": totals["clarified"],
                "top_unanswered": await self._top(keys.stats_unanswered, day_ids),
                "top_clarified": await self._top(keys.stats_clarified, day_ids),
                "per_day": per_day}

    async def _top(self, key_of, day_ids: list[str], n: int = 10) -> list[dict[str, Any]]:
        merged: Counter[str] = Counter()
        for day in day_ids:
            for text, count in await self._r.zrevrange(key_of(day), 0, 99, withscores=True):
                merged[text] += int(count)
        return [{"text": text, "count": count} for text, count in merged.most_common(n)]

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
