"""Statutory retirement age under the gradual raise in force since 2025-01-01.

全国人大常委会《关于实施渐进式延迟法定退休年龄的决定》(2024-09-13): men 60→63 and
women cadres 55→58 rise one month for every four months of birth from 1965-01 / 1970-01;
women workers 50→55 rise one month for every two months of birth from 1975-01. The
result is computed from the birth month, as the official table does, never a constant.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum


class RetirementGroup(str, Enum):
    male = "male"
    female_cadre = "female_cadre"      # 女职工，原法定退休年龄55周岁
    female_worker = "female_worker"    # 女职工，原法定退休年龄50周岁


@dataclass(frozen=True)
class Schedule:
    base_years: int
    first_birth_year: int   # births from January of this year are affected
    months_per_step: int    # birth months per month of delay
    max_delay_months: int


SCHEDULES = {
    RetirementGroup.male: Schedule(60, 1965, 4, 36),
    RetirementGroup.female_cadre: Schedule(55, 1970, 4, 36),
    RetirementGroup.female_worker: Schedule(50, 1975, 2, 60),
}


def group_for(gender: str, occupation: str) -> RetirementGroup:
    """gender 'M'/'F'; occupation 'worker' or 'cadre' (only matters for women)."""
    if gender == "M":
        return RetirementGroup.male
    return RetirementGroup.female_worker if occupation == "worker" else RetirementGroup.female_cadre


def delay_months(born: dt.date, group: RetirementGroup) -> int:
    schedule = SCHEDULES[group]
    index = (born.year - schedule.first_birth_year) * 12 + born.month - 1
    if index < 0:
        return 0
    return min(schedule.max_delay_months, index // schedule.months_per_step + 1)


def retirement_age_months(born: dt.date, group: RetirementGroup) -> int:
    """Statutory retirement age in months (e.g. 60 years 3 months → 723)."""
    return SCHEDULES[group].base_years * 12 + delay_months(born, group)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month → 28/29 Feb)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_day))


def retirement_date(born: dt.date, group: RetirementGroup) -> dt.date:
    """The day the person reaches statutory retirement age."""
    return add_months(born, retirement_age_months(born, group))


def describe_age(months: int) -> str:
    """723 → '60周岁3个月'."""
    years, rest = divmod(months, 12)
    return f"{years}周岁" + (f"{rest}个月" if rest else "")
