"""The HTTP contract the actions code against, on a seeded temp SQLite database."""
import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from fund import audit
from fund.api import create_app
from fund.db import make_engine
from fund.models import AuditRecord
from fund.rulebook import KINDS
from fund.settings import CoreSettings


def challenge(client, person, name=None, id_number=None):
    return client.post("/identity/challenges", json={"id_number": id_number or person.id_number,
                                                     "name": name or person.name, "channel_ref": "web:t1"})


def outbox_code(client):
    return client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]


def login(client, person):
    started = challenge(client, person)
    assert started.status_code == 201, started.text
    verified = client.post(f"/identity/challenges/{started.json()['challenge_id']}/verify",
                           json={"code": outbox_code(client)})
    assert verified.status_code == 200
    return verified.json()


def code_of(response):
    return response.json()["detail"]["code"]


def test_health_needs_no_token_but_everything_else_does(client, demo):
    assert TestClient(client.app).get("/healthz").json() == {"status": "ok"}
    anonymous = TestClient(client.app).get("/dev/outbox")
    assert anonymous.status_code == 401 and code_of(anonymous) == "unauthorized"
    wrong = client.post("/identity/openid", json={"openid": demo["renter_cz"].openid},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_verify_then_balance(client, demo):
    body = login(client, demo["renter_cz"])
    assert set(body) == {"person_ref", "name_masked", "age", "elderly", "disabled", "idle_timeout_s"}
    assert body["age"] == 32 and not body["elderly"] and body["idle_timeout_s"] == 900
    balance = client.get(f"/persons/{body['person_ref']}/balance").json()
    assert balance["id_masked"] == demo["renter_cz"].id_number[:3] + "*" * 11 + demo["renter_cz"].id_number[-4:]
    assert balance["account_status_name"] == "正常缴存" and balance["city"] == "常州"
    months = [d["month"] for d in balance["deposits"]]
    assert len(months) == 12 and months[0] == "2026-10" and months == sorted(months, reverse=True)
    assert balance["monthly_deposit"] == pytest.approx(balance["deposit_base"] * (balance["employer_ratio"]
                                                       + balance["personal_ratio"]) / 100)
    assert demo["renter_cz"].name not in json.dumps(balance, ensure_ascii=False)


def test_withdrawal_check_all_and_one(client, demo):
    ref = client.post("/identity/openid", json={"openid": demo["renter_cz"].openid}).json()["person_ref"]
    everything = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": "all"}).json()
    assert everything["city"] == "常州" and [r["kind"] for r in everything["results"]] == list(KINDS)
    rent = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": "rent"}).json()["results"]
    assert len(rent) == 1 and rent[0]["eligible"] and rent[0]["upload_materials"]
    bad = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": "rent' OR '1"})
    assert bad.status_code == 422 and code_of(bad) == "invalid_kind"


@pytest.mark.parametrize("key, kind, eligible", [
    ("frozen", "rent", False), ("left_job_8m", "leave_job", True), ("left_job_3m", "leave_job", False),
    ("retired_record", "retirement", True), ("recent_buyer_cz", "purchase", True), ("illness", "illness", True),
    ("renter_spouse_owner", "rent", False), ("owner_married", "renovation", True), ("fund_loan", "loan_repayment", True),
    ("buyer_elsewhere", "purchase", False), ("third_home", "purchase", False), ("renter_new_job", "rent", False),
])
def test_seeded_branches_through_the_api(client, demo, key, kind, eligible):
    ref = login(client, demo[key])["person_ref"]
    result = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": kind}).json()["results"][0]
    assert result["eligible"] is eligible and result["reasons"]


def test_city_without_rules_falls_back_to_national(client, demo):
    ref = login(client, demo["no_data_city"])["person_ref"]
    body = client.get(f"/persons/{ref}/withdrawal-check").json()
    assert body["city"] == "芜湖" and body["rules_city"] == "全国"
    assert all(not r["verified"] and any("芜湖" in x for x in r["reasons"]) for r in body["results"])


def test_loan_estimates(client, demo):
    general = client.post("/loan/estimate", json={"amount": 1000000, "years": 30, "house_order": "first"}).json()
    assert general["equal_installment"]["monthly"] == 4003.40 and general["rate"] == 2.6
    assert general["equal_principal"]["first_month"] == 4944.44
    ref = login(client, demo["loan_term_limited"])["person_ref"]
    personal = client.post("/loan/estimate", json={"person_ref": ref, "house_order": "second"}).json()
    assert personal["max_years"] == 11 and personal["rate"] == 3.075
    assert personal["ceiling"] == min(v for v in personal["ceiling_parts"].values())
    assert not personal["verified"] and personal["notes"]


def test_applications_timeline(client, demo):
    ref = login(client, demo["transfer_in"])["person_ref"]
    apps = client.get(f"/persons/{ref}/applications").json()["applications"]
    assert [a["kind"] for a in apps] == ["transfer", "rent"]
    transfer = apps[0]
    assert transfer["status_name"] == "办理中" and transfer["current_step"] == "资金划转"
    assert transfer["steps"][0]["done_at"] and transfer["steps"][-1]["done_at"] is None


def test_pii_token_is_resolved_and_expired_token_refused(client, demo, redis_store):
    person = demo["renter_mas"]
    redis_store.set("anju:vault:pii_id_0123456789abcdef", person.id_number, ex=1800)
    assert challenge(client, person, id_number="pii_id_0123456789abcdef").status_code == 201
    gone = challenge(client, person, id_number="pii_id_fedcba9876543210")
    assert gone.status_code == 422 and code_of(gone) == "token_expired"
    assert gone.json()["detail"]["message"] == "请重新输入身份证号。"


def test_name_token_is_resolved_before_names_are_compared(client, demo, redis_store):
    person = demo["renter_mas"]
    redis_store.set("anju:vault:pii_nm_0123456789abcdef", person.name, ex=1800)
    redis_store.set("anju:vault:pii_nm_00000000000000aa", "别人", ex=1800)
    assert challenge(client, person, name="pii_nm_0123456789abcdef").status_code == 201
    assert code_of(challenge(client, person, name="pii_nm_00000000000000aa")) == "person_not_found"
    gone = challenge(client, person, name="pii_nm_fedcba9876543210")
    assert gone.status_code == 422 and gone.json()["detail"]["message"] == "请重新输入姓名。"
    redis_store.set("anju:vault:pii_ph_00000000000000bb", person.name, ex=1800)
    assert code_of(challenge(client, person, name="pii_ph_00000000000000bb")) == "invalid_input"


def test_id_number_check_catches_typos_without_looking_anyone_up(client, demo, redis_store):
    person = demo["renter_cz"]
    check = lambda value: client.post("/identity/id-numbers/check", json={"id_number": value})  # noqa: E731
    wrong = person.id_number[:17] + ("0" if person.id_number[17] != "0" else "1")
    redis_store.set("anju:vault:pii_id_00000000000000aa", wrong, ex=1800)
    refused = check("pii_id_00000000000000aa")
    assert refused.status_code == 422 and code_of(refused) == "invalid_id_checksum"
    assert "校验位" in refused.json()["detail"]["message"]
    assert code_of(check("12345")) == "invalid_id_format"
    assert code_of(check("pii_id_00000000000000bb")) == "token_expired"
    # Well-formed but unknown to the core: valid, and nothing reveals whether the person exists.
    assert check(person.id_number).json() == check("11010519491231002X").json() == {"valid": True}
    # A checksum error here is not a failed identity attempt: the real challenge still works.
    assert challenge(client, person).status_code == 201


def test_bad_id_numbers_and_unknown_people(client, demo):
    person = demo["renter_cz"]
    checksum = challenge(client, person, id_number=person.id_number[:17] + ("0" if person.id_number[17] != "0" else "1"))
    assert checksum.status_code == 422 and code_of(checksum) == "invalid_id_checksum"
    fmt = challenge(client, person, id_number="12345")
    assert fmt.status_code == 422 and code_of(fmt) == "invalid_id_format"
    mismatch = challenge(client, person, name="' OR 1=1 --")
    unknown = challenge(client, person, id_number="11010519491231002X")
    assert mismatch.status_code == unknown.status_code == 404
    assert mismatch.json() == unknown.json()


def test_wrong_codes_lock_then_recover(client, demo, clock):
    person = demo["disabled_renter"]
    cid = challenge(client, person).json()["challenge_id"]
    code = outbox_code(client)
    bad = f"{(int(code) + 1) % 10 ** 6:06d}"
    answers = [client.post(f"/identity/challenges/{cid}/verify", json={"code": bad}) for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    assert [a.json()["detail"].get("attempts_left") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4].json()["detail"]["retry_after_s"] == 900
    assert challenge(client, person).status_code == 423
    clock.advance(minutes=15, seconds=1)
    assert login(client, person)["disabled"] is True


def test_lock_survives_restart(make_client, demo):
    first = make_client()
    for _ in range(5):
        challenge(first, demo["owner_mas"], name="错名")
    assert challenge(make_client(), demo["owner_mas"]).status_code == 423


def test_expired_challenge_and_session(client, demo, clock):
    person = demo["renter_cz"]
    cid = challenge(client, person).json()["challenge_id"]
    clock.advance(minutes=6)
    expired = client.post(f"/identity/challenges/{cid}/verify", json={"code": outbox_code(client)})
    assert expired.status_code == 410 and code_of(expired) == "challenge_expired"
    ref = login(client, person)["person_ref"]
    clock.advance(minutes=16)
    gone = client.get(f"/persons/{ref}/balance")
    assert gone.status_code == 401 and code_of(gone) == "verification_expired"


def test_openid(client, demo):
    assert client.post("/identity/openid", json={"openid": demo["elderly_72"].openid}).json()["elderly"] is True
    unbound = client.post("/identity/openid", json={"openid": "o_not_bound"})
    assert unbound.status_code == 404 and code_of(unbound) == "not_bound"


@pytest.mark.parametrize("method, path, payload", [
    ("post", "/identity/challenges", "{not json"),
    ("post", "/identity/challenges", json.dumps({"id_number": 12, "name": ["x"]})),
    ("post", "/identity/challenges", json.dumps({"id_number": "1" * 5000, "name": "张三"})),
    ("post", "/identity/challenges", json.dumps({"id_number": "11010519491231002X", "name": "张三",
                                                  "channel_ref": "<script>alert(1)</script>"})),
    ("post", "/loan/estimate", json.dumps({"amount": -5, "years": 99})),
    ("post", "/loan/estimate", json.dumps({"house_order": "third"})),
])
def test_bad_input_gets_a_clear_422_and_the_service_keeps_working(client, demo, method, path, payload):
    response = getattr(client, method)(path, content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "invalid_request" and detail["message"]
    assert login(client, demo["renter_cz"])["person_ref"]


@pytest.mark.parametrize("ref", ["1 OR 1=1", "pr_' ; DROP TABLE persons; --", "..%2F..%2Fetc"])
def test_injected_person_refs_are_just_unknown(client, demo, ref):
    assert client.get(f"/persons/{ref}/balance").status_code in (401, 404)
    assert login(client, demo["renter_cz"])["person_ref"]


def test_every_call_is_audited_without_clear_personal_data(client, db_url, demo, audit_key):
    person = demo["renter_cz"]
    ref = login(client, person)["person_ref"]
    client.get(f"/persons/{ref}/balance")
    challenge(client, person, name="错名")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditRecord).order_by(AuditRecord.seq)).all()
    assert audit.verify(engine, audit_key).ok
    # Changes are audited once, in their own transaction; reads by the middleware after the response.
    assert [(r.action, r.outcome.split()[0]) for r in rows] == [
        ("identity.challenge", "sent"), ("GET /dev/outbox", "200"), ("identity.verify", "verified"),
        ("GET /persons/{person_ref}/balance", "200"), ("identity.challenge", "person_not_found")]
    assert rows[-1].actor == "web:t1" and rows[-1].subject == rows[0].subject == "320***********0454"
    dump = json.dumps([tuple(r) for r in rows], ensure_ascii=False, default=str)
    assert person.id_number not in dump and person.name not in dump and ref not in dump


def test_outbox_not_served_in_production(db_url, clock, redis_store):
    settings = CoreSettings(core_database_url=db_url, core_api_token=SecretStr("prod-secret"), anju_env="production",
                            core_audit_key=SecretStr("k" * 32))
    prod = TestClient(create_app(settings, clock=clock, redis_client=redis_store),
                      headers={"Authorization": "Bearer prod-secret"})
    assert prod.get("/dev/outbox").status_code == 404


def test_policy_topics_list_every_topic_with_a_title_the_answers_also_use(client):
    topics = client.get("/policy/topics").json()["topics"]
    assert len(topics) >= 36 and all(t["title"] for t in topics)
    rent = next(t for t in topics if t["topic"] == "withdraw_rent")
    assert client.get("/policy/answers/withdraw_rent").json()["title"] == rent["title"]
    assert client.get("/policy/answers/no_such_topic").status_code == 404


def test_the_short_variant_is_served_on_request_and_other_variants_are_refused(client):
    full = client.get("/policy/answers/withdraw_rent", params={"city": "常州"}).json()
    short = client.get("/policy/answers/withdraw_rent", params={"city": "常州", "variant": "short"}).json()
    assert (full["variant"], short["variant"]) == ("full", "short")
    assert short["city"] == "常州" and len(short["text"]) < len(full["text"])
    assert client.get("/policy/answers/withdraw_rent", params={"variant": "tiny"}).status_code == 422
