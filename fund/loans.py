"""Loan estimate: ceiling (lowest of city cap, balance × multiple, repayment capacity),
term (≤ the city's maximum and ending by statutory retirement + N years), rate by house
order and term, and the monthly payments for both repayment methods."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Literal, Optional

from fund import amortization as am
from fund.facts import PersonFacts, cn_date
from fund.rulebook import UNVERIFIED_NOTE, CityRules
from fund.retirement import add_months

HouseOrder = Literal["first", "second"]


@dataclass(frozen=True)
class LoanEstimate:
    city: str
    amount: Decimal
    ceiling: Decimal
    city_cap: Decimal
    balance_multiple: Optional[Decimal]
    income_rule: Optional[Decimal]
    max_years: int
    years: int
    rate: Decimal                      # percent a year
    equal_installment: am.EqualInstallment
    equal_principal: am.EqualPrincipal
    notes: list[str] = field(default_factory=list)
    verified: bool = False


def rate_for(rules: CityRules, day: dt.date, house_order: HouseOrder, years: int) -> Decimal:
    table = rules.loan.rates_on(day)
    pair = table.first if house_order == "first" else table.second
    return pair.short if years <= 5 else pair.long


def whole_years_between(start: dt.date, end: dt.date) -> int:
    years = end.year - start.year - ((end.month, end.day) < (start.month, start.day))
    return max(0, years)


def max_years_for(rules: CityRules, facts: PersonFacts) -> int:
    latest_end = add_months(facts.statutory_retirement, 12 * rules.loan.years_after_retirement)
    return min(rules.loan.max_years, whole_years_between(facts.today, latest_end))


def _person_notes(rules: CityRules, facts: PersonFacts, max_years: int) -> list[str]:
    notes = []
    if facts.account_status == "frozen":
        notes.append("您的公积金账户处于冻结状态，冻结期间不能申请公积金贷款。")
    elif facts.account_status == "sealed":
        notes.append("您的账户处于封存状态，需恢复正常缴存后才能申请公积金贷款。")
    have = facts.continuous_full_months()
    if have < rules.loan.min_deposit_months:
        notes.append(f"申请公积金贷款一般需连续足额缴存满{rules.loan.min_deposit_months}个月，您目前连续缴存{have}个月。")
    if any(ln.loan_type == "fund" for ln in facts.loans):
        notes.append("您有未结清的公积金贷款，一般需结清后才能再次申请。")
    latest_end = add_months(facts.statutory_retirement, 12 * rules.loan.years_after_retirement)
    if max_years < rules.loan.max_years:
        notes.append(f"贷款期限不超过法定退休年龄后{rules.loan.years_after_retirement}年"
                     f"（{cn_date(latest_end)}），您最长可贷{max_years}年。")
    if max_years == 0:
        notes.append("您的年龄已超过可贷款的期限，无法申请公积金贷款。")
    return notes


def estimate(rules: CityRules, today: dt.date, house_order: HouseOrder = "first",
             amount: Optional[Decimal] = None, years: Optional[int] = None,
             facts: Optional[PersonFacts] = None) -> LoanEstimate:
    loan = rules.loan
    city_cap = loan.city_cap.first if house_order == "first" else loan.city_cap.second
    notes: list[str] = []
    max_years = loan.max_years if facts is None else max_years_for(rules, facts)
    if facts is not None:
        notes += _person_notes(rules, facts, max_years)
    term = max_years if years is None else min(years, max_years)
    if years is not None and years > max_years:
        notes.append(f"申请的{years}年超过最长期限，已按{max_years}年计算。")
    rate = rate_for(rules, today, house_order, max(term, 1))

    by_balance = by_income = None
    ceiling = city_cap
    if facts is not None:
        by_balance = (facts.balance * loan.balance_multiple).quantize(Decimal(1), rounding=ROUND_DOWN)
        existing = sum((ln.monthly_payment for ln in facts.loans), Decimal(0))
        capacity = facts.deposit_base * loan.income_share - existing
        by_income = am.principal_for_payment(capacity, rate, term * 12)
        ceiling = max(Decimal(0), min(city_cap, by_balance, by_income))
        notes.append(f"可贷额度取以下三项中的最低值：城市最高额度{city_cap:,.0f}元；账户余额×{loan.balance_multiple}倍"
                     f"＝{by_balance:,.0f}元；月还款不超过月收入（按缴存基数{facts.deposit_base:,.2f}元计）的"
                     f"{loan.income_share * 100:.0f}%＝{by_income:,.0f}元。")
    if term == 0:
        ceiling = Decimal(0)
    if amount is None:
        principal = ceiling
    elif facts is None:  # a general calculation: the citizen's own figure, with a warning
        principal = amount
        if amount > ceiling:
            notes.append(f"{amount:,.0f}元超过{rules.name}公积金贷款最高额度{ceiling:,.0f}元，实际可贷额度以审批为准。")
    else:
        principal = min(amount, ceiling)
        if amount > ceiling:
            notes.append(f"申请金额{amount:,.0f}元超过您的可贷额度，已按{ceiling:,.0f}元计算。")
    table = loan.rates_on(today)
    verified = loan.verified and table.verified
    if not verified:
        notes.append(UNVERIFIED_NOTE)
    months = term * 12
    return LoanEstimate(city=rules.name, amount=principal, ceiling=ceiling, city_cap=city_cap,
                        balance_multiple=by_balance, income_rule=by_income, max_years=max_years,
                        years=term, rate=rate,
                        equal_installment=am.equal_installment(principal, rate, months),
                        equal_principal=am.equal_principal(principal, rate, months),
                        notes=notes, verified=verified)
