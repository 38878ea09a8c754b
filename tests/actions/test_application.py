"""The online withdrawal application as the citizen reads it: offer, amount, signing code, submitted."""
from decimal import Decimal

import pytest

from actions.application import (ActionApplicationDone, ValidateApplicationForm, idempotency_key,
                                 parse_requested_amount)
from actions.withdrawal import ActionCheckWithdrawal

from tests.actions.conftest import make_tracker, run

VERIFIED = {"verified": True, "person_ref": "p-42"}
FORM = "application_form"
OFFER = {"kind": "rent", "kind_name": "租房提取", "max_amount": 14400.0, "card_masked": "6217 **** **** 1234",
         "bank_name": "中国建设银行", "complete": True,
         "materials": {"fetched": [{"name": "房屋租赁登记备案信息", "summary": "马鞍山市***"}], "to_upload": []},
         "fetched_notice": "已从共享数据获取：身份信息、房屋租赁登记备案信息",
         "declaration": {"version": "sandbox-2026-12", "title": "住房公积金提取申请承诺书（沙箱演示）",
                         "text": "本人申请提取住房公积金，并承诺……", "sha256": "ab" * 32}}
STARTED = {"challenge_id": "cs_1", "phone_masked": "138****5678", "expires_in_s": 300,
           "declaration_version": "sandbox-2026-12"}
SUBMITTED = {"id": "TQ20261206000001", "kind": "rent", "kind_name": "租房提取", "status": "submitted",
             "status_name": "已提交", "amount": 3000.0, "complete": True,
             "materials": {"fetched": [], "to_upload": []},
             "signature": {"sha256": "c0ffee" * 10 + "abcd", "card_masked": "6217 **** **** 1234",
                           "bank_name": "中国建设银行"}, "duplicate": False}


def form_run(slots=None, *, requested=None, text="", intent="inform_identity", slot_events=None, sender_id="web-abc"):
    tracker = make_tracker({**VERIFIED, **(slots or {}), "requested_slot": requested}, intent=intent, text=text,
                           active_loop=FORM, slot_events=slot_events, sender_id=sender_id)
    return tracker


@pytest.mark.parametrize("text,expected", [
    ("3000", "3000"), ("三千元", "3000"), ("提取1.2万", "12000"), ("全部", "14400"), ("最高的", "14400"),
    ("5,000.50元", "5000.50"), ("一万二", "12000"),
])
def test_amounts_in_words_or_numerals(text, expected):
    assert parse_requested_amount(text, Decimal("14400")) == Decimal(expected)


def test_no_amount_in_a_reply_is_none():
    assert parse_requested_amount("我还没想好", Decimal("14400")) is None


RENT_ELIGIBLE = {"city": "马鞍山", "results": [
    {"kind": "rent", "kind_name": "租房提取", "eligible": True, "max_amount": 14400, "auto_materials": ["身份信息"],
     "upload_materials": [], "reasons": []}]}


def test_a_positive_precheck_offers_to_apply(core, domain):
    core.on("GET", "/persons/p-42/withdrawal-check", RENT_ELIGIBLE)
    core.on("GET", "/persons/p-42/applications", {"applications": [{"id": "SQ1", "kind": "rent", "status": "paid"}]})
    reply = run(ActionCheckWithdrawal(), make_tracker(VERIFIED, intent="check_withdrawal"), domain)
    assert "在线申请租房提取" in reply.text
    assert any(b["payload"] == '/apply_withdrawal{"withdrawal_type": "rent"}' for b in reply.buttons)
    assert reply.slots()["application_offered"] == "rent"


def test_a_kind_already_being_handled_is_not_offered_again(core, domain):
    core.on("GET", "/persons/p-42/withdrawal-check", RENT_ELIGIBLE)
    core.on("GET", "/persons/p-42/applications", {"applications": [{"id": "TQ1", "kind": "rent", "status": "under_review"}]})
    reply = run(ActionCheckWithdrawal(), make_tracker(VERIFIED, intent="check_withdrawal"), domain)
    assert "已有一笔正在办理的租房提取申请" in reply.text and not reply.buttons
    assert reply.slots()["application_offered"] is None


