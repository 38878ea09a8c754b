"""Identity verification: every refusal from the core becomes a prompt that says what to do."""
from actions.verification import ActionResetVerification, ValidateVerificationForm
from bot import identity_assertion

from tests.actions.conftest import make_tracker, run
from tests.actions.identity import assertion_key  # noqa: F401 - fixture

ID = "pii_id_3f9a0c1d2e4b5a6f"
FORM = "verification_form"
CHALLENGE = {"challenge_id": "ch-1", "phone_masked": "138****5678", "expires_in_s": 300}
IDENTITY = {"person_ref": "p-42", "name_masked": "张*", "age": 67, "elderly": True,
            "disabled": False, "idle_timeout_s": 900}


def form_turn(domain, slots=None, **candidates):
    """The validator on one user turn inside the active form."""
    tracker = make_tracker(slots, active_loop=FORM, slot_events=candidates)
    return run(ValidateVerificationForm(), tracker, domain)


def test_id_of_wrong_length_is_refused_before_calling_the_core(core, domain):
    reply = form_turn(domain, id_number="我的身份证34050419800101123")
    assert reply.slots()["id_number"] is None
    assert "应为18位" in reply.text and "17位" in reply.text
    assert core.calls == []


def test_text_without_any_id_asks_for_the_18_characters(core, domain):
    reply = form_turn(domain, id_number="我忘了带身份证")
    assert reply.slots()["id_number"] is None
    assert "18位" in reply.text and "X" in reply.text


def test_id_alone_is_checked_kept_and_the_name_is_asked_next(core, domain):
    core.on("POST", "/identity/id-numbers/check", {"valid": True})
    reply = form_turn(domain, id_number=f"身份证{ID}")
    assert reply.slots()["id_number"] == ID
    assert core.calls == [("POST", "/identity/id-numbers/check", {"id_number": ID})]
    assert {"type": "expects", "slot": "person_name"} in reply.customs  # the gateway tokenises the answer


def test_wrong_checksum_is_said_right_after_the_id_before_the_name(core, domain):
    core.refuse("POST", "/identity/id-numbers/check", 422, "invalid_id_checksum")
    reply = form_turn(domain, id_number=ID)
    assert reply.slots()["id_number"] is None
    assert "校验未通过" in reply.text


def test_id_is_kept_when_the_core_cannot_check_it_now(core, domain):
    core.down("POST", "/identity/id-numbers/check")
    reply = form_turn(domain, id_number=ID)
    assert reply.slots()["id_number"] == ID and reply.text == ""


def test_name_completes_the_pair_and_a_code_is_sent_to_the_masked_phone(core, domain):
    core.on("POST", "/identity/challenges", CHALLENGE)
    reply = form_turn(domain, {"id_number": ID}, person_name="我叫张伟")
    assert core.calls == [("POST", "/identity/challenges",
                           {"id_number": ID, "name": "张伟", "channel_ref": "web-abc"})]
    slots = reply.slots()
    assert slots["challenge_id"] == "ch-1" and slots["person_name"] == "张伟"
    assert "138****5678" in reply.text and "5分钟" in reply.text


def test_a_name_that_is_not_a_name_is_asked_again(core, domain):
    reply = form_turn(domain, {"id_number": ID}, person_name="12345")
    assert reply.slots()["person_name"] is None
    assert "中文姓名" in reply.text
    assert core.calls == []
    assert {"type": "expects", "slot": "person_name"} in reply.customs


def test_wrong_checksum_asks_for_the_id_again_and_keeps_the_name(core, domain):
    core.refuse("POST", "/identity/challenges", 422, "invalid_id_checksum")
    reply = form_turn(domain, {"id_number": ID}, person_name="张伟")
    assert reply.slots()["id_number"] is None and reply.slots()["person_name"] == "张伟"
    assert "校验未通过" in reply.text


def test_wrong_format_from_the_core_explains_the_format(core, domain):
    core.refuse("POST", "/identity/challenges", 422, "invalid_id_format")
    reply = form_turn(domain, {"person_name": "张伟"}, id_number=ID)
    assert reply.slots()["id_number"] is None
    assert "18位" in reply.text


def test_expired_id_token_asks_to_type_it_again(core, domain):
    core.refuse("POST", "/identity/challenges", 422, "token_expired")
    reply = form_turn(domain, {"person_name": "张伟"}, id_number=ID)
    assert reply.slots()["id_number"] is None and "重新输入" in reply.text


def test_unknown_person_or_name_mismatch_starts_over(core, domain):
    core.refuse("POST", "/identity/challenges", 404, "person_not_found")
    reply = form_turn(domain, {"id_number": ID}, person_name="张伟")
    assert reply.slots()["id_number"] is None and reply.slots()["person_name"] is None
    assert "不匹配" in reply.text


def test_lockout_stops_the_form_says_when_and_offers_a_person(core, domain):
    core.refuse("POST", "/identity/challenges", 423, "locked", retry_after_s=1500)
    reply = form_turn(domain, {"id_number": ID}, person_name="张伟")
    assert reply.slots()["verification_stopped"] is True
    assert reply.slots()["requested_slot"] is None
    assert "25分钟" in reply.text and "转人工" in reply.text


def test_wrong_code_says_how_many_attempts_are_left(core, domain):
    core.refuse("POST", "/identity/challenges/ch-1/verify", 401, "wrong_code", attempts_left=2)
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1",
                               "phone_masked": "138****5678"}, otp_code="验证码123456")
    assert core.calls[0][2] == {"code": "123456"}
    assert reply.slots()["otp_code"] is None
    assert "还可以再试2次" in reply.text
    assert {"type": "identity_verified"} not in reply.customs
    assert "requested_slot" not in reply.slots() or reply.slots()["requested_slot"] == "otp_code"


