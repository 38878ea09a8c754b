"""Identity verification: ID number + name → one-time code by SMS → a verified session.

- An unknown ID and a name that does not match answer alike (no hint of who exists),
  and both count as failures, so a lockout reveals nothing either.
- 5 failures for one ID number lock it for 15 minutes; the counter lives in the
  database, so a restart does not reset it.
- A verified session is an opaque person_ref that expires after 15 idle minutes
  (sliding): the bot never holds the ID number.
- A WeChat openid is bound to a person only right after an ID + SMS verification in the same
  conversation (a fresh sms person_ref, for the channel that verified), and can be unbound by
  the WeChat user at any time; an openid bound before to someone else moves, audited as such.
- One-time codes have a purpose: "login" opens a session, "sign" signs one application (its
  content digest is bound to the code); neither can stand in for the other. A wrong signing
  code counts against the same lock as a wrong login code.
- Every decision that changes something (code sent, failure counted, session opened) is
  audited in the same transaction as the change (AuditLog.append_in); refusals that change
  nothing (locked, expired challenge, unbound openid) are left to the caller's audit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fund.audit import AuditLog
from fund.clock import Clock, china_date
from fund.db import write_transaction
from fund.errors import (ChallengeExpired, CoreError, IdentityLocked, NotBound, PersonNotFound,
                         VerificationExpired, WrongCode)
from fund.id_numbers import age_on
from fund.models import IdentityLock, OtpChallenge, Person, SmsOutbox, VerificationSession
from fund.privacy import mask_id_number, mask_name, mask_phone

logger = logging.getLogger(__name__)
ELDERLY_AGE = 60


@dataclass(frozen=True)
class Policy:
    max_failures: int = 5
    max_codes_per_window: int = 5   # SMS sent per ID number per lock window (anti SMS-bombing)
    lock_s: int = 15 * 60
    code_ttl_s: int = 5 * 60
    idle_timeout_s: int = 15 * 60


@dataclass(frozen=True)
class ChallengeStarted:
    challenge_id: str
    phone_masked: str
    expires_in_s: int
    audit_seq: Optional[int] = None


class SignMismatch(CoreError):
    """The signing code was sent for other content (kind, amount or declaration) than submitted."""

    code = "sign_mismatch"


class BindRefused(CoreError):
    """Binding needs a person_ref opened by an SMS code within the last few minutes."""

    code = "bind_refused"


@dataclass(frozen=True)
class Binding:
    changed: bool
    replaced: bool = False    # the openid had been bound to someone else, or the person to another openid
    audit_seq: Optional[int] = None


@dataclass(frozen=True)
class VerifiedPerson:
    person_ref: str
    person_id: int
    id_masked: str
    name_masked: str
    age: int
    elderly: bool
    disabled: bool
    idle_timeout_s: int
    audit_seq: Optional[int] = None


class IdentityService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, secret: bytes, policy: Policy = Policy(),
                 *, audit: AuditLog):
        self._sessions = sessions
        self._clock = clock
        self._secret = secret
        self._audit = audit
        self.policy = policy

    def subject_key(self, id_number: str) -> str:
        """Keyed digest of an ID number: lock rows never hold the number itself."""
        return hmac.new(self._secret, id_number.encode(), hashlib.sha256).hexdigest()

    # --- lockout ------------------------------------------------------------------------
    def _lock_row(self, session: Session, key: str) -> IdentityLock:
        row = session.get(IdentityLock, key)
        if row is None:
            row = IdentityLock(subject_key=key, failures=0, locked_until=None)
            session.add(row)
        now = self._clock()
        if row.locked_until is not None and row.locked_until <= now:
            row.failures, row.locked_until = 0, None
        return row

    def _raise_if_locked(self, row: IdentityLock) -> None:
        if row.locked_until is not None:
            raise IdentityLocked(max(1, int((row.locked_until - self._clock()).total_seconds())))

    def _fail(self, row: IdentityLock) -> int:
        """Counts a failure; returns attempts left, 0 meaning the ID is now locked."""
        row.failures += 1
        if row.failures >= self.policy.max_failures:
            row.locked_until = self._clock() + dt.timedelta(seconds=self.policy.lock_s)
            logger.warning("identity.locked failures=%s", row.failures)
        return max(0, self.policy.max_failures - row.failures)

    # --- challenge and verify -------------------------------------------------------------
    def _record(self, session: Session, actor: str, action: str, id_number: str, outcome: str) -> int:
        return self._audit.append_in(session, actor=actor, action=action, subject=mask_id_number(id_number),
                                     outcome=outcome, at=self._clock()).seq

    @staticmethod
    def _audited(error: CoreError, seq: int) -> CoreError:
        error.audit_seq = seq
        return error

    def start_challenge(self, id_number: str, name: str, channel_ref: str) -> ChallengeStarted:
        key = self.subject_key(id_number)

        def work(session: Session) -> ChallengeStarted | CoreError:
            lock = self._lock_row(session, key)
            self._raise_if_locked(lock)
            self._limit_codes(session, key)
            person = session.scalar(select(Person).where(Person.id_number == id_number))
            if person is None or person.name != name.strip():
                left = self._fail(lock)
                seq = self._record(session, channel_ref, "identity.challenge", id_number,
                                   f"person_not_found attempts_left={left}" if left else "person_not_found locked")
                return self._audited(PersonNotFound(), seq)   # returned, so the failure commits
            now = self._clock()
            code = f"{secrets.randbelow(10 ** 6):06d}"
            challenge_id = "ch_" + secrets.token_hex(16)
            session.add(OtpChallenge(challenge_id=challenge_id, person_id=person.id, subject_key=key,
                                     channel_ref=channel_ref, code_hash=self._code_hash(challenge_id, code),
                                     created_at=now, used=False, purpose="login",
                                     expires_at=now + dt.timedelta(seconds=self.policy.code_ttl_s)))
            session.add(SmsOutbox(phone=person.phone, code=code, sent_at=now,
                                  text=f"【住房公积金】您的验证码为{code}，{self.policy.code_ttl_s // 60}分钟内有效。"
                                       "工作人员不会向您索取验证码，请勿告诉他人。"))
            seq = self._record(session, channel_ref, "identity.challenge", id_number, "sent")
            return ChallengeStarted(challenge_id, mask_phone(person.phone), self.policy.code_ttl_s, seq)

        result = write_transaction(self._sessions, work)
        if isinstance(result, CoreError):
            raise result
        logger.info("identity.challenge.sent phone=%s", result.phone_masked)
        return result

    def _limit_codes(self, session: Session, key: str) -> None:
        since = self._clock() - dt.timedelta(seconds=self.policy.lock_s)
        sent = session.scalars(select(OtpChallenge.created_at).where(
            OtpChallenge.subject_key == key, OtpChallenge.created_at > since)
            .order_by(OtpChallenge.created_at)).all()
        if len(sent) >= self.policy.max_codes_per_window:
            free_at = sent[-self.policy.max_codes_per_window] + dt.timedelta(seconds=self.policy.lock_s)
            raise IdentityLocked(max(1, int((free_at - self._clock()).total_seconds())))

    def _code_hash(self, challenge_id: str, code: str) -> str:
        return hmac.new(self._secret, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def verify_code(self, challenge_id: str, code: str) -> VerifiedPerson:
        def work(session: Session) -> VerifiedPerson | CoreError:
            challenge = session.scalar(select(OtpChallenge).where(OtpChallenge.challenge_id == challenge_id))
            if challenge is None or challenge.used or challenge.expires_at <= self._clock() \
                    or (challenge.purpose or "login") != "login":
                raise ChallengeExpired()
            lock = self._lock_row(session, challenge.subject_key)
            self._raise_if_locked(lock)
            person = session.get(Person, challenge.person_id)
            if not hmac.compare_digest(challenge.code_hash, self._code_hash(challenge_id, code.strip())):
                left = self._fail(lock)
                error = WrongCode(left) if left else IdentityLocked(self.policy.lock_s)
                seq = self._record(session, challenge.channel_ref, "identity.verify", person.id_number,
                                   f"wrong_code attempts_left={left}" if left else "wrong_code locked")
                return self._audited(error, seq)
            challenge.used = True
            lock.failures = 0
            verified = self._open_session(session, person, challenge.channel_ref, "sms")
            seq = self._record(session, challenge.channel_ref, "identity.verify", person.id_number,
                               "verified method=sms")
            return replace(verified, audit_seq=seq)

        result = write_transaction(self._sessions, work)
        if isinstance(result, CoreError):
            raise result
        return result

    # --- signing codes ---------------------------------------------------------------------
    def start_sign_challenge(self, person_id: int, channel_ref: str, bound_to: str, what: str) -> ChallengeStarted:
        """Sends a code that can sign only the content digested in `bound_to`; `what` (kind and
        amount, no personal data) is told in the SMS so the citizen knows what the code signs."""
        def work(session: Session) -> ChallengeStarted:
            person = session.get(Person, person_id)
            key = self.subject_key(person.id_number)
            self._raise_if_locked(self._lock_row(session, key))
            self._limit_codes(session, key)
            now = self._clock()
            code = f"{secrets.randbelow(10 ** 6):06d}"
            challenge_id = "cs_" + secrets.token_hex(16)
            session.add(OtpChallenge(challenge_id=challenge_id, person_id=person.id, subject_key=key,
                                     channel_ref=channel_ref, code_hash=self._code_hash(challenge_id, code),
                                     created_at=now, used=False, purpose="sign", bound_to=bound_to,
                                     expires_at=now + dt.timedelta(seconds=self.policy.code_ttl_s)))
            session.add(SmsOutbox(phone=person.phone, code=code, sent_at=now,
                                  text=f"【住房公积金】您正在签署{what}，签署验证码为{code}，"
                                       f"{self.policy.code_ttl_s // 60}分钟内有效。如非本人操作，请勿告诉他人。"))
            seq = self._record(session, channel_ref, "identity.sign_challenge", person.id_number, "sent purpose=sign")
            return ChallengeStarted(challenge_id, mask_phone(person.phone), self.policy.code_ttl_s, seq)

        return write_transaction(self._sessions, work)

    def check_sign_code(self, session: Session, challenge_id: str, code: str, person_id: int,
                        bound_to: str) -> OtpChallenge | CoreError:
        """Consumes a signing code inside the caller's transaction. A wrong code is counted and
        audited and returned (not raised), so the caller can commit the count and nothing else."""
        challenge = session.scalar(select(OtpChallenge).where(OtpChallenge.challenge_id == challenge_id))
        if challenge is None or challenge.used or challenge.expires_at <= self._clock() \
                or challenge.purpose != "sign" or challenge.person_id != person_id:
            raise ChallengeExpired()
        lock = self._lock_row(session, challenge.subject_key)
        self._raise_if_locked(lock)
        person = session.get(Person, person_id)
        if not hmac.compare_digest(challenge.code_hash, self._code_hash(challenge_id, code.strip())):
            left = self._fail(lock)
            error = WrongCode(left) if left else IdentityLocked(self.policy.lock_s)
            seq = self._record(session, challenge.channel_ref, "identity.sign", person.id_number,
                               f"wrong_code attempts_left={left}" if left else "wrong_code locked")
            return self._audited(error, seq)
        if not hmac.compare_digest(challenge.bound_to or "", bound_to):
            raise SignMismatch()
        challenge.used = True
        lock.failures = 0
        return challenge

    def login_openid(self, openid: str, channel_ref: str) -> VerifiedPerson:
        def work(session: Session) -> VerifiedPerson:
            person = session.scalar(select(Person).where(Person.wechat_openid == openid))
            if person is None:
                raise NotBound()
            verified = self._open_session(session, person, channel_ref, "wechat")
            seq = self._record(session, channel_ref, "identity.openid", person.id_number, "verified method=wechat")
            return replace(verified, audit_seq=seq)

        return write_transaction(self._sessions, work)

    def bind_openid(self, openid: str, person_ref: str, channel_ref: str) -> Binding:
        """Binds a WeChat openid to the person a fresh SMS verification just confirmed."""
        def work(session: Session) -> Binding:
            row = session.scalar(select(VerificationSession).where(VerificationSession.person_ref == person_ref))
            now = self._clock()
            if row is None or (now - row.last_seen_at).total_seconds() > self.policy.idle_timeout_s:
                raise VerificationExpired()
            if row.method != "sms" or row.channel_ref != channel_ref or \
                    (now - row.created_at).total_seconds() > self.policy.code_ttl_s:
                raise BindRefused()
            person = session.get(Person, row.person_id)
            if person.wechat_openid == openid:
                return Binding(changed=False)
            holder = session.scalar(select(Person).where(Person.wechat_openid == openid))
            if holder is not None:
                holder.wechat_openid = None
                self._record(session, channel_ref, "identity.openid.unbind", holder.id_number,
                             f"moved openid={_openid_hint(openid)}")
                session.flush()   # free the unique openid before it is set on the new person
            replaced = holder is not None or person.wechat_openid is not None
            person.wechat_openid = openid
            seq = self._record(session, channel_ref, "identity.openid.bind", person.id_number,
                               f"bound openid={_openid_hint(openid)}" + (" replaced" if replaced else ""))
            return Binding(changed=True, replaced=replaced, audit_seq=seq)

        binding = write_transaction(self._sessions, work)
        logger.info("identity.openid.bound changed=%s replaced=%s", binding.changed, binding.replaced)
        return binding

    def unbind_openid(self, openid: str, channel_ref: str) -> Binding:
        """The WeChat user's own “解除绑定”: nothing changes (and nothing is audited here) if none was bound."""
        def work(session: Session) -> Binding:
            person = session.scalar(select(Person).where(Person.wechat_openid == openid))
            if person is None:
                return Binding(changed=False)
            person.wechat_openid = None
            seq = self._record(session, channel_ref, "identity.openid.unbind", person.id_number,
                               f"unbound openid={_openid_hint(openid)}")
            return Binding(changed=True, audit_seq=seq)

        binding = write_transaction(self._sessions, work)
        logger.info("identity.openid.unbound changed=%s", binding.changed)
        return binding

    def _open_session(self, session: Session, person: Person, channel_ref: str, method: str) -> VerifiedPerson:
        now = self._clock()
        ref = "pr_" + secrets.token_hex(16)
        session.add(VerificationSession(person_ref=ref, person_id=person.id, channel_ref=channel_ref,
                                        method=method, created_at=now, last_seen_at=now))
        age = age_on(person.birth_date, china_date(now))
        logger.info("identity.session.opened method=%s", method)
        return VerifiedPerson(person_ref=ref, person_id=person.id, id_masked=mask_id_number(person.id_number),
                              name_masked=mask_name(person.name), age=age,
                              elderly=age >= ELDERLY_AGE, disabled=person.disabled,
                              idle_timeout_s=self.policy.idle_timeout_s)

    # --- sessions -------------------------------------------------------------------------
    def touch(self, person_ref: str) -> tuple[int, str]:
        """(person_id, channel_ref) of a live session, sliding its idle timeout."""
        with self._sessions.begin() as session:
            row = session.scalar(select(VerificationSession).where(VerificationSession.person_ref == person_ref))
            now = self._clock()
            if row is None:
                raise VerificationExpired()
            if (now - row.last_seen_at).total_seconds() > self.policy.idle_timeout_s:
                session.delete(row)
                error = VerificationExpired()
            else:
                row.last_seen_at = now
                return row.person_id, row.channel_ref
        raise error


def _openid_hint(openid: str) -> str:
    return openid[:6] + "***"
