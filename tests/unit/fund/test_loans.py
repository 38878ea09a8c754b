"""Loan estimate: ceiling parts, term limited by retirement age, rates by house order and date."""
import datetime as dt
from decimal import Decimal

from fund import amortization as am
from fund import loans
from fund.facts import ActiveLoanFact
from fund.retirement import RetirementGroup

TODAY = dt.date(2026, 11, 23)



def test_rates_by_house_order_and_term_from_2025_05_08(rules):
    national = rules.national
    assert loans.rate_for(national, TODAY, "first", 5) == Decimal("2.10")
    assert loans.rate_for(national, TODAY, "first", 6) == Decimal("2.60")
    assert loans.rate_for(national, TODAY, "second", 5) == Decimal("2.525")
    assert loans.rate_for(national, TODAY, "second", 30) == Decimal("3.075")
    assert loans.rate_for(national, dt.date(2025, 5, 7), "first", 30) == Decimal("2.85")


def test_general_estimate_reproduces_the_check_value(rules):
    result = loans.estimate(rules.for_city("常州"), TODAY, "first", Decimal(1_000_000), 30)
    assert result.equal_installment.monthly == Decimal("4003.40")
    assert result.amount == Decimal(1_000_000)
    assert any("最高额度" in n for n in result.notes)          # above 常州's cap: warned, not changed
    assert result.balance_multiple is None and result.income_rule is None


def test_city_cap_binds_for_a_high_earner_with_a_large_balance(rules, make_facts):
    facts = make_facts(balance=Decimal("200000"), deposit_base=Decimal("30000"))
    result = loans.estimate(rules.for_city("马鞍山"), TODAY, "first", facts=facts)
    assert result.ceiling == result.city_cap == Decimal(500000)


def test_balance_multiple_binds_for_a_small_balance(rules, make_facts):
    facts = make_facts(balance=Decimal("10000.50"))
    result = loans.estimate(rules.for_city("常州"), TODAY, "first", facts=facts)
    assert result.ceiling == result.balance_multiple == Decimal(120006)   # 10,000.50 × 12, whole yuan


def test_income_rule_binds_and_counts_existing_payments(rules, make_facts):
    facts = make_facts(balance=Decimal("100000"), deposit_base=Decimal("4000"),
                       loans=(ActiveLoanFact("commercial", Decimal("300000"), Decimal("1000")),))
    result = loans.estimate(rules.for_city("常州"), TODAY, "first", facts=facts)
    r = 0.026 / 12
    expected = (4000 * 0.5 - 1000) * ((1 + r) ** 360 - 1) / (r * (1 + r) ** 360)
    assert result.ceiling == result.income_rule
    assert abs(float(result.income_rule) - expected) < 1


def test_term_ends_five_years_after_statutory_retirement(rules, make_facts):
    # man born 1971-05-20 retires at 61y8m (2033-01-20); +5 years = 2038-01-20 → 11 whole years from TODAY
    facts = make_facts(birth_date=dt.date(1971, 5, 20))
    result = loans.estimate(rules.for_city("常州"), TODAY, "first", years=30, facts=facts)
    assert result.max_years == 11 and result.years == 11
    assert result.rate == Decimal("2.60")
    assert any("最长可贷11年" in n for n in result.notes)


def test_term_for_a_young_person_is_thirty_years(rules, make_facts):
    assert loans.estimate(rules.national, TODAY, facts=make_facts()).max_years == 30


def test_retired_person_cannot_borrow(rules, make_facts):
    facts = make_facts(birth_date=dt.date(1950, 1, 1), retirement_group=RetirementGroup.female_worker)
    result = loans.estimate(rules.national, TODAY, facts=facts)
    assert result.max_years == 0 and result.ceiling == 0
    assert any("超过" in n for n in result.notes)


def test_person_notes_for_frozen_sealed_short_and_existing_loan(rules, make_facts):
    frozen = loans.estimate(rules.national, TODAY, facts=make_facts(account_status="frozen"))
    assert any("冻结" in n for n in frozen.notes)
    short = loans.estimate(rules.national, TODAY, facts=make_facts(deposits={}))
    assert any("连续足额缴存满6个月" in n for n in short.notes)
    with_loan = loans.estimate(rules.national, TODAY, facts=make_facts(
        loans=(ActiveLoanFact("fund", Decimal("100000"), Decimal("900")),)))
    assert any("未结清的公积金贷款" in n for n in with_loan.notes)


def test_second_home_uses_second_home_cap_and_rate(rules):
    result = loans.estimate(rules.for_city("常州"), TODAY, "second", Decimal(400000), 20)
    assert result.rate == Decimal("3.075") and result.city_cap == Decimal(500000)
    assert result.equal_installment == am.equal_installment(Decimal(400000), Decimal("3.075"), 240)


def test_unverified_parameters_say_so(rules):
    result = loans.estimate(rules.for_city("常州"), TODAY, "first", Decimal(100000), 10)
    assert not result.verified
    assert any("以当地公积金中心最新公告为准" in n for n in result.notes)
