"""Unanswered turns: the first is answered honestly, the second in a row offers a person."""
from rasa_sdk import Tracker

from actions.handoff import ActionHandleFallback

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
