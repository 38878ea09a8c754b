"""TopicClassifier (Rasa venv): one model gives the intent and the FAQ topic, the same way
every time it is trained, in the shapes the fallback, policies and actions read.

Trains on a small hand-written set with the real e5 encoder (a few seconds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.topic_classifier import TopicClassifier
from bot.components.topic_model import TopicModel, decide, split_retrieval

EXAMPLES: Dict[str, List[str]] = {
    "faq/withdraw_rent": ["租房可以提取公积金吗", "房租能用公积金付吗", "租房提取需要什么条件",
                          "没有房子租房住怎么取公积金", "租房提取一个月能取多少", "付房租能提公积金吗"],
    "faq/loan_rate": ["公积金贷款利率是多少", "首套房公积金贷款利率", "二套房贷款利率多少",
                      "现在公积金贷款利息多少", "公积金贷款利率有没有下调", "五年以上贷款利率"],
    "faq/account_seal": ["公积金账户封存怎么办", "离职后公积金封存了", "怎么解封公积金账户",
                         "封存的公积金怎么启封", "账户为什么被封存", "封存状态能提取吗"],
    "check_balance": ["查一下我的公积金余额", "我的公积金还有多少钱", "帮我查余额",
                      "账户里有多少钱", "查询公积金余额", "看看我的余额"],
    "greet": ["你好", "您好", "早上好", "在吗", "喂你好", "hello"],
    "out_of_scope": ["今天天气怎么样", "给我讲个笑话", "附近有什么好吃的",
                     "火车票怎么买", "手机没电了", "股票明天涨不涨"],
}


def _pairs():
    return [(text, label) for label, texts in EXAMPLES.items() for text in texts]


@pytest.fixture(scope="module")
def model() -> TopicModel:
    texts, labels = zip(*_pairs())
    return TopicModel().fit(texts, labels)


def test_unseen_phrasings_get_their_topic(model):
    cases = {"我在外面租房子住，公积金能拿出来交房租不": "faq/withdraw_rent",
             "想问下公积金贷款现在利率是几个点": "faq/loan_rate",
             "换了工作以后原来的公积金被封存了咋办": "faq/account_seal",
             "帮我看下公积金账户余额": "check_balance"}
    ranked = model.rank(list(cases))
    assert [r[0][0] for r in ranked] == list(cases.values())


def test_training_twice_gives_the_same_model(model):
    texts, labels = zip(*_pairs())
    again = TopicModel().fit(texts, labels)
    question = ["公积金封存以后还能贷款吗"]
    first, second = model.rank(question)[0], again.rank(question)[0]
    assert [label for label, _ in first] == [label for label, _ in second]
    assert np.allclose([p for _, p in first], [p for _, p in second])


def test_the_place_named_does_not_change_the_answer(model):
    """Shipped cities, other provinces' cities and anonymised A市/K9县 read the same."""
    ranked = model.rank(["合肥市公积金封存了怎么办", "南京公积金封存了怎么办", "a市公积金封存了怎么办",
                         "广东省深圳市公积金封存了怎么办", "k9县公积金封存了怎么办"])
    assert ranked[0][0][0] == "faq/account_seal"
    for other in ranked[1:]:
        assert np.allclose([p for _, p in ranked[0]], [p for _, p in other])


def test_the_question_of_a_long_post_decides_its_topic(model):
    post = ("我去年在外面租房子住，房租一个月两千，单位一直给交公积金。今年家里催着买房，"
            "首付凑得差不多了，想问一下现在公积金贷款利率是几个点？")
    assert model.rank([post])[0][0][0] == "faq/loan_rate"


def test_one_label_is_refused():
    with pytest.raises(ValueError):
        TopicModel().fit(["你好", "您好"], ["greet", "greet"])


def test_a_retrieval_intent_scores_the_sum_of_its_topics():
    intents, keys = split_retrieval([("faq/a", 0.5), ("greet", 0.3), ("faq/b", 0.2)])
    assert intents == [("faq", pytest.approx(0.7)), ("greet", 0.3)]
    assert keys["faq"] == [("faq/a", pytest.approx(0.5 / 0.7)), ("faq/b", pytest.approx(0.2 / 0.7))]


@pytest.mark.parametrize("ranking, expected", [
    ([("faq/a", 0.8), ("greet", 0.2)], ("faq/a", False)),
    # the FAQ as a whole is likely but spread over topics: actions/faq.py asks which one
    ([("faq/a", 0.4), ("faq/b", 0.35), ("greet", 0.25)], ("faq/a", True)),
    ([("greet", 0.45), ("goodbye", 0.3), ("faq/a", 0.25)], ("greet", True)),  # under the threshold
    ([("greet", 0.52), ("goodbye", 0.48)], ("greet", True)),  # two intents too close
    ([("check_balance", 0.9), ("faq/a", 0.1)], ("check_balance", False)),
])
def test_the_pipeline_asks_when_unsure(ranking, expected):
    assert decide(ranking, ask_below=0.5, intent_margin=0.1) == expected


def _trained_classifier(tmp_path: Path) -> TopicClassifier:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("topic_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    component = TopicClassifier.create(TopicClassifier.get_default_config(), storage, resource, context)
    examples = []
    for text, label in _pairs():
        data = {"text": text, "intent": label.split("/", 1)[0]}
        if "/" in label:
            data["intent_response_key"] = label
        examples.append(Message(data=data))
    component.train(TrainingData(examples, lookup_tables=[{"name": "city", "elements": ["合肥", "常州"]}]))
    return TopicClassifier.load(TopicClassifier.get_default_config(), storage, resource, context)


def test_persisted_model_fills_intent_and_response_selector(tmp_path):
    classifier = _trained_classifier(tmp_path)
    faq, balance = Message(data={"text": "租的房子能不能用公积金交房租"}), Message(data={"text": "我公积金余额还剩多少"})
    classifier.process([faq, balance])

    assert faq.get("intent")["name"] == "faq"
    selected = faq.get("response_selector")["faq"]["response"]
    assert selected["intent_response_key"] == "faq/withdraw_rent"
    ranking = faq.get("response_selector")["faq"]["ranking"]
    # each topic's confidence is its own probability: together they make the intent's
    assert sum(r["confidence"] for r in ranking) == pytest.approx(faq.get("intent")["confidence"])
    assert selected["confidence"] == ranking[0]["confidence"]
    assert faq.get("intent_ranking")[0] == faq.get("intent")

    assert balance.get("intent")["name"] == "check_balance"
    assert "out_of_scope" in {r["name"] for r in balance.get("intent_ranking")}


def test_the_component_masks_the_city_lookup(tmp_path):
    classifier = _trained_classifier(tmp_path)
    hefei, changzhou = Message(data={"text": "合肥租房能提公积金吗"}), Message(data={"text": "常州市租房能提公积金吗"})
    classifier.process([hefei, changzhou])
    assert hefei.get("intent_ranking") == changzhou.get("intent_ranking")


def test_untrained_model_leaves_messages_alone(tmp_path):
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = TopicClassifier.load(TopicClassifier.get_default_config(), LocalModelStorage(tmp_path),
                                      Resource("never_trained"), context)
    message = Message(data={"text": "你好"})
    classifier.process([message])
    assert message.get("intent") is None
