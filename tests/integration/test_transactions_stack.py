"""Transactions through the gateway on the real stack: verification with a one-time code from
the sandbox's SMS outbox, then the citizen's own data; ID numbers never reach Rasa's tracker."""
import json

import httpx
import pytest

from citizens import Citizens, sender_id_of

pytestmark = pytest.mark.integration
CITIZENS: dict[str, Citizens] = {}

RENTER = ("320402199403120454", "韦娜伟")   # fund/DEMO_PERSONS.md #1: renter in 常州
FROZEN = ("32040219840606609X", "魏红霞")   # #26: frozen account


def citizens(stack) -> Citizens:
    return CITIZENS.setdefault(stack.urls["gateway"], Citizens(stack.urls["gateway"]))


def say(stack, sender: str, text: str) -> str:
    return "\n".join(m.get("text") or "" for m in citizens(stack).say(sender, text))


def latest_code(stack) -> str:
    resp = httpx.get(f"{stack.urls['core']}/dev/outbox", params={"limit": 1}, timeout=10,
                     headers={"Authorization": f"Bearer {stack.core_token}"})
    return resp.json()["messages"][0]["code"]


def verify(stack, sender: str, person: tuple[str, str], opening: str) -> str:
    id_number, name = person
    assert "身份证" in say(stack, sender, opening)
    assert "姓名" in say(stack, sender, id_number)
    assert "验证码" in say(stack, sender, name)
    return say(stack, sender, latest_code(stack))


def test_balance_after_verification_shows_masked_data_and_rasa_never_sees_the_id(stack):
    sender = "it-tx-balance"
    before = citizens(stack).headers(sender)
    reply = verify(stack, sender, RENTER, "帮我查一下我的公积金余额")
    assert "身份验证成功" in reply
    assert citizens(stack).headers(sender) != before  # the session was rotated on verification
    assert "余额" in reply and "元" in reply
    assert "320***********0454" in reply and RENTER[0] not in reply
    sender_id = sender_id_of(stack, citizens(stack).tokens[sender])
    tracker = httpx.get(f"{stack.urls['rasa']}/conversations/{sender_id}/tracker",
                        params={"token": stack.rasa_token}, timeout=10).json()
    assert RENTER[0] not in json.dumps(tracker, ensure_ascii=False)

    # Verified once: the next transaction needs no new code.
    assert "身份证" not in say(stack, sender, "我的申请办到哪一步了")


def test_wrong_checksum_and_wrong_code_get_clear_prompts(stack):
    sender = "it-tx-wrong"
    say(stack, sender, "查余额")
    wrong = RENTER[0][:17] + ("5" if RENTER[0][17] != "5" else "6")
    # Rasa only ever sees a token; the core checks the checksum as soon as the ID is typed.
    reply = say(stack, sender, wrong)
    assert "校验" in reply and "姓名" not in reply
    assert "姓名" in say(stack, sender, RENTER[0])
    assert "验证码" in say(stack, sender, RENTER[1])
    code = latest_code(stack)
    bad = "000000" if code != "000000" else "111111"
    assert "还可以" in say(stack, sender, bad)
    assert "身份验证成功" in say(stack, sender, code)


def test_frozen_account_is_told_why_nothing_can_be_withdrawn(stack):
    reply = verify(stack, "it-tx-frozen", FROZEN, "我现在能提取公积金吗")
    assert "冻结" in reply
