"""The real stack (redis-server, trained model, action server, core, gateway) over HTTP and WebSocket."""
import json

import httpx
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.integration


def say(stack, sender: str, text: str) -> list[dict]:
    resp = httpx.post(f"{stack.urls['gateway']}/api/chat", json={"sender_id": sender, "text": text}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["messages"]


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def test_ready_when_every_dependency_answers(stack):
    resp = httpx.get(f"{stack.urls['gateway']}/readyz", timeout=10)
    assert resp.status_code == 200
    assert set(resp.json()["checks"].values()) == {"ok"}


def test_greeting_and_an_faq_answer_from_the_knowledge_base(stack):
    assert "公积金" in texts(say(stack, "it-faq", "你好"))
    answer = texts(say(stack, "it-faq", "现在公积金贷款利率是多少"))
    assert "2.60%" in answer and "3.075%" in answer  # policy_facts.md, rates from 2025-05-08
    assert "以当地公积金中心最新公告为准" in answer


def test_traditional_characters_get_the_same_answer(stack):
    answer = texts(say(stack, "it-trad", "公積金貸款利率是多少"))
    assert "2.60%" in answer


def test_a_which_topic_button_gets_that_topics_answer(stack):
    """The bot offers buttons when unsure of the topic; their payload must reach the answer."""
    answer = texts(say(stack, "it-button", '/faq{"faq_topic": "withdraw_rent"}'))
    assert "租房" in answer and "以当地公积金中心最新公告为准" in answer


def test_off_topic_questions_are_declined_not_answered(stack):
    answer = texts(say(stack, "it-oos", "今天天气怎么样"))
    assert "不属于住房公积金业务" in answer


def test_websocket_chat(stack):
    url = stack.urls["gateway"].replace("http", "ws") + "/ws/chat?sender_id=it-ws"
    with connect(url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"sender_id": "it-ws"}
        ws.send(json.dumps({"text": "租房可以提取公积金吗"}))
        frame = json.loads(ws.recv(timeout=30))
        assert "连续足额缴存" in texts(frame["messages"])


def test_rasa_restart_keeps_the_conversation_and_the_gateway_recovers(stack):
    sender = "it-restart"
    assert "连续足额缴存" in texts(say(stack, sender, "租房怎么提取公积金"))

    stack.kill_one("rasa")  # as a crash would
    resp = httpx.post(f"{stack.urls['gateway']}/api/chat", json={"sender_id": sender, "text": "你好"}, timeout=30)
    assert resp.status_code == 503 and "12329" in resp.json()["detail"]
    assert httpx.get(f"{stack.urls['gateway']}/healthz").status_code == 200
    ready = httpx.get(f"{stack.urls['gateway']}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"]["rasa"] == "unavailable"

    stack.start_one("rasa")
    # The follow-up only makes sense with the remembered topic from before the crash (Redis tracker).
    answer = texts(say(stack, sender, "常州呢"))
    assert "【常州】" in answer and "租房" in answer

    events = httpx.get(f"{stack.urls['rasa']}/conversations/{sender}/tracker",
                       params={"token": stack.rasa_token}, timeout=10).json()["events"]
    user_texts = [e.get("text") for e in events if e["event"] == "user"]
    assert user_texts[:1] == ["租房怎么提取公积金"] and "常州呢" in user_texts
