"""Withdrawal rules: each kind eligible and not, with every reason, amounts and materials."""
import datetime as dt
import shutil
from decimal import Decimal

import pytest

from fund.errors import PolicyError
from fund.facts import ActiveLoanFact, Home
from fund.rulebook import KINDS, Rulebook
from fund.settings import POLICY_DIR
from fund.withdrawal import evaluate, evaluate_all

UNVERIFIED = "以当地公积金中心最新公告为准"


def check(rules, kind, facts, city="常州"):
    return evaluate(rules.for_city(city), kind, facts)


def test_rent_eligible_for_renter_with_three_full_months(rules, make_facts):
    result = check(rules, "rent", make_facts())
    assert result.eligible
    assert any("连续足额缴存满3个月" in r for r in result.reasons)
    assert "房屋租赁合同或租赁备案证明" in result.upload_materials
    assert any("不动产登记" in m for m in result.auto_materials)
    assert result.max_amount is None                     # 常州's cap is unknown: no number invented
    assert any(UNVERIFIED in r for r in result.reasons) and not result.verified


def test_rent_lists_every_failing_reason(rules, make_facts):
    facts = make_facts(deposits={"2026-10": Decimal("1920.00")}, homes=(Home("常州", dt.date(2020, 1, 1), Decimal(1)),))
    result = check(rules, "rent", facts)
    assert not result.eligible
    assert any("目前连续足额缴存1个月" in r for r in result.reasons)
    assert any("有自有住房" in r for r in result.reasons)


def test_rent_gap_and_short_payment_break_continuity(rules, make_facts):
    gap = make_facts()
    del gap.deposits["2026-10"]
    assert not check(rules, "rent", gap).eligible
    short = make_facts()
    short.deposits["2026-09"] = Decimal("960.00")
    result = check(rules, "rent", short)
    assert not result.eligible and any("2026-09未足额缴存" in r for r in result.reasons)


def test_rent_refused_when_spouse_owns_a_home_in_the_city(rules, make_facts):
    facts = make_facts(married=True, homes=(Home("常州", dt.date(2021, 1, 1), Decimal(900000), "spouse"),))
    result = check(rules, "rent", facts)
    assert not result.eligible and any("配偶在常州有自有住房" in r for r in result.reasons)


def test_home_in_another_city_does_not_block_rent(rules, make_facts):
    assert check(rules, "rent", make_facts(homes=(Home("南京", dt.date(2021, 1, 1), Decimal(1)),))).eligible


def test_national_rent_rule_is_verified_but_cities_are_not(rules, make_facts):
    assert evaluate(rules.national, "rent", make_facts()).verified
    assert not check(rules, "rent", make_facts(), "马鞍山").verified


def test_purchase_eligible_within_window_capped_by_price(rules, make_facts):
    facts = make_facts(balance=Decimal("90000"), homes=(Home("常州", dt.date(2026, 7, 1), Decimal("60000")),))
    result = check(rules, "purchase", facts)
    assert result.eligible and result.max_amount == Decimal("60000")
    assert "购房发票或付款凭证" in result.upload_materials


def test_purchase_refused_after_window_elsewhere_or_third_home(rules, make_facts):
    old = check(rules, "purchase", make_facts(homes=(Home("常州", dt.date(2024, 1, 1), Decimal(9)),)))
    assert not old.eligible and any("12个月内申请" in r for r in old.reasons)
    away = check(rules, "purchase", make_facts(hukou_city="马鞍山", homes=(Home("南京", dt.date(2026, 9, 1), Decimal(9)),)))
    assert not away.eligible and any("不在缴存地或户籍地" in r for r in away.reasons)
    homes = tuple(Home("常州", dt.date(2026 - i, 9, 1), Decimal(9)) for i in range(3))
    third = check(rules, "purchase", make_facts(homes=homes))
    assert not third.eligible and any("3套住房" in r for r in third.reasons)
    none = check(rules, "purchase", make_facts())
    assert not none.eligible and none.reasons[0].startswith("未查询到您的购房登记信息")


def test_purchase_in_hukou_city_is_allowed(rules, make_facts):
    facts = make_facts(hukou_city="马鞍山", homes=(Home("马鞍山", dt.date(2026, 6, 1), Decimal(800000)),))
    assert check(rules, "purchase", facts).eligible


def test_retirement_by_record_fetches_proof_and_pays_full_balance(rules, make_facts):
    facts = make_facts(birth_date=dt.date(1963, 5, 6), retired_on=dt.date(2023, 11, 23), account_status="sealed")
    result = check(rules, "retirement", facts)
    assert result.eligible and result.max_amount == facts.balance
    assert "退休信息（人社共享数据）" in result.auto_materials and result.upload_materials == []
    assert result.verified and not any(UNVERIFIED in r for r in result.reasons)


def test_retirement_by_age_without_record_needs_certificate(rules, make_facts):
    result = check(rules, "retirement", make_facts(birth_date=dt.date(1965, 6, 3)))  # 60y2m → 2025-08-03
    assert result.eligible and "退休证或退休审批表" in result.upload_materials


