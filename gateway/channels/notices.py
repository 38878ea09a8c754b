"""GET /api/notices: the web chat fetches the application notices waiting for its conversation.

The session comes as for /api/chat (the widget's cookie, or `Authorization: Bearer`); fetching
hands the notices over and clears them, and does not count as a turn (the session is not kept alive)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from gateway import sessions
from gateway.deps import RedisDep, SessionsDep
from gateway.notices import take_web_notices

router = APIRouter(tags=["web"])


@router.get("/api/notices")
async def pending_notices(request: Request, store: SessionsDep, redis: RedisDep) -> dict:
    """`{"notices": [{id, application, status, text, created_at}]}`, oldest first."""
    session = await store.get(sessions.presented_id(request))
    if session is None:
        raise HTTPException(status_code=401, detail="会话已失效，请刷新页面后继续。")
    return {"notices": await take_web_notices(redis, session.sender_id)}
