"""A verified person's data: balance and deposits, withdrawal pre-check, applications.

Each call slides the session's idle timeout; an unknown or idle person_ref answers 401
verification_expired so the bot asks the citizen to verify again.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session

from fund import withdrawal
from fund.errors import InvalidInput
from fund.models import Person
from fund.persons import applications_view, as_float, balance_view, facts_for, load_person
from fund.privacy import mask_id_number
from fund.rulebook import KINDS
from fund.routes.deps import Core, CoreDep, DbSession, note_audit

router = APIRouter(prefix="/persons", tags=["persons"])
PersonRef = Annotated[str, Path(min_length=1, max_length=80)]


class InvalidKind(InvalidInput):
    code = "invalid_kind"


def verified_person(core: Core, session: Session, person_ref: str, request: Request) -> Person:
    person_id, channel_ref = core.identity.touch(person_ref)
    person = load_person(session, person_id)
    note_audit(request, actor=channel_ref, subject=mask_id_number(person.id_number))
    return person


@router.get("/{person_ref}/balance")
def balance(person_ref: PersonRef, core: CoreDep, session: DbSession, request: Request) -> dict:
    return balance_view(verified_person(core, session, person_ref, request))


@router.get("/{person_ref}/withdrawal-check")
def withdrawal_check(person_ref: PersonRef, core: CoreDep, session: DbSession, request: Request,
                     kind: Annotated[str, Query(max_length=20)] = "all") -> dict:
    if kind != "all" and kind not in KINDS:
        raise InvalidKind(kind)
    person = verified_person(core, session, person_ref, request)
    facts = facts_for(session, person, core.today())
    rules = core.rulebook.for_city(facts.city)
    fallback = None
    if rules.is_national:
        fallback = f"暂无{facts.city}的本地提取规则数据，以上按全国通用规则判断，以{facts.city}公积金中心规定为准。"
    results = []
    for result in withdrawal.evaluate_all(rules, facts, kind):
        reasons = result.reasons + ([fallback] if fallback else [])
        results.append({"kind": result.kind, "kind_name": result.kind_name, "eligible": result.eligible,
                        "reasons": reasons, "max_amount": as_float(result.max_amount),
                        "auto_materials": result.auto_materials, "upload_materials": result.upload_materials,
                        "verified": result.verified and not fallback,
                        "effective_date": result.effective_date.isoformat(), "source": result.source})
    request.state.audit_outcome = "eligible=" + ",".join(r["kind"] for r in results if r["eligible"])
    return {"city": facts.city, "rules_city": rules.name, "results": results}


@router.get("/{person_ref}/applications")
def applications(person_ref: PersonRef, core: CoreDep, session: DbSession, request: Request) -> dict:
    person = verified_person(core, session, person_ref, request)
    if core.applications.refresh(person.id):   # the sandbox review rule, applied on read
        session.expire_all()
    return {"applications": applications_view(session, person.id)}
