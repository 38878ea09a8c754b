"""The policy knowledge base: every file validates, every FAQ intent has an answer and a safe
fallback, unverified facts say so, cities and follow-up aspects resolve, no invented figures."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import yaml

from fund.knowledge import SHORT_NEXT_STEP, UNVERIFIED_NOTE, KnowledgeBase, UnknownTopic

ROOT = Path(__file__).resolve().parents[3]
POLICY = ROOT / "fund" / "policy"
POLICY_FACTS = Path(os.environ.get("ANJU_POLICY_FACTS", "/work/shared/policy_facts.md"))
CONFIRM = "以当地公积金中心最新公告为准"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(POLICY)


def faq_intents() -> set[str]:
    """Every faq/<topic> with training examples in nlu_data/."""
    topics = set()
    for path in (ROOT / "nlu_data").glob("*.yml"):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            name = block.get("intent", "")
            if name.startswith("faq/"):
                topics.add(name.split("/", 1)[1])
    return topics


def test_every_file_validates_with_an_effective_date_in_the_past(kb):
    assert len(kb.topics) == len(list((POLICY / "faq").glob("*.yml")))
    assert set(kb.cities) >= {"常州", "马鞍山"}
    entries = [t.national for t in kb.topics.values()] + [e for c in kb.cities.values() for e in c.faq.values()]
    assert all(e.effective_date <= dt.date.today() for e in entries)


def test_every_national_answer_has_a_next_step_and_materials(kb):
    missing = [name for name, t in kb.topics.items() if not t.national.next_step or not t.national.materials]
    assert missing == []


def test_every_faq_intent_has_a_knowledge_base_file_and_every_file_an_intent(kb):
    assert faq_intents() == set(kb.topics)


def test_every_faq_intent_has_a_safe_fallback_response():
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "faq.yml").read_text(encoding="utf-8"))
    responses = set(domain["responses"])
    assert {f"utter_faq/{t}" for t in faq_intents()} <= responses


def test_unverified_answers_tell_the_citizen_to_confirm_and_verified_ones_do_not(kb):
    for name, topic in kb.topics.items():
        answer = kb.answer(name)
        assert (CONFIRM in answer.text) == (not topic.national.verified), name
    assert UNVERIFIED_NOTE in kb.answer("withdraw_rent", "常州").text


def test_every_answer_ends_with_what_to_do_next(kb):
    for name, topic in kb.topics.items():
        assert kb.answer(name).text.splitlines()[-1] == topic.national.next_step.strip(), name


def test_city_names_resolve_with_or_without_the_city_suffix(kb):
    assert kb.resolve_city("常州市").name == "常州"
    assert kb.resolve_city(" 马鞍山 ").name == "马鞍山"
    assert kb.resolve_city("南京") is None
    assert kb.resolve_city(None) is None


def test_a_city_override_is_used_and_named(kb):
    answer = kb.answer("withdraw_rent", "常州市")
    assert answer.city == "常州"
    assert answer.text.startswith("【常州】")
    assert "常州市住房公积金管理中心" in answer.text


def test_a_city_without_its_own_rule_gets_the_national_rule_said_as_such(kb):
    answer = kb.answer("withdraw_illness", "南京")
    assert answer.city is None
    assert answer.text.startswith("暂未收录“南京”的具体规定")


def test_city_specific_topics_ask_for_the_city_when_none_is_known(kb):
    assert "哪个城市" in kb.answer("withdraw_rent").text
    assert "哪个城市" not in kb.answer("withdraw_rent", "马鞍山").text
    assert "哪个城市" not in kb.answer("loan_rate").text


def test_second_home_follow_up_gives_the_second_home_rates_only(kb):
    answer = kb.answer("loan_rate", aspect="second")
    assert answer.aspect == "second"
    assert "3.075%" in answer.text and "2.60%" not in answer.text


def test_materials_follow_up_falls_back_to_the_national_list_inside_a_city(kb):
    answer = kb.answer("withdraw_leave_job", "马鞍山", aspect="materials")
    assert answer.aspect == "materials"
    assert answer.text.startswith("【马鞍山】以下为通行做法")
    assert "身份证件" in answer.text


def test_an_aspect_the_topic_lacks_gives_the_full_answer(kb):
    full = kb.answer("transfer_city")
    assert kb.answer("transfer_city", aspect="second").text == full.text
    assert kb.answer("transfer_city", aspect="nonsense").aspect is None


def test_unknown_topic_is_refused(kb):
    with pytest.raises(UnknownTopic):
        kb.answer("lottery_numbers")


def test_a_city_file_may_not_override_a_topic_that_does_not_exist(tmp_path):
    (tmp_path / "faq").mkdir()
    (tmp_path / "cities").mkdir()
    (tmp_path / "faq" / "loan_rate.yml").write_text((POLICY / "faq" / "loan_rate.yml").read_text(encoding="utf-8"),
                                                    encoding="utf-8")
    (tmp_path / "cities" / "x.yml").write_text(
        "name: 某市\nfaq:\n  no_such_topic:\n    effective_date: 2026-01-01\n    verified: false\n"
        "    source: s\n    text: t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no_such_topic"):
        KnowledgeBase.load(tmp_path)


def _numbers(text: str) -> set[float]:
    return {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))}


@pytest.mark.skipif(not POLICY_FACTS.exists(), reason="policy_facts.md not available here")
def test_no_answer_states_a_figure_that_is_not_in_the_policy_facts():
    allowed = _numbers(POLICY_FACTS.read_text(encoding="utf-8"))
    invented = {}
    for path in sorted(POLICY.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = [data["national"]] if "national" in data else list((data.get("faq") or {}).values())
        for entry in entries:
            texts = [entry["text"], entry["short"], entry.get("materials") or "", *(entry.get("variants") or {}).values()]
            extra = {n for t in texts for n in _numbers(t)} - allowed
            if extra:
                invented[path.name] = sorted(extra)
    assert invented == {}


def _entries(kb):
    yield from ((name, None, t.national) for name, t in kb.topics.items())
    yield from ((name, c.name, e) for c in kb.cities.values() for name, e in c.faq.items())


SENTENCE_END = re.compile(r"[。！？]")


def test_every_short_text_is_two_to_four_short_sentences_with_no_new_figures(kb):
    for name, city, entry in _entries(kb):
        sentences = [s for s in SENTENCE_END.split(entry.short) if s.strip()]
        assert 2 <= len(sentences) <= 4, (name, city, sentences)
        assert max(len(s) for s in sentences) <= 50, (name, city)
        assert len(entry.short) < len(entry.text), (name, city)
        full = " ".join([entry.text, entry.materials or "", *entry.variants.values()])
        assert _numbers(entry.short) <= _numbers(full), (name, city, _numbers(entry.short) - _numbers(full))


def test_a_short_text_keeps_the_full_texts_caveat(kb):
    for name, city, entry in _entries(kb):
        if "为准" in entry.text:
            assert "为准" in entry.short, (name, city)
        if "未经核实" in entry.text or "未能核实" in entry.text:
            assert "核实" in entry.short, (name, city)


def test_the_short_variant_answers_briefly_and_still_says_unverified_and_how_to_reach_a_person(kb):
    for name, topic in kb.topics.items():
        short, full = kb.answer(name, variant="short"), kb.answer(name)
        assert short.variant == "short" and len(short.text) < len(full.text), name
        assert topic.national.short.strip() in short.text and "依据" not in short.text, name
        assert (CONFIRM in short.text) == (not topic.national.verified), name
        assert short.text.splitlines()[-1] == SHORT_NEXT_STEP, name
    answer = kb.answer("withdraw_rent", "常州市", variant="short")
    assert answer.text.startswith("【常州】") and UNVERIFIED_NOTE in answer.text
    assert "哪个城市" in kb.answer("withdraw_rent", variant="short").text


def test_a_follow_up_aspect_keeps_its_own_text_in_the_short_variant(kb):
    assert kb.answer("loan_rate", aspect="second", variant="short").text.startswith("第二套房公积金贷款利率")
