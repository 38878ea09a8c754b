"""The desk's time: staff hours, appointment slots and the daily figures all count in the desk's timezone,
so the desk, its appointment book and its figures share one clock (a fake one in tests)."""
from __future__ import annotations

import datetime as dt
import time
from typing import Callable
from zoneinfo import ZoneInfo


class DeskClock:
    def __init__(self, timezone: str, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._tz = ZoneInfo(timezone)

    def __call__(self) -> float:
        """Seconds since the epoch."""
        return self._clock()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), self._tz)

    def ms(self) -> int:
        return int(self._clock() * 1000)

    def day(self) -> str:
        """Today's date in the desk's timezone, ISO format: the id of the day's figures."""
        return self.now().date().isoformat()
