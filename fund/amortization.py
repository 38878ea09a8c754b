"""Repayment arithmetic for 等额本息 (equal installment) and 等额本金 (equal principal).

Computed in Decimal at 40 significant digits and rounded to the fen only at the end, so
e.g. 1,000,000 yuan over 30 years at 2.6% gives exactly 4,003.40 a month.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, localcontext

FEN = Decimal("0.01")
PRECISION = Context(prec=40)


def _fen(value: Decimal) -> Decimal:
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def monthly_rate(annual_percent: Decimal) -> Decimal:
    with localcontext(PRECISION):
        return Decimal(annual_percent) / Decimal(1200)


@dataclass(frozen=True)
class EqualInstallment:
    monthly: Decimal
    total_interest: Decimal


@dataclass(frozen=True)
class EqualPrincipal:
    first_month: Decimal
    monthly_decrease: Decimal
    last_month: Decimal
    total_interest: Decimal


def equal_installment(principal: Decimal, annual_percent: Decimal, months: int) -> EqualInstallment:
    """M = P·r·(1+r)^n / ((1+r)^n − 1); total interest = M·n − P (unrounded M)."""
    if months <= 0 or principal <= 0:
        return EqualInstallment(Decimal("0.00"), Decimal("0.00"))
    with localcontext(PRECISION):
        p, r = Decimal(principal), monthly_rate(annual_percent)
        if r == 0:
            monthly = p / months
        else:
            growth = (1 + r) ** months
            monthly = p * r * growth / (growth - 1)
        return EqualInstallment(_fen(monthly), _fen(monthly * months - p))


def equal_principal(principal: Decimal, annual_percent: Decimal, months: int) -> EqualPrincipal:
    """Month k pays P/n + (P − (k−1)·P/n)·r: first P/n + P·r, falling by (P/n)·r."""
    if months <= 0 or principal <= 0:
        zero = Decimal("0.00")
        return EqualPrincipal(zero, zero, zero, zero)
    with localcontext(PRECISION):
        p, r = Decimal(principal), monthly_rate(annual_percent)
        part = p / months
        return EqualPrincipal(first_month=_fen(part + p * r), monthly_decrease=_fen(part * r),
                              last_month=_fen(part * (1 + r)),
                              total_interest=_fen(r * p * (months + 1) / 2))


def principal_for_payment(payment: Decimal, annual_percent: Decimal, months: int) -> Decimal:
    """Largest 等额本息 principal whose monthly payment is `payment` (rounded down to the yuan)."""
    if payment <= 0 or months <= 0:
        return Decimal(0)
    with localcontext(PRECISION):
        r = monthly_rate(annual_percent)
        if r == 0:
            value = Decimal(payment) * months
        else:
            growth = (1 + r) ** months
            value = Decimal(payment) * (growth - 1) / (r * growth)
        return value.quantize(Decimal(1), rounding=ROUND_DOWN)
