"""A reviewer decides an online application in the console's API on the real stack, and the citizen's
web chat is told: an application made through the core's API (login and signing codes from the sandbox
outbox) from a web session's sender id; the reviewer logs in through the gateway (plain staff may not
review), rejects with a reason; the notice reaches the web chat (GET /api/notices) and its Rasa
conversation, the same text went out by SMS, and the audit chain (core and gateway records) verifies."""
import sqlite3
import time

import httpx
import pytest

from citizens import sender_id_of
from review_applicants import assert_audit_chain_verifies, core_client, staff_login, submitted_application

pytestmark = pytest.mark.integration
BUYER = ("340503199310105429", "沈华嘉")   # fund/DEMO_PERSONS.md #12: purchase, invoice to upload (waits for review)
REASON = "购房发票与网签备案信息不一致，请补充付款凭证后重新申请"


def wait_for_notices(citizen: httpx.Client, seconds: float = 45) -> list[dict]:
    deadline, found = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        response = citizen.get("/api/notices")
        assert response.status_code == 200, response.text
        found += response.json()["notices"]
        if any(n["status"] == "rejected" for n in found):
            return found
        time.sleep(1)
    raise AssertionError(f"no rejection notice within {seconds} s: {found}")


def test_a_reviewer_rejects_with_a_reason_and_the_web_citizen_is_told(stack):
    gateway = stack.urls["gateway"]
    with httpx.Client(base_url=gateway, timeout=20) as citizen:
        assert citizen.post("/api/session/web").status_code == 200      # the widget's cookie session
        sender = sender_id_of(stack, citizen.cookies["anju_session"])
        assert sender.startswith("web-")
        app = submitted_application(stack, BUYER, "purchase", 30000, channel_ref=sender)
        assert app["status"] == "submitted" and not app["complete"]

        staff = staff_login(stack, "dev-staff", "dev-staff-pass")
        refused = httpx.get(f"{gateway}/api/staff/review/applications", headers=staff, timeout=20)
        assert refused.status_code == 403 and "审核人员" in refused.json()["detail"]

        reviewer = staff_login(stack)
        listed = httpx.get(f"{gateway}/api/staff/review/applications", headers=reviewer, timeout=20).json()
        mine = next(a for a in listed["applications"] if a["id"] == app["id"])
        assert mine["channel"] == "网页" and "channel_ref" not in mine
        assert mine["person"]["id_masked"] == "340***********5429" and mine["materials"]["to_upload"]

        too_short = httpx.post(f"{gateway}/api/staff/review/applications/{app['id']}/reject", headers=reviewer,
                               json={"reason": "否"}, timeout=20)
        assert too_short.status_code == 422
        rejected = httpx.post(f"{gateway}/api/staff/review/applications/{app['id']}/reject", headers=reviewer,
                              json={"reason": REASON}, timeout=20)
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == REASON
        again = httpx.post(f"{gateway}/api/staff/review/applications/{app['id']}/approve", headers=reviewer,
                           timeout=20)
        assert again.status_code == 409 and again.json()["detail"].startswith("该申请已被处理，当前状态：未通过")

        told = wait_for_notices(citizen)         # delivered by the gateway's notice task (NOTICE_POLL_S = 5)
        assert [n["status"] for n in told] == ["submitted", "under_review", "rejected"]
        text = told[-1]["text"]
        assert text.startswith(f"您的购房提取申请 {app['id']} 未通过，原因：{REASON}。")
        assert citizen.get("/api/notices").json()["notices"] == []          # handed over once

    tracker = httpx.get(f"{stack.urls['rasa']}/conversations/{sender}/tracker", params={"token": stack.rasa_token},
                        timeout=20).json()
    assert text in [e.get("text") for e in tracker["events"] if e.get("event") == "bot"]
    with core_client(stack) as core:
        sms = core.get("/dev/outbox", params={"kind": "notice", "limit": 50}).json()["messages"]
    assert "【住房公积金】" + text in [m["text"] for m in sms]

    with sqlite3.connect(stack.data_dir / "core.db") as db:
        actions = {a for (a,) in db.execute("SELECT action FROM audit_records WHERE subject = ? OR outcome LIKE ?",
                                            (app["id"], f"{app['id']}%"))}
    assert {"review.reject", "application.rejected", "application.submit"} <= actions
    assert_audit_chain_verifies(stack)

