"""Offers, staff hours and video appointments: decides when a citizen books a slot instead of joining
the queue (outside staff hours, or when the wait is too long), and books it."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Awaitable, Callable, Iterator

from redis.asyncio import Redis
from redis.exceptions import WatchError

from gateway import keys
from gateway.handoff.clock import DeskClock
from gateway.handoff.errors import HandoffError
from gateway.privacy import mask_phone
from gateway.settings import Settings
from video import schedule

logger = logging.getLogger(__name__)
# A hotline caller's call-back number, kept with their appointment for staff (the console's 回电预约 list):
# a hash per slot (sender -> number), expiring a day after the slot like the booking itself, and an
# index of (slot|sender) by the slot's time, pruned a day after each slot.
CALLBACKS_INDEX = "anju:handoff:callbacks"


def callbacks_key(slot: str) -> str:
    return f"anju:handoff:callbacks:{slot}"


class AppointmentBook:
    """Needs the queue only for one number: `joining_eta_s()`, the wait of a citizen who joins it now."""

    def __init__(self, redis: Redis, settings: Settings, clock: DeskClock,
                 joining_eta_s: Callable[[], Awaitable[int]]):
        self._r = redis
        self._s = settings
        self._clock = clock
        self._joining_eta_s = joining_eta_s

    async def mark_offered(self, sender_id: str) -> bool:
        """True the first time only, so an elder-mode sender is offered video once a day."""
        return bool(await self._r.set(keys.handoff_offered(sender_id), "1", nx=True, ex=24 * 3600))

    def is_open(self) -> bool:
        return schedule.is_open(self._clock.now(), self._s.handoff_staff_hours, self._s.handoff_staff_days)

    def hours_text(self) -> str:
        """The configured staff hours in words, e.g. "周一至周五 9:00–17:00"."""
        return schedule.describe_hours(self._s.handoff_staff_hours, self._s.handoff_staff_days)

    async def should_book(self) -> bool:
        if not self.is_open():
            return True
        return await self._joining_eta_s() > self._s.handoff_max_wait_s

    async def free_slots(self, count: int = 3) -> list[dict[str, str]]:
        now, found = self._clock.now(), []
        for slot in self._slots(now):
            if await self._r.scard(keys.handoff_bookings(slot.isoformat())) < self._s.handoff_slot_capacity:
                found.append({"slot": slot.isoformat(), "label": schedule.slot_label(slot, now)})
            if len(found) == count:
                break
        return found

    async def book(self, sender_id: str, slot_iso: str) -> str:
        """Books a real, free slot for the sender; returns its label for the confirmation."""
        try:
            slot = dt.datetime.fromisoformat(slot_iso)
        except ValueError:
            raise HandoffError("预约时间格式不正确，请重新选择。")
        now = self._clock.now()
        valid = {s.isoformat() for _, s in zip(range(200), self._slots(now))}
        if slot.isoformat() not in valid:
            raise HandoffError("该时段不可预约，请选择列出的时段。")
        key = keys.handoff_bookings(slot.isoformat())
        ttl_s = int(slot.timestamp() - self._clock()) + 24 * 3600
        if not await self._book_if_free(key, sender_id, ttl_s):
            raise HandoffError("该时段已约满，请选择其他时段。")
        logger.info("handoff.appointment.booked sender=%s slot=%s", sender_id, slot.isoformat())
        return schedule.slot_label(slot, now)

    async def book_callback(self, sender_id: str, slot_iso: str, phone: str) -> str:
        """Books the slot (as `book`) and keeps the number staff call back then; returns the slot's label."""
        label = await self.book(sender_id, slot_iso)
        slot = dt.datetime.fromisoformat(slot_iso)
        ttl_s = int(slot.timestamp() - self._clock()) + 24 * 3600
        async with self._r.pipeline(transaction=True) as p:
            p.hset(callbacks_key(slot.isoformat()), sender_id, phone)
            p.expire(callbacks_key(slot.isoformat()), ttl_s)
            p.zadd(CALLBACKS_INDEX, {f"{slot.isoformat()}|{sender_id}": slot.timestamp()})
            p.expire(CALLBACKS_INDEX, 31 * 24 * 3600)  # old entries go at each read; this is a safety net
            await p.execute()
        logger.info("handoff.appointment.callback sender=%s slot=%s phone=%s", sender_id, slot.isoformat(),
                    mask_phone(phone))
        return label

    async def callbacks(self) -> list[dict[str, str]]:
        """Call-backs booked from now on (and the last hour's), soonest first, for staff: slot, label, number."""
        now = self._clock()
        await self._r.zremrangebyscore(CALLBACKS_INDEX, "-inf", now - 24 * 3600)
        found = []
        for member in await self._r.zrangebyscore(CALLBACKS_INDEX, now - 3600, "+inf"):
            slot_iso, sender_id = member.split("|", 1)
            phone = await self._r.hget(callbacks_key(slot_iso), sender_id)
            if phone:
                slot = dt.datetime.fromisoformat(slot_iso)
                found.append({"slot": slot_iso, "label": schedule.slot_label(slot, self._clock.now()), "phone": phone,
                              "channel": sender_id.split("-")[0]})
        return found

    async def _book_if_free(self, key: str, sender_id: str, ttl_s: int) -> bool:
        """Checks capacity and books in one WATCH/MULTI transaction: two citizens cannot both take
        the last place (the loser's transaction fails and it looks again)."""
        async with self._r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(key)
                    if not await p.sismember(key, sender_id) and await p.scard(key) >= self._s.handoff_slot_capacity:
                        await p.unwatch()
                        return False
                    p.multi()
                    p.sadd(key, sender_id)
                    p.expire(key, ttl_s)
                    await p.execute()
                    return True
                except WatchError:
                    continue

    def _slots(self, now: dt.datetime) -> Iterator[dt.datetime]:
        s = self._s
        return schedule.slots(now, s.handoff_staff_hours, s.handoff_staff_days, s.handoff_slot_minutes)
