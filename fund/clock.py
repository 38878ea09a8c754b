"""Time for the core: naive UTC datetimes in the database, China's date for business rules.

The app keeps its clock in app.state.clock so tests can move time (lockouts, expiry).
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

Clock = Callable[[], dt.datetime]
CHINA_OFFSET = dt.timedelta(hours=8)


def system_clock() -> dt.datetime:
    """Now, as naive UTC (what SQLite and PostgreSQL `timestamp` columns store)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def china_date(now_utc: dt.datetime) -> dt.date:
    """The calendar date in China (UTC+8) at a naive-UTC instant."""
    return (now_utc + CHINA_OFFSET).date()


class ManualClock:
    """A clock that only moves when told to (tests, benchmarks)."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)
