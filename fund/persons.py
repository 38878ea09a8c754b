"""Reads one verified person's records: the balance view, the rules' facts, applications.

Everything returned for display is masked here (ID, name, employer); amounts stay exact.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from fund import shared_data
from fund.errors import VerificationExpired
from fund.facts import ActiveLoanFact, Home, PersonFacts, money
from fund.models import AccountStatus, Application, Person
from fund.privacy import mask_id_number, mask_name, mask_org
from fund.retirement import group_for

APPLICATION_KINDS = {
    "rent": "租房提取", "purchase": "购房提取", "retirement": "退休提取", "leave_job": "离职提取",
    "renovation": "装修提取", "property_fee": "物业费提取", "illness": "大病医疗提取",
    "loan_repayment": "偿还贷款提取", "other": "其他住房消费提取", "loan": "公积金贷款",
    "transfer": "异地转移接续",
}
STATUS_NAMES = {"processing": "办理中", "approved": "已审批", "paid": "已到账", "rejected": "未通过",
                "submitted": "已提交", "under_review": "审核中", "cancelled": "已撤销"}
FINISHED = ("paid", "rejected", "cancelled")


def load_person(session: Session, person_id: int) -> Person:
    person = session.scalar(select(Person).where(Person.id == person_id).options(
        selectinload(Person.account), selectinload(Person.homes), selectinload(Person.loans)))
    if person is None or person.account is None:
        raise VerificationExpired()
    return person


def facts_for(session: Session, person: Person, today: dt.date) -> PersonFacts:
    account = person.account
    shared = shared_data.available(session, person.id, today)
    homes = [Home(h.city, h.acquired_on, h.price, "self") for h in person.homes]
    spouse = session.get(Person, person.spouse_id) if person.spouse_id else None
    if spouse is not None:
        homes += [Home(h.city, h.acquired_on, h.price, "spouse") for h in spouse.homes]
    return PersonFacts(
        today=today, birth_date=person.birth_date, retirement_group=group_for(person.gender, person.occupation),
        hukou_city=person.hukou_city, city=account.city, account_status=account.status,
        status_date=account.status_date, balance=account.balance, deposit_base=account.deposit_base,
        employer_ratio=account.employer_ratio, personal_ratio=account.personal_ratio,
        deposits={d.month: d.amount for d in account.deposits}, homes=tuple(homes),
        married=spouse is not None, retired_on=person.retired_on, serious_illness=person.serious_illness,
        loans=tuple(ActiveLoanFact(ln.loan_type, ln.balance, ln.monthly_payment)
                    for ln in person.loans if ln.status == "active"),
        shared_records=shared.records, lease_monthly_rent=shared.lease_monthly_rent,
        medical_self_paid=shared.medical_self_paid)


def balance_view(person: Person) -> dict:
    account = person.account
    employer_part = money(account.deposit_base * account.employer_ratio)
    personal_part = money(account.deposit_base * account.personal_ratio)
    return {
        "name_masked": mask_name(person.name), "id_masked": mask_id_number(person.id_number),
        "account_status": account.status, "account_status_name": AccountStatus(account.status).label,
        "balance": float(account.balance), "deposit_base": float(account.deposit_base),
        "employer_ratio": float(account.employer_ratio * 100), "personal_ratio": float(account.personal_ratio * 100),
        "monthly_deposit": float(employer_part + personal_part) if account.status == "normal" else 0.0,
        "employer_masked": mask_org(account.employer), "city": account.city,
        "deposits": [{"month": d.month, "amount": float(d.amount), "employer_part": float(d.employer_part),
                      "personal_part": float(d.personal_part)} for d in account.deposits[:12]],
    }


def applications_view(session: Session, person_id: int) -> list[dict]:
    apps = session.scalars(select(Application).where(Application.person_id == person_id)
                           .options(selectinload(Application.steps))
                           .order_by(Application.submitted_at.desc())).all()
    out = []
    for app in apps:
        pending = [s for s in app.steps if s.done_at is None]
        current = pending[0].name if pending else (app.steps[-1].name if app.steps else "")
        finished = app.status in FINISHED
        out.append({
            "id": app.number, "kind": app.kind, "kind_name": APPLICATION_KINDS.get(app.kind, app.kind),
            "submitted_at": app.submitted_at.isoformat(timespec="seconds"), "status": app.status,
            "status_name": STATUS_NAMES.get(app.status, app.status),
            "current_step": None if finished else current,
            "steps": [{"name": s.name, "done_at": s.done_at.isoformat(timespec="seconds") if s.done_at else None,
                       "status": s.status, "note": s.note} for s in app.steps],
            "expected_done": app.expected_done.isoformat() if app.expected_done and not finished else None,
            "amount": as_float(app.amount), "reason": app.reason, "online": app.amount is not None,
        })
    return out


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
