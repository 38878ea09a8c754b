"""Development and test only (CoreSettings.dev_endpoints): the sandbox's SMS outbox, so tests
and the dev page can read one-time codes. Never mounted in production.

`kind=code` (the default: what this list held before notices existed, so a caller reading the
newest code is never handed a notice that arrived meanwhile), `notice` (application status
notices, fund.notifications) or `all`."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from fund.models import SmsOutbox
from fund.privacy import mask_phone
from fund.routes.deps import DbSession

router = APIRouter(prefix="/dev", tags=["dev"])


@router.get("/outbox")
def outbox(session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 20,
           kind: Literal["code", "notice", "all"] = "code") -> dict:
    query = select(SmsOutbox).order_by(SmsOutbox.id.desc()).limit(limit)
    if kind == "code":
        query = query.where(SmsOutbox.code != "")
    elif kind == "notice":
        query = query.where(SmsOutbox.code == "")
    rows = session.scalars(query).all()
    return {"messages": [{"phone_masked": mask_phone(r.phone), "code": r.code, "text": r.text,
                          "kind": "code" if r.code else "notice",
                          "sent_at": r.sent_at.isoformat(timespec="seconds")} for r in rows]}