def test_activation_shows_the_offer_and_asks_for_the_amount(core, domain):
    core.on("GET", "/persons/p-42/applications/offer", OFFER)
    tracker = make_tracker({**VERIFIED, "application_offered": "rent"}, intent="apply_withdrawal", text="在线申请")
    reply = run(ValidateApplicationForm(), tracker, domain)
    assert "14,400.00" in reply.text and "6217 **** **** 1234" in reply.text
    assert "已从共享数据获取" in reply.text and "无需上传" in reply.text
    assert reply.slots()["application_kind"] == "rent" and reply.slots()["application_max"] == "14400.00"


def test_without_a_kind_the_citizen_chooses_from_what_is_possible(core, domain):
    core.on("GET", "/persons/p-42/withdrawal-check", {"results": [
        {"kind": "rent", "eligible": True, "max_amount": 14400},
        {"kind": "renovation", "eligible": True, "max_amount": None},
        {"kind": "retirement", "eligible": False}]})
    reply = run(ValidateApplicationForm(), make_tracker(VERIFIED, intent="apply_withdrawal"), domain)
    assert "哪一类" in reply.text
    assert [b["payload"] for b in reply.buttons] == ['/apply_withdrawal{"withdrawal_type": "rent"}']
    assert reply.slots()["application_stopped"] is True


@pytest.mark.parametrize("code,extra,words", [
    ("application_open", {"application_id": "TQ1"}, "正在办理"),
    ("amount_unavailable", {}, "人工核定"),
    ("no_bank_card", {}, "银行卡"),
    ("not_eligible", {"reasons": ["未登记租赁"]}, "未登记租赁"),
])
def test_refusals_say_why_and_stop(core, domain, code, extra, words):
    core.refuse("GET", "/persons/p-42/applications/offer", 409, code, **extra)
    reply = run(ValidateApplicationForm(), make_tracker({**VERIFIED, "application_kind": "rent"},
                                                        intent="apply_withdrawal"), domain)
    assert words in reply.text and reply.slots()["application_stopped"] is True


def test_amount_over_the_maximum_is_asked_again(core, domain):
    tracker = form_run({"application_kind": "rent", "application_max": "14400"}, requested="application_amount",
                       text="两万", slot_events={"application_amount": "两万"})
    reply = run(ValidateApplicationForm(), tracker, domain)
    assert "不能超过 14,400.00 元" in reply.text and reply.slots()["application_amount"] is None
    assert not core.calls


def test_a_valid_amount_shows_the_declaration_and_sends_a_signing_code(core, domain):
    core.on("POST", "/applications/sign-challenges", STARTED).on("GET", "/persons/p-42/applications/offer", OFFER)
    tracker = form_run({"application_kind": "rent", "application_max": "14400"}, requested="application_amount",
                       text="三千", slot_events={"application_amount": "三千"})
    reply = run(ValidateApplicationForm(), tracker, domain)
    assert core.calls[0] == ("POST", "/applications/sign-challenges",
                             {"person_ref": "p-42", "kind": "rent", "amount": "3000"})
    assert "承诺书" in reply.text and "3,000.00 元" in reply.text and "138****5678" in reply.text
    assert reply.slots()["application_amount"] == "3000" and reply.slots()["application_challenge"] == "cs_1"


def code_tracker(code="482913", **extra):
    return form_run({"application_kind": "rent", "application_max": "14400", "application_amount": "3000",
                     "application_challenge": "cs_1", **extra}, requested="application_code", text=code,
                    slot_events={"application_code": code})