def test_last_wrong_code_locks_and_offers_a_person(core, domain):
    core.refuse("POST", "/identity/challenges/ch-1/verify", 423, "locked", retry_after_s=600)
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1"},
                      otp_code="654321")
    assert reply.slots()["verification_stopped"] is True and reply.slots()["requested_slot"] is None
    assert "10分钟" in reply.text and "转人工" in reply.text


def test_code_that_is_not_six_digits_is_refused_locally(core, domain):
    reply = form_turn(domain, {"challenge_id": "ch-1"}, otp_code="12345")
    assert reply.slots()["otp_code"] is None and "6位数字" in reply.text
    assert core.calls == []


def test_expired_code_sends_a_new_one(core, domain):
    core.refuse("POST", "/identity/challenges/ch-1/verify", 410, "challenge_expired")
    core.on("POST", "/identity/challenges", {**CHALLENGE, "challenge_id": "ch-2"})
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1"},
                      otp_code="111222")
    assert reply.slots()["challenge_id"] == "ch-2" and reply.slots()["otp_code"] is None
    assert "已过期" in reply.text and "138****5678" in reply.text


def test_right_code_verifies_and_forgets_what_was_typed(core, domain):
    core.on("POST", "/identity/challenges/ch-1/verify", IDENTITY)
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1"},
                      otp_code="482913")
    slots = reply.slots()
    assert slots["verified"] is True and slots["person_ref"] == "p-42"
    assert slots["elderly"] is True and slots["disabled"] is False and slots["age"] == 67
    assert slots["id_number"] is None and slots["person_name"] is None and slots["challenge_id"] is None
    assert slots["requested_slot"] is None
    assert "身份验证成功" in reply.text and "张*" in reply.text
    assert {"type": "identity_verified"} in reply.customs  # the gateway rotates the session on it


def test_core_down_gives_a_friendly_message_and_stops(core, domain):
    core.down("POST", "/identity/challenges")
    reply = form_turn(domain, {"id_number": ID}, person_name="张伟")
    assert reply.slots()["verification_stopped"] is True
    assert "暂时无法使用" in reply.text and "12329" in reply.text
    assert "Error" not in reply.text and "refused" not in reply.text


def test_wechat_bound_user_is_verified_from_the_openid_without_typing(core, domain, assertion_key):
    core.on("POST", "/identity/openid", IDENTITY)
    signed = identity_assertion.sign(assertion_key, "web-abc", "wechat_openid", "o-abc")
    tracker = make_tracker(intent="check_balance", metadata={"identity_assertion": signed})
    reply = run(ValidateVerificationForm(), tracker, domain)
    assert core.calls == [("POST", "/identity/openid", {"openid": "o-abc"})]
    assert reply.slots()["verified"] is True and reply.slots()["requested_slot"] is None
    assert "微信" in reply.text
    assert {"type": "identity_verified"} in reply.customs


def test_unbound_openid_falls_back_to_the_form(core, domain, assertion_key):
    core.refuse("POST", "/identity/openid", 404, "not_bound")
    signed = identity_assertion.sign(assertion_key, "web-abc", "wechat_openid", "o-abc")
    tracker = make_tracker(intent="check_balance", metadata={"identity_assertion": signed})
    reply = run(ValidateVerificationForm(), tracker, domain)
    assert reply.slots().get("verified") is not True
    assert reply.responses == []  # the form itself asks for the ID number next


def test_reset_after_cancel_or_lockout_keeps_nothing(domain):
    tracker = make_tracker({"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1",
                            "verification_stopped": True, "pending_transaction": "check_balance"})
    slots = run(ActionResetVerification(), tracker, domain).slots()
    assert all(slots[k] is None for k in ("id_number", "person_name", "challenge_id",
                                          "verification_stopped", "pending_transaction", "person_ref"))
    assert slots["verified"] is False


def test_an_elderly_citizen_is_offered_video_once_right_after_verification(core, domain):
    core.on("POST", "/identity/challenges/ch-1/verify", IDENTITY)
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1"},
                      otp_code="482913")
    assert "视频" in reply.text and reply.slots()["handoff_offered"] is True
    again = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1",
                               "handoff_offered": True}, otp_code="482913")
    assert "视频" not in again.text


def test_a_younger_citizen_is_not_offered_video(core, domain):
    core.on("POST", "/identity/challenges/ch-1/verify", {**IDENTITY, "age": 35, "elderly": False})
    reply = form_turn(domain, {"id_number": ID, "person_name": "张伟", "challenge_id": "ch-1"},
                      otp_code="482913")
    assert "视频" not in reply.text and "handoff_offered" not in reply.slots()


def test_a_name_token_taken_for_an_id_keeps_the_earlier_id_and_completes_the_pair(core, domain):
    """The entity model may tag the tokenised name answer (pii_nm_…) as an ID number too."""
    core.on("POST", "/identity/challenges", {"challenge_id": "ch-9", "phone_masked": "138****5678", "expires_in_s": 300})
    name_token = "pii_nm_0123456789abcdef"
    tracker = make_tracker({"id_number": ID, "requested_slot": "person_name"}, active_loop=FORM,
                           slot_events={"id_number": name_token, "person_name": name_token}, text=name_token)
    tracker.events.insert(0, {"event": "slot", "name": "id_number", "value": ID})
    reply = run(ValidateVerificationForm(), tracker, domain)
    assert reply.slots()["id_number"] == ID and "身份证" not in reply.text
    assert core.calls[-1] == ("POST", "/identity/challenges",
                              {"id_number": ID, "name": name_token, "channel_ref": "web-abc"})
