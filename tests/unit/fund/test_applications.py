"""Online withdrawal applications through the core's HTTP API: shared data, signing, the
timeline to payment, and the safety rules (idempotency, one open per kind, amounts, code
purpose, cancellation, reviewer role, nothing half-made). The audit chain verifies after each."""
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from fund import audit
from fund.db import add_missing_columns, create_schema, make_engine
from fund.models import (Account, Application, ApplicationMaterial, ApplicationSignature, ApplicationStep,
                         AuditRecord, OtpChallenge, Person)
from fund.settings import CoreSettings

REVIEWER = {"Authorization": "Bearer dev-reviewer-token", "X-Staff-Id": "r007"}


# --- helpers ----------------------------------------------------------------------------------
def code_of(response):
    return response.json()["detail"]["code"]


def last_code(client):
    return client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]


def login(client, person):
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": "web:a1"})
    assert started.status_code == 201, started.text
    verified = client.post(f"/identity/challenges/{started.json()['challenge_id']}/verify",
                           json={"code": last_code(client)["code"]})
    assert verified.status_code == 200, verified.text
    return verified.json()["person_ref"]


def sign_code(client, ref, kind, amount):
    started = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": kind, "amount": amount})
    assert started.status_code == 201, started.text
    return started.json()["challenge_id"], last_code(client)["code"]


def submit(client, ref, kind, amount, key, challenge_id, code):
    return client.post("/applications", json={"person_ref": ref, "kind": kind, "amount": amount,
                                              "idempotency_key": key, "challenge_id": challenge_id, "code": code})


def apply(client, ref, kind, amount, key="key-0000-0001"):
    challenge_id, code = sign_code(client, ref, kind, amount)
    response = submit(client, ref, kind, amount, key, challenge_id, code)
    assert response.status_code == 201, response.text
    return response.json()


def chain_ok(db_url, audit_key):
    engine = make_engine(db_url)
    try:
        report = audit.verify(engine, audit_key)
    finally:
        engine.dispose()
    assert report.ok, report.reason
    return report.records


def count(db_url, model, *where):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        engine.dispose()


def online_apps(db_url):
    return count(db_url, Application, Application.amount.is_not(None))


def balance_of(db_url, person):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(Account.balance).join(Person, Person.id == Account.person_id)
                               .where(Person.id_number == person.id_number))
    finally:
        engine.dispose()


# --- shared data and the pre-check --------------------------------------------------------------
@pytest.mark.parametrize("key, kind", [
    ("renter_mas", "rent"), ("recent_buyer_small", "purchase"), ("retired_record", "retirement"),
    ("left_job_8m", "leave_job"), ("illness_cz", "illness"), ("fund_loan", "loan_repayment"),
])
def test_each_free_kind_has_a_demo_person_with_every_material_on_file(client, demo, key, kind):
    ref = login(client, demo[key])
    result = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": kind}).json()["results"][0]
    assert result["eligible"] and result["upload_materials"] == [] and result["max_amount"] > 0


@pytest.mark.parametrize("key, kind, missing", [
    ("renter_cz", "rent", "房屋租赁合同或租赁备案证明"), ("left_job_local", "leave_job", "解除或终止劳动关系证明"),
    ("illness", "illness", "个人负担医疗费用发票"), ("buyer_hukou_city", "purchase", "购房发票或付款凭证"),
])
def test_without_the_shared_record_the_item_must_be_supplied(client, demo, key, kind, missing):
    ref = login(client, demo[key])
    result = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": kind}).json()["results"][0]
    assert result["eligible"] and missing in result["upload_materials"]


