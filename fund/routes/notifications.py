"""Citizen notices for the gateway to deliver (core token): the outbox fund.notifications fills.

The sandbox review rule is applied first, so automatic approvals and payments produce their
notices even when nobody reads the application."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from fund import notifications
from fund.routes.deps import CoreDep

router = APIRouter(tags=["notifications"])


@router.get("/notifications")
async def list_notifications(core: CoreDep, request: Request, after: Annotated[int, Query(ge=0)] = 0,
                             limit: Annotated[int, Query(ge=1, le=100)] = 100) -> dict:
    """`{"notifications": [{id, application, channel_ref, status, text, created_at, openid}]}`, id > after."""
    await run_in_threadpool(core.applications.refresh)

    def read() -> list[dict]:
        with core.sessions() as session:
            return notifications.since(session, after, limit)

    found = await run_in_threadpool(read)
    request.state.audit_actor = "gateway-notices"
    request.state.audit_outcome = f"count={len(found)}"
    # The gateway polls every few seconds: only a poll that hands out notices (personal data) is audited.
    request.state.audit_nothing_read = not found
    return {"notifications": found}
