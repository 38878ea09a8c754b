"""action_answer_faq: the topic, city and follow-up aspect it asks the core for, and what
the citizen reads when the topic is a guess or the core is down."""
from __future__ import annotations

from actions.faq import ActionAnswerFaq
from tests.actions.conftest import make_tracker, run


def faq_message(key: str, confidence: float = 0.9, entities=None, ranking=()):
    return {"intent": "faq", "entities": entities or []}, {
        "faq": {"response": {"intent_response_key": f"faq/{key}", "confidence": confidence},
                "ranking": [{"intent_response_key": f"faq/{k}", "confidence": c} for k, c in ranking]}}


def faq_tracker(key: str, confidence: float = 0.9, slots=None, entities=None, ranking=()):
    kwargs, selector = faq_message(key, confidence, entities, ranking)
    tracker = make_tracker(slots, **kwargs)
    tracker.latest_message["response_selector"] = selector
    return tracker


ANSWER = {"text": "【常州】答复正文", "city": "常州", "verified": False, "aspect": None}


def test_answers_the_selected_topic_for_the_remembered_city_and_keeps_the_topic(core, domain):
    core.on("GET", "/policy/answers/withdraw_rent", ANSWER)
    reply = run(ActionAnswerFaq(), faq_tracker("withdraw_rent", slots={"city": "常州市"}), domain)
    assert core.calls == [("GET", "/policy/answers/withdraw_rent", {"city": "常州市", "aspect": None})]
    assert reply.text == "【常州】答复正文"
    assert reply.slots() == {"faq_topic": "withdraw_rent", "city": "常州"}


def test_second_home_in_the_question_asks_for_that_variant(core, domain):
    core.on("GET", "/policy/answers/loan_rate", {**ANSWER, "city": None})
    tracker = faq_tracker("loan_rate", entities=[{"entity": "house_order", "value": "second"}])
    run(ActionAnswerFaq(), tracker, domain)
    assert core.calls[0][2]["aspect"] == "second"


def test_materials_follow_up_uses_the_last_topic(core, domain):
    core.on("GET", "/policy/answers/withdraw_retirement", {**ANSWER, "city": None})
    tracker = make_tracker({"faq_topic": "withdraw_retirement"}, intent="ask_materials")
    reply = run(ActionAnswerFaq(), tracker, domain)
    assert core.calls[0][1:] == ("/policy/answers/withdraw_retirement", {"city": None, "aspect": "materials"})
    assert reply.slots() == {"faq_topic": "withdraw_retirement"}


def test_a_follow_up_without_an_earlier_topic_asks_for_one(core, domain):
    reply = run(ActionAnswerFaq(), make_tracker({"city": "常州"}, intent="inform_city"), domain)
    assert core.calls == []
    assert reply.responses == ["utter_ask_topic_first"]


def test_core_down_gives_the_safe_fallback_for_the_topic(core, domain):
    core.down("GET", "/policy/answers/loan_limit")
    reply = run(ActionAnswerFaq(), faq_tracker("loan_limit"), domain)
    assert reply.responses == ["utter_faq/loan_limit"]
    assert "12329" in reply.text and not any(ch.isdigit() for ch in reply.text.replace("12329", ""))


TOPICS = {"topics": [{"topic": "withdraw_arrival", "title": "提取审批和到账时间"},
                     {"topic": "loan_review_time", "title": "贷款审批时间"},
                     {"topic": "channel_online", "title": "线上办理渠道"},
                     {"topic": "withdraw_rent", "title": "租房提取"}]}


def test_an_unsure_topic_is_not_answered_the_likeliest_topics_are_offered(core, domain):
    core.on("GET", "/policy/topics", TOPICS)
    ranking = [("withdraw_arrival", 0.19), ("loan_review_time", 0.17), ("withdraw_arrival", 0.05),
               ("channel_online", 0.12), ("withdraw_rent", 0.1)]
    reply = run(ActionAnswerFaq(), faq_tracker("withdraw_arrival", 0.19, ranking=ranking), domain)
    assert [c[1] for c in core.calls] == ["/policy/topics"]  # no answer was fetched
    assert reply.responses == ["utter_which_topic", None] and reply.slots() == {}
    assert reply.customs == [{"type": "clarify"}]  # counted by the gateway as a clarifying question
    assert [b["title"] for b in reply.buttons] == ["提取审批和到账时间", "贷款审批时间", "线上办理渠道", "都不是，转人工"]
    assert reply.buttons[1]["payload"] == '/faq{"faq_topic": "loan_review_time"}'


def test_the_topic_a_button_sends_is_answered(core, domain):
    core.on("GET", "/policy/answers/loan_review_time", {**ANSWER, "city": None})
    tracker = make_tracker(intent="faq", entities=[{"entity": "faq_topic", "value": "loan_review_time"}])
    reply = run(ActionAnswerFaq(), tracker, domain)
    assert core.calls[0][1] == "/policy/answers/loan_review_time"
    assert reply.slots() == {"faq_topic": "loan_review_time"}


def test_a_forged_topic_in_a_payload_is_not_passed_to_the_core(core, domain):
    tracker = make_tracker(intent="faq", entities=[{"entity": "faq_topic", "value": "../../audit"}])
    reply = run(ActionAnswerFaq(), tracker, domain)
    assert core.calls == [] and reply.responses == ["utter_ask_topic_first"]


def test_unsure_topic_with_the_core_down_asks_to_rephrase_or_take_a_person(core, domain):
    core.down("GET", "/policy/topics")
    reply = run(ActionAnswerFaq(), faq_tracker("withdraw_rent", 0.1), domain)
    assert reply.responses == ["utter_default"] and "转人工" in reply.text


def test_elder_mode_asks_the_core_for_the_short_answer(core, domain):
    core.on("GET", "/policy/answers/withdraw_rent", {**ANSWER, "variant": "short"})
    tracker = faq_tracker("withdraw_rent", slots={"city": "常州"})
    tracker.latest_message["metadata"] = {"elder_mode": True}
    reply = run(ActionAnswerFaq(), tracker, domain)
    assert core.calls == [("GET", "/policy/answers/withdraw_rent", {"city": "常州", "aspect": None, "variant": "short"})]
    assert reply.text == "【常州】答复正文"


def test_without_elder_mode_the_full_answer_is_asked_for(core, domain):
    core.on("GET", "/policy/answers/withdraw_rent", ANSWER)
    tracker = faq_tracker("withdraw_rent")
    tracker.latest_message["metadata"] = {"elder_mode": False}
    run(ActionAnswerFaq(), tracker, domain)
    assert "variant" not in core.calls[0][2]