def test_amounts_read_the_shared_records(client, demo):
    rent = client.get(f"/persons/{login(client, demo['renter_mas'])}/withdrawal-check",
                      params={"kind": "rent"}).json()["results"][0]
    assert rent["max_amount"] == 1800 * 12                          # twelve months of the registered rent
    illness = client.get(f"/persons/{login(client, demo['illness_cz'])}/withdrawal-check",
                         params={"kind": "illness"}).json()["results"][0]
    assert illness["max_amount"] == 12600 + 8400                     # what the bills say was paid
    no_lease = client.get(f"/persons/{login(client, demo['renter_cz'])}/withdrawal-check",
                          params={"kind": "rent"}).json()["results"][0]
    assert no_lease["max_amount"] is None                            # no number invented


def test_offer_shows_amount_card_fetched_items_and_the_declaration(client, demo):
    ref = login(client, demo["renter_mas"])
    offer = client.get(f"/persons/{ref}/applications/offer", params={"kind": "rent"}).json()
    assert offer["complete"] and offer["max_amount"] == 21600
    assert re.fullmatch(r"62\d\d \*{4} \*{4} \d{4}", offer["card_masked"]) and offer["bank_name"].endswith("银行")
    assert offer["fetched_notice"].startswith("已从共享数据获取：") and "房屋租赁登记备案信息" in offer["fetched_notice"]
    lease = next(m for m in offer["materials"]["fetched"] if "租赁" in m["name"])
    assert "花山区" in lease["summary"] and "1,800.00" in lease["summary"]
    assert "沙箱" in offer["declaration"]["text"]
    assert offer["declaration"]["sha256"] == hashlib.sha256(offer["declaration"]["text"].encode()).hexdigest()
    assert demo["renter_mas"].id_number not in json.dumps(offer, ensure_ascii=False)
    no_money = client.get(f"/persons/{login(client, demo['disabled_renter'])}/applications/offer",
                          params={"kind": "rent"})
    assert no_money.status_code == 409 and code_of(no_money) == "amount_unavailable"


# --- from submission to payment ---------------------------------------------------------------
def test_a_free_application_goes_from_submission_to_paid(client, demo, clock, db_url, audit_key):
    person = demo["renter_mas"]
    ref = login(client, person)
    before = balance_of(db_url, person)
    app = apply(client, ref, "rent", 3000)
    assert app["status"] == "submitted" and app["complete"] and not app["duplicate"] and app["cancellable"]
    assert [s["name"] for s in app["steps"]] == ["提交申请", "审核受理", "审批", "资金到账"]
    assert app["steps"][0]["done_at"] and app["current_step"] == "审核受理"
    assert "房屋租赁登记备案信息" in app["fetched_notice"] and app["materials"]["to_upload"] == []
    records = chain_ok(db_url, audit_key)

    engine = make_engine(db_url)
    with engine.connect() as conn:
        signature = conn.execute(select(ApplicationSignature)).one()
        sign_record = conn.execute(select(AuditRecord).where(AuditRecord.seq == signature.audit_seq)).one()
    engine.dispose()
    record = json.loads(signature.record)
    assert hashlib.sha256(signature.record.encode()).hexdigest() == signature.record_sha256 == app["signature"]["sha256"]
    assert record["amount"] == "3000.00" and record["card"] == app["signature"]["card_masked"]
    assert record["otp_check"]["purpose"] == "sign" and record["declaration"]["sha256"]
    assert sign_record.action == "application.sign" and signature.record_sha256 in sign_record.outcome

    clock.advance(seconds=119)
    waiting = client.get(f"/applications/{app['id']}", params={"person_ref": ref})
    assert waiting.json()["status"] == "submitted", waiting.text
    clock.advance(seconds=2)
    approved = client.get(f"/applications/{app['id']}", params={"person_ref": ref}).json()
    assert approved["status"] == "approved" and approved["steps"][2]["name"] == "审批通过"
    assert approved["steps"][1]["done_at"] == approved["steps"][2]["done_at"]     # stamped when due
    assert chain_ok(db_url, audit_key) > records
    assert balance_of(db_url, person) == before

    clock.advance(seconds=300)
    listing = client.get(f"/persons/{ref}/applications").json()["applications"]
    paid = next(a for a in listing if a["id"] == app["id"])
    assert paid["status"] == "paid" and paid["status_name"] == "已到账" and paid["current_step"] is None
    assert all(s["done_at"] for s in paid["steps"]) and paid["amount"] == 3000
    assert balance_of(db_url, person) == before - Decimal(3000)
    chain_ok(db_url, audit_key)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        actions = [a for (a,) in conn.execute(select(AuditRecord.action).where(AuditRecord.action.like("application.%"))
                                              .order_by(AuditRecord.seq))]
    engine.dispose()
    assert actions == ["application.submit", "application.sign", "application.under_review",
                       "application.approved", "application.paid"]


