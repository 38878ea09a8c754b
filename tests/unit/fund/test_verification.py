"""Identity verification with a manual clock: codes, lockout, expiry, sliding sessions."""
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from fund.errors import ChallengeExpired, IdentityLocked, NotBound, PersonNotFound, VerificationExpired, WrongCode
from fund.models import AuditRecord, SmsOutbox
from fund.verification import IdentityService


@pytest.fixture
def service(sessions, clock, audit_log):
    return IdentityService(sessions, clock, b"secret", audit=audit_log)


def last_code(sessions):
    with sessions() as session:
        return session.scalars(select(SmsOutbox).order_by(SmsOutbox.id.desc())).first().code


def wrong(code):
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def test_code_goes_to_outbox_and_opens_a_session(service, sessions, demo):
    person = demo["elderly_72"]
    started = service.start_challenge(person.id_number, person.name, "web:1")
    assert "****" in started.phone_masked and started.expires_in_s == 300
    verified = service.verify_code(started.challenge_id, last_code(sessions))
    assert verified.elderly and verified.age == 72 and verified.person_ref.startswith("pr_")
    assert "*" in verified.name_masked
    with pytest.raises(ChallengeExpired):   # a code works once
        service.verify_code(started.challenge_id, last_code(sessions))


def test_unknown_id_and_wrong_name_look_the_same(service, demo):
    person = demo["renter_cz"]
    with pytest.raises(PersonNotFound):
        service.start_challenge(person.id_number, "别人", "web:1")
    with pytest.raises(PersonNotFound):
        service.start_challenge("11010519491231002X", person.name, "web:1")


def test_five_wrong_codes_lock_for_fifteen_minutes(service, sessions, demo, clock):
    person = demo["renter_cz"]
    started = service.start_challenge(person.id_number, person.name, "web:1")
    code = last_code(sessions)
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongCode) as caught:
            service.verify_code(started.challenge_id, wrong(code))
        assert caught.value.attempts_left == left
    with pytest.raises(IdentityLocked):
        service.verify_code(started.challenge_id, wrong(code))
    with pytest.raises(IdentityLocked):        # even the right code, while locked
        service.verify_code(started.challenge_id, code)
    clock.advance(minutes=14)
    with pytest.raises(IdentityLocked) as caught:
        service.start_challenge(person.id_number, person.name, "web:1")
    assert 0 < caught.value.retry_after_s <= 60
    clock.advance(minutes=1, seconds=1)
    again = service.start_challenge(person.id_number, person.name, "web:1")
    assert service.verify_code(again.challenge_id, last_code(sessions)).person_ref


def test_lock_survives_a_new_service_instance(sessions, clock, demo, audit_log):
    person = demo["renter_mas"]
    for _ in range(5):
        with pytest.raises(PersonNotFound):
            IdentityService(sessions, clock, b"secret", audit=audit_log).start_challenge(
                person.id_number, "错名", "web:1")
    with pytest.raises(IdentityLocked):
        IdentityService(sessions, clock, b"secret", audit=audit_log).start_challenge(
            person.id_number, person.name, "web:1")


def test_code_expires_after_five_minutes(service, sessions, demo, clock):
    person = demo["renter_cz"]
    started = service.start_challenge(person.id_number, person.name, "web:1")
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(ChallengeExpired):
        service.verify_code(started.challenge_id, last_code(sessions))


def test_session_slides_and_expires_after_fifteen_idle_minutes(service, demo, clock):
    ref = service.login_openid(demo["renter_cz"].openid, "wechat:1").person_ref
    clock.advance(minutes=10)
    service.touch(ref)
    clock.advance(minutes=10)
    assert service.touch(ref)[1] == "wechat:1"      # 20 minutes old, 10 idle
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(VerificationExpired):
        service.touch(ref)
    with pytest.raises(VerificationExpired):
        service.touch("pr_unknown")


def test_unbound_openid(service):
    with pytest.raises(NotBound):
        service.login_openid("o_nobody", "wechat:1")


def test_at_most_five_codes_per_fifteen_minutes(service, demo, clock):
    person = demo["renter_cz"]
    for _ in range(5):
        service.start_challenge(person.id_number, person.name, "web:1")
        clock.advance(minutes=1)
    with pytest.raises(IdentityLocked) as caught:
        service.start_challenge(person.id_number, person.name, "web:1")
    assert caught.value.retry_after_s == 10 * 60
    clock.advance(minutes=10, seconds=1)
    assert service.start_challenge(person.id_number, person.name, "web:1").challenge_id


def test_audit_records_commit_with_the_identity_change_and_roll_back_with_it(service, sessions, demo,
                                                                             monkeypatch):
    def count(model):
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(model))

    person = demo["renter_cz"]
    started = service.start_challenge(person.id_number, person.name, "web:1")
    assert count(AuditRecord) == 1 and started.audit_seq == 1
    with pytest.raises(PersonNotFound) as refused:      # a counted failure is committed and audited
        service.start_challenge(person.id_number, "别人", "web:1")
    assert refused.value.audit_seq == 2
    monkeypatch.setattr("fund.verification.secrets.token_hex", lambda _n: "0" * 32)
    service.start_challenge(person.id_number, person.name, "web:1")
    outbox = count(SmsOutbox)
    with pytest.raises(IntegrityError):                  # same challenge id: the change fails
        service.start_challenge(person.id_number, person.name, "web:1")
    assert count(SmsOutbox) == outbox and count(AuditRecord) == 3
    with sessions() as session:
        assert session.get(AuditRecord, 3).outcome == "sent" and session.get(AuditRecord, 2).actor == "web:1"
