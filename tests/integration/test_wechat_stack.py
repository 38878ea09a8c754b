"""WeChat on the real stack, with the gateway pointed at a local WeChat API simulator: the callback
(URL verification, safe-mode XML answered once through custom/send, token refresh), the
mini-program (login code -> verified balance -> bound openid on the next login -> 解除绑定) and the
video handoff from a pushed "转人工" (card to the video page, staff joining and writing, the end).
Staff hours are always open for this module."""
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from gateway.settings import DEV_STAFF_ACCOUNTS
from gateway.wechat.relay import ACCEPTED_TEXT
from gateway.wechat.video import VIDEO_PAGE
from gateway_restarts import ALWAYS_OPEN, gateway_with
from stack import free_port
from wechat_simulator import AES_KEY, TOKEN, SimulatorServer, WeChatSimulator, message_fields, push_body, signature

pytestmark = pytest.mark.integration
RENTER = ("340503199607026801", "水悦华")   # fund/DEMO_PERSONS.md #2: no demo openid, so no other test loses one


@pytest.fixture(scope="module")
def wx(stack):
    sim = WeChatSimulator()
    with SimulatorServer(sim, free_port()) as server, \
            gateway_with(stack, {**ALWAYS_OPEN, "HANDOFF_STAFF_JOIN_TIMEOUT_S": "600", "WECHAT_API_BASE": server.url,
                                 "WECHAT_AES_KEY": AES_KEY, "WECHAT_MSG_FORMAT": "xml"}):
        yield stack, sim


