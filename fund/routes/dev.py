"""Development and test only (CoreSettings.dev_endpoints): the sandbox's SMS outbox, so tests
and the dev page can read one-time codes. Never mounted in production."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from fund.models import SmsOutbox
from fund.privacy import mask_phone
from fund.routes.deps import DbSession

router = APIRouter(prefix="/dev", tags=["dev"])


@router.get("/outbox")
def outbox(session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
    rows = session.scalars(select(SmsOutbox).order_by(SmsOutbox.id.desc()).limit(limit)).all()
    return {"messages": [{"phone_masked": mask_phone(r.phone), "code": r.code, "text": r.text,
                          "sent_at": r.sent_at.isoformat(timespec="seconds")} for r in rows]}
