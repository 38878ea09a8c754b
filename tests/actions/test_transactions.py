"""Balance, withdrawal pre-check, loan estimate and progress as the citizen reads them."""
import re
from pathlib import Path

import pytest

from actions.balance import ActionCheckBalance
from actions.loan import ActionEstimateLoan
from actions.progress import ActionCheckProgress
from actions.withdrawal import ActionCheckWithdrawal

from tests.actions.conftest import ROOT, make_tracker, run

VERIFIED = {"verified": True, "person_ref": "p-42", "pending_transaction": "check_balance"}
BALANCE = {
    "name_masked": "张*", "id_masked": "340***********1234", "account_status": "normal",
    "account_status_name": "正常缴存", "balance": 123456.7, "deposit_base": 8000,
    "employer_ratio": 0.12, "personal_ratio": 0.12, "monthly_deposit": 1920,
    "employer_masked": "马鞍山***有限公司", "city": "马鞍山",
    "deposits": [{"month": f"2026-{m:02d}", "amount": 1920, "employer_part": 960, "personal_part": 960}
                 for m in range(10, 0, -1)] + [{"month": "2025-12", "amount": 1234.56,
                                                  "employer_part": 617.28, "personal_part": 617.28},
                                                 {"month": "2025-11", "amount": 0, "employer_part": 0,
                                                  "personal_part": 0}],
}
EXPIRED = dict(status=401, code="verification_expired")


def tx_run(action, domain, slots=None, **kw):
    return run(action, make_tracker({**VERIFIED, **(slots or {})}, **kw), domain)


# ---- balance -------------------------------------------------------------------------

def test_balance_shows_formatted_amounts_and_twelve_months(core, domain):
    core.on("GET", "/persons/p-42/balance", BALANCE)
    reply = tx_run(ActionCheckBalance(), domain, intent="check_balance")
    assert "123,456.70 元" in reply.text and "340***********1234" in reply.text
    assert "12%" in reply.text and "1,920.00 元" in reply.text
    months = re.findall(r"^\d{4}-\d{2}：", reply.text, flags=re.M)
    assert len(months) == 12 and months[0] == "2026-10："
    assert "2025-12：1,234.56 元" in reply.text
    assert "封存" not in reply.text


def test_sealed_account_is_pointed_out(core, domain):
    core.on("GET", "/persons/p-42/balance", {**BALANCE, "account_status": "sealed",
                                             "account_status_name": "封存", "deposits": []})
    reply = tx_run(ActionCheckBalance(), domain)
    assert "封存状态" in reply.text and "没有缴存记录" in reply.text


def test_balance_without_verification_calls_nothing_and_resets(core, domain):
    reply = run(ActionCheckBalance(), make_tracker({"verified": False}), domain)
    assert core.calls == [] and reply.slots()["verified"] is False


def test_expired_verification_resets_and_keeps_the_pending_transaction(core, domain):
    core.refuse("GET", "/persons/p-42/balance", **EXPIRED)
    reply = tx_run(ActionCheckBalance(), domain)
    slots = reply.slots()
    assert slots["verified"] is False and slots["person_ref"] is None
    assert "pending_transaction" not in slots  # continued after verifying again
    assert "15分钟" in reply.text


@pytest.mark.parametrize("action, method, path", [
    (ActionCheckBalance(), "GET", "/persons/p-42/balance"),
    (ActionCheckWithdrawal(), "GET", "/persons/p-42/withdrawal-check"),
    (ActionCheckProgress(), "GET", "/persons/p-42/applications"),
    (ActionEstimateLoan(), "POST", "/loan/estimate"),
])
def test_core_down_gives_a_friendly_message(core, domain, action, method, path):
    core.down(method, path)
    reply = tx_run(action, domain)
    assert reply.texts and "暂时无法访问" in reply.text and "12329" in reply.text
    assert reply.slots().get("verified") is not False


# ---- withdrawal ------------------------------------------------------------------------

RENT_OK = {"kind": "rent", "kind_name": "租房提取", "eligible": True, "reasons": [],
           "max_amount": 18000, "auto_materials": ["缴存记录", "本市无房证明"],
           "upload_materials": ["租赁合同"], "verified": False, "effective_date": "2026-01-01",
           "source": "x"}
