"""Shared data: the sandbox's stand-in for the government data exchange (政务数据共享).

Each source answers two questions about one person: is there a record that makes a material
免提交 (`available`, read by the pre-check through PersonFacts), and what was fetched, told
to the citizen and the reviewer without clear personal data (`fetch`). A real centre replaces
these table reads with calls to the exchange; the source names are the rules' `shared:` keys.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from fund.facts import cn_date
from fund.models import (AccountStatus, EmploymentRecord, HomeOwnership, LeaseRegistration, Loan, MarriageRegistration,
                         MedicalBill, Person, PurchaseContract)
from fund.privacy import mask_id_number, mask_org
from fund.retirement import add_months

SOURCE_NAMES = {
    "identity": "身份信息", "home_ownership": "不动产登记信息", "marriage": "婚姻登记信息",
    "deposits": "公积金缴存记录", "loan": "住房贷款信息", "retirement": "退休信息",
    "illness": "重大疾病医疗记录", "purchase_contract": "商品房网签备案信息", "lease": "房屋租赁登记备案信息",
    "employment_ended": "劳动关系终止备案信息", "medical_bills": "医疗费用结算信息",
}
MEDICAL_WINDOW_MONTHS = 12   # bills settled within the last year count


@dataclass(frozen=True)
class SharedFacts:
    records: frozenset[str]
    lease_monthly_rent: Optional[Decimal] = None
    medical_self_paid: Optional[Decimal] = None


@dataclass(frozen=True)
class Fetched:
    name: str          # the material, as the rules name it
    source: str
    summary: str       # what was found, masked


def _current_lease(session: Session, person_id: int, today: dt.date) -> Optional[LeaseRegistration]:
    return session.scalar(select(LeaseRegistration).where(
        LeaseRegistration.person_id == person_id, LeaseRegistration.start_on <= today,
        LeaseRegistration.end_on >= today).order_by(LeaseRegistration.start_on.desc()).limit(1))


def _last_job(session: Session, person_id: int) -> Optional[EmploymentRecord]:
    return session.scalar(select(EmploymentRecord).where(EmploymentRecord.person_id == person_id)
                          .order_by(EmploymentRecord.started_on.desc()).limit(1))


def _recent_bills(session: Session, person_id: int, today: dt.date) -> list[MedicalBill]:
    since = add_months(today, -MEDICAL_WINDOW_MONTHS)
    return list(session.scalars(select(MedicalBill).where(MedicalBill.person_id == person_id,
                                                          MedicalBill.settled_on >= since)
                                .order_by(MedicalBill.settled_on)))


def available(session: Session, person_id: int, today: dt.date) -> SharedFacts:
    records = set()
    if session.scalar(select(PurchaseContract.id).where(PurchaseContract.person_id == person_id).limit(1)):
        records.add("purchase_contract")
    lease = _current_lease(session, person_id, today)
    if lease is not None:
        records.add("lease")
    job = _last_job(session, person_id)
    if job is not None and job.ended_on is not None and job.ended_on <= today:
        records.add("employment_ended")
    bills = _recent_bills(session, person_id, today)
    if bills:
        records.add("medical_bills")
    return SharedFacts(frozenset(records), lease.monthly_rent if lease else None,
                       sum((b.self_paid for b in bills), Decimal(0)) if bills else None)


def _homes(session: Session, person: Person) -> str:
    owners = [person.id] + ([person.spouse_id] if person.spouse_id else [])
    homes = session.scalars(select(HomeOwnership).where(HomeOwnership.person_id.in_(owners))).all()
    if not homes:
        return "本人及配偶名下无住房登记"
    parts = [f"{h.city}，{h.acquired_on.year}年{h.acquired_on.month}月登记，{h.area_m2:.0f}㎡"
             + ("（配偶）" if h.person_id != person.id else "") for h in homes]
    return f"{len(homes)}处住房登记：" + "；".join(parts)


def _marriage(session: Session, person: Person) -> str:
    record = session.scalar(select(MarriageRegistration).where(MarriageRegistration.person_id == person.id)
                            .order_by(MarriageRegistration.registered_on.desc()).limit(1))
    if record is None:
        return "未查询到婚姻登记记录（未婚）"
    state = "已婚" if record.status == "married" else "离婚"
    return f"{state}（{record.registered_on.year}年登记）"


def _describe(session: Session, person: Person, source: str, today: dt.date) -> str:
    if source == "identity":
        return f"已核验（{mask_id_number(person.id_number)}）"
    if source == "home_ownership":
        return _homes(session, person)
    if source == "marriage":
        return _marriage(session, person)
    if source == "deposits":
        account = person.account
        return f"账户状态：{AccountStatus(account.status).label}，余额{account.balance:,.2f}元"
    if source == "loan":
        loans = session.scalars(select(Loan).where(Loan.person_id == person.id, Loan.status == "active")).all()
        return f"{len(loans)}笔在还贷款，余额合计{sum((ln.balance for ln in loans), Decimal(0)):,.2f}元"
    if source == "retirement":
        return f"{cn_date(person.retired_on)}办理退休" if person.retired_on else "未查询到退休记录"
    if source == "illness":
        return "有本人或直系亲属重大疾病医疗记录" if person.serious_illness else "未查询到"
    if source == "purchase_contract":
        contract = session.scalar(select(PurchaseContract).where(PurchaseContract.person_id == person.id)
                                  .order_by(PurchaseContract.signed_on.desc()).limit(1))
        return (f"合同号{contract.contract_number[:4]}****{contract.contract_number[-4:]}，{contract.city}，"
                f"{cn_date(contract.signed_on)}签订，房款{contract.price:,.2f}元，已付{contract.paid:,.2f}元")
    if source == "lease":
        lease = _current_lease(session, person.id, today)
        return (f"备案号{lease.record_number}，{lease.city}{lease.district}，{cn_date(lease.start_on)}至"
                f"{cn_date(lease.end_on)}，月租金{lease.monthly_rent:,.2f}元")
    if source == "employment_ended":
        job = _last_job(session, person.id)
        return f"{mask_org(job.employer)}，{cn_date(job.ended_on)}终止劳动关系（{job.end_reason or '未注明原因'}）"
    if source == "medical_bills":
        bills = _recent_bills(session, person.id, today)
        return f"{len(bills)}张结算单，个人负担合计{sum((b.self_paid for b in bills), Decimal(0)):,.2f}元"
    raise KeyError(source)


def fetch(session: Session, person: Person, today: dt.date, materials: list[tuple[str, str]]) -> list[Fetched]:
    """Fetches each (material name, source) the pre-check found on file, for the application."""
    return [Fetched(name, source, _describe(session, person, source, today)[:200]) for name, source in materials]
