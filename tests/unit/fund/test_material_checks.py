"""The cross-checks on OCR text (fund.material_checks), without OCR: parsing of dates and amounts as
documents print them, the ID number rule, lease coverage and invoice sums."""
import datetime as dt
from decimal import Decimal

import pytest

from fund.id_numbers import make_id_number
from fund.material_checks import Claim, ReadLine, amounts, check, dates, months_back, normalize

ME = make_id_number("320402", dt.date(1994, 3, 12), 45)
OTHER = make_id_number("340503", dt.date(1996, 7, 2), 80)
CLAIM = Claim(id_number=ME, name="韦娜伟", amount=Decimal("3600"), submitted_on=dt.date(2026, 11, 23))
LEASE = "房屋租赁合同或租赁备案证明"
INVOICE = "个人负担医疗费用发票"


def page(*texts, score=0.98):
    return [[ReadLine(normalize(t), score) for t in texts]]


@pytest.mark.parametrize("text, expected", [
    ("租赁期限：自2026年3月1日起至2027年2月28日止", [dt.date(2026, 3, 1), dt.date(2027, 2, 28)]),
    ("自２０２６－０３－０１起至2027.02.28止", [dt.date(2026, 3, 1), dt.date(2027, 2, 28)]),
    ("签订日期：2026/3/1；无效日期2026年2月30日", [dt.date(2026, 3, 1)]),
])
def test_dates_in_the_forms_documents_print_them(text, expected):
    assert dates(normalize(text)) == expected


@pytest.mark.parametrize("text, expected", [
    ("月租金：¥3,600.00", Decimal("3600.00")), ("月租金：３６００元", Decimal("3600")),
    ("月租金：人民币1,800.00元（大写：壹仟捌佰元整）", Decimal("1800.00")),
    ("合计（大写）叁仟陆佰零伍元伍角", Decimal("3605.5")), ("合计：￥17,629.70", Decimal("17629.70")),
])
def test_amounts_in_figures_and_in_capitals(text, expected):
    assert amounts(normalize(text))[0] == expected


def test_claimed_months_count_back_from_the_submission_month():
    assert months_back(dt.date(2026, 11, 23), 2) == (dt.date(2026, 10, 1), dt.date(2026, 11, 30))
    assert months_back(dt.date(2026, 2, 5), 3) == (dt.date(2025, 12, 1), dt.date(2026, 2, 28))


def lease_page(start="2026年5月1日", end="2027年4月30日", rent="¥1,800.00", extra=()):
    return page("房屋租赁合同", "出租方（甲方）：顾建国", *extra, "承租方（乙方）：韦娜伟", f"乙方身份证号：{ME}",
                f"租赁期限：自{start}起至{end}止", f"月租金：{rent}，按月支付", "押金：一个月租金")


def test_a_lease_covering_the_claimed_months_passes_and_one_that_does_not_goes_to_a_person():
    verdict = check(LEASE, lease_page(), CLAIM)
    assert verdict.status == "accepted" and verdict.fields["months_claimed"] == "2", verdict.notes
    assert verdict.fields["id_number"] == ME[:3] + "*" * 11 + ME[-4:]
    late = check(LEASE, lease_page(start="2026年11月1日", end="2027年10月31日"), CLAIM)   # October not covered
    assert late.status == "needs_review" and "未覆盖申请的2个月" in late.notes[0]
    no_rent = check(LEASE, lease_page(rent="按季度支付"), CLAIM)
    assert no_rent.status == "needs_review" and "未能识别月租金" in no_rent.notes


def test_another_persons_id_number_refuses_unless_it_is_the_landlords_beside_the_applicants():
    refused = check(INVOICE, page("电子发票", f"购买方身份证号：{OTHER}", "合计：¥4,000.00"), CLAIM)
    assert refused.status == "refused" and refused.code == "id_number_mismatch"
    landlord = check(LEASE, lease_page(extra=(f"甲方身份证号：{OTHER}",)), CLAIM)
    assert landlord.status == "accepted", landlord.notes
    stray = check(LEASE, lease_page(extra=(f"见证人身份证号：{OTHER}",)), CLAIM)
    assert stray.status == "needs_review" and "其他人的身份证号" in stray.notes[0]
    misread = check("解除或终止劳动关系证明", page(f"兹证明韦娜伟（身份证号：{ME[:-1]}{'0' if ME[-1] != '0' else '1'}）",
                                         "劳动合同已解除"), CLAIM)
    assert misread.status == "needs_review" and "识别不完整" in misread.notes[0]


def test_invoice_lines_must_add_up_to_the_total_and_the_total_reach_the_amount():
    lines = ("电子发票（普通发票）", "发票号码：27005283", "开票日期：2026-10-12", "购买方名称：韦娜伟",
             "住院费", "2,400.50", "药品费", "1,300.00")
    assert check(INVOICE, page(*lines, "价税合计：¥3,700.50"), CLAIM).status == "accepted"
    wrong = check(INVOICE, page(*lines, "合计：¥3,800.50"), CLAIM)
    assert wrong.status == "needs_review" and "不符" in wrong.notes[0]
    small = check(INVOICE, page("购买方名称：韦娜伟", "检查费", "300.00", "合计：¥300.00"), CLAIM)
    assert small.status == "needs_review" and "低于申请提取金额" in small.notes[0]


def test_unclear_or_empty_readings_go_to_a_person():
    assert check(LEASE, [[]], CLAIM).notes == ["未能识别出文字，可能是照片模糊、过暗或拍错了材料"]
    blurry = check(LEASE, lease_page()[0:0] + [[ReadLine(line.text, 0.6) for line in lease_page()[0]]], CLAIM)
    assert blurry.status == "needs_review" and any("清晰" in note for note in blurry.notes)
    nameless = check("退休证或退休审批表", page("退休证明", "兹证明该同志已于2025年退休"), CLAIM)
    assert nameless.status == "needs_review" and "姓名或身份证号" in nameless.notes[0]
