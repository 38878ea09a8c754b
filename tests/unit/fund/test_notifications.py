"""Citizen notices of online applications: one outbox row and one SMS per status change, written
in the change's own transaction (the sandbox review rule's steps included), read by the gateway
through GET /notifications."""
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from fund import notifications
from fund.db import make_engine
from fund.models import Notification, Person, SmsOutbox

REVIEWER = {"Authorization": "Bearer dev-reviewer-token", "X-Staff-Id": "r007"}


@pytest.fixture
def client(make_client):
    """The review rule's delays stated here, whatever the environment sets (the stack's tests use 3 s)."""
    with make_client(core_auto_approve_s=120, core_auto_pay_s=300) as test_client:
        yield test_client


def last_code(client):
    return client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]


def login(client, person, channel_ref="web-5f3a9c"):
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": channel_ref})
    assert started.status_code == 201, started.text
    verified = client.post(f"/identity/challenges/{started.json()['challenge_id']}/verify",
                           json={"code": last_code(client)})
    return verified.json()["person_ref"]


def apply(client, ref, kind, amount, key):
    started = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": kind, "amount": amount})
    assert started.status_code == 201, started.text
    response = client.post("/applications", json={"person_ref": ref, "kind": kind, "amount": amount,
                                                  "idempotency_key": key, "challenge_id": started.json()["challenge_id"],
                                                  "code": last_code(client)})
    assert response.status_code == 201, response.text
    return response.json()


def notices(client, after=0, **params):
    response = client.get("/notifications", params={"after": after, **params})
    assert response.status_code == 200, response.text
    return response.json()["notifications"]


def sms_texts(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [t for (t,) in conn.execute(select(SmsOutbox.text).where(SmsOutbox.code == "")
                                               .order_by(SmsOutbox.id))]
    finally:
        engine.dispose()


def notice_count(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Notification))
    finally:
        engine.dispose()


def test_a_free_application_tells_the_citizen_each_step_without_anyone_reading_it(client, demo, clock, db_url):
    ref = login(client, demo["renter_mas"])
    app = apply(client, ref, "rent", 3000, "notice-free-0001")
    [submitted] = notices(client)
    assert submitted["application"] == app["id"] and submitted["channel_ref"] == "web-5f3a9c"
    assert submitted["status"] == "submitted" and submitted["openid"] is None
    assert submitted["text"] == f"您的租房提取申请 {app['id']} 已提交，提取金额 3,000.00 元。材料齐全，将尽快审核。"

    clock.advance(seconds=121)                  # the lazy rule runs on this read: nobody opened the application
    steps = notices(client, after=submitted["id"])
    assert [n["status"] for n in steps] == ["under_review", "approved"]
    tail = app["signature"]["card_masked"][-4:]
    assert steps[1]["text"].startswith(f"您的租房提取申请 {app['id']} 已审批通过，资金将在11月23日前到账")
    assert f"（尾号{tail}）" in steps[1]["text"]
    clock.advance(seconds=300)
    [paid] = notices(client, after=steps[-1]["id"])
    assert paid["status"] == "paid" and "3,000.00 元已转入您登记的银行卡" in paid["text"]
    assert notices(client, after=paid["id"]) == []
    assert sms_texts(db_url) == ["【住房公积金】" + n["text"] for n in [submitted, *steps, paid]]


def test_a_rejection_carries_the_reason_and_a_cancellation_is_told_too(client, demo, db_url):
    ref = login(client, demo["buyer_hukou_city"], channel_ref="voice-77aa01")
    app = apply(client, ref, "purchase", 50000, "notice-reject-01")
    rejected = client.post(f"/review/applications/{app['id']}/reject", headers=REVIEWER,
                           json={"reason": "购房发票金额与网签合同不符"})
    assert rejected.status_code == 200
    told = notices(client)
    assert [n["status"] for n in told] == ["submitted", "under_review", "rejected"]
    assert told[-1]["text"].startswith(f"您的购房提取申请 {app['id']} 未通过，原因：购房发票金额与网签合同不符。")
    assert all(n["channel_ref"] == "voice-77aa01" for n in told)
    assert sms_texts(db_url)[-1] == "【住房公积金】" + told[-1]["text"]   # a hotline caller reads it by SMS
    [sms] = client.get("/dev/outbox", params={"kind": "notice", "limit": 1}).json()["messages"]
    assert sms["text"] == "【住房公积金】" + told[-1]["text"] and sms["kind"] == "notice"
    assert client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["kind"] == "code"

    left = login(client, demo["left_job_local"])
    mine = apply(client, left, "leave_job", 3000, "notice-cancel-01")
    assert client.post(f"/applications/{mine['id']}/cancel", json={"person_ref": left}).status_code == 200
    last = notices(client, after=told[-1]["id"])
    assert [n["status"] for n in last] == ["submitted", "cancelled"]
    assert last[-1]["text"] == f"您的离职提取申请 {mine['id']} 已撤销。如需办理，可以重新申请。"


