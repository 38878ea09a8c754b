"""action_answer_faq: the topic, city and follow-up aspect it asks the core for, and what
the citizen reads when the topic is a guess or the core is down."""
from __future__ import annotations

from actions.faq import ActionAnswerFaq
from tests.actions.conftest import make_tracker, run


def faq_message(key: str, confidence: float = 0.9, entities=None):
    return {"intent": "faq", "entities": entities or []}, {
        "faq": {"response": {"intent_response_key": f"faq/{key}", "confidence": confidence}}}


def faq_tracker(key: str, confidence: float = 0.9, slots=None, entities=None):
    kwargs, selector = faq_message(key, confidence, entities)
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
