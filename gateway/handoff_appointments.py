"""Offers, staff hours and video appointments: the part of the handoff desk that decides when a
citizen books a slot instead of joining the queue (outside staff hours, or when the wait is too long)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from redis.asyncio import Redis

from gateway import keys
from gateway.settings import Settings
from video import schedule

logger = logging.getLogger("gateway.handoff")


class HandoffError(Exception):
    """A handoff request that cannot be honoured; `message` is shown to the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AppointmentBook:
    """Mixed into HandoffDesk, which provides the redis client, settings, clock and queue."""

    _r: Redis
    _s: Settings
    _clock: Callable[[], float]

    async def mark_offered(self, sender_id: str) -> bool:
        """True the first time only, so an elder-mode sender is offered video once a day."""
        return bool(await self._r.set(keys.handoff_offered(sender_id), "1", nx=True, ex=24 * 3600))

    def is_open(self) -> bool:
        return schedule.is_open(self.now(), self._s.handoff_staff_hours, self._s.handoff_staff_days)

    async def should_book(self) -> bool:
        if not self.is_open():
            return True
        queued = await self._r.zcard(keys.handoff_queue())
        return await self.eta_s(queued + 1) > self._s.handoff_max_wait_s

    async def free_slots(self, count: int = 3) -> list[dict[str, str]]:
        now, found = self.now(), []
        for slot in schedule.slots(now, self._s.handoff_staff_hours, self._s.handoff_staff_days,
                                   self._s.handoff_slot_minutes):
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
        now = self.now()
        valid = {s.isoformat() for _, s in zip(range(200), schedule.slots(
            now, self._s.handoff_staff_hours, self._s.handoff_staff_days, self._s.handoff_slot_minutes))}
        if slot.isoformat() not in valid:
            raise HandoffError("该时段不可预约，请选择列出的时段。")
        key = keys.handoff_bookings(slot.isoformat())
        if await self._r.scard(key) >= self._s.handoff_slot_capacity and not await self._r.sismember(key, sender_id):
            raise HandoffError("该时段已约满，请选择其他时段。")
        await self._r.sadd(key, sender_id)
        await self._r.expire(key, int(slot.timestamp() - self._clock()) + 24 * 3600)
        logger.info("handoff.appointment.booked sender=%s slot=%s", sender_id, slot.isoformat())
        return schedule.slot_label(slot, now)