def test_a_retried_confirmation_returns_the_same_application(client, demo, db_url, audit_key):
    ref = login(client, demo["left_job_8m"])
    challenge_id, code = sign_code(client, ref, "leave_job", 5000)
    first = submit(client, ref, "leave_job", 5000, "confirm-abc-123", challenge_id, code)
    again = submit(client, ref, "leave_job", 5000, "confirm-abc-123", challenge_id, code)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    assert online_apps(db_url) == 1
    other = submit(client, ref, "leave_job", 4000, "confirm-abc-123", challenge_id, code)
    assert other.status_code == 409 and code_of(other) == "idempotency_key_reused"
    someone_else = login(client, demo["renter_mas"])
    stolen = submit(client, someone_else, "leave_job", 5000, "confirm-abc-123", challenge_id, code)
    assert stolen.status_code == 409 and online_apps(db_url) == 1
    chain_ok(db_url, audit_key)


def test_simultaneous_confirmations_make_one_application(client, demo, db_url, audit_key):
    ref = login(client, demo["left_job_8m"])
    challenge_id, code = sign_code(client, ref, "leave_job", 5000)
    service, identity = client.app.state.core.applications, client.app.state.core.identity
    person_id, channel_ref = identity.touch(ref)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: service.submit(person_id, channel_ref, "leave_job", Decimal(5000),
                                                         "double-tap-0001", challenge_id, code), range(4)))
    assert len({r.view["id"] for r in results}) == 1 and sum(not r.duplicate for r in results) == 1
    assert online_apps(db_url) == 1
    chain_ok(db_url, audit_key)


def test_a_second_open_application_of_the_same_kind_is_refused(client, demo, db_url, audit_key):
    ref = login(client, demo["renter_mas"])
    challenge_id, code = sign_code(client, ref, "rent", 1000)
    first = apply(client, ref, "rent", 2000, key="first-key-0001")
    sent = count(db_url, OtpChallenge)
    refused = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": "rent", "amount": 1000})
    assert refused.status_code == 409 and code_of(refused) == "application_open"
    assert refused.json()["detail"]["application_id"] == first["id"] and count(db_url, OtpChallenge) == sent
    second = submit(client, ref, "rent", 1000, "second-key-0002", challenge_id, code)   # a code fetched earlier
    assert second.status_code == 409 and code_of(second) == "application_open" and online_apps(db_url) == 1
    seeded = login(client, demo["recent_buyer_cz"])                      # a seeded purchase in progress
    assert code_of(client.get(f"/persons/{seeded}/applications/offer", params={"kind": "purchase"})) == \
        "application_open"
    chain_ok(db_url, audit_key)


