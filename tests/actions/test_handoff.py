"""Unanswered turns: the first is answered honestly, the second in a row offers a person.
A bare yes accepts a video offer only right after one."""
from rasa_sdk import Tracker

from actions.handoff import ActionAnswerAffirm, ActionHandleFallback

from tests.actions.conftest import make_tracker, run


def with_earlier_turn(tracker: Tracker, intent: str) -> Tracker:
    earlier = [{"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}},
               {"event": "action", "name": "action_handle_fallback"}]
    tracker.events[:0] = earlier
    return tracker


def test_first_unclear_message_asks_again_without_an_offer(domain):
    reply = run(ActionHandleFallback(), make_tracker(intent="nlu_fallback", text="嗯啊"), domain)
    assert "没有完全理解" in reply.text and "视频" not in reply.text


def test_first_out_of_scope_question_says_so_without_an_offer(domain):
    reply = run(ActionHandleFallback(), make_tracker(intent="out_of_scope", text="社保怎么交"), domain)
    assert "不属于住房公积金业务" in reply.text and "视频" not in reply.text


def test_second_unanswered_turn_in_a_row_offers_a_person(domain):
    for earlier, latest in [("nlu_fallback", "nlu_fallback"), ("out_of_scope", "nlu_fallback"),
                            ("nlu_fallback", "out_of_scope")]:
        tracker = with_earlier_turn(make_tracker(intent=latest, text="呃"), earlier)
        reply = run(ActionHandleFallback(), tracker, domain)
        assert "视频" in reply.text, (earlier, latest)


def test_an_answered_turn_in_between_resets_the_count(domain):
    tracker = with_earlier_turn(make_tracker(intent="nlu_fallback", text="呃"), "greet")
    reply = run(ActionHandleFallback(), tracker, domain)
    assert "视频" not in reply.text


def after_bot_turn(tracker: Tracker, *bot_events) -> Tracker:
    """Puts an earlier user turn and the bot's reply to it before the latest message."""
    tracker.events[:0] = [{"event": "user", "text": "我是残疾人", "parse_data": {"intent": {"name": "declare_disability"}}},
                          {"event": "action", "name": "action_offer_handoff"}, *bot_events,
                          {"event": "action", "name": "action_listen"}]
    return tracker


OFFER = [{"event": "bot", "text": "可以请工作人员和您视频……现在转视频服务吗？",
          "data": {"buttons": [{"title": "好，视频办理", "payload": "/accept_handoff"}]}},
         {"event": "bot", "data": {"custom": {"type": "handoff_offer", "reason": "disabled"}}}]


def test_yes_right_after_a_video_offer_starts_the_handoff(domain):
    reply = run(ActionAnswerAffirm(), after_bot_turn(make_tracker(intent="affirm", text="好的"), *OFFER), domain)
    assert reply.events == [{"event": "followup", "name": "action_start_handoff", "timestamp": None}]
    assert reply.text == ""


def test_yes_after_anything_else_is_acknowledged_without_a_call(domain):
    answer = [{"event": "bot", "text": "租房提取需要……", "data": {}}]
    for tracker in (make_tracker(intent="affirm", text="好的"),
                    after_bot_turn(make_tracker(intent="affirm", text="好的"), *answer)):
        reply = run(ActionAnswerAffirm(), tracker, domain)
        assert not reply.events
        assert "还有什么可以帮您" in reply.text and "转人工" in reply.text


def test_an_offer_two_turns_ago_does_not_count(domain):
    tracker = after_bot_turn(make_tracker(intent="affirm", text="好的"), *OFFER)
    tracker.events[4:4] = [{"event": "user", "text": "不用了", "parse_data": {"intent": {"name": "decline_handoff"}}},
                           {"event": "bot", "text": "好的，我继续为您服务。", "data": {}}]
    reply = run(ActionAnswerAffirm(), tracker, domain)
    assert not reply.events and "还有什么可以帮您" in reply.text


def unclear(ranking, faq_key=None):
    """An nlu_fallback message whose ranking (kept by FallbackClassifier) still holds guesses."""
    tracker = make_tracker(intent="nlu_fallback", text="三月初交的贷款材料啥时候能下来 哪里能查")
    tracker.latest_message["intent_ranking"] = [{"name": "nlu_fallback", "confidence": 0.4}] + [
        {"name": name, "confidence": confidence} for name, confidence in ranking]
    if faq_key:
        tracker.latest_message["response_selector"] = {
            "faq": {"response": {"intent_response_key": faq_key, "confidence": 0.5}, "ranking": []}}
    return tracker


def test_an_unclear_message_offers_the_likeliest_meanings_and_a_person(core, domain):
    core.on("GET", "/policy/topics", {"topics": [{"topic": "loan_review_time", "title": "贷款审批时间"}]})
    tracker = unclear([("check_progress", 0.38), ("faq", 0.35), ("greet", 0.2), ("check_balance", 0.05)],
                      faq_key="faq/loan_review_time")
    reply = run(ActionHandleFallback(), tracker, domain)
    assert reply.responses[-1] == "utter_which_topic" and "不太确定" in reply.text
    assert [(b["title"], b["payload"]) for b in reply.buttons] == [
        ("查询办理进度", "/check_progress"), ("贷款审批时间", '/faq{"faq_topic": "loan_review_time"}'),
        ("都不是，转人工", "/request_human")]
    assert "视频" not in reply.text  # the first unclear turn does not push a video call


def test_guesses_survive_the_core_being_down_and_weak_guesses_get_no_button(core, domain):
    core.down("GET", "/policy/topics")
    reply = run(ActionHandleFallback(), unclear([("faq", 0.5), ("estimate_loan", 0.3)], "faq/loan_limit"), domain)
    assert [b["payload"] for b in reply.buttons] == ["/estimate_loan", "/request_human"]

    reply = run(ActionHandleFallback(), unclear([("check_balance", 0.1), ("faq", 0.08)], "faq/loan_limit"), domain)
    assert reply.responses[-1] == "utter_default" and reply.buttons == []
