"""Each dependency stopped in turn on the real stack: citizens and staff get the Chinese 503 (never a
bare 500 or a hang) on every path, and everything works again once it is back, with nothing lost."""
import json

import httpx
import pyotp
import pytest
from websockets.sync.client import connect

from citizens import Citizens, texts
from gateway.settings import DEV_STAFF_ACCOUNTS

pytestmark = pytest.mark.integration
UNAVAILABLE = "12329"  # every unavailable message names the hotline as the way to a person


def staff_login(stack) -> httpx.Response:
    account = DEV_STAFF_ACCOUNTS[0]
    return httpx.post(f"{stack.urls['gateway']}/api/staff/login", timeout=20, json={
        "username": account.username, "password": "wrong-on-purpose",
        "totp": pyotp.TOTP(account.totp_secret.get_secret_value()).now()})


def assert_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert UNAVAILABLE in resp.json()["detail"] and resp.headers.get("retry-after")


def test_redis_down_is_a_503_everywhere_and_the_conversation_survives_its_restart(stack):
    citizens = Citizens(stack.urls["gateway"])
    assert "连续足额缴存" in texts(citizens.say("through-redis", "租房怎么提取公积金"))
    token = citizens.tokens["through-redis"]
    gateway = stack.urls["gateway"]
    stack.kill_one("redis")
    try:
        assert_unavailable(citizens.post("through-redis", "常州呢", timeout=30))
        assert_unavailable(httpx.post(f"{gateway}/api/session", timeout=30))
        assert_unavailable(staff_login(stack))
        assert_unavailable(httpx.post(f"{gateway}/api/handoff", json={}, timeout=30,
                                      headers={"Authorization": f"Bearer {token}"}))
        with connect(gateway.replace("http", "ws") + "/ws/chat", open_timeout=10,
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            frame = json.loads(ws.recv(timeout=20))
            assert UNAVAILABLE in frame["error"] and frame["retry"] is True
        assert httpx.get(f"{gateway}/healthz", timeout=10).status_code == 200
        ready = httpx.get(f"{gateway}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
    finally:
        stack.start_one("redis")
    # AOF kept the session and Rasa's tracker: the follow-up still knows the topic.
    answer = texts(citizens.say("through-redis", "常州呢"))
    assert "【常州】" in answer and "租房" in answer


def test_action_server_down_faq_answers_come_from_the_knowledge_base_and_it_recovers(stack):
    citizens = Citizens(stack.urls["gateway"])
    stack.kill_one("actions")
    try:
        answer = texts(citizens.say("without-actions", "租房怎么提取公积金", timeout=60))
        assert "知识库" in answer and "连续足额缴存" in answer and UNAVAILABLE in answer
    finally:
        stack.start_one("actions")
    answer = texts(citizens.say("without-actions", "租房怎么提取公积金"))
    assert "连续足额缴存" in answer and "知识库" not in answer  # the bot itself again


def test_core_down_the_bot_says_so_instead_of_answering_and_recovers(stack):
    citizens = Citizens(stack.urls["gateway"])
    stack.kill_one("core")
    try:
        answer = texts(citizens.say("without-core", "租房怎么提取公积金"))
        assert "暂时无法访问" in answer and UNAVAILABLE in answer  # no stale policy facts from memory
    finally:
        stack.start_one("core")
    assert "连续足额缴存" in texts(citizens.say("without-core", "租房怎么提取公积金"))