def test_amounts_over_the_maximum_or_the_free_balance_are_refused(client, demo, db_url, audit_key):
    ref = login(client, demo["renter_mas"])
    offer = client.get(f"/persons/{ref}/applications/offer", params={"kind": "rent"}).json()
    sent = count(db_url, OtpChallenge)
    over = client.post("/applications/sign-challenges",
                       json={"person_ref": ref, "kind": "rent", "amount": offer["max_amount"] + 0.01})
    assert over.status_code == 422 and code_of(over) == "amount_over_max"
    assert over.json()["detail"]["max_amount"] == offer["max_amount"] and count(db_url, OtpChallenge) == sent
    challenge_id, code = sign_code(client, ref, "rent", 100)
    bigger = submit(client, ref, "rent", offer["max_amount"] + 1, "over-max-0001", challenge_id, code)
    assert code_of(bigger) == "amount_over_max" and online_apps(db_url) == 0
    assert client.post("/applications/sign-challenges",
                       json={"person_ref": ref, "kind": "rent", "amount": 0}).status_code == 422

    chain_ok(db_url, audit_key)


def test_the_balance_is_checked_again_at_submission(client, demo, db_url, audit_key):
    person = demo["left_job_8m"]
    ref = login(client, person)
    challenge_id, code = sign_code(client, ref, "leave_job", 5000)
    engine = make_engine(db_url)
    with engine.begin() as conn:      # the balance drops between the code and the confirmation
        conn.execute(Account.__table__.update().where(Account.person_id == select(Person.id).where(
            Person.id_number == person.id_number).scalar_subquery()).values(balance=Decimal("4000.00")))
    engine.dispose()
    refused = submit(client, ref, "leave_job", 5000, "late-balance-01", challenge_id, code)
    assert refused.status_code == 409 and code_of(refused) == "insufficient_balance"
    assert refused.json()["detail"]["available"] == 4000 and online_apps(db_url) == 0
    chain_ok(db_url, audit_key)


