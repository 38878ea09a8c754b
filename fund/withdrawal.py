"""Withdrawal pre-check: which kinds a person may withdraw for now, why (or why not),
how much at most, and which materials are fetched from shared data (免提交).

The conditions and parameters come from the city's rules (fund.rulebook); this module
only knows how to evaluate each kind of condition. Every condition is evaluated, so the
citizen hears every reason at once, not one at a time.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Optional

from fund import rulebook as rb
from fund.facts import PersonFacts, cn_date, months_before
from fund.retirement import add_months, describe_age, retirement_age_months

Check = Callable[[object, PersonFacts], tuple[bool, str]]
_CHECKS: dict[type, Check] = {}


def _check(model: type) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        _CHECKS[model] = fn
        return fn
    return register


@dataclass(frozen=True)
class WithdrawalResult:
    kind: str
    kind_name: str
    eligible: bool
    reasons: list[str]
    max_amount: Optional[Decimal]
    auto_materials: list[str]
    upload_materials: list[str]
    verified: bool
    effective_date: dt.date
    source: str


@_check(rb.AccountNotFrozen)
def _not_frozen(_c: rb.AccountNotFrozen, f: PersonFacts) -> tuple[bool, str]:
    if f.account_status == "frozen":
        return False, f"您的公积金账户自{cn_date(f.status_date)}起处于冻结状态，冻结期间不能办理任何提取，请联系公积金中心了解解冻条件。"
    return True, "账户未被冻结。"


@_check(rb.BalancePositive)
def _balance_positive(_c: rb.BalancePositive, f: PersonFacts) -> tuple[bool, str]:
    if f.balance <= 0:
        return False, "账户余额为0，暂无可提取的金额。"
    return True, f"账户余额{f.balance:,.2f}元。"


@_check(rb.ContinuousDeposits)
def _continuous(c: rb.ContinuousDeposits, f: PersonFacts) -> tuple[bool, str]:
    have = f.continuous_full_months()
    if have >= c.months:
        return True, f"已连续足额缴存满{c.months}个月。"
    missing = [m for m in months_before(f.today, c.months) if f.deposits.get(m, Decimal(0)) < f.monthly_due]
    return False, (f"需要连续足额缴存满{c.months}个月，目前连续足额缴存{have}个月"
                   f"（{'、'.join(sorted(missing))}未足额缴存）。")


def _homes_in_city(f: PersonFacts, include_spouse: bool) -> list:
    return [h for h in f.homes if h.city == f.city and (include_spouse or h.owner == "self")]


@_check(rb.NoHomeInCity)
def _no_home(c: rb.NoHomeInCity, f: PersonFacts) -> tuple[bool, str]:
    who = "本人及配偶" if c.include_spouse and f.married else "本人"
    homes = _homes_in_city(f, c.include_spouse)
    if homes:
        owners = "配偶" if all(h.owner == "spouse" for h in homes) else "您"
        return False, f"不动产登记信息显示{owners}在{f.city}有自有住房，租房提取要求{who}在缴存城市无自有住房。"
    return True, f"{who}在{f.city}无自有住房（不动产登记共享数据）。"


@_check(rb.OwnsHomeInCity)
def _owns_home(c: rb.OwnsHomeInCity, f: PersonFacts) -> tuple[bool, str]:
    if _homes_in_city(f, c.include_spouse):
        return True, f"在{f.city}有自有住房（不动产登记共享数据）。"
    return False, f"未查询到您{'或配偶' if c.include_spouse and f.married else ''}在{f.city}的自有住房登记信息。"


def _newest_home(f: PersonFacts):
    own = [h for h in f.homes if h.owner == "self"]
    return max(own, key=lambda h: h.acquired_on) if own else None


@_check(rb.RecentPurchase)
def _recent_purchase(c: rb.RecentPurchase, f: PersonFacts) -> tuple[bool, str]:
    home = _newest_home(f)
    if home is None:
        return False, "未查询到您的购房登记信息（不动产登记共享数据）。"
    deadline = add_months(home.acquired_on, c.within_months)
    if f.today > deadline:
        return False, (f"最近一次购房登记于{cn_date(home.acquired_on)}，购房提取需在购房后{c.within_months}个月内申请"
                       f"（已于{cn_date(deadline)}截止）。")
    return True, f"{cn_date(home.acquired_on)}在{home.city}购房，仍在{c.within_months}个月的申请期内。"


@_check(rb.PurchaseCity)
def _purchase_city(c: rb.PurchaseCity, f: PersonFacts) -> tuple[bool, str]:
    home = _newest_home(f)
    if home is None:
        return True, ""  # the missing purchase is reported once, by recent_purchase
    allowed = {"deposit_city": {f.city}, "deposit_or_hukou_city": {f.city, f.hukou_city}}.get(c.allowed)
    if allowed is None or home.city in allowed:
        return True, f"所购住房位于{home.city}，符合房屋所在地要求。"
    places = "缴存地" if c.allowed == "deposit_city" else "缴存地或户籍地"
    return False, f"所购住房位于{home.city}，不在{places}（{'、'.join(sorted(allowed))}），不能办理购房提取。"


@_check(rb.HomesAtMost)
def _homes_at_most(c: rb.HomesAtMost, f: PersonFacts) -> tuple[bool, str]:
    count = sum(1 for h in f.homes if h.owner == "self")
    if count > c.count:
        return False, f"您名下有{count}套住房，购房提取仅支持第{c.count}套及以内的住房。"
    return True, f"名下住房{count}套，在允许范围内。"


@_check(rb.Retired)
def _retired(_c: rb.Retired, f: PersonFacts) -> tuple[bool, str]:
    age = describe_age(retirement_age_months(f.birth_date, f.retirement_group))
    if f.retired_on and f.retired_on <= f.today:
        return True, f"已于{cn_date(f.retired_on)}办理退休（人社共享数据）。"
    if f.today >= f.statutory_retirement:
        return True, f"已达到法定退休年龄（{age}，{cn_date(f.statutory_retirement)}）。"
    return False, f"尚未达到法定退休年龄：您的法定退休年龄为{age}，预计{cn_date(f.statutory_retirement)}达到。"


@_check(rb.AccountSealed)
def _sealed(c: rb.AccountSealed, f: PersonFacts) -> tuple[bool, str]:
    months = c.months
    local = c.local_hukou_months is not None and f.hukou_city == f.city
    if local:
        months = c.local_hukou_months
    if f.account_status != "sealed":
        return False, "账户目前为正常缴存状态；离职提取需与单位终止劳动关系、账户封存后办理。"
    ready = add_months(f.status_date, months)
    if f.today < ready:
        return False, (f"账户于{cn_date(f.status_date)}封存，需封存满{months}个月"
                       f"{'（本地户籍）' if local else ''}，{cn_date(ready)}后可以申请。")
    return True, f"账户已于{cn_date(f.status_date)}封存，已满{months}个月。"


@_check(rb.SeriousIllness)
def _illness(_c: rb.SeriousIllness, f: PersonFacts) -> tuple[bool, str]:
    if f.serious_illness:
        return True, "医保共享数据中有本人或直系亲属的重大疾病医疗记录。"
    return False, "未查询到本人或直系亲属的重大疾病医疗记录；如有，请携带诊断证明到服务大厅或转人工办理。"


@_check(rb.ActiveLoan)
def _active_loan(c: rb.ActiveLoan, f: PersonFacts) -> tuple[bool, str]:
    loans = [ln for ln in f.loans if ln.loan_type in c.loan_types]
    if loans:
        return True, f"有{len(loans)}笔未结清的住房贷款，余额合计{sum(ln.balance for ln in loans):,.2f}元。"
    return False, "未查询到未结清的住房贷款。"


@_check(rb.ManualReview)
def _manual(c: rb.ManualReview, _f: PersonFacts) -> tuple[bool, str]:
    return False, c.reason


def _max_amount(amount: rb.Amount, f: PersonFacts) -> Optional[Decimal]:
    home = _newest_home(f)
    loan_balance = sum((ln.balance for ln in f.loans), Decimal(0))
    basis = {"balance": f.balance,
             "home_price": min(f.balance, home.price) if home else Decimal(0),
             "loan_balance": min(f.balance, loan_balance),
             "lease_rent": min(f.balance, f.lease_monthly_rent * 12) if f.lease_monthly_rent else None,
             "medical_bills": min(f.balance, f.medical_self_paid) if f.medical_self_paid else f.balance,
             "none": f.balance if amount.cap is not None else None}[amount.basis]
    if basis is None:
        return None
    return min(basis, amount.cap) if amount.cap is not None else basis


def shared_materials(rule: rb.KindRule, f: PersonFacts) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, shared-data source) of each material on file (免提交), and the names to upload."""
    present = {"identity": True, "home_ownership": True, "marriage": True, "deposits": True,
               "loan": bool(f.loans), "retirement": f.retired_on is not None,
               "illness": f.serious_illness, **{source: True for source in f.shared_records}}
    auto, upload = [], []
    for material in rule.materials:
        if material.shared and present.get(material.shared, False):
            auto.append((material.name, material.shared))
        else:
            upload.append(material.upload_name or material.name)
    return auto, upload


