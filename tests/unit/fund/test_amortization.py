"""Repayment arithmetic against the published check value and an independent float model."""
from decimal import Decimal

import pytest

from fund import amortization as am


def float_installment(p, annual_percent, n):
    r = annual_percent / 1200
    return p * r * (1 + r) ** n / ((1 + r) ** n - 1)


def simulate_equal_principal(p, annual_percent, n):
    r, owed, payments = annual_percent / 1200, p, []
    for _ in range(n):
        payments.append(p / n + owed * r)
        owed -= p / n
    return payments


def test_published_check_one_million_thirty_years():
    result = am.equal_installment(Decimal(1_000_000), Decimal("2.6"), 360)
    assert result.monthly == Decimal("4003.40")


@pytest.mark.parametrize("p, rate, n", [(1_000_000, 2.6, 360), (500_000, 3.075, 240), (300_000, 2.1, 60),
                                        (123_456, 2.525, 37)])
def test_equal_installment_matches_float_model(p, rate, n):
    expected = float_installment(p, rate, n)
    result = am.equal_installment(Decimal(p), Decimal(str(rate)), n)
    assert abs(float(result.monthly) - expected) < 0.005
    assert abs(float(result.total_interest) - (expected * n - p)) < 0.01


@pytest.mark.parametrize("p, rate, n", [(1_000_000, 2.6, 360), (400_000, 3.075, 180)])
def test_equal_principal_matches_month_by_month_schedule(p, rate, n):
    schedule = simulate_equal_principal(p, rate, n)
    result = am.equal_principal(Decimal(p), Decimal(str(rate)), n)
    assert abs(float(result.first_month) - schedule[0]) < 0.005
    assert abs(float(result.last_month) - schedule[-1]) < 0.005
    assert abs(float(result.monthly_decrease) - (schedule[0] - schedule[1])) < 0.005
    assert abs(float(result.total_interest) - (sum(schedule) - p)) < 0.01


def test_equal_principal_first_month_of_the_check_loan():
    # 1,000,000/360 + 1,000,000 × 0.026/12 = 2,777.78 + 2,166.67
    assert am.equal_principal(Decimal(1_000_000), Decimal("2.6"), 360).first_month == Decimal("4944.44")


def test_principal_for_payment_inverts_the_installment():
    principal = am.principal_for_payment(Decimal("4000"), Decimal("2.6"), 360)
    assert am.equal_installment(principal, Decimal("2.6"), 360).monthly <= Decimal("4000.00")
    assert am.equal_installment(principal + 2, Decimal("2.6"), 360).monthly > Decimal("4000.00")


def test_zero_principal_or_term_gives_zero():
    assert am.equal_installment(Decimal(0), Decimal("2.6"), 360).monthly == 0
    assert am.equal_principal(Decimal(1000), Decimal("2.6"), 0).first_month == 0
