"""An online withdrawal application through the gateway on the real stack: pre-check → offer →
amount → declaration and signing code (from the sandbox SMS outbox) → submitted → approved and
paid by the sandbox review rule (3 s in tests), seen by the progress skill; a repeated code makes
no second application; the audit chain verifies after each flow."""
import random
import re
import sqlite3
import subprocess
import time

import httpx
import pytest

import material_images as mi
from citizens import Citizens

pytestmark = pytest.mark.integration
CITIZENS: dict[str, Citizens] = {}

# Demo persons no other test verifies (the core allows a person five codes per 15 minutes).
RENTER = ("32040219970505339X", "尤红清")        # fund/DEMO_PERSONS.md #28: rent (lease on record), 免提交
LEFT_JOB = ("320402198807078577", "周蓉嘉")      # #22: leave_job, proof of termination to upload


def citizens(stack) -> Citizens:
    return CITIZENS.setdefault(stack.urls["gateway"], Citizens(stack.urls["gateway"]))


def say_all(stack, sender: str, text: str) -> list[dict]:
    return citizens(stack).say(sender, text)


def say(stack, sender: str, text: str) -> str:
    return "\n".join(m.get("text") or "" for m in say_all(stack, sender, text))


def latest_sms(stack) -> dict:
    resp = httpx.get(f"{stack.urls['core']}/dev/outbox", params={"limit": 1}, timeout=10,
                     headers={"Authorization": f"Bearer {stack.core_token}"})
    return resp.json()["messages"][0]


def verify(stack, sender: str, person: tuple[str, str], opening: str) -> str:
    id_number, name = person
    assert "身份证" in say(stack, sender, opening)
    assert "姓名" in say(stack, sender, id_number)
    assert "验证码" in say(stack, sender, name)
    return say(stack, sender, latest_sms(stack)["code"])


def applications(stack, action: str) -> list[tuple]:
    with sqlite3.connect(stack.data_dir / "core.db") as db:
        return db.execute("SELECT subject, outcome FROM audit_records WHERE action = ?", (action,)).fetchall()


def assert_audit_chain_verifies(stack) -> None:
    verify_run = subprocess.run([str(stack.app_venv / "bin" / "python"), "-m", "fund.audit", "verify",
                                 "--database-url", f"sqlite:///{stack.data_dir / 'core.db'}"],
                                capture_output=True, text=True, timeout=60, env=stack.environment())
    assert verify_run.returncode == 0, verify_run.stdout + verify_run.stderr


def test_a_complete_rent_application_from_precheck_to_paid(stack):
    sender = "it-apply-rent"
    reply = verify(stack, sender, RENTER, "我租房，能提取多少公积金")
    assert "租房提取" in reply and "在线申请" in reply

    offer = say(stack, sender, "在线申请")
    assert "最多可提取" in offer and re.search(r"\d{4} \*{4} \*{4} \d{4}", offer) and "无需上传" in offer
    assert "金额" in offer

    assert "不能超过" in say(stack, sender, "一千万")
    before = len(applications(stack, "application.submit"))
    signing = say(stack, sender, "三千元")
    assert "承诺书" in signing and "3,000.00 元" in signing and "签名验证码" in signing
    sms = latest_sms(stack)
    assert "3000" in sms["text"] or "3,000" in sms["text"]

    submitted = say(stack, sender, sms["code"])
    assert "申请已提交" in submitted and "TQ" in submitted and "无需上传" in submitted
    number = next(word for word in submitted.replace("，", " ").replace("。", " ").split() if word.startswith("TQ"))
    assert len(applications(stack, "application.submit")) == before + 1

    # The same code again makes nothing: the form is over and the code is spent.
    say(stack, sender, sms["code"])
    assert len(applications(stack, "application.submit")) == before + 1

    # The sandbox rule approves and pays it (3 s each here); the progress skill shows it by number.
    deadline, status = time.monotonic() + 60, ""
    while time.monotonic() < deadline and status != "paid":
        time.sleep(2)
        status = httpx.get(f"{stack.urls['core']}/review/applications/{number}", timeout=10,
                           headers={"Authorization": f"Bearer {stack.reviewer_token}", "X-Staff-Id": "it"}).json()["status"]
    assert status == "paid"
    progress = say(stack, sender, "我的申请办到哪一步了")
    own = next(part for part in progress.split("租房提取") if number in part)
    assert "已到账" in own and "3,000.00" in own
    assert_audit_chain_verifies(stack)


def test_an_application_with_materials_to_upload_offers_the_upload_and_can_be_cancelled_before(stack):
    sender = "it-apply-upload"
    verify(stack, sender, LEFT_JOB, "我离职了，公积金能取多少")
    messages = say_all(stack, sender, "在线申请离职提取")
    text = "\n".join(m.get("text") or "" for m in messages)
    assert "需要上传" in text and "解除或终止劳动关系证明" in text

    # Cancelling before signing makes nothing.
    before = len(applications(stack, "application.submit"))
    assert "已放弃" in say(stack, sender, "取消")
    assert len(applications(stack, "application.submit")) == before

    say(stack, sender, "在线申请离职提取")
    say(stack, sender, "全部")
    done = say_all(stack, sender, latest_sms(stack)["code"])
    uploads = [m["custom"]["upload"] for m in done if (m.get("custom") or {}).get("upload")]
    assert uploads and uploads[0]["application_id"].startswith("TQ")
    assert [i["name"] for i in uploads[0]["items"]] == ["解除或终止劳动关系证明"]
    assert len(applications(stack, "application.submit")) == before + 1

    # Uploads through the gateway with the chat session and the upload token: a certificate naming
    # someone else is refused; the citizen's own is read by OCR and kept for the reviewer.
    grant, key = uploads[0], uploads[0]["items"][0]["key"]

    def upload(document) -> httpx.Response:
        return httpx.post(f"{stack.urls['gateway']}/api/uploads/{grant['application_id']}/{key}",
                          headers={**citizens(stack).headers(sender), "X-Upload-Token": grant["token"]},
                          files={"file": ("proof.jpg", document.jpeg(88), "image/jpeg")}, timeout=120)

    stranger = upload(mi.certificate(random.Random(5), name=RENTER[1], id_number=RENTER[0]))
    assert stranger.status_code == 422 and stranger.json()["detail"]["code"] == "id_number_mismatch"
    own = upload(mi.certificate(random.Random(6), name=LEFT_JOB[1], id_number=LEFT_JOB[0]))
    assert own.status_code == 200, own.text
    assert own.json()["status"] in ("accepted", "needs_review") and own.json()["remaining"] == []
    staff_view = httpx.get(f"{stack.urls['core']}/review/applications/{grant['application_id']}", timeout=10,
                           headers={"Authorization": f"Bearer {stack.reviewer_token}", "X-Staff-Id": "it"}).json()
    stored = [u for u in staff_view["uploads"] if u["key"] == key][0]
    assert len(stored["sha256"]) == 64 and LEFT_JOB[0] not in str(staff_view)

    # Before review the citizen can withdraw it: the progress skill offers a button.
    number = uploads[0]["application_id"]
    progress = say_all(stack, sender, "查一下我的申请进度")
    payloads = [b["payload"] for m in progress for b in m.get("buttons") or []]
    assert f'/cancel_application{{"application_id": "{number}"}}' in payloads
    assert f"已撤销申请 {number}" in say(stack, sender, f'/cancel_application{{"application_id": "{number}"}}')
    assert [row for row in applications(stack, "application.cancelled") if number in row[1]]
    assert_audit_chain_verifies(stack)
