"""Loan estimate: for a verified person (ceiling from their account and age) or in general."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal, Optional

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from fund import loans
from fund.persons import facts_for
from fund.routes.deps import CoreDep, DbSession
from fund.routes.persons import verified_person

router = APIRouter(prefix="/loan", tags=["loan"])


class EstimateRequest(BaseModel):
    person_ref: Optional[str] = Field(default=None, min_length=1, max_length=80)
    city: Optional[str] = Field(default=None, max_length=20)
    amount: Optional[Decimal] = Field(default=None, gt=0, le=100_000_000)
    years: Optional[int] = Field(default=None, ge=1, le=40)
    house_order: Literal["first", "second"] = "first"


def _money(value: Optional[Decimal]) -> Optional[float]:
    return None if value is None else float(value)


@router.post("/estimate")
def estimate(body: EstimateRequest, core: CoreDep, session: DbSession, request: Request) -> dict:
    facts = None
    city = body.city
    if body.person_ref:
        person = verified_person(core, session, body.person_ref, request)
        facts = facts_for(session, person, core.today())
        city = facts.city
    rules = core.rulebook.for_city(city)
    result = loans.estimate(rules, core.today(), body.house_order, body.amount, body.years, facts)
    notes = list(result.notes)
    if rules.is_national and city:
        notes.append(f"暂无{city}的本地贷款参数，以上按通用参数估算，以{city}公积金中心规定为准。")
    return {
        "city": city or rules.name, "rules_city": rules.name, "amount": _money(result.amount),
        "ceiling": _money(result.ceiling),
        "ceiling_parts": {"city_cap": _money(result.city_cap), "balance_multiple": _money(result.balance_multiple),
                          "income_rule": _money(result.income_rule)},
        "max_years": result.max_years, "years": result.years, "rate": float(result.rate),
        "equal_installment": {"monthly": _money(result.equal_installment.monthly),
                              "total_interest": _money(result.equal_installment.total_interest)},
        "equal_principal": {"first_month": _money(result.equal_principal.first_month),
                            "monthly_decrease": _money(result.equal_principal.monthly_decrease),
                            "last_month": _money(result.equal_principal.last_month),
                            "total_interest": _money(result.equal_principal.total_interest)},
        "notes": notes, "verified": result.verified and not (rules.is_national and city),
    }