def wait_for(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def push(stack, fields):
    query, body = push_body(fields, "xml", AES_KEY)
    started = time.monotonic()
    resp = httpx.post(f"{stack.urls['gateway']}/wechat/callback", params=query, content=body, timeout=10)
    return resp, time.monotonic() - started


def test_url_verification(wx):
    stack, _ = wx
    ts = str(int(time.time()))
    query = {"signature": signature(TOKEN, ts, "n9"), "timestamp": ts, "nonce": "n9", "echostr": "echo-42"}
    assert httpx.get(f"{stack.urls['gateway']}/wechat/callback", params=query, timeout=10).text == "echo-42"
    assert httpx.get(f"{stack.urls['gateway']}/wechat/callback", params={**query, "nonce": "x"},
                     timeout=10).status_code == 403


def test_a_safe_mode_message_pushed_three_times_is_answered_once_and_success_comes_at_once(wx):
    stack, sim = wx
    fields = message_fields("o_it_push", "租房可以提取公积金吗", msg_id=880001)
    for _ in range(3):
        resp, elapsed = push(stack, fields)
        assert resp.status_code == 200 and resp.text == "success"
        assert elapsed < 1.0   # the bot's turn takes longer: the answer is not waited for
    assert wait_for(lambda: len(sim.sent("o_it_push")) >= 1)
    time.sleep(3)
    assert len(sim.sent("o_it_push")) == 1
    assert "租房" in sim.sent("o_it_push")[0]["text"]["content"]


def test_an_expired_access_token_is_refreshed_and_the_message_still_delivered(wx):
    stack, sim = wx
    push(stack, message_fields("o_it_token", "你好", msg_id=880002))
    assert wait_for(lambda: len(sim.sent("o_it_token")) == 1)
    tokens = sim.count("/cgi-bin/token")
    sim.expire_tokens()
    push(stack, message_fields("o_it_token", "公积金贷款额度怎么算", msg_id=880003))
    assert wait_for(lambda: len(sim.sent("o_it_token")) == 2)
    assert sim.count("/cgi-bin/token") == tokens + 1


class MiniProgram:
    def __init__(self, stack, sim, openid):
        self.base = stack.urls["gateway"]
        resp = httpx.post(f"{self.base}/api/wx/login", json={"code": sim.login_code(openid)}, timeout=10)
        assert resp.status_code == 200, resp.text
        self.token = resp.json()["token"]

    def say(self, text):
        resp = httpx.post(f"{self.base}/api/wx/chat", json={"text": text}, timeout=60,
                          headers={"Authorization": f"Bearer {self.token}"})
        assert resp.status_code == 200, resp.text
        self.token = resp.json().get("token", self.token)
        return "\n".join(m.get("text") or "" for m in resp.json()["messages"])


def latest_code(stack):
    resp = httpx.get(f"{stack.urls['core']}/dev/outbox", params={"limit": 1}, timeout=10,
                     headers={"Authorization": f"Bearer {stack.core_token}"})
    return resp.json()["messages"][0]["code"]


def test_mini_program_login_verify_bind_login_again_and_unbind(wx):
    stack, sim = wx
    refused = httpx.post(f"{stack.urls['gateway']}/api/wx/login", json={"code": "made-up"}, timeout=10)
    assert refused.status_code == 401 and "登录凭证" in refused.json()["detail"]
    first = MiniProgram(stack, sim, "o_it_mini")
    assert "身份证" in first.say("帮我查一下我的公积金余额")
    assert "姓名" in first.say(RENTER[0])
    assert "验证码" in first.say(RENTER[1])
    reply = first.say(latest_code(stack))
    assert "身份验证成功" in reply and "余额" in reply

    second = MiniProgram(stack, sim, "o_it_mini")   # the same WeChat user opens the mini-program again
    reply = second.say("查一下我的公积金余额")
    assert "余额" in reply and "身份证" not in reply

    assert "已解除" in second.say("解除绑定")
    assert "身份证" in second.say("查一下我的公积金余额")
    third = MiniProgram(stack, sim, "o_it_mini")
    assert "身份证" in third.say("查一下我的公积金余额")


def staff_client(stack) -> httpx.Client:
    account = DEV_STAFF_ACCOUNTS[0]
    resp = httpx.post(f"{stack.urls['gateway']}/api/staff/login", timeout=10, json={
        "username": account.username, "password": "dev-staff-pass",
        "totp": pyotp.TOTP(account.totp_secret.get_secret_value()).now()})
    assert resp.status_code == 200, resp.text
    return httpx.Client(base_url=stack.urls["gateway"], timeout=15,
                        headers={"Authorization": f"Bearer {resp.json()['token']}"})


def test_a_pushed_request_for_a_person_gets_the_video_card_then_staff_and_the_end(wx):
    stack, sim = wx
    openid = "o_it_video"
    texts = lambda: [m["text"]["content"] for m in sim.sent(openid) if m["msgtype"] == "text"]   # noqa: E731
    cards = lambda: [m for m in sim.sent(openid) if m["msgtype"] == "miniprogrampage"]   # noqa: E731
    resp, elapsed = push(stack, message_fields(openid, "转人工", msg_id=880010))
    assert resp.text == "success" and elapsed < 1.0
    assert wait_for(lambda: cards()), sim.sent(openid)
    page = urlsplit(cards()[0]["miniprogrampage"]["pagepath"])
    assert page.path == VIDEO_PAGE and "前面还有" in texts()[0]
    ticket_id = parse_qs(page.query)["ticket"][0]
    assert httpx.get(f"{stack.urls['gateway']}/wx/video", timeout=10).status_code == 200

    with staff_client(stack) as staff:
        assert staff.post(f"/api/staff/tickets/{ticket_id}/accept").status_code == 200
        assert wait_for(lambda: ACCEPTED_TEXT in texts()[-1], timeout=20), texts()
        staff.post(f"/api/staff/tickets/{ticket_id}/messages", json={"text": "我来帮您看看"})
        assert wait_for(lambda: texts()[-1] == "工作人员：我来帮您看看", timeout=20), texts()
        push(stack, message_fields(openid, "我的提取申请卡住了", msg_id=880011))

        def staff_reads_it():
            items = staff.get(f"/api/staff/tickets/{ticket_id}/messages").json()["messages"]
            return [m["text"] for m in items if m["from"] == "citizen"] == ["我的提取申请卡住了"]
        assert wait_for(staff_reads_it, timeout=20)
        told = len(sim.sent(openid))
        end = staff.post(f"/api/staff/tickets/{ticket_id}/end",
                         json={"note": "市民不熟悉流程", "summary": "已指导完成租房提取"})
        assert end.status_code == 200
    assert wait_for(lambda: "已指导完成租房提取" in texts()[-1], timeout=20), texts()
    time.sleep(2)
    assert len(sim.sent(openid)) == told + 1   # the bot said nothing to the citizen's words to staff
    assert "市民不熟悉流程" not in "".join(texts())