def test_wechat_notices_carry_the_bound_openid_and_the_cursor_pages(client, demo, db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id_number == demo["renter_mas"].id_number)
                     .values(wechat_openid="o_notice_test_openid"))
    engine.dispose()
    ref = login(client, demo["renter_mas"], channel_ref="wxmsg-0c1d2e")
    apply(client, ref, "rent", 1000, "notice-wechat-01")
    web = login(client, demo["left_job_local"])
    apply(client, web, "leave_job", 2000, "notice-web-0001")
    first, second = notices(client)
    assert first["openid"] == "o_notice_test_openid" and second["openid"] is None   # web notices never carry it
    assert notices(client, limit=1) == [first] and notices(client, after=first["id"]) == [second]
    assert TestClient(client.app).get("/notifications").status_code == 401          # the core token is needed
    assert client.get("/notifications", params={"limit": 101}).status_code == 422


def test_a_failed_step_leaves_no_notice(client, demo, clock, db_url, monkeypatch):
    ref = login(client, demo["buyer_hukou_city"])
    app = apply(client, ref, "purchase", 40000, "notice-fail-0001")
    before = notice_count(db_url)
    audit_log = client.app.state.core.audit
    real_append = audit_log.append_in

    def failing(session, **fields):
        if fields["action"] == "application.rejected":     # after under_review and its notice were written
            raise OperationalError("INSERT INTO audit_records", {}, Exception("disk I/O error"))
        return real_append(session, **fields)

    monkeypatch.setattr(audit_log, "append_in", failing)
    broken = TestClient(client.app, raise_server_exceptions=False, headers=dict(client.headers))
    assert broken.post(f"/review/applications/{app['id']}/reject", headers=REVIEWER,
                       json={"reason": "材料不全"}).status_code == 500
    assert notice_count(db_url) == before
    assert client.get(f"/review/applications/{app['id']}", headers=REVIEWER).json()["status"] == "submitted"
    monkeypatch.setattr(audit_log, "append_in", real_append)

    def no_outbox(*args, **kwargs):
        raise OperationalError("INSERT INTO notifications", {}, Exception("disk full"))

    monkeypatch.setattr(notifications, "record", no_outbox)     # the notice cannot be written: no status change
    assert broken.post(f"/review/applications/{app['id']}/approve", headers=REVIEWER).status_code == 500
    assert client.get(f"/review/applications/{app['id']}", headers=REVIEWER).json()["status"] == "submitted"

    monkeypatch.undo()
    free_ref = login(client, demo["renter_mas"])
    apply_free = apply(client, free_ref, "rent", 800, "notice-fail-0002")
    clock.advance(seconds=121)
    monkeypatch.setattr(notifications, "record", no_outbox)
    assert broken.get("/notifications").status_code == 500   # the lazy rule's step fails with its notice
    monkeypatch.undo()
    free = client.get(f"/applications/{apply_free['id']}", params={"person_ref": free_ref}).json()
    assert free["status"] == "approved"                  # applied now, each step with its notice
    assert [n["status"] for n in notices(client) if n["application"] == free["id"]] == \
        ["submitted", "under_review", "approved"]


@pytest.mark.parametrize("status", ["under_review", "paid", "cancelled"])
def test_every_status_has_a_chinese_text(status):
    app = type("App", (), {"kind": "rent", "number": "TQ1", "amount": 10, "complete": True, "signature": None})()
    assert notifications.notice_text(app, status).startswith("您的租房提取申请 TQ1 ")


def test_only_a_poll_that_hands_out_notices_is_audited(client, demo, db_url):
    from fund.models import AuditRecord

    def polls_audited():
        engine = make_engine(db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(AuditRecord)
                                    .where(AuditRecord.action == "GET /notifications")).scalar_one()
        finally:
            engine.dispose()

    assert notices(client) == [] and notices(client) == []
    assert polls_audited() == 0          # the gateway's empty polls every few seconds leave no trace
    apply(client, login(client, demo["renter_mas"]), "rent", "3000", "poll-audit-0001")
    assert notices(client)
    assert polls_audited() == 1          # notice texts are personal data: that read is audited
