"""Gateway app factory: `create_app(settings)` wires clients, routers and error translation."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from gateway.audit_client import AuditClient, AuditError
from gateway.channels import health, staff, video, web, wechat_callback, wechat_miniprogram
from gateway.channels import notices, review, speech_api, uploads, voice
from gateway.conversation import BOT_UNAVAILABLE, BotUnavailable, ChatInputError, Conversation
from gateway.faq_fallback import FaqFallback
from gateway.handoff import HandoffDesk, NodeDirectory, NodeVideoService, VideoService, make_rooms
from gateway.handoff.retention import RecordingRetention
from gateway.handoff.media import captions_transcriber
from gateway.limits import BodyLimit, Rate, RateLimited, RateLimiter
from gateway.metrics import Metrics
from gateway.notices import NoticeDelivery
from gateway.rasa_client import RasaClient
from gateway.redis_connection import connect as connect_redis
from gateway.request_ids import RequestIds
from gateway.security_headers import SecurityHeaders
from gateway.sessions import SessionStore
from gateway.settings import Settings, get_settings
from gateway.staff_auth import StaffAuth
from gateway.voice.audiosocket import AudioSocketServer
from gateway.wechat import WeChat

logger = logging.getLogger(__name__)
SERVICE_UNAVAILABLE = "服务暂时不可用，请稍后再试；急需办理可拨打 12329 服务热线联系人工。"


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.redis = connect_redis(settings.redis_url)
        app.state.rasa = RasaClient(settings.rasa_url, settings.rasa_token.get_secret_value(), settings.rasa_timeout_s,
                                    gateway_token=settings.rasa_gateway_token.get_secret_value())
        app.state.metrics = Metrics()
        app.state.faq_fallback = FaqFallback.from_files(
            settings.faq_fallback_nlu_dir, settings.faq_fallback_policy_dir, settings.core_url,
            settings.core_api_token.get_secret_value(), settings.audit_timeout_s)
        app.state.conversation = Conversation(app.state.rasa, settings.chat_max_chars, app.state.redis,
                                              actions_alive=lambda: health.http_ok(settings.action_server_url + "/health",
                                                                                   settings.health_timeout_s),
                                              fallback=app.state.faq_fallback, metrics=app.state.metrics)
        app.state.sessions = SessionStore(app.state.redis, settings.session_idle_ttl_s, settings.session_verified_idle_s)
        app.state.limiter = RateLimiter(app.state.redis)
        app.state.audit = AuditClient(app.state.redis, settings.core_url, settings.core_api_token.get_secret_value(),
                                      settings.audit_timeout_s)
        start_video_handoff(app, settings)
        app.state.wechat = WeChat(settings, app.state.redis, app.state.conversation, app.state.sessions,
                                  app.state.limiter, desk=app.state.video.desk)
        wechat_worker = app.state.wechat.start()
        drainer = asyncio.ensure_future(app.state.audit.run_drainer(settings.audit_drain_interval_s))
        app.state.review_core, app.state.notices = start_review_and_notices(app, settings)
        notice_worker = asyncio.ensure_future(app.state.notices.run())
        app.state.audiosocket = await AudioSocketServer(app).start(settings.audiosocket_host, settings.audiosocket_port)
        logger.info("gateway.started env=%s", settings.anju_env)
        try:
            yield
        finally:
            if app.state.audiosocket is not None:
                await app.state.audiosocket.aclose()
            drainer.cancel()
            wechat_worker.cancel()
            notice_worker.cancel()
            for job in app.state.handoff_jobs:
                job.cancel()
            await asyncio.gather(drainer, wechat_worker, notice_worker, *app.state.handoff_jobs, return_exceptions=True)
            await app.state.notices.aclose()
            await app.state.review_core.aclose()
            await app.state.wechat.aclose()
            await app.state.audit.aclose()
            await app.state.video.aclose()
            await app.state.rasa.aclose()
            await app.state.faq_fallback.aclose()
            await app.state.redis.aclose()

    app = FastAPI(title="Anju gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, default_bytes=settings.limit_body_default_bytes, per_path={
        "/api/chat": settings.limit_body_chat_bytes, "/api/wx/chat": settings.limit_body_chat_bytes,
        "/api/video/offer": settings.limit_body_sdp_bytes, "/wechat/callback": settings.limit_body_wechat_bytes,
        "/api/uploads/": settings.limit_body_upload_bytes})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIds)  # outermost: every answer, errors included, names its request id
    app.include_router(health.router)
    app.include_router(web.router)
    app.include_router(video.router)
    app.include_router(staff.router)
    app.include_router(wechat_miniprogram.router)
    app.include_router(wechat_callback.router)
    app.include_router(speech_api.router)
    app.include_router(voice.router)
    app.include_router(uploads.router)
    app.include_router(review.router)
    app.include_router(notices.router)

    @app.get("/console", include_in_schema=False)
    async def staff_console() -> FileResponse:
        return FileResponse(settings.web_widget_dir / "console.html")

    @app.get("/", include_in_schema=False)
    async def widget_page() -> FileResponse:
        return FileResponse(settings.web_widget_dir / "index.html")

    app.mount("/static", StaticFiles(directory=settings.web_widget_dir), name="static")
    return app


def start_video_handoff(app: FastAPI, settings: Settings) -> None:
    """Queue, staff login and media: rooms in this process, or on media nodes found through redis.
    Starts the handoff's background jobs (`app.state.handoff_jobs`, cancelled at shutdown): putting back
    the calls a restart lost, requeueing tickets whose staff never joined, and recording retention."""
    desk = HandoffDesk(app.state.redis, settings, audit=app.state.audit)
    if settings.video_media_nodes:
        app.state.video = NodeVideoService(desk, NodeDirectory(app.state.redis), settings.video_node_token.get_secret_value(),
                                           settings.video_node_timeout_s, browser_ice_servers(settings))
    else:
        service = VideoService(desk, make_rooms(settings), settings.handoff_staff_reconnect_s, browser_ice_servers(settings),
                               transcriber=captions_transcriber(settings))  # live captions (issue 18.6)
        service.rooms.set_peer_lost(service.on_peer_lost)
        app.state.video = service
    retention = RecordingRetention(app.state.redis, desk.audit, settings.video_recordings_dir,
                                   settings.video_recording_retention_days)
    app.state.handoff_jobs = [asyncio.ensure_future(app.state.video.reconcile_at_start(desk.clock.ms())),
                              asyncio.ensure_future(app.state.video.watch_staff_joins(settings.handoff_staff_join_timeout_s)),
                              asyncio.ensure_future(retention.run())]
    app.state.staff_auth = StaffAuth(app.state.redis, settings.staff_accounts, settings.staff_session_ttl_s,
                                     idle_ttl_s=settings.staff_session_idle_s)
    app.state.metrics.probe_queue_with(desk.queue_figures)
    app.state.conversation.handoff = video.HandoffHook(desk, app.state.limiter, Rate.parse(settings.rate_priority_ip))


def start_review_and_notices(app: FastAPI, settings: Settings) -> tuple[review.ReviewCore, NoticeDelivery]:
    """The console's client for the core's review API, and the delivery of citizens' application notices."""
    reviewer_token = settings.core_reviewer_token.get_secret_value() if settings.core_reviewer_token else None
    review_core = review.ReviewCore(settings.core_url, reviewer_token, settings.audit_timeout_s)
    delivery = NoticeDelivery(app.state.redis, settings.core_url, settings.core_api_token.get_secret_value(),
                              settings.rasa_url.split(",")[0],  # any Rasa: they share the tracker store
                              settings.rasa_token.get_secret_value(), settings.audit_timeout_s,
                              settings.notice_poll_s, settings.session_idle_ttl_s, send_wechat=app.state.wechat.api.send_text)
    return review_core, delivery


