"""The sandbox core's HTTP API: what the actions call, as they would call a real centre.

create_app(settings) builds everything the routes need (database, identity service, PII
vault, audit log, rules) and, in development and test, creates and seeds an empty database
so a fresh clone works. Every call except /healthz leaves an audit record: a call that
changes something writes it in the change's own transaction (the identity service, POST
/audit/records); the middleware writes one after the response for every other call.
"""
from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Optional

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from bot.observability import NO_REQUEST, REQUEST_ID, REQUEST_ID_HEADER, accepted_request_id
from fund import seed as seeding
from fund.anchor import AnchorFile
from fund.applications import ApplicationService, ReviewRule, load_declaration
from fund.audit import AuditLog
from fund.clock import Clock, china_date, system_clock
from fund.db import create_schema, is_empty, make_engine, make_session_factory
from fund.knowledge import Answer, KnowledgeBase, UnknownTopic, load_knowledge_base
from fund.routes import applications, audit, dev, errors, identity, loan, materials, notifications, persons
from fund.routes.deps import Core
from fund.rulebook import load_rulebook
from fund.settings import CoreSettings, get_settings
from fund.vault import Vault
from fund.verification import IdentityService, Policy

logger = logging.getLogger(__name__)


def require_token(request: Request) -> None:
    """Every business endpoint needs the shared bearer token; /healthz does not."""
    expected = request.app.state.settings.core_api_token.get_secret_value()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        request.state.audit_outcome = "unauthorized"
        raise HTTPException(status_code=401, detail={"code": "unauthorized", "message": "缺少或错误的访问令牌"})


def knowledge_base(request: Request) -> KnowledgeBase:
    return load_knowledge_base(request.app.state.settings.core_policy_dir)


Authorized = Depends(require_token)
Knowledge = Annotated[KnowledgeBase, Depends(knowledge_base)]


def build_core(settings: CoreSettings, clock: Clock, redis_client: Any = None) -> Core:
    engine = make_engine(settings.core_database_url)
    create_schema(engine)
    if settings.core_auto_seed and is_empty(engine):
        people = seeding.seed(engine, settings.core_seed, china_date(clock()))
        logger.info("core.database.seeded persons=%s", len(people))
    sessions = make_session_factory(engine)
    # One immediate retry on a fresh connection: after a redis restart every pooled one is dead.
    store = redis_client or redis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s,
                                                 socket_connect_timeout=settings.redis_timeout_s,
                                                 retry=Retry(NoBackoff(), 1),
                                                 retry_on_error=[redis.exceptions.ConnectionError])
    policy = Policy(max_failures=settings.core_max_failures, lock_s=settings.core_lock_s,
                    code_ttl_s=settings.core_code_ttl_s, idle_timeout_s=settings.core_idle_timeout_s,
                    max_codes_per_window=settings.core_codes_per_window)
    secret = settings.core_api_token.get_secret_value().encode()
    audit_log = AuditLog(sessions, settings.core_audit_key.get_secret_value().encode(),
                         AnchorFile(settings.core_audit_anchor_path), settings.core_audit_anchor_every)
    identity_service = IdentityService(sessions, clock, secret, policy, audit=audit_log)
    rulebook = load_rulebook(settings.rules_dir)
    application_service = ApplicationService(
        sessions, clock, identity_service, audit_log, rulebook, load_declaration(settings.core_policy_dir),
        ReviewRule(auto_approve_s=settings.core_auto_approve_s, auto_pay_s=settings.core_auto_pay_s))
    return Core(sessions=sessions, identity=identity_service, vault=Vault(store), audit=audit_log,
                rulebook=rulebook, clock=clock, applications=application_service)


def create_app(settings: Optional[CoreSettings] = None, *, clock: Optional[Clock] = None,
               redis_client: Any = None) -> FastAPI:
    settings = settings or get_settings()
    clock = clock or system_clock
    load_knowledge_base(settings.core_policy_dir)  # fail at start, not at the first question
    core = build_core(settings, clock, redis_client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        anchor = await run_in_threadpool(core.audit.anchor_head)  # clean shutdown: anchor the head
        if anchor is not None:
            logger.info("core.shutdown.anchored seq=%s", anchor.seq)

    app = FastAPI(title="Anju sandbox core", version="0.3.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.core = core
    errors.install(app)

    @app.middleware("http")
    async def audit_every_call(request: Request, call_next):
        # The caller's request id (gateway or actions) marks this process's log lines for the turn.
        REQUEST_ID.set(accepted_request_id(request.headers.get(REQUEST_ID_HEADER)) or NO_REQUEST)
        if request.url.path == "/healthz":
            return await call_next(request)
        response = await call_next(request)
        state = request.state
        if getattr(state, "audit_seq", None) is not None:  # recorded with its change already
            return response
        if getattr(state, "audit_nothing_read", False) and response.status_code == 200:
            return response  # an authorised poll that found nothing: no personal data was read
        route = request.scope.get("route")
        outcome = f"{response.status_code} {getattr(state, 'audit_outcome', '')}".strip()
        await run_in_threadpool(
            app.state.core.audit.append, actor=getattr(state, "audit_actor", "anonymous"),
            action=f"{request.method} {route.path if route is not None else '(no route)'}",
            subject=getattr(state, "audit_subject", "-"), outcome=outcome, at=clock())
        return response

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/policy/topics", dependencies=[Authorized])
    def policy_topics(kb: Knowledge) -> dict:
        """Every topic with its title, for "which of these did you mean?" buttons."""
        return {"topics": [{"topic": t.topic, "title": t.title} for t in kb.topics.values()]}

    @app.get("/policy/answers/{topic}", dependencies=[Authorized])
    def policy_answer(topic: str, kb: Knowledge,
                      city: Annotated[Optional[str], Query(max_length=20)] = None,
                      aspect: Annotated[Optional[str], Query(max_length=20)] = None,
                      variant: Annotated[Literal["full", "short"], Query()] = "full") -> Answer:
        """One topic's answer; variant=short is the elder-mode text (a few plain sentences)."""
        try:
            return kb.answer(topic, city, aspect, variant)
        except UnknownTopic:
            raise HTTPException(status_code=404, detail=f"知识库中没有主题“{topic}”")

    for router in (identity.router, applications.router, persons.router, loan.router, audit.router,
                   notifications.router):
        app.include_router(router, dependencies=[Authorized])
    app.include_router(applications.review_router)   # its own check: the reviewer token
    app.include_router(materials.router, dependencies=[Authorized])
    app.include_router(materials.review_router)
    if settings.dev_endpoints:
        app.include_router(dev.router, dependencies=[Authorized])
    return app
