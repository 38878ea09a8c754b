"""Binding a WeChat openid after an ID + SMS verification, and unbinding it, each audited with its change."""
import pytest
from sqlalchemy import select

from fund.errors import NotBound, VerificationExpired
from fund.models import AuditRecord, Person, SmsOutbox
from fund.verification import BindRefused, IdentityService


@pytest.fixture
def service(sessions, clock, audit_log):
    return IdentityService(sessions, clock, b"secret", audit=audit_log)


def sms_login(service, sessions, person, channel="wxmsg-1"):
    started = service.start_challenge(person.id_number, person.name, channel)
    with sessions() as session:
        code = session.scalars(select(SmsOutbox).order_by(SmsOutbox.id.desc())).first().code
    return service.verify_code(started.challenge_id, code).person_ref


def records(sessions):
    with sessions() as session:
        return [(r.action, r.outcome) for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]


def test_bind_after_sms_then_login_by_openid_then_unbind(service, sessions, demo):
    person = demo["renter_cz"]
    ref = sms_login(service, sessions, person)
    binding = service.bind_openid("o_new_wechat_user", ref, "wxmsg-1")
    assert binding.changed and binding.audit_seq == len(records(sessions))
    assert records(sessions)[-1] == ("identity.openid.bind", "bound openid=o_new_***" + (" replaced" if person.openid else ""))
    assert service.login_openid("o_new_wechat_user", "wx-2").person_id == service.login_openid(
        "o_new_wechat_user", "wx-3").person_id
    assert service.bind_openid("o_new_wechat_user", ref, "wxmsg-1").changed is False   # idempotent, not audited again
    unbound = service.unbind_openid("o_new_wechat_user", "wx-2")
    assert unbound.changed and records(sessions)[-1] == ("identity.openid.unbind", "unbound openid=o_new_***")
    with pytest.raises(NotBound):
        service.login_openid("o_new_wechat_user", "wx-2")
    before = len(records(sessions))
    assert service.unbind_openid("o_new_wechat_user", "wx-2").changed is False
    assert len(records(sessions)) == before


def test_an_openid_bound_to_someone_else_moves_and_both_changes_are_audited(service, sessions, demo):
    first, second = demo["renter_cz"], demo["elderly_72"]
    taken = first.openid
    assert taken
    ref = sms_login(service, sessions, second)
    assert service.bind_openid(taken, ref, "wxmsg-1").replaced
    assert [a for a, _ in records(sessions)[-2:]] == ["identity.openid.unbind", "identity.openid.bind"]
    with sessions() as session:
        owners = session.scalars(select(Person.id_number).where(Person.wechat_openid == taken)).all()
    assert owners == [second.id_number]


def test_binding_needs_a_fresh_sms_verification_of_the_same_conversation(service, sessions, demo, clock):
    person = demo["renter_cz"]
    wechat_ref = service.login_openid(person.openid, "wx-1").person_ref
    with pytest.raises(BindRefused):                       # a WeChat login cannot bind another openid
        service.bind_openid("o_other", wechat_ref, "wx-1")
    ref = sms_login(service, sessions, person, channel="wxmsg-9")
    with pytest.raises(BindRefused):                       # another conversation's person_ref
        service.bind_openid("o_other", ref, "wxmsg-8")
    clock.advance(minutes=6)
    service.touch(ref)
    with pytest.raises(BindRefused):                       # verified too long ago
        service.bind_openid("o_other", ref, "wxmsg-9")
    with pytest.raises(VerificationExpired):
        service.bind_openid("o_other", "pr_unknown", "wxmsg-9")


def test_bind_and_unbind_over_http(client, demo):
    person = demo["renter_cz"]
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": "wxmsg-5"}).json()
    code = client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]
    ref = client.post(f"/identity/challenges/{started['challenge_id']}/verify", json={"code": code}).json()["person_ref"]
    bound = client.post("/identity/openid/bind", json={"openid": "o_http_user", "person_ref": ref, "channel_ref": "wxmsg-5"})
    assert bound.status_code == 200 and bound.json()["changed"] is True
    refused = client.post("/identity/openid/bind", json={"openid": "o_http_user", "person_ref": ref, "channel_ref": "x"})
    assert refused.status_code == 400 and refused.json()["detail"]["code"] == "bind_refused"
    assert client.post("/identity/openid", json={"openid": "o_http_user"}).status_code == 200
    assert client.post("/identity/openid/unbind", json={"openid": "o_http_user"}).json() == {"unbound": True}
    assert client.post("/identity/openid/unbind", json={"openid": "o_http_user"}).json() == {"unbound": False}
    assert client.post("/identity/openid", json={"openid": "o_http_user"}).status_code == 404
