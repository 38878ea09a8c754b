"""The sandbox core's HTTP API: what the actions call, as they would call a real centre."""
from __future__ import annotations

import hmac
from typing import Annotated, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request

from fund.knowledge import Answer, KnowledgeBase, UnknownTopic, load_knowledge_base
from fund.settings import CoreSettings, get_settings


def require_token(request: Request) -> None:
    """Every business endpoint needs the shared bearer token; /healthz does not."""
    expected = request.app.state.settings.core_api_token.get_secret_value()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="缺少或错误的访问令牌")


def knowledge_base(request: Request) -> KnowledgeBase:
    return load_knowledge_base(request.app.state.settings.core_policy_dir)


Authorized = Depends(require_token)
Knowledge = Annotated[KnowledgeBase, Depends(knowledge_base)]


def create_app(settings: Optional[CoreSettings] = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Anju sandbox core", version="0.1.0")
    app.state.settings = settings
    load_knowledge_base(settings.core_policy_dir)  # fail at start, not at the first question

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/policy/answers/{topic}", dependencies=[Authorized])
    def policy_answer(topic: str, kb: Knowledge,
                      city: Annotated[Optional[str], Query(max_length=20)] = None) -> Answer:
        try:
            return kb.answer(topic, city)
        except UnknownTopic:
            raise HTTPException(status_code=404, detail=f"知识库中没有主题“{topic}”")

    return app
