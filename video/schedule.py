"""Staff hours and video-appointment slots: pure functions of the clock and the settings values."""
from __future__ import annotations

import datetime as dt
from typing import Iterator


class ScheduleError(ValueError):
    pass


END_OF_DAY = dt.time.max


def parse_hours(hours: str) -> tuple[dt.time, dt.time]:
    """"09:00-17:00" -> (09:00, 17:00); "00:00-24:00" is the whole day (end = time.max). Says what
    was expected when the value is malformed."""
    try:
        start, end = (END_OF_DAY if p.strip() == "24:00" else dt.time.fromisoformat(p.strip())
                      for p in hours.split("-"))
    except ValueError as exc:
        raise ScheduleError(f"staff hours must look like 09:00-17:00, got {hours!r}") from exc
    if start >= end:
        raise ScheduleError(f"staff hours must end after they start, got {hours!r}")
    return start, end


def is_open(now: dt.datetime, hours: str, days: list[int]) -> bool:
    """True while staff are on duty: an ISO weekday in `days` and the local time inside `hours`."""
    start, end = parse_hours(hours)
    return now.isoweekday() in days and start <= now.time() and (now.time() < end or end == END_OF_DAY)


def slots(now: dt.datetime, hours: str, days: list[int], slot_minutes: int,
          lead_minutes: int = 30, horizon_days: int = 14) -> Iterator[dt.datetime]:
    """Appointment start times from `lead_minutes` after now, in staff hours, in order."""
    start, end = parse_hours(hours)
    earliest = now + dt.timedelta(minutes=lead_minutes)
    step = dt.timedelta(minutes=slot_minutes)
    for offset in range(horizon_days + 1):
        day = (now + dt.timedelta(days=offset)).date()
        if day.isoweekday() not in days:
            continue
        t = dt.datetime.combine(day, start, tzinfo=now.tzinfo)
        close = dt.datetime.combine(day, end, tzinfo=now.tzinfo)
        while t + step <= close:
            if t >= earliest:
                yield t
            t += step


WEEKDAYS = "一二三四五六日"


def describe_hours(hours: str, days: list[int]) -> str:
    """The staff hours as a citizen reads them: "周一至周五 9:00–17:00", "每天 8:30–20:00"."""
    start, end = parse_hours(hours)
    picked = sorted(set(d for d in days if 1 <= d <= 7))
    if picked == list(range(1, 8)):
        when = "每天"
    elif len(picked) > 2 and picked == list(range(picked[0], picked[-1] + 1)):
        when = f"周{WEEKDAYS[picked[0] - 1]}至周{WEEKDAYS[picked[-1] - 1]}"
    else:
        when = "、".join(f"周{WEEKDAYS[d - 1]}" for d in picked)
    until = "24:00" if end == END_OF_DAY else f"{end.hour}:{end.minute:02d}"
    return f"{when} {start.hour}:{start.minute:02d}–{until}"


def slot_label(slot: dt.datetime, now: dt.datetime) -> str:
    """Chinese label a citizen reads on a button: 今天/明天/后天 or the date, with the time."""
    names = {0: "今天", 1: "明天", 2: "后天"}
    days = (slot.date() - now.date()).days
    weekday = WEEKDAYS[slot.weekday()]
    day = names.get(days, f"{slot.month}月{slot.day}日")
    return f"{day}（周{weekday}）{slot:%H:%M}"