def _materials(rule: rb.KindRule, f: PersonFacts) -> tuple[list[str], list[str]]:
    auto, upload = shared_materials(rule, f)
    return [name for name, _ in auto], upload


def evaluate(rules: rb.CityRules, kind: str, facts: PersonFacts) -> WithdrawalResult:
    rule = rules.withdrawal.kinds[kind]
    passed, failed = [], []
    if facts.today < rule.effective_from:
        failed.append(f"{rule.name}自{cn_date(rule.effective_from)}起施行（修订后的《住房公积金管理条例》），目前尚不能办理。")
    for condition in [*rules.withdrawal.common_conditions, *rule.conditions]:
        ok, text = _CHECKS[type(condition)](condition, facts)
        if text:
            (passed if ok else failed).append(text)
    eligible = not failed
    reasons = list(passed if eligible else failed)
    if eligible and rule.amount.note:
        reasons.append(rule.amount.note)
    if not rule.verified:
        reasons.append(rb.UNVERIFIED_NOTE)
    auto, upload = _materials(rule, facts)
    return WithdrawalResult(kind=kind, kind_name=rule.name, eligible=eligible, reasons=reasons,
                            max_amount=_max_amount(rule.amount, facts) if eligible else None,
                            auto_materials=auto, upload_materials=upload, verified=rule.verified,
                            effective_date=rule.effective_from, source=rule.source)


def evaluate_all(rules: rb.CityRules, facts: PersonFacts, kind: str = "all") -> list[WithdrawalResult]:
    kinds = rb.KINDS if kind == "all" else (kind,)
    return [evaluate(rules, k, facts) for k in kinds]