def test_retirement_refused_before_raised_age(rules, make_facts):
    from fund.retirement import RetirementGroup
    facts = make_facts(birth_date=dt.date(1978, 3, 14), retirement_group=RetirementGroup.female_worker)
    result = check(rules, "retirement", facts)
    assert not result.eligible
    assert "51周岁8个月" in result.reasons[0] and "2029年11月14日" in result.reasons[0]


def test_leave_job_needs_six_sealed_months(rules, make_facts):
    ok = check(rules, "leave_job", make_facts(account_status="sealed", status_date=dt.date(2026, 3, 1)))
    assert ok.eligible and ok.max_amount == Decimal("50000.00")
    early = check(rules, "leave_job", make_facts(account_status="sealed", status_date=dt.date(2026, 8, 23)))
    assert not early.eligible and any("2027年2月23日后可以申请" in r for r in early.reasons)
    working = check(rules, "leave_job", make_facts())
    assert not working.eligible and any("正常缴存" in r for r in working.reasons)


def test_leave_job_longer_seal_for_local_hukou_when_a_city_sets_it(rules, make_facts):
    city = rules.for_city("常州")
    leave = city.withdrawal.kinds["leave_job"]
    sealed = leave.conditions[0].model_copy(update={"local_hukou_months": 24})
    strict = city.model_copy(update={"withdrawal": city.withdrawal.model_copy(update={
        "kinds": {**city.withdrawal.kinds, "leave_job": leave.model_copy(update={"conditions": [sealed]})}})})
    local = make_facts(account_status="sealed", status_date=dt.date(2026, 3, 1))
    assert not evaluate(strict, "leave_job", local).eligible
    assert evaluate(strict, "leave_job", make_facts(account_status="sealed", status_date=dt.date(2026, 3, 1),
                                                   hukou_city="芜湖")).eligible


@pytest.mark.parametrize("kind", ["renovation", "property_fee"])
def test_renovation_and_property_fee_from_2026_09_20_for_home_owners(rules, make_facts, kind):
    home = (Home("常州", dt.date(2020, 1, 1), Decimal(900000)),)
    assert check(rules, kind, make_facts(homes=home)).eligible
    before = check(rules, kind, make_facts(homes=home, today=dt.date(2026, 9, 19)))
    assert not before.eligible and any("2026年9月20日起施行" in r for r in before.reasons)
    assert not check(rules, kind, make_facts()).eligible


def test_illness_needs_a_shared_medical_record(rules, make_facts):
    ok = check(rules, "illness", make_facts(serious_illness=True))
    assert ok.eligible and any("医保共享数据" in m for m in ok.auto_materials)
    assert not check(rules, "illness", make_facts()).eligible


def test_loan_repayment_capped_by_loan_balance(rules, make_facts):
    loan = (ActiveLoanFact("commercial", Decimal("30000"), Decimal("1500")),)
    result = check(rules, "loan_repayment", make_facts(loans=loan))
    assert result.eligible and result.max_amount == Decimal("30000")
    assert not check(rules, "loan_repayment", make_facts()).eligible


def test_other_always_goes_to_manual_review(rules, make_facts):
    result = check(rules, "other", make_facts())
    assert not result.eligible and "人工审核" in result.reasons[0]


def test_frozen_account_blocks_every_kind_with_the_reason(rules, make_facts):
    facts = make_facts(account_status="frozen", status_date=dt.date(2026, 9, 1), serious_illness=True,
                       birth_date=dt.date(1950, 1, 1))
    results = evaluate_all(rules.for_city("常州"), facts)
    assert [r.kind for r in results] == list(KINDS)
    assert all(not r.eligible and any("冻结" in x for x in r.reasons) for r in results)


def test_zero_balance_blocks_withdrawal(rules, make_facts):
    result = check(rules, "rent", make_facts(balance=Decimal(0)))
    assert not result.eligible and any("余额为0" in r for r in result.reasons)


def test_cities_and_fallback(rules):
    assert rules.for_city("常州市").name == "常州"
    assert rules.for_city("马鞍山").loan.city_cap.first == Decimal(500000)
    assert rules.for_city("芜湖").is_national and rules.for_city(None).is_national


def test_adding_a_city_is_adding_a_file(tmp_path, make_facts):
    shutil.copy(POLICY_DIR / "rules" / "national.yml", tmp_path / "national.yml")
    (tmp_path / "示例市.yml").write_text(
        "name: 示例市\nwithdrawal:\n  kinds:\n    rent:\n      amount: {basis: none, cap: 1500}\n", encoding="utf-8")
    book = Rulebook.load(tmp_path)
    result = evaluate(book.for_city("示例市"), "rent", make_facts(city="示例市"))
    assert result.eligible and result.max_amount == Decimal(1500)


def test_bad_rules_file_is_refused_at_load(tmp_path):
    shutil.copy(POLICY_DIR / "rules" / "national.yml", tmp_path / "national.yml")
    (tmp_path / "坏市.yml").write_text("name: 坏市\nloan: {income_share: 7}\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        Rulebook.load(tmp_path)