def test_the_code_signs_and_submits_once_with_a_stable_key(core, domain):
    core.on("POST", "/applications", SUBMITTED)
    reply = run(ValidateApplicationForm(), code_tracker(), domain)
    body = core.calls[0][2]
    assert body["code"] == "482913" and body["idempotency_key"] == idempotency_key("web-abc", "cs_1")
    assert "TQ20261206000001" in reply.text and "无需上传" in reply.text
    assert reply.slots()["application_code"] == "signed"


def test_a_wrong_code_says_how_many_tries_are_left(core, domain):
    core.refuse("POST", "/applications", 401, "wrong_code", attempts_left=2)
    reply = run(ValidateApplicationForm(), code_tracker("111111"), domain)
    assert "还可以再试2次" in reply.text and reply.slots()["application_code"] is None


def test_an_expired_code_is_sent_again(core, domain):
    core.refuse("POST", "/applications", 410, "challenge_expired")
    core.on("POST", "/applications/sign-challenges", {**STARTED, "challenge_id": "cs_2"})
    core.on("GET", "/persons/p-42/applications/offer", OFFER)
    reply = run(ValidateApplicationForm(), code_tracker(), domain)
    assert "重新发送" in reply.text and reply.slots()["application_challenge"] == "cs_2"


def test_materials_to_upload_reach_the_widget_as_an_upload_payload(core, domain):
    submitted = {**SUBMITTED, "complete": False, "materials": {"fetched": [], "to_upload": ["房屋租赁合同或租赁备案证明"]}}
    grant = {"token": "tok", "expires_in_s": 1800, "items": [{"key": "m7", "name": "房屋租赁合同或租赁备案证明"}]}
    core.on("POST", "/applications", submitted).on("POST", "/applications/TQ20261206000001/upload-token", grant)
    reply = run(ValidateApplicationForm(), code_tracker(), domain)
    assert "还需要上传：房屋租赁合同或租赁备案证明" in reply.text
    assert reply.customs == [{"upload": {"application_id": "TQ20261206000001", "token": "tok",
                                         "items": grant["items"], "expires_in_s": 1800}}]


def test_on_the_hotline_uploads_are_pointed_to_the_miniprogram(core, domain):
    submitted = {**SUBMITTED, "complete": False, "materials": {"fetched": [], "to_upload": ["购房发票或付款凭证"]}}
    core.on("POST", "/applications", submitted)
    tracker = form_run({"application_kind": "purchase", "application_max": "9000", "application_amount": "3000",
                        "application_challenge": "cs_1"}, requested="application_code", text="482913",
                       slot_events={"application_code": "482913"}, sender_id="voice-abc")
    reply = run(ValidateApplicationForm(), tracker, domain)
    assert "小程序" in reply.text and not reply.customs
    assert [c[1] for c in core.calls] == ["/applications"]


def test_core_down_at_submission_says_nothing_was_made(core, domain):
    core.down("POST", "/applications")
    reply = run(ValidateApplicationForm(), code_tracker(), domain)
    assert "没有产生任何申请记录" in reply.text and reply.slots()["application_stopped"] is True


def test_done_clears_every_form_slot(domain):
    tracker = make_tracker({**VERIFIED, "application_kind": "rent", "application_amount": "3000",
                            "application_offered": "rent", "pending_transaction": "apply_withdrawal"})
    reply = run(ActionApplicationDone(), tracker, domain)
    slots = reply.slots()
    assert slots["application_kind"] is None and slots["application_amount"] is None
    assert slots["application_offered"] is None and slots["pending_transaction"] is None


# ---- cancelling before review -----------------------------------------------------------------