def browser_ice_servers(settings: Settings) -> list[dict]:
    if not settings.video_ice_servers:
        return []
    server: dict = {"urls": settings.video_ice_servers}
    if settings.video_ice_username:
        server.update(username=settings.video_ice_username, credential=settings.video_ice_credential.get_secret_value())
    return [server]


def install_error_handlers(app: FastAPI) -> None:
    """Edges translate: every error a citizen can cause gets a clear Chinese message."""

    @app.exception_handler(ChatInputError)
    async def _chat_input(request: Request, exc: ChatInputError) -> JSONResponse:
        retry = {"Retry-After": "30"} if exc.status_code == 503 else {}  # e.g. WeChat's servers unreachable
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=retry)

    @app.exception_handler(BotUnavailable)
    async def _bot_unavailable(request: Request, exc: BotUnavailable) -> JSONResponse:
        return JSONResponse({"detail": BOT_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> JSONResponse:
        """Redis away: every path (staff login, handoff, sessions) says so in Chinese, never a bare 500."""
        logger.warning("gateway.redis.unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        return JSONResponse({"detail": SERVICE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(AuditError)
    async def _audit_down(request: Request, exc: AuditError) -> JSONResponse:
        """An action that cannot be audited is not done quietly: the person is told to try again."""
        return JSONResponse({"detail": SERVICE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = "、".join(".".join(str(p) for p in err.get("loc", [])[1:]) or "请求" for err in exc.errors())
        return JSONResponse({"detail": f"请求参数不正确：{fields}。"}, status_code=422)
