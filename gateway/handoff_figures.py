"""The handoff desk's audit entries and today's figures for the supervisor page."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import httpx
from redis.asyncio import Redis

from gateway import keys
from gateway.privacy import mask_text
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.handoff import Ticket

logger = logging.getLogger("gateway.handoff")


class DeskFigures:
    """Mixed into HandoffDesk, which provides the redis client, settings, clock and `_day()`."""

    _r: Redis
    _s: Settings
    _clock: Callable[[], float]

    async def audit_recording(self, ticket: "Ticket", sha256: str, size_bytes: int, file_name: str) -> str:
        """Puts the recording's hash into the core's audit hash chain; if the core cannot be
        reached, into the gateway's redis stream, so the hash is never lost."""
        record = {"actor": ticket.staff or "system", "action": "video.recording", "subject": ticket.id,
                  "outcome": f"sha256={sha256} bytes={size_bytes} file={file_name}"}
        try:
            async with httpx.AsyncClient(timeout=self._s.health_timeout_s) as client:
                resp = await client.post(f"{self._s.core_url}/audit/records", json=record, headers={
                    "Authorization": f"Bearer {self._s.core_api_token.get_secret_value()}"})
                resp.raise_for_status()
                return f"core:{resp.json()['seq']}"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            logger.warning("handoff.audit.core_unavailable ticket=%s error=%s", ticket.id, type(exc).__name__)
        return await self._r.xadd(keys.audit_video(), {**record, "at_ms": str(self._ms())})

    async def record_turn(self, sender_id: str, text: str, unanswered: bool) -> None:
        day = self._day()
        async with self._r.pipeline(transaction=False) as p:
            p.sadd(keys.stats_senders(day), sender_id)
            p.expire(keys.stats_senders(day), keys.STATS_TTL_S)
            if unanswered:
                p.zincrby(keys.stats_unanswered(day), 1, mask_text(text)[:60])
                p.expire(keys.stats_unanswered(day), keys.STATS_TTL_S)
            await p.execute()

    async def today(self) -> dict[str, Any]:
        day = self._day()
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
