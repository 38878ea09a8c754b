"""Other parts of the service (the video recorder) append to the one audit chain.

A caller that could not reach the core parks its entry (e.g. in redis) and merges it later:
`at` keeps when the event happened, and `idempotency_key` makes a repeated merge write once.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fund.errors import InvalidInput
from fund.routes.deps import CoreDep, note_audit

router = APIRouter(prefix="/audit", tags=["audit"])
CLOCK_SKEW = dt.timedelta(minutes=5)


class AuditRecordIn(BaseModel):
    actor: str = Field(min_length=1, max_length=80)
    action: str = Field(min_length=1, max_length=80)
    subject: str = Field(min_length=1, max_length=80)
    outcome: str = Field(min_length=1, max_length=200)
    at: Optional[dt.datetime] = Field(default=None, description="when it happened; ISO 8601, UTC when no zone")
    idempotency_key: Optional[str] = Field(default=None, min_length=1, max_length=80,
                                           pattern=r"^[A-Za-z0-9_.:@-]{1,80}$")


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo is not None else at


@router.post("/records", status_code=201)
async def append_record(record: AuditRecordIn, core: CoreDep, request: Request) -> dict:
    note_audit(request, actor=record.actor)
    now = core.clock()
    at = _utc(record.at) if record.at is not None else now
    if at > now + CLOCK_SKEW:
        raise InvalidInput(f"at={record.at.isoformat()} is in the future")
    appended = await run_in_threadpool(core.audit.append, actor=record.actor, action=record.action,
                                       subject=record.subject, outcome=record.outcome, at=at,
                                       idempotency_key=record.idempotency_key)
    note_audit(request, seq=appended.seq)  # this call's record is the one it asked for
    return {"seq": appended.seq, "duplicate": appended.duplicate}
