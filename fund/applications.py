"""Online withdrawal applications: signed submission, status timeline, review, cancellation.

One submission is one database transaction: the pre-check and the balance are evaluated
again, the signing code is consumed, and the application, its fetched materials, its
signature record and their audit records are written together, or nothing is. An
idempotency key answers a retried submission with the application it already made.

Timeline: submitted → under_review → approved | rejected (with a reason) → paid; the citizen
may cancel while it is still submitted. The sandbox review rule is applied lazily, whenever
an application is read or acted on: a complete (免提交) application is approved
CORE_AUTO_APPROVE_S after submission, any approved one is paid CORE_AUTO_PAY_S after approval.
Each step is stamped, and audited, with the time it was due, not the time it was noticed.
Incomplete applications wait for a staff reviewer.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from fund import notifications, shared_data, withdrawal
from fund.audit import AuditLog, timestamp
from fund.clock import Clock, china_date
from fund.db import write_transaction
from fund.errors import CoreError, PolicyError
from fund.facts import money
from fund.materials import upload_views
from fund.models import (Application, ApplicationMaterial, ApplicationRequest, ApplicationSignature,
                         ApplicationStep, BankCard, Person)
from fund.persons import APPLICATION_KINDS, STATUS_NAMES, facts_for, load_person
from fund.privacy import mask_card, mask_id_number, mask_name
from fund.rulebook import Rulebook
from fund.verification import ChallengeStarted, IdentityService

logger = logging.getLogger(__name__)
SANDBOX_REVIEWER = "sandbox-review"
MANUAL_REVIEW_DAYS = 3


class Status(str, Enum):
    submitted = "submitted"
    under_review = "under_review"
    approved = "approved"
    rejected = "rejected"
    paid = "paid"
    cancelled = "cancelled"


OPEN = (Status.submitted.value, Status.under_review.value, Status.approved.value, "processing")
FINAL = (Status.rejected.value, Status.paid.value, Status.cancelled.value)
# Planned steps: (status entered, name); the third is renamed by the decision.
STEPS = ((Status.submitted, "提交申请"), (Status.under_review, "审核受理"), (Status.approved, "审批"),
         (Status.paid, "资金到账"))
DECIDED_NAMES = {Status.approved: "审批通过", Status.rejected: "审批未通过"}


# --- errors ---------------------------------------------------------------------------------
class ApplicationError(CoreError):
    """Carries `extra` fields for the error body, and optionally its own message."""

    def __init__(self, message: Optional[str] = None, **extra):
        super().__init__(message or self.code)
        self.message = message
        self.extra = extra


class NotEligible(ApplicationError):
    code = "not_eligible"


class AmountUnavailable(ApplicationError):
    code = "amount_unavailable"


class AmountOverMax(ApplicationError):
    code = "amount_over_max"


class InsufficientBalance(ApplicationError):
    code = "insufficient_balance"


class ApplicationOpen(ApplicationError):
    code = "application_open"


class NoBankCard(ApplicationError):
    code = "no_bank_card"


class ApplicationNotFound(ApplicationError):
    code = "application_not_found"


class NotCancellable(ApplicationError):
    code = "not_cancellable"


class InvalidTransition(ApplicationError):
    code = "invalid_transition"


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"


# --- declaration ----------------------------------------------------------------------------
class Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=20)
    title: str = Field(min_length=1)
    text: str = Field(min_length=20)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=4)
def load_declaration(policy_dir: Path) -> Declaration:
    path = policy_dir / "declaration.yml"
    try:
        return Declaration.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- what the citizen sees before signing ---------------------------------------------------
@dataclass(frozen=True)
class Offer:
    kind: str
    kind_name: str
    max_amount: Decimal
    card_masked: str
    bank_name: str
    fetched: list[shared_data.Fetched]
    to_upload: list[str]
    declaration: Declaration

    @property
    def complete(self) -> bool:
        return not self.to_upload


@dataclass(frozen=True)
class Submitted:
    view: dict
    duplicate: bool
    audit_seq: Optional[int]


@dataclass(frozen=True)
class ReviewRule:
    auto_approve_s: int = 120
    auto_pay_s: int = 300


class ApplicationService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, identity: IdentityService, audit: AuditLog,
                 rulebook: Rulebook, declaration: Declaration, rule: ReviewRule = ReviewRule()):
        self._sessions = sessions
        self._clock = clock
        self._identity = identity
        self._audit = audit
        self._rulebook = rulebook
        self.declaration = declaration
        self.rule = rule

    # --- pre-check again, amounts ----------------------------------------------------------
    def _offer(self, session: Session, person: Person, kind: str) -> Offer:
        today = china_date(self._clock())
        facts = facts_for(session, person, today)
        rules = self._rulebook.for_city(facts.city)
        result = withdrawal.evaluate(rules, kind, facts)
        if not result.eligible:
            raise NotEligible(reasons=result.reasons)
        if result.max_amount is None:
            raise AmountUnavailable()
        card = session.scalar(select(BankCard).where(BankCard.person_id == person.id))
        if card is None:
            raise NoBankCard()
        auto, upload = withdrawal.shared_materials(rules.withdrawal.kinds[kind], facts)
        available = person.account.balance - self._reserved(session, person.id)
        return Offer(kind=kind, kind_name=result.kind_name,
                     max_amount=max(Decimal(0), min(result.max_amount, available)),
                     card_masked=mask_card(card.card_number), bank_name=card.bank_name,
                     fetched=shared_data.fetch(session, person, today, auto), to_upload=upload,
                     declaration=self.declaration)

    @staticmethod
    def _reserved(session: Session, person_id: int) -> Decimal:
        """Amounts of this person's open online applications: not yet paid, already promised."""
        total = session.scalar(select(func.coalesce(func.sum(Application.amount), 0)).where(
            Application.person_id == person_id, Application.status.in_(OPEN), Application.amount.is_not(None)))
        return money(Decimal(total or 0))

    @staticmethod
    def _open_of_kind(session: Session, person_id: int, kind: str) -> Optional[Application]:
        return session.scalar(select(Application).where(Application.person_id == person_id, Application.kind == kind,
                                                        Application.status.in_(OPEN)).limit(1))

    def _checked(self, session: Session, person: Person, kind: str, amount: Decimal) -> Offer:
        """Everything a submission must pass before a code is sent or consumed."""
        amount = money(amount)
        opened = self._open_of_kind(session, person.id, kind)
        if opened is not None:
            raise ApplicationOpen(application_id=opened.number)
        offer = self._offer(session, person, kind)
        if amount <= 0:
            raise AmountOverMax("提取金额须大于0元。", max_amount=float(offer.max_amount))
        available = max(Decimal(0), person.account.balance - self._reserved(session, person.id))
        if amount > available:
            raise InsufficientBalance(available=float(available))
        if amount > offer.max_amount:
            raise AmountOverMax(f"本次最多可提取{offer.max_amount:,.2f}元，请调整金额。", max_amount=float(offer.max_amount))
        return offer

    def bound_digest(self, person_id: int, kind: str, amount: Decimal) -> str:
        """What a signing code signs: this person, kind, amount and declaration version."""
        return sha256_hex(canonical_json({"person": person_id, "kind": kind, "amount": f"{money(amount):.2f}",
                                          "declaration": self.declaration.version}))

    # --- offer and signing code ------------------------------------------------------------
    def offer(self, person_id: int, kind: str) -> Offer:
        with self._sessions() as session:
            person = load_person(session, person_id)
            opened = self._open_of_kind(session, person_id, kind)
            if opened is not None:
                raise ApplicationOpen(application_id=opened.number)
            return self._offer(session, person, kind)

    def start_signing(self, person_id: int, channel_ref: str, kind: str, amount: Decimal) -> ChallengeStarted:
        with self._sessions() as session:
            person = load_person(session, person_id)
            offer = self._checked(session, person, kind, amount)
        what = f"{offer.kind_name}申请（{money(amount):,.2f}元）"
        return self._identity.start_sign_challenge(person_id, channel_ref, self.bound_digest(person_id, kind, amount), what)

    # --- submission ------------------------------------------------------------------------
    def submit(self, person_id: int, channel_ref: str, kind: str, amount: Decimal, idempotency_key: str,
               challenge_id: str, code: str) -> Submitted:
        amount = money(amount)
        fingerprint = sha256_hex(canonical_json({"kind": kind, "amount": f"{amount:.2f}"}))

        def work(session: Session) -> Submitted | CoreError:
            seen = session.get(ApplicationRequest, idempotency_key)
            if seen is not None:
                if seen.person_id != person_id or seen.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                app = self._load(session, seen.application_id)
                self._advance(session, app)
                return Submitted(self.view(app), duplicate=True, audit_seq=None)
            person = load_person(session, person_id)
            offer = self._checked(session, person, kind, amount)
            challenge = self._identity.check_sign_code(session, challenge_id, code, person_id,
                                                       self.bound_digest(person_id, kind, amount))
            if isinstance(challenge, CoreError):
                return challenge   # the failed attempt commits; nothing else was written
            app_id, seq = self._create(session, person, offer, amount, channel_ref, challenge, idempotency_key,
                                       fingerprint)
            return Submitted(self.view(self._load(session, app_id)), duplicate=False, audit_seq=seq)

        result = write_transaction(self._sessions, work)
        if isinstance(result, CoreError):
            raise result
        if not result.duplicate:
            logger.info("application.submitted number=%s kind=%s complete=%s", result.view["id"], kind,
                        result.view["complete"])
        return result

    def _create(self, session: Session, person: Person, offer: Offer, amount: Decimal, channel_ref: str,
                challenge, idempotency_key: str, fingerprint: str) -> tuple[int, int]:
        now = self._clock()
        rule = self.rule
        done_by = now + dt.timedelta(seconds=rule.auto_approve_s + rule.auto_pay_s)
        app = Application(number=f"TQ{china_date(now):%Y%m%d}{secrets.randbelow(10 ** 6):06d}", person_id=person.id,
                          kind=offer.kind, submitted_at=now, status=Status.submitted.value, amount=amount,
                          complete=offer.complete, channel_ref=channel_ref, updated_at=now,
                          expected_done=china_date(done_by) if offer.complete
                          else china_date(now) + dt.timedelta(days=MANUAL_REVIEW_DAYS))
        session.add(app)
        session.flush()
        for position, (status, name) in enumerate(STEPS):
            session.add(ApplicationStep(application_id=app.id, position=position, name=name, status=status.value,
                                        done_at=now if status is Status.submitted else None))
        for item in offer.fetched:
            session.add(ApplicationMaterial(application_id=app.id, name=item.name, source=item.source, fetched=True,
                                            summary=item.summary, fetched_at=now))
        for name in offer.to_upload:
            session.add(ApplicationMaterial(application_id=app.id, name=name, source=None, fetched=False,
                                            summary="待补充"))
        subject = mask_id_number(person.id_number)
        self._audit.append_in(session, actor=channel_ref, action="application.submit", subject=subject, at=now,
                              outcome=f"{app.number} kind={offer.kind} amount={amount:.2f} complete={offer.complete} "
                                      f"fetched={len(offer.fetched)} to_upload={len(offer.to_upload)}")
        record = {"application": app.number, "person": subject, "kind": offer.kind, "amount": f"{amount:.2f}",
                  "card": offer.card_masked, "bank": offer.bank_name, "signed_at": timestamp(now),
                  "declaration": {"version": self.declaration.version, "sha256": self.declaration.sha256},
                  "otp_check": {"challenge": challenge.challenge_id, "purpose": challenge.purpose,
                                "code_hmac": challenge.code_hash, "bound_to": challenge.bound_to,
                                "result": "verified"}}
        text = canonical_json(record)
        digest = sha256_hex(text)
        seq = self._audit.append_in(session, actor=channel_ref, action="application.sign", subject=subject, at=now,
                                    outcome=f"{app.number} sha256={digest}").seq
        session.add(ApplicationSignature(application_id=app.id, declaration_version=self.declaration.version,
                                         record=text, record_sha256=digest, signed_at=now, audit_seq=seq))
        session.add(ApplicationRequest(key=idempotency_key, person_id=person.id, application_id=app.id,
                                       fingerprint=fingerprint))
        notifications.record(session, app, Status.submitted.value, now, person=person)
        session.flush()
        return app.id, seq

    # --- the timeline ----------------------------------------------------------------------
    @staticmethod
    def _load(session: Session, application_id: int) -> Application:
        return session.scalar(select(Application).where(Application.id == application_id).options(
            selectinload(Application.steps), selectinload(Application.materials),
            selectinload(Application.signature), selectinload(Application.person)))

    def _by_number(self, session: Session, number: str, person_id: Optional[int] = None) -> Application:
        query = select(Application.id).where(Application.number == number, Application.amount.is_not(None))
        if person_id is not None:
            query = query.where(Application.person_id == person_id)
        found = session.scalar(query)
        if found is None:
            raise ApplicationNotFound()
        return self._load(session, found)

    def _enter(self, session: Session, app: Application, status: Status, at: dt.datetime, actor: str,
               note: Optional[str] = None) -> int:
        slot = Status.approved if status is Status.rejected else status   # the decision's step
        step = next(s for s in app.steps if s.status == slot.value)
        step.status = status.value
        step.done_at = at
        step.note = note
        step.name = DECIDED_NAMES.get(status, step.name)
        app.status = status.value
        app.updated_at = at
        outcome = f"{app.number} {status.value}" + (f" reason={note}" if note else "")
        seq = self._audit.append_in(session, actor=actor, action=f"application.{status.value}",
                                    subject=mask_id_number(app.person.id_number), outcome=outcome, at=at).seq
        notifications.record(session, app, status.value, at, note, pay_by=at + dt.timedelta(seconds=self.rule.auto_pay_s))
        logger.info("application.%s number=%s", status.value, app.number)
        return seq

    def _approved_at(self, app: Application) -> Optional[dt.datetime]:
        return next((s.done_at for s in app.steps if s.status == Status.approved.value), None)

    def _due(self, app: Application, now: dt.datetime) -> bool:
        if app.amount is None:
            return False
        if app.status == Status.submitted.value and app.complete:
            return now >= app.submitted_at + dt.timedelta(seconds=self.rule.auto_approve_s)
        approved_at = self._approved_at(app) if app.status == Status.approved.value else None
        return approved_at is not None and now >= approved_at + dt.timedelta(seconds=self.rule.auto_pay_s)

    def _advance(self, session: Session, app: Application) -> bool:
        """Applies the sandbox review rule up to now; True when something changed."""
        now = self._clock()
        changed = False
        if app.amount is not None and app.status == Status.submitted.value and app.complete:
            due = app.submitted_at + dt.timedelta(seconds=self.rule.auto_approve_s)
            if now >= due:
                self._enter(session, app, Status.under_review, due, SANDBOX_REVIEWER)
                self._enter(session, app, Status.approved, due, SANDBOX_REVIEWER, "材料齐全，沙箱规则自动审批")
                changed = True
        if app.amount is not None and app.status == Status.approved.value:
            due = self._approved_at(app) + dt.timedelta(seconds=self.rule.auto_pay_s)
            account = app.person.account
            if now >= due and account.balance < app.amount:
                logger.warning("application.payment.held number=%s reason=balance", app.number)
            elif now >= due:
                account.balance -= app.amount
                self._enter(session, app, Status.paid, due, SANDBOX_REVIEWER)
                changed = True
        return changed

    def refresh(self, person_id: Optional[int] = None) -> int:
        """Brings due applications (one person's, or everyone's) up to date; how many changed."""
        now = self._clock()
        with self._sessions() as session:
            query = select(Application.id).where(Application.amount.is_not(None),
                                                 Application.status.in_((Status.submitted.value, Status.approved.value)))
            if person_id is not None:
                query = query.where(Application.person_id == person_id)
            due = [i for i in session.scalars(query) if self._due(self._load(session, i), now)]
        if not due:
            return 0

        def work(session: Session) -> int:
            return sum(self._advance(session, self._load(session, i)) for i in due)

        return write_transaction(self._sessions, work)

    def get(self, number: str, person_id: Optional[int] = None) -> dict:
        self.refresh(person_id)
        with self._sessions() as session:
            return self.view(self._by_number(session, number, person_id), staff=person_id is None)

    def cancel(self, person_id: int, number: str, channel_ref: str) -> tuple[dict, int]:
        """The citizen withdraws an application review has not started on; (view, audit seq)."""
        def work(session: Session) -> tuple[dict, int]:
            app = self._by_number(session, number, person_id)
            self._advance(session, app)
            if app.status != Status.submitted.value:
                raise NotCancellable(current_status=app.status)
            now = self._clock()
            for step in [s for s in app.steps if s.done_at is None]:
                app.steps.remove(step)
            app.steps.append(ApplicationStep(position=len(app.steps), name="已撤销", status=Status.cancelled.value,
                                             done_at=now, note="申请人撤销"))
            app.status = Status.cancelled.value
            app.updated_at = now
            seq = self._audit.append_in(session, actor=channel_ref, action="application.cancelled",
                                        subject=mask_id_number(app.person.id_number),
                                        outcome=f"{app.number} cancelled", at=now).seq
            notifications.record(session, app, Status.cancelled.value, now)
            session.flush()
            return self.view(app), seq

        return write_transaction(self._sessions, work)

    # --- staff review ----------------------------------------------------------------------
    def review_list(self, status: Optional[str] = None) -> list[dict]:
        self.refresh()
        with self._sessions() as session:
            query = select(Application.id).where(Application.amount.is_not(None)).order_by(Application.submitted_at)
            if status:
                query = query.where(Application.status == status)
            return [self.view(self._load(session, i), staff=True) for i in session.scalars(query)]

    def review(self, number: str, staff: str, decision: str, reason: Optional[str] = None) -> tuple[dict, int]:
        """decision: start (→ under_review), approve or reject (with a reason); (view, audit seq)."""
        actor = f"staff:{staff}"

        def work(session: Session) -> tuple[dict, int]:
            app = self._by_number(session, number)
            self._advance(session, app)
            now = self._clock()
            if app.status not in (Status.submitted.value, Status.under_review.value):
                raise InvalidTransition(f"申请当前状态为“{STATUS_NAMES[app.status]}”，不能再审核。", current_status=app.status)
            if app.status == Status.under_review.value and decision == "start":
                raise InvalidTransition("该申请已在审核中。", current_status=app.status)
            seq = None
            if app.status == Status.submitted.value:
                seq = self._enter(session, app, Status.under_review, now, actor)
            if decision == "approve":
                seq = self._enter(session, app, Status.approved, now, actor, reason)
            elif decision == "reject":
                seq = self._enter(session, app, Status.rejected, now, actor, reason)
                paid_step = next(s for s in app.steps if s.status == Status.paid.value)
                app.steps.remove(paid_step)
                app.reason = reason
            session.flush()
            return self.view(app, staff=True), seq

        return write_transaction(self._sessions, work)

    # --- views -----------------------------------------------------------------------------
    def view(self, app: Application, staff: bool = False) -> dict:
        steps = sorted(app.steps, key=lambda s: s.position)
        pending = [s for s in steps if s.done_at is None]
        fetched = [m for m in app.materials if m.fetched]
        body = {
            "id": app.number, "kind": app.kind, "kind_name": APPLICATION_KINDS.get(app.kind, app.kind),
            "status": app.status, "status_name": STATUS_NAMES.get(app.status, app.status),
            "amount": float(app.amount), "complete": bool(app.complete),
            "submitted_at": app.submitted_at.isoformat(timespec="seconds"),
            "current_step": pending[0].name if pending and app.status not in FINAL else None,
            "steps": [{"name": s.name, "status": s.status, "note": s.note,
                       "done_at": s.done_at.isoformat(timespec="seconds") if s.done_at else None} for s in steps],
            "expected_done": app.expected_done.isoformat() if app.expected_done and app.status not in FINAL else None,
            "reason": app.reason, "cancellable": app.status == Status.submitted.value,
            "materials": {"fetched": [{"name": m.name, "summary": m.summary} for m in fetched],
                          "to_upload": [m.name for m in app.materials if not m.fetched]},
            "fetched_notice": fetched_notice([m.source for m in fetched]),
            "uploads": upload_views(app.materials, staff),   # fund.materials: each item's check status
        }
        signature = app.signature
        if signature is not None:
            record = json.loads(signature.record)
            body["signature"] = {"sha256": signature.record_sha256, "signed_at": record["signed_at"],
                                 "declaration_version": signature.declaration_version,
                                 "card_masked": record["card"], "bank_name": record["bank"],
                                 "audit_seq": signature.audit_seq}
        if staff:
            body["person"] = {"name_masked": mask_name(app.person.name),
                              "id_masked": mask_id_number(app.person.id_number)}
            body["channel_ref"] = app.channel_ref
        return body


def fetched_notice(sources: list[Optional[str]]) -> str:
    """已从共享数据获取：不动产登记信息、婚姻登记信息… (empty when nothing was fetched)."""
    names = list(dict.fromkeys(shared_data.SOURCE_NAMES[s] for s in sources if s))
    return "已从共享数据获取：" + "、".join(names) if names else ""


def offer_view(offer: Offer) -> dict:
    return {"kind": offer.kind, "kind_name": offer.kind_name, "max_amount": float(offer.max_amount),
            "card_masked": offer.card_masked, "bank_name": offer.bank_name, "complete": offer.complete,
            "materials": {"fetched": [{"name": f.name, "summary": f.summary} for f in offer.fetched],
                          "to_upload": offer.to_upload},
            "fetched_notice": fetched_notice([f.source for f in offer.fetched]),
            "declaration": {"version": offer.declaration.version, "title": offer.declaration.title,
                            "text": offer.declaration.text, "sha256": offer.declaration.sha256}}