def test_only_a_fresh_sign_code_for_this_content_can_sign(client, demo, db_url, audit_key):
    person = demo["renter_mas"]
    ref = login(client, person)
    login_start = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                            "channel_ref": "web:a1"}).json()
    login_code = last_code(client)["code"]
    as_signature = submit(client, ref, "rent", 1000, "login-code-0001", login_start["challenge_id"], login_code)
    assert as_signature.status_code == 410 and code_of(as_signature) == "challenge_expired"
    assert online_apps(db_url) == 0

    challenge_id, code = sign_code(client, ref, "rent", 1000)
    assert "租房提取申请（1,000.00元）" in last_code(client)["text"]
    as_login = client.post(f"/identity/challenges/{challenge_id}/verify", json={"code": code})
    assert as_login.status_code == 410                       # a signing code opens no session either
    other_amount = submit(client, ref, "rent", 2000, "mismatch-0001", challenge_id, code)
    assert other_amount.status_code == 409 and code_of(other_amount) == "sign_mismatch"
    wrong = submit(client, ref, "rent", 1000, "wrong-code-0001", challenge_id, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 401 and code_of(wrong) == "wrong_code" and online_apps(db_url) == 0
    assert submit(client, ref, "rent", 1000, "right-code-0001", challenge_id, code).status_code == 201
    used = submit(client, ref, "rent", 1000, "reused-code-001", challenge_id, code)
    assert used.status_code in (409, 410) and online_apps(db_url) == 1
    chain_ok(db_url, audit_key)


# --- cancellation and review ------------------------------------------------------------------
def test_cancel_before_review_and_not_after(client, demo, clock, db_url, audit_key):
    ref = login(client, demo["left_job_local"])               # needs an upload: waits for a reviewer
    app = apply(client, ref, "leave_job", 3000, key="cancel-me-0001")
    assert not app["complete"] and app["materials"]["to_upload"] == ["解除或终止劳动关系证明"]
    cancelled = client.post(f"/applications/{app['id']}/cancel", json={"person_ref": ref})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert [s["name"] for s in cancelled.json()["steps"]] == ["提交申请", "已撤销"]
    assert client.post(f"/applications/{app['id']}/cancel", json={"person_ref": ref}).status_code == 409
    chain_ok(db_url, audit_key)

    again = apply(client, ref, "leave_job", 3000, key="cancel-me-0002")   # a cancelled one is not open
    assert client.post(f"/review/applications/{again['id']}/start", headers=REVIEWER).json()["status"] == "under_review"
    late = client.post(f"/applications/{again['id']}/cancel", json={"person_ref": ref})
    assert late.status_code == 409 and code_of(late) == "not_cancellable"

    free_ref = login(client, demo["renter_mas"])
    free = apply(client, free_ref, "rent", 1000, key="cancel-free-001")
    clock.advance(seconds=121)                                     # the sandbox rule already approved it
    assert code_of(client.post(f"/applications/{free['id']}/cancel", json={"person_ref": free_ref})) == \
        "not_cancellable"
    stranger = login(client, demo["renter_cz"])
    assert client.post(f"/applications/{free['id']}/cancel", json={"person_ref": stranger}).status_code == 404
    chain_ok(db_url, audit_key)


def test_reviewers_approve_or_reject_with_a_reason_and_others_may_not(client, demo, clock, db_url, audit_key):
    ref = login(client, demo["buyer_hukou_city"])
    app = apply(client, ref, "purchase", 50000, key="review-me-0001")
    clock.advance(minutes=14)                                   # long past the sandbox's auto-approval delay
    assert client.get(f"/applications/{app['id']}", params={"person_ref": ref}).json()["status"] == "submitted"

    as_actions = client.post(f"/review/applications/{app['id']}/approve")          # the core token
    assert as_actions.status_code == 403 and code_of(as_actions) == "not_reviewer"
    anonymous = TestClient(client.app).post(f"/review/applications/{app['id']}/approve")
    assert anonymous.status_code == 401
    nameless = client.post(f"/review/applications/{app['id']}/approve",
                           headers={"Authorization": REVIEWER["Authorization"]})
    assert nameless.status_code == 400
    assert client.get("/review/applications", headers={"Authorization": "Bearer dev-reviewer-token",
                                                        "X-Staff-Id": "r007"}).status_code == 200
    queue = client.get("/review/applications", params={"status": "submitted"}, headers=REVIEWER).json()
    listed = next(a for a in queue["applications"] if a["id"] == app["id"])
    assert listed["person"]["id_masked"].count("*") == 11 and listed["materials"]["to_upload"]

    rejected = client.post(f"/review/applications/{app['id']}/reject", headers=REVIEWER,
                           json={"reason": "购房发票金额与网签合同不符"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "购房发票金额与网签合同不符"
    assert [s["name"] for s in rejected.json()["steps"]] == ["提交申请", "审核受理", "审批未通过"]
    mine = client.get(f"/persons/{ref}/applications").json()["applications"][0]
    assert mine["status_name"] == "未通过" and mine["reason"] == "购房发票金额与网签合同不符"
    assert code_of(client.post(f"/review/applications/{app['id']}/approve", headers=REVIEWER)) == "invalid_transition"
    assert client.post(f"/review/applications/{app['id']}/reject", headers=REVIEWER, json={"reason": ""}).status_code == 422
    chain_ok(db_url, audit_key)

    second = apply(client, ref, "purchase", 40000, key="review-me-0002")      # a rejected one is not open
    approved = client.post(f"/review/applications/{second['id']}/approve", headers=REVIEWER)
    assert approved.json()["status"] == "approved"
    clock.advance(seconds=301)
    assert client.get(f"/applications/{second['id']}", params={"person_ref": ref}).json()["status"] == "paid"
    engine = make_engine(db_url)
    with engine.connect() as conn:
        actors = dict(conn.execute(select(AuditRecord.action, AuditRecord.actor)
                                   .where(AuditRecord.action.in_(["application.rejected", "application.paid"]))).all())
        reason = conn.scalar(select(AuditRecord.outcome).where(AuditRecord.action == "application.rejected"))
    engine.dispose()
    assert actors == {"application.rejected": "staff:r007", "application.paid": "sandbox-review"}
    assert "购房发票金额与网签合同不符" in reason
    chain_ok(db_url, audit_key)


# --- nothing half-made ------------------------------------------------------------------------
def test_a_database_failure_mid_submission_leaves_nothing(make_client, demo, db_url, audit_key, monkeypatch):
    with make_client() as client:
        ref = login(client, demo["renter_mas"])
        challenge_id, code = sign_code(client, ref, "rent", 1500)
        records = chain_ok(db_url, audit_key)
        audit_log = client.app.state.core.audit
        real_append = audit_log.append_in

        def failing(session, **fields):
            if fields["action"] == "application.sign":          # after the application, steps and materials
                raise OperationalError("INSERT INTO audit_records", {}, Exception("disk I/O error"))
            return real_append(session, **fields)

        monkeypatch.setattr(audit_log, "append_in", failing)
        failed = TestClient(client.app, raise_server_exceptions=False,
                            headers=dict(client.headers)).post("/applications", json={
                                "person_ref": ref, "kind": "rent", "amount": 1500, "idempotency_key": "fail-0001",
                                "challenge_id": challenge_id, "code": code})
        assert failed.status_code == 500
        assert online_apps(db_url) == 0
        assert count(db_url, ApplicationMaterial) == 0 and count(db_url, ApplicationSignature) == 0
        assert count(db_url, ApplicationStep, ApplicationStep.status.is_not(None)) == 0
        assert count(db_url, AuditRecord, AuditRecord.action.like("application.%")) == 0
        assert count(db_url, OtpChallenge, OtpChallenge.challenge_id == challenge_id, OtpChallenge.used.is_(True)) == 0
        assert chain_ok(db_url, audit_key) >= records
        monkeypatch.setattr(audit_log, "append_in", real_append)
        retried = submit(client, ref, "rent", 1500, "fail-0001", challenge_id, code)   # the same code still works
        assert retried.status_code == 201 and online_apps(db_url) == 1
        chain_ok(db_url, audit_key)


# --- settings and schema ----------------------------------------------------------------------
def test_the_review_delays_are_settings(make_client, demo, clock):
    with make_client(core_auto_approve_s=10, core_auto_pay_s=20) as client:
        ref = login(client, demo["renter_mas"])
        app = apply(client, ref, "rent", 500, key="fast-review-01")
        clock.advance(seconds=10)
        assert client.get(f"/applications/{app['id']}", params={"person_ref": ref}).json()["status"] == "approved"
        clock.advance(seconds=20)
        assert client.get(f"/applications/{app['id']}", params={"person_ref": ref}).json()["status"] == "paid"


PRODUCTION = {"anju_env": "production", "core_api_token": SecretStr("a-real-token"),
              "core_audit_key": SecretStr("k" * 40), "core_auto_seed": False}


def test_reviewer_token_is_separate_and_no_placeholder_in_production():
    assert CoreSettings(**PRODUCTION).core_reviewer_token is None            # review API closed until set
    assert CoreSettings(anju_env="test").core_reviewer_token.get_secret_value() == "dev-reviewer-token"
    with pytest.raises(ValidationError, match="CORE_REVIEWER_TOKEN is a development placeholder"):
        CoreSettings(**PRODUCTION, core_reviewer_token=SecretStr("dev-reviewer-token"))
    with pytest.raises(ValidationError, match="every caller would be a reviewer"):
        CoreSettings(anju_env="test", core_api_token=SecretStr("same"), core_reviewer_token=SecretStr("same"))


def test_an_older_database_gets_the_new_columns(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_schema(engine)
    with engine.begin() as conn:             # what a database created before this change looks like
        conn.exec_driver_sql("ALTER TABLE applications DROP COLUMN amount")
        conn.exec_driver_sql("ALTER TABLE otp_challenges DROP COLUMN purpose")
    assert set(add_missing_columns(engine)) == {"applications.amount", "otp_challenges.purpose"}
    assert add_missing_columns(engine) == []
    engine.dispose()