def test_progress_offers_to_cancel_a_submitted_online_application(core, domain):
    from actions.progress import ActionCheckProgress
    core.on("GET", "/persons/p-42/applications", {"applications": [
        {"id": "TQ20261206000001", "kind_name": "租房提取", "submitted_at": "2026-12-06", "status": "submitted",
         "status_name": "已提交", "current_step": "审核受理", "expected_done": "2026-12-13", "online": True,
         "amount": 3000, "steps": [{"name": "提交申请", "status": "done", "done_at": "2026-12-06 10:00"},
                                    {"name": "审核受理"}]},
        {"id": "SQ1", "kind_name": "购房提取", "submitted_at": "2026-10-01", "status": "paid", "status_name": "已到账",
         "online": False, "steps": []}]})
    grant = {"token": "tok2", "expires_in_s": 1800, "items": [{"key": "m7", "name": "解除或终止劳动关系证明"}]}
    core.on("POST", "/applications/TQ20261206000001/upload-token", grant)
    reply = run(ActionCheckProgress(), make_tracker(VERIFIED, intent="check_progress"), domain)
    assert "申请编号：TQ20261206000001" in reply.text
    assert [b["payload"] for b in reply.buttons] == ['/cancel_application{"application_id": "TQ20261206000001"}']
    # Materials still missing: a fresh upload link, so a citizen who left the page goes on here.
    assert reply.customs == [{"upload": {"application_id": "TQ20261206000001", "token": "tok2",
                                         "items": grant["items"], "expires_in_s": 1800}}]


def test_cancel_by_button_withdraws_that_application(core, domain):
    from actions.application import ActionCancelApplication
    core.on("POST", "/applications/TQ20261206000001/cancel", {"id": "TQ20261206000001", "status": "cancelled"})
    tracker = make_tracker(VERIFIED, intent="cancel_application",
                           entities=[{"entity": "application_id", "value": "TQ20261206000001"}])
    reply = run(ActionCancelApplication(), tracker, domain)
    assert "已撤销申请 TQ20261206000001" in reply.text
    assert core.calls == [("POST", "/applications/TQ20261206000001/cancel", {"person_ref": "p-42"})]


def test_cancel_after_review_started_says_why_not(core, domain):
    from actions.application import ActionCancelApplication
    core.on("GET", "/persons/p-42/applications", {"applications": [
        {"id": "TQ2", "online": True, "status": "submitted"}]})
    core.refuse("POST", "/applications/TQ2/cancel", 409, "not_cancellable", current_status="under_review")
    reply = run(ActionCancelApplication(), make_tracker(VERIFIED, intent="cancel_application", text="撤销申请"), domain)
    assert "审核中" in reply.text and "转人工" in reply.text


def test_nothing_to_cancel_is_said_plainly(core, domain):
    from actions.application import ActionCancelApplication
    core.on("GET", "/persons/p-42/applications", {"applications": [{"id": "SQ1", "online": False, "status": "paid"}]})
    reply = run(ActionCancelApplication(), make_tracker(VERIFIED, intent="cancel_application"), domain)
    assert "没有找到可以撤销" in reply.text and not [c for c in core.calls if c[0] == "POST"]


def test_a_bare_yes_right_after_the_offer_starts_the_application(domain):
    from rasa_sdk import Tracker

    from actions.handoff import ActionAnswerAffirm

    def tracker(after_offer: bool) -> Tracker:
        offer = {"event": "bot", "text": "您可以现在在线申请租房提取", "metadata": {"utter_action": "utter_application_offer"}}
        other = {"event": "bot", "text": "还有什么可以帮您？", "metadata": {"utter_action": "utter_anything_else"}}
        latest = {"text": "好的", "intent": {"name": "affirm", "confidence": 0.98}, "entities": []}
        events = [{"event": "user", "text": "我租房能取多少"}, offer if after_offer else other,
                  {"event": "user", "text": "好的", "parse_data": latest}]
        return Tracker("web-abc", {**VERIFIED, "application_offered": "rent"}, latest, events, False, None, {},
                       "action_listen")

    started = run(ActionAnswerAffirm(), tracker(True), domain)
    assert [(e["event"], e["name"]) for e in started.events] == [("followup", "application_form")]
    acknowledged = run(ActionAnswerAffirm(), tracker(False), domain)
    assert not [e for e in acknowledged.events if e.get("event") == "followup"] and "还有什么" in acknowledged.text
