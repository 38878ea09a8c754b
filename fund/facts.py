"""What the rules look at: a plain snapshot of one person's records on one day.

Built from the database by fund.persons, or directly in tests; the rules engine and the
loan calculator never touch the ORM.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional

from fund.retirement import RetirementGroup, retirement_date

FEN = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_before(day: dt.date, count: int) -> list[str]:
    """The `count` calendar months before `day`'s month, newest first."""
    index = day.year * 12 + day.month - 1
    return [f"{(i // 12):04d}-{(i % 12) + 1:02d}" for i in range(index - 1, index - 1 - count, -1)]


def cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


@dataclass(frozen=True)
class Home:
    city: str
    acquired_on: dt.date
    price: Decimal
    owner: str = "self"   # self / spouse


@dataclass(frozen=True)
class ActiveLoanFact:
    loan_type: str        # fund / commercial
    balance: Decimal
    monthly_payment: Decimal


@dataclass(frozen=True)
class PersonFacts:
    today: dt.date
    birth_date: dt.date
    retirement_group: RetirementGroup
    hukou_city: str
    city: str                      # city of the deposit account
    account_status: str            # normal / sealed / frozen
    status_date: dt.date
    balance: Decimal
    deposit_base: Decimal
    employer_ratio: Decimal
    personal_ratio: Decimal
    deposits: dict[str, Decimal] = field(default_factory=dict)   # YYYY-MM → amount paid
    homes: tuple[Home, ...] = ()                                  # self and spouse
    married: bool = False
    retired_on: Optional[dt.date] = None
    serious_illness: bool = False
    loans: tuple[ActiveLoanFact, ...] = ()
    # Other shared-data records on file (fund.shared_data SOURCES: purchase_contract, lease,
    # employment_ended, medical_bills) and the figures the amount rules read from them.
    shared_records: frozenset[str] = frozenset()
    lease_monthly_rent: Optional[Decimal] = None
    medical_self_paid: Optional[Decimal] = None

    @property
    def monthly_due(self) -> Decimal:
        return money(self.deposit_base * self.employer_ratio) + money(self.deposit_base * self.personal_ratio)

    @property
    def statutory_retirement(self) -> dt.date:
        return retirement_date(self.birth_date, self.retirement_group)

    def continuous_full_months(self) -> int:
        """Full monthly deposits without a gap, counting back from last month."""
        count = 0
        for month in months_before(self.today, 600):
            if self.deposits.get(month, Decimal(0)) < self.monthly_due:
                break
            count += 1
        return count
