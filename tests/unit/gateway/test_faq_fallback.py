"""While Rasa is down the gateway still answers FAQ questions from the knowledge base, and only those."""
import json

import fakeredis
import httpx
import pytest

from gateway.conversation import BotUnavailable, Conversation
from gateway.faq_fallback import (RESTARTING_NOTE, TRANSACTIONS_PAUSED, FaqFallback, FaqIndex, Match, Thresholds,
                                  decide, load_examples)
from gateway.rasa_client import RasaClient
from gateway.settings import ROOT

NLU_DIR = ROOT / "nlu_data"
POLICY_DIR = ROOT / "fund" / "policy"


class FakeCore:
    """/policy/answers/{topic} as the core answers it; records the calls; can be down."""

    def __init__(self):
        self.up = True
        self.calls = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused")
        self.calls.append((request.url.path, dict(request.url.params), request.headers.get("authorization")))
        topic = request.url.path.rsplit("/", 1)[1]
        city = request.url.params.get("city")
        return httpx.Response(200, json={"topic": topic, "text": f"答案:{topic}:{city or '全国'}"})


@pytest.fixture(scope="module")
def index():
    return FaqIndex(load_examples(NLU_DIR))


@pytest.fixture
def core():
    return FakeCore()


@pytest.fixture
def fallback(index, core):
    from gateway.faq_fallback import known_cities
    return FaqFallback(index, known_cities(POLICY_DIR), "http://core.test", "core-token", 2.0,
                       transport=httpx.MockTransport(core.handler))


def test_examples_come_from_every_nlu_file_with_annotations_reduced_to_text():
    examples = load_examples(NLU_DIR)
    labels = {label for label, _ in examples}
    assert {"faq/withdraw_rent", "check_balance", "out_of_scope", "greet"} <= labels
    assert not any("](" in text for _, text in examples)


@pytest.mark.parametrize("question, topic", [
    ("租房怎么提取公积金", "faq/withdraw_rent"),
    ("公积金贷款额度最高多少", "faq/loan_limit"),
    ("公积金贷款利率现在是多少", "faq/loan_rate"),
    ("退休了公积金怎么全部取出来", "faq/withdraw_retirement"),
])
def test_clear_faq_questions_find_their_topic(index, question, topic):
    assert decide(index.best(question), Thresholds()) == topic


def test_a_label_must_clearly_win():
    assert decide(Match("faq/withdraw_rent", 20.0, 19.0), Thresholds()) is None
    assert decide(Match("faq/withdraw_rent", 20.0, 10.0), Thresholds()) == "faq/withdraw_rent"
    assert decide(Match("faq/withdraw_rent", 2.0, 0.0), Thresholds()) is None
    assert decide(None, Thresholds()) is None


async def test_the_answer_is_the_cores_text_for_the_topic_and_city_with_the_restarting_note(fallback, core):
    messages = await fallback.answer("在常州租房怎么提取公积金")
    assert messages and messages[0]["text"].startswith(RESTARTING_NOTE)
    assert "答案:withdraw_rent:常州" in messages[0]["text"]
    assert core.calls[0][2] == "Bearer core-token"


async def test_transactions_are_said_to_be_paused_and_chit_chat_is_left_to_the_503(fallback, core):
    assert await fallback.answer("帮我查一下我的公积金账户余额还有多少") == [{"text": TRANSACTIONS_PAUSED}]
    assert await fallback.answer("你好") is None
    assert await fallback.answer("今天股票大盘怎么样") is None
    assert core.calls == []


async def test_core_down_too_means_no_answer(fallback, core):
    core.up = False
    assert await fallback.answer("在常州租房怎么提取公积金") is None


async def test_a_turn_while_rasa_is_down_gets_the_knowledge_base_answer_and_never_reaches_rasa_later(fallback):
    sent = []

    def rasa_down(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        raise httpx.ConnectError("connection refused")

    rasa = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(rasa_down))
    conversation = Conversation(rasa, 2000, fakeredis.FakeAsyncRedis(decode_responses=True), fallback=fallback)
    messages = await conversation.turn("web-1", "租房怎么提取公积金")
    assert "答案:withdraw_rent" in messages[0].text
    with pytest.raises(BotUnavailable):
        await conversation.turn("web-1", "你好")
    assert len(sent) == 2  # each turn was tried on Rasa once, and nothing was queued for it


async def test_an_empty_reply_with_the_action_server_down_also_falls_back(fallback):
    rasa = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[])))

    async def actions_down() -> bool:
        return False

    conversation = Conversation(rasa, 2000, fakeredis.FakeAsyncRedis(decode_responses=True),
                                actions_alive=actions_down, fallback=fallback)
    messages = await conversation.turn("web-1", "公积金贷款额度最高多少")
    assert "答案:loan_limit" in messages[0].text
