"""Audit records written by other parts of the service (e.g. a video recording's hash),
so every transaction of the centre lands in the one hash chain."""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fund.routes.deps import CoreDep

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditRecordIn(BaseModel):
    actor: str = Field(min_length=1, max_length=80)
    action: str = Field(min_length=1, max_length=80)
    subject: str = Field(min_length=1, max_length=80)
    outcome: str = Field(min_length=1, max_length=200)


@router.post("/records", status_code=201)
async def append_record(record: AuditRecordIn, core: CoreDep, request: Request) -> dict:
    request.state.audit_actor = record.actor
    seq = await run_in_threadpool(core.audit.append, actor=record.actor, action=record.action,
                                  subject=record.subject, outcome=record.outcome, at=core.clock())
    return {"seq": seq}
