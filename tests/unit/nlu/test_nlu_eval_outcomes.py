"""bench/nlu_eval.py scores each /model/parse result as the hidden set does: the bot asked
(nlu_fallback, or the FAQ with a topic under actions/faq.py's threshold), answered right, or
answered wrong, by the dev set's taxonomy (bench/taxonomy_map.yml)."""
from pathlib import Path

import pytest

from bench.nlu_eval import load_map, outcome_rates, parse_outcome

RULES = load_map(Path(__file__).resolve().parents[3] / "bench" / "taxonomy_map.yml")


def faq(key: str, topic_confidence: float, intent_confidence: float = 0.9) -> dict:
    return {"intent": {"name": "faq", "confidence": intent_confidence},
            "response_selector": {"faq": {"response": {"intent_response_key": key,
                                                       "confidence": topic_confidence}}}}


def intent(name: str, confidence: float = 0.9) -> dict:
    return {"intent": {"name": name, "confidence": confidence}}


@pytest.mark.parametrize("result, gold, expected", [
    (faq("faq/loan_rate", 0.8), "faq_loan", "right"),
    (faq("faq/loan_conditions", 0.8), "faq_loan", "right"),  # another loan topic: same taxonomy label
    (faq("faq/deposit_interest", 0.8), "faq_loan", "wrong"),
    (faq("faq/loan_rate", 0.2), "faq_loan", "asked"),  # topic too unsure: the bot asks which
    (faq("faq/deposit_interest", 0.29), "faq_loan", "asked"),
    (intent("nlu_fallback", 0.4), "txn_balance", "asked"),
    (intent("check_progress"), "txn_progress", "right"),
    (faq("faq/withdraw_arrival", 0.7), "txn_progress", "right"),  # "how long until paid"
    (intent("check_balance"), "txn_withdraw_precheck", "wrong"),
    (intent("out_of_scope"), "other", "right"),
    (intent("greet"), "other", "right"),
    (intent("out_of_scope"), "faq_deposit", "wrong"),
])
def test_each_parse_is_right_asked_or_wrong(result, gold, expected):
    assert parse_outcome(result, gold, RULES) == expected


def test_a_higher_topic_threshold_turns_unsure_answers_into_questions():
    assert parse_outcome(faq("faq/loan_rate", 0.45), "faq_loan", RULES, min_topic_confidence=0.5) == "asked"
    assert parse_outcome(faq("faq/loan_rate", 0.45), "faq_loan", RULES, min_topic_confidence=0.3) == "right"


def test_rates_are_shares_of_all_questions():
    assert outcome_rates(["right", "right", "asked", "wrong"]) == {"right": 0.5, "asked": 0.25, "wrong": 0.25}
    assert outcome_rates([]) == {"right": 0.0, "asked": 0.0, "wrong": 0.0}
