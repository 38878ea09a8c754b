"""The sandbox core's schema (SQLAlchemy 2): what a centre's business system holds.

Home ownership, marriage, purchase contracts, lease registrations, employment, retirement,
serious-illness and medical-bill records stand for data fetched from other departments'
shared platforms (the government data exchange), so the citizen need not upload them.

Columns added after a table first shipped are Optional: fund.db adds them to an existing
database (create_all never alters a table).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Optional

from sqlalchemy import (Boolean, Date, DateTime, ForeignKey, Integer, Numeric, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(14, 2)
Ratio = Numeric(5, 4)


class Base(DeclarativeBase):
    pass


class AccountStatus(str, Enum):
    normal = "normal"
    sealed = "sealed"   # 封存: no employer paying in
    frozen = "frozen"   # 冻结: e.g. by a court; nothing may be withdrawn

    @property
    def label(self) -> str:
        return {"normal": "正常缴存", "sealed": "封存", "frozen": "冻结"}[self.value]


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(40))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1))              # M / F
    occupation: Mapped[str] = mapped_column(String(10), default="cadre")  # worker / cadre (retirement group)
    phone: Mapped[str] = mapped_column(String(11))
    wechat_openid: Mapped[Optional[str]] = mapped_column(String(64), unique=True, index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    hukou_city: Mapped[str] = mapped_column(String(20))
    spouse_id: Mapped[Optional[int]] = mapped_column(ForeignKey("persons.id"))
    retired_on: Mapped[Optional[dt.date]] = mapped_column(Date)           # 人社共享数据
    serious_illness: Mapped[bool] = mapped_column(Boolean, default=False)  # 医保共享数据
    branch: Mapped[str] = mapped_column(String(200), default="")          # demo case description

    account: Mapped[Optional["Account"]] = relationship(back_populates="person", uselist=False)
    homes: Mapped[list["HomeOwnership"]] = relationship(back_populates="person")
    loans: Mapped[list["Loan"]] = relationship(back_populates="person")
    applications: Mapped[list["Application"]] = relationship(back_populates="person")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    account_number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(10))   # AccountStatus value
    status_date: Mapped[dt.date] = mapped_column(Date)
    balance: Mapped[Decimal] = mapped_column(Money)
    deposit_base: Mapped[Decimal] = mapped_column(Money)
    employer_ratio: Mapped[Decimal] = mapped_column(Ratio)
    personal_ratio: Mapped[Decimal] = mapped_column(Ratio)
    employer: Mapped[str] = mapped_column(String(80))
    city: Mapped[str] = mapped_column(String(20))
    flexible_worker: Mapped[bool] = mapped_column(Boolean, default=False)
    first_deposit_month: Mapped[str] = mapped_column(String(7))   # YYYY-MM

    person: Mapped[Person] = relationship(back_populates="account")
    deposits: Mapped[list["Deposit"]] = relationship(back_populates="account", order_by="Deposit.month.desc()")


class Deposit(Base):
    __tablename__ = "deposits"
    __table_args__ = (UniqueConstraint("account_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))                 # YYYY-MM
    amount: Mapped[Decimal] = mapped_column(Money)
    employer_part: Mapped[Decimal] = mapped_column(Money)
    personal_part: Mapped[Decimal] = mapped_column(Money)
    paid_on: Mapped[dt.date] = mapped_column(Date)

    account: Mapped[Account] = relationship(back_populates="deposits")


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    loan_type: Mapped[str] = mapped_column(String(12), default="fund")   # fund / commercial
    status: Mapped[str] = mapped_column(String(10))                      # active / settled
    principal: Mapped[Decimal] = mapped_column(Money)
    balance: Mapped[Decimal] = mapped_column(Money)
    monthly_payment: Mapped[Decimal] = mapped_column(Money)
    start_date: Mapped[dt.date] = mapped_column(Date)
    years: Mapped[int] = mapped_column(Integer)

    person: Mapped[Person] = relationship(back_populates="loans")


class HomeOwnership(Base):
    """不动产登记 record, as fetched from the shared government data platform."""

    __tablename__ = "home_ownerships"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    city: Mapped[str] = mapped_column(String(20))
    acquired_on: Mapped[dt.date] = mapped_column(Date)
    area_m2: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    price: Mapped[Decimal] = mapped_column(Money)

    person: Mapped[Person] = relationship(back_populates="homes")


class BankCard(Base):
    """The receiving bank card on file (收款银行卡); only staff change it."""

    __tablename__ = "bank_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    bank_name: Mapped[str] = mapped_column(String(40))
    card_number: Mapped[str] = mapped_column(String(19))


class PurchaseContract(Base):
    """商品房买卖合同网签备案 (住建共享数据)."""

    __tablename__ = "shared_purchase_contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    contract_number: Mapped[str] = mapped_column(String(30))
    city: Mapped[str] = mapped_column(String(20))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    price: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money)


class MarriageRegistration(Base):
    """婚姻登记 (民政共享数据)."""

    __tablename__ = "shared_marriages"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    spouse_id: Mapped[Optional[int]] = mapped_column(ForeignKey("persons.id"))
    registered_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))   # married / divorced


class LeaseRegistration(Base):
    """房屋租赁登记备案 (住建共享数据)."""

    __tablename__ = "shared_lease_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    record_number: Mapped[str] = mapped_column(String(30))
    city: Mapped[str] = mapped_column(String(20))
    district: Mapped[str] = mapped_column(String(20))
    start_on: Mapped[dt.date] = mapped_column(Date)
    end_on: Mapped[dt.date] = mapped_column(Date)
    monthly_rent: Mapped[Decimal] = mapped_column(Money)


class EmploymentRecord(Base):
    """劳动用工备案 (人社共享数据): an ended record stands for 解除或终止劳动关系证明."""

    __tablename__ = "shared_employment"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    employer: Mapped[str] = mapped_column(String(80))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[Optional[dt.date]] = mapped_column(Date)
    end_reason: Mapped[Optional[str]] = mapped_column(String(40))


class MedicalBill(Base):
    """医疗费用结算单 (医保共享数据): what the patient paid themselves after insurance."""

    __tablename__ = "shared_medical_bills"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    hospital: Mapped[str] = mapped_column(String(80))
    settled_on: Mapped[dt.date] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Money)
    self_paid: Mapped[Decimal] = mapped_column(Money)


class Application(Base):
    """A business application. Seeded demo ones use processing / approved / rejected / paid;
    online withdrawals (fund.applications) use submitted / under_review / approved / rejected /
    paid / cancelled and fill the Optional columns."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(12))
    expected_done: Mapped[Optional[dt.date]] = mapped_column(Date)
    amount: Mapped[Optional[Decimal]] = mapped_column(Money)
    complete: Mapped[Optional[bool]] = mapped_column(Boolean)        # every material fetched (免提交)
    channel_ref: Mapped[Optional[str]] = mapped_column(String(80))
    reason: Mapped[Optional[str]] = mapped_column(String(200))       # why rejected
    updated_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)

    person: Mapped[Person] = relationship(back_populates="applications")
    steps: Mapped[list["ApplicationStep"]] = relationship(order_by="ApplicationStep.position",
                                                          cascade="all, delete-orphan")
    materials: Mapped[list["ApplicationMaterial"]] = relationship(order_by="ApplicationMaterial.id")
    signature: Mapped[Optional["ApplicationSignature"]] = relationship(uselist=False)


