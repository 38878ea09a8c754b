"""Progress of online withdrawal applications as the citizen reads it: the amount, the steps
the sandbox review stamped, a reviewer's reason, and finished applications without a forecast."""
from actions.progress import ActionCheckProgress

from tests.actions.conftest import make_tracker, run

VERIFIED = {"verified": True, "person_ref": "p-42"}


def step(name, done_at=None, status=None, note=None):
    return {"name": name, "done_at": done_at, "status": status, "note": note}


WAITING = {"id": "TQ20261123000001", "kind": "rent", "kind_name": "租房提取", "submitted_at": "2026-11-23T02:00:00",
           "status": "submitted", "status_name": "已提交", "current_step": "审核受理", "amount": 3000.0,
           "reason": None, "online": True, "expected_done": "2026-11-23",
           "steps": [step("提交申请", "2026-11-23T02:00:00", "submitted"), step("审核受理", status="under_review"),
                     step("审批", status="approved"), step("资金到账", status="paid")]}
PAID = {**WAITING, "id": "TQ20261020000002", "status": "paid", "status_name": "已到账", "current_step": None,
        "expected_done": None,
        "steps": [step("提交申请", "2026-10-20T02:00:00", "submitted"),
                  step("审核受理", "2026-10-20T02:02:00", "under_review"),
                  step("审批通过", "2026-10-20T02:02:00", "approved", "材料齐全，沙箱规则自动审批"),
                  step("资金到账", "2026-10-20T02:07:00", "paid")]}
REJECTED = {**WAITING, "id": "TQ20261101000003", "kind": "purchase", "kind_name": "购房提取", "status": "rejected",
            "status_name": "未通过", "current_step": None, "expected_done": None, "amount": 50000.0,
            "reason": "购房发票金额与网签合同不符",
            "steps": [step("提交申请", "2026-11-01T02:00:00", "submitted"),
                      step("审核受理", "2026-11-01T03:00:00", "under_review"),
                      step("审批未通过", "2026-11-01T03:10:00", "rejected", "购房发票金额与网签合同不符")]}


def test_an_online_application_shows_its_amount_and_what_comes_next(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": [WAITING]})
    core.refuse("POST", "/applications/TQ20261123000001/upload-token", 409, "material_not_needed")
    reply = run(ActionCheckProgress(), make_tracker(VERIFIED), domain)
    # Not yet under review: it can still be withdrawn, and a button says so.
    assert reply.responses == ["utter_application_in_progress", "utter_application_can_cancel"]
    text = reply.text
    assert "申请金额：3,000.00 元" in text and "当前环节：审核受理" in text
    assert text.index("✅ 提交申请") < text.index("⏳ 审核受理") < text.index("○ 审批") < text.index("○ 资金到账")


def test_a_paid_application_is_finished_and_shows_each_stamped_step(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": [PAID]})
    reply = run(ActionCheckProgress(), make_tracker(VERIFIED), domain)
    assert reply.responses == ["utter_application_finished"]
    assert "已到账" in reply.text and "预计" not in reply.text and "⏳" not in reply.text
    assert "✅ 审批通过  2026-10-20T02:02:00（材料齐全，沙箱规则自动审批）" in reply.text
    assert "✅ 资金到账  2026-10-20T02:07:00" in reply.text


def test_a_rejection_shows_the_reviewers_reason_once(core, domain):
    core.on("GET", "/persons/p-42/applications", {"applications": [REJECTED]})
    reply = run(ActionCheckProgress(), make_tracker(VERIFIED), domain)
    assert reply.responses == ["utter_application_finished"]
    assert "❌ 审批未通过  2026-11-01T03:10:00" in reply.text and "资金到账" not in reply.text
    assert reply.text.count("购房发票金额与网签合同不符") == 1 and "未通过原因：购房发票金额与网签合同不符" in reply.text
