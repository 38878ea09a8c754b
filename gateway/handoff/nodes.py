"""Media nodes in redis: each node process announces itself with a heartbeat; the gateway sends every
peer of a room to the one node that hosts it (room affinity), choosing the least busy live node for
a new room. One aiortc process runs on one asyncio thread, so a machine's cores are used by running
several nodes; the gateway itself then carries no media.
"""
from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

from redis.asyncio import Redis

from gateway import keys

logger = logging.getLogger(__name__)


class NoMediaNode(Exception):
    """No live media node: the call cannot be set up now."""


@dataclass(frozen=True)
class MediaNode:
    node_id: str
    url: str
    rooms: int


class NodeDirectory:
    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time):
        self._r = redis
        self._clock = clock

    async def heartbeat(self, node_id: str, url: str, rooms: int) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.video_node(node_id), mapping={"url": url, "rooms": rooms})
            p.expire(keys.video_node(node_id), keys.VIDEO_NODE_TTL_S)
            p.zadd(keys.video_nodes(), {node_id: self._clock()})
            await p.execute()

    async def leave(self, node_id: str) -> None:
        """A node shutting down stops taking rooms at once rather than after its heartbeat expires."""
        await self._r.zrem(keys.video_nodes(), node_id)
        await self._r.delete(keys.video_node(node_id))

    async def live(self) -> list[MediaNode]:
        await self._r.zremrangebyscore(keys.video_nodes(), "-inf", self._clock() - keys.VIDEO_NODE_TTL_S)
        nodes = []
        for node_id in await self._r.zrange(keys.video_nodes(), 0, -1):
            h = await self._r.hgetall(keys.video_node(node_id))
            if h:
                nodes.append(MediaNode(node_id, h["url"], int(h.get("rooms", 0))))
        return nodes

    async def node_for(self, room_id: str) -> MediaNode:
        """The room's node if it is alive; otherwise the live node with the fewest rooms becomes its node."""
        nodes = {n.node_id: n for n in await self.live()}
        if not nodes:
            raise NoMediaNode("no media node has sent a heartbeat recently")
        current = await self._r.get(keys.video_room_node(room_id))
        if current in nodes:
            return nodes[current]
        fewest = min(n.rooms for n in nodes.values())
        choice = secrets.choice([n for n in nodes.values() if n.rooms == fewest])
        if current is None:
            won = await self._r.set(keys.video_room_node(room_id), choice.node_id, nx=True, ex=keys.HANDOFF_TICKET_TTL_S)
            if not won:  # another gateway placed the room a moment ago: follow it
                return await self.node_for(room_id)
        else:  # its node died: the room (and its media) starts again on a live one
            await self._r.set(keys.video_room_node(room_id), choice.node_id, ex=keys.HANDOFF_TICKET_TTL_S)
            logger.warning("video.room.moved room=%s from=%s to=%s", room_id, current, choice.node_id)
        # Count the room at once, so rooms placed before the node's next heartbeat spread out too.
        await self._r.hincrby(keys.video_node(choice.node_id), "rooms", 1)
        return choice

    async def hosting(self, room_id: str) -> Optional[MediaNode]:
        node_id = await self._r.get(keys.video_room_node(room_id))
        return next((n for n in await self.live() if n.node_id == node_id), None) if node_id else None

    async def placed_on(self, room_id: str) -> Optional[str]:
        """The id of the node the room was placed on, live or not; None if it was never placed."""
        return await self._r.get(keys.video_room_node(room_id))

    async def forget(self, room_id: str) -> None:
        await self._r.delete(keys.video_room_node(room_id))