RETIRE_NO = {"kind": "retirement", "kind_name": "退休提取", "eligible": False,
             "reasons": ["未达到法定退休年龄"], "max_amount": None, "auto_materials": [],
             "upload_materials": [], "verified": True, "effective_date": "2019-03-24", "source": "x"}
PURCHASE_NO = {**RETIRE_NO, "kind": "purchase", "kind_name": "购房提取",
               "reasons": ["本人及配偶近一年无购房记录", "已有未结清的公积金贷款"]}


def test_all_kinds_list_what_applies_first_with_cap_and_materials(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": []})
    core.on("GET", "/persons/p-42/withdrawal-check",
            {"city": "马鞍山", "results": [RETIRE_NO, RENT_OK, PURCHASE_NO]})
    reply = tx_run(ActionCheckWithdrawal(), domain, intent="check_withdrawal", text="我能取多少")
    assert core.calls[0][2] == {"kind": "all"}
    assert "符合条件的提取类型有1项" in reply.text
    rent, retire = reply.text.index("租房提取"), reply.text.index("退休提取")
    assert rent < retire
    assert "18,000.00 元" in reply.text
    assert "免提交（系统自动获取）：缴存记录、本市无房证明" in reply.text
    assert "需要上传：租赁合同" in reply.text
    assert "未达到法定退休年龄" in reply.text
    assert "无购房记录；已有未结清" in reply.text
    assert "以当地公积金中心最新公告为准" in reply.text  # rent rule is unverified data
    assert reply.slots()["withdrawal_type"] is None


def test_named_kind_not_eligible_gives_reasons(core, domain):
    core.on("GET", "/persons/p-42/withdrawal-check", {"city": "常州", "results": [RETIRE_NO]})
    reply = tx_run(ActionCheckWithdrawal(), domain, intent="check_withdrawal",
                   entities=[{"entity": "withdrawal_type", "value": "retirement"}])
    assert core.calls[0][2] == {"kind": "retirement"}
    assert "退休提取：暂不符合" in reply.text and "未达到法定退休年龄" in reply.text
    assert "最新公告" not in reply.text


def test_kind_asked_before_verification_is_used_after_it(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": []})
    core.on("GET", "/persons/p-42/withdrawal-check", {"city": "常州", "results": [RENT_OK]})
    tx_run(ActionCheckWithdrawal(), domain, {"withdrawal_type": "rent"}, intent="inform_identity")
    assert core.calls[0][2] == {"kind": "rent"}


def test_nothing_eligible_says_so(core, domain):
    core.on("GET", "/persons/p-42/withdrawal-check", {"city": "常州", "results": [RETIRE_NO, PURCHASE_NO]})
    reply = tx_run(ActionCheckWithdrawal(), domain, intent="check_withdrawal")
    assert "暂不符合任何提取条件" in reply.text and "转人工" in reply.text


def test_withdrawal_expired_verification_resets(core, domain):
    core.refuse("GET", "/persons/p-42/withdrawal-check", **EXPIRED)
    reply = tx_run(ActionCheckWithdrawal(), domain, {"withdrawal_type": "rent"})
    assert reply.slots()["verified"] is False and "withdrawal_type" not in reply.slots()


# ---- loan ------------------------------------------------------------------------------

ESTIMATE = {"city": "马鞍山", "ceiling": 600000, "ceiling_parts": {}, "max_years": 30, "years": 30,
            "rate": 0.026, "equal_installment": {"monthly": 4003.4, "total_interest": 441224.0},
            "equal_principal": {"first_month": 4944.44, "monthly_decrease": 6.02, "last_month": 2783.8,
                                "total_interest": 391083.33},
            "notes": ["贷款期限不超过法定退休年龄后5年"], "verified": True}


def test_general_estimate_works_without_verification_and_offers_it(core, domain):
    core.on("POST", "/loan/estimate", ESTIMATE)
    reply = run(ActionEstimateLoan(), make_tracker({"verified": False}, intent="estimate_loan"), domain)
    assert core.calls[0][2] == {"house_order": "first"}
    assert "等额本息：每月还款 4,003.40 元" in reply.text
    assert "等额本金：首月还款 4,944.44 元" in reply.text
    assert "600,000.00 元" in reply.text and "验证身份" in reply.text


def test_entities_and_the_verified_person_go_to_the_core(core, domain):
    core.on("POST", "/loan/estimate", {**ESTIMATE, "ceiling": 500000})
    entities = [{"entity": "amount", "value": 800000}, {"entity": "years", "value": 25},
                {"entity": "house_order", "value": "second"}, {"entity": "city", "value": "常州"}]
    reply = tx_run(ActionEstimateLoan(), domain, intent="estimate_loan", entities=entities)
    assert core.calls[0][2] == {"person_ref": "p-42", "city": "常州", "amount": 800000.0,
                                "years": 25, "house_order": "second"}
    assert "二套房" in reply.text and "超过了可贷额度上限 500,000.00 元" in reply.text
    assert "退休年龄后5年" in reply.text and "验证身份后" not in reply.text


def test_loan_with_lapsed_verification_still_answers_generally(core, domain):
    core.on("POST", "/loan/estimate", core_client_error(401, "verification_expired"), ESTIMATE)
    reply = tx_run(ActionEstimateLoan(), domain, intent="estimate_loan")
    assert "person_ref" in core.calls[0][2] and "person_ref" not in core.calls[1][2]
    assert reply.slots()["verified"] is False
    assert "超时" in reply.text and "4,003.40" in reply.text


def core_client_error(status, code):
    from actions.core_client import CoreError
    return CoreError(status, {"code": code, "message": "m"})


# ---- progress --------------------------------------------------------------------------

APPS = {"applications": [
    {"id": "a1", "kind": "rent", "kind_name": "租房提取", "submitted_at": "2026-11-18",
     "status": "reviewing", "status_name": "审核中", "current_step": "中心审核",
     "steps": [{"name": "提交申请", "done_at": "2026-11-18 10:02"},
               {"name": "单位确认", "done_at": "2026-11-19 09:30"},
               {"name": "中心审核", "done_at": None}, {"name": "资金到账", "done_at": None}],
     "expected_done": "2026-11-21"},
    {"id": "a2", "kind": "purchase", "kind_name": "购房提取", "submitted_at": "2026-06-01",
     "status": "done", "status_name": "已办结", "current_step": None,
     "steps": [{"name": "提交申请", "done_at": "2026-06-01 08:00"},
               {"name": "资金到账", "done_at": "2026-06-04 15:00"}], "expected_done": None}]}


def test_progress_shows_the_timeline_and_current_step(core, domain):
    core.on("GET", "/persons/p-42/applications", APPS)
    reply = tx_run(ActionCheckProgress(), domain)
    first = reply.texts[0]
    assert "当前环节：中心审核，预计 2026-11-21 前办结" in first
    assert first.index("✅ 提交申请") < first.index("⏳ 中心审核") < first.index("○ 资金到账")
    assert "购房提取" in reply.texts[1] and "已办结" in reply.texts[1] and "预计" not in reply.texts[1]


def test_no_applications(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": []})
    assert "没有查到" in tx_run(ActionCheckProgress(), domain).text


def test_progress_expired_verification_resets(core, domain):
    core.refuse("GET", "/persons/p-42/applications", **EXPIRED)
    assert tx_run(ActionCheckProgress(), domain).slots()["verified"] is False


# ---- consistency -----------------------------------------------------------------------

def test_every_response_and_action_the_code_names_is_in_the_domain(domain):
    names = set()
    for module in ("verification", "balance", "withdrawal", "loan", "progress"):
        source = (ROOT / "actions" / f"{module}.py").read_text(encoding="utf-8")
        names |= set(re.findall(r'response="(utter_[a-z_]+)"', source))
        for action in re.findall(r'return "((?:action|validate)_[a-z_]+)"', source):
            assert action in domain["actions"], action
    missing = sorted(n for n in names if n not in domain["responses"])
    assert not missing and len(names) > 30
    for slot in domain["forms"]["verification_form"]["required_slots"]:
        assert f"utter_ask_verification_form_{slot}" in domain["responses"]
