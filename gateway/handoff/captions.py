"""Captions of a video session in redis: the on/off state both pages show, each caption line as it
reaches the other side, and the session's caption transcript (who, when, text, masked).

Everything goes through the ticket's message stream (`anju:handoff:messages:<ticket>`) both pages
already follow: {"from": "system", "event": "captions", "available", "on"} when the state changes,
{"from": "citizen"|"staff", "event": "caption", "text"} for each line. The citizen's socket turns
them into {type: "captions"} and {type: "caption"} frames (gateway.channels.video); the console reads
them from its message poll. ID numbers and phone numbers are masked before anything is stored.
"""
from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from gateway import keys
from gateway.privacy import mask_text

TRANSCRIPT_MAX_LINES = 2000  # ~ a two-hour call of continuous speech


def captions_key(ticket_id: str) -> str:
    """List of the session's caption lines, JSON {from, at_ms, text}, masked; kept as long as the ticket."""
    return f"anju:handoff:captions:{ticket_id}"


class CaptionBook:
    def __init__(self, redis: Redis, now_ms):
        self._r = redis
        self._now_ms = now_ms

    async def post_state(self, ticket_id: str, available: bool, on: bool, by: str = "") -> None:
        text = "" if not by else f"{'市民' if by == 'citizen' else '工作人员'}{'打开' if on else '关闭'}了字幕"
        await self._post(ticket_id, {"from": "system", "event": "captions", "available": "1" if available else "0",
                                     "on": "1" if on else "0", "by": by, "text": text})

    async def post_caption(self, ticket_id: str, role: str, text: str) -> dict[str, Any]:
        line = {"from": role, "at_ms": self._now_ms(), "text": mask_text(text.strip())}
        key = captions_key(ticket_id)
        async with self._r.pipeline(transaction=True) as p:
            p.rpush(key, json.dumps(line, ensure_ascii=False))
            p.ltrim(key, -TRANSCRIPT_MAX_LINES, -1)
            p.expire(key, keys.HANDOFF_TICKET_TTL_S)
            await p.execute()
        await self._post(ticket_id, {"from": role, "event": "caption", "text": line["text"]})
        return line

    async def transcript(self, ticket_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self._r.lrange(captions_key(ticket_id), 0, -1)]

    async def _post(self, ticket_id: str, fields: dict[str, str]) -> None:
        await self._r.xadd(keys.handoff_messages(ticket_id), fields)
        await self._r.expire(keys.handoff_messages(ticket_id), keys.HANDOFF_TICKET_TTL_S)