class ApplicationStep(Base):
    __tablename__ = "application_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    done_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    status: Mapped[Optional[str]] = mapped_column(String(12))   # the status this step enters
    note: Mapped[Optional[str]] = mapped_column(String(200))    # e.g. the rejection reason


class ApplicationMaterial(Base):
    """One material of an application: fetched from shared data, or still to be supplied."""

    __tablename__ = "application_materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[Optional[str]] = mapped_column(String(20))   # shared-data source; None: to upload
    fetched: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(String(200), default="")  # masked, for the citizen and reviewer
    fetched_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    # An uploaded file (fund.materials): stored as <CORE_UPLOAD_DIR>/<sha256>.<ext>, read by OCR and checked.
    file_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    file_size: Mapped[Optional[int]] = mapped_column(Integer)
    media_type: Mapped[Optional[str]] = mapped_column(String(40))
    pages: Mapped[Optional[int]] = mapped_column(Integer)
    ocr_fields: Mapped[Optional[str]] = mapped_column(Text)          # JSON of masked fields read
    check_status: Mapped[Optional[str]] = mapped_column(String(16))  # accepted / needs_review
    check_notes: Mapped[Optional[str]] = mapped_column(String(500))
    uploaded_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)


class ApplicationSignature(Base):
    """The citizen's electronic signature: `record` is the canonical JSON that `record_sha256`
    covers (declaration hash, amount, masked card, time, OTP check); the hash is in the audit chain."""

    __tablename__ = "application_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    declaration_version: Mapped[str] = mapped_column(String(20))
    record: Mapped[str] = mapped_column(Text)
    record_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    audit_seq: Mapped[int] = mapped_column(Integer)


class ApplicationRequest(Base):
    """A caller's idempotency key for one submission: a retry answers the same application."""

    __tablename__ = "application_requests"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))   # sha256 of kind and amount


class VerificationSession(Base):
    """A verified conversation: person_ref is handed to the bot instead of any personal data."""

    __tablename__ = "verification_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    channel_ref: Mapped[str] = mapped_column(String(80))
    method: Mapped[str] = mapped_column(String(10))   # sms / wechat
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime)


class OtpChallenge(Base):
    __tablename__ = "otp_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    subject_key: Mapped[str] = mapped_column(String(64))      # digest of the ID number
    channel_ref: Mapped[str] = mapped_column(String(80))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    purpose: Mapped[Optional[str]] = mapped_column(String(10))    # None / login, or sign
    bound_to: Mapped[Optional[str]] = mapped_column(String(64))   # sign: digest of what is signed


class IdentityLock(Base):
    """Failed attempts per ID number (known or not, so a lock reveals nothing); survives restarts."""

    __tablename__ = "identity_locks"

    subject_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)


class SmsOutbox(Base):
    """What the sandbox 'sent' by SMS; a real deployment hands this to an SMS gateway."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(11))
    code: Mapped[str] = mapped_column(String(6))
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AuditRecord(Base):
    """One link of the append-only HMAC chain (see fund.audit); timestamp is when the event happened."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    timestamp: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditIdempotencyKey(Base):
    """A caller's key for one audit record, so merging the same parked entry twice writes it once."""

    __tablename__ = "audit_idempotency_keys"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(ForeignKey("audit_records.seq"))


class Notification(Base):
    """One notice of an application's status change for the citizen (fund.notifications): written with
    the change; `channel_ref` is the sender id they applied from; the gateway reads them by id."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    channel_ref: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(12))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
