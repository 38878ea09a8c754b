"""Gateway app factory: `create_app(settings)` wires clients, routers and error translation."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis

from gateway.channels import health, staff, video, web
from gateway.conversation import BOT_UNAVAILABLE, BotUnavailable, ChatInputError, Conversation
from gateway.handoff import HandoffDesk
from gateway.handoff_media import NodeVideoService, VideoService, make_rooms
from gateway.handoff_nodes import NodeDirectory
from gateway.rasa_client import RasaClient
from gateway.settings import Settings, get_settings
from gateway.staff_auth import StaffAuth

logger = logging.getLogger(__name__)


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.redis = Redis.from_url(settings.redis_url, decode_responses=True,
                                         socket_timeout=5, socket_connect_timeout=2)
        app.state.rasa = RasaClient(settings.rasa_url, settings.rasa_token.get_secret_value(), settings.rasa_timeout_s)
        app.state.conversation = Conversation(app.state.rasa, settings.chat_max_chars, app.state.redis)
        start_video_handoff(app, settings)
        logger.info("gateway.started env=%s", settings.anju_env)
        try:
            yield
        finally:
            await app.state.video.aclose()
            await app.state.rasa.aclose()
            await app.state.redis.aclose()

    app = FastAPI(title="Anju gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(web.router)
    app.include_router(video.router)
    app.include_router(staff.router)

    @app.get("/console", include_in_schema=False)
    async def staff_console() -> FileResponse:
        return FileResponse(settings.web_widget_dir / "console.html")

    @app.get("/", include_in_schema=False)
    async def widget_page() -> FileResponse:
        return FileResponse(settings.web_widget_dir / "index.html")

    app.mount("/static", StaticFiles(directory=settings.web_widget_dir), name="static")
    return app


def start_video_handoff(app: FastAPI, settings: Settings) -> None:
    """Queue, staff login and media: rooms in this process, or on media nodes found through redis."""
    desk = HandoffDesk(app.state.redis, settings)
    if settings.video_media_nodes:
        app.state.video = NodeVideoService(desk, NodeDirectory(app.state.redis), settings.video_node_token.get_secret_value(),
                                           settings.video_node_timeout_s, browser_ice_servers(settings))
    else:
        service = VideoService(desk, make_rooms(settings), settings.handoff_staff_reconnect_s, browser_ice_servers(settings))
        service.rooms.set_peer_lost(service.on_peer_lost)
        app.state.video = service
    app.state.staff_auth = StaffAuth(app.state.redis, settings.staff_accounts, settings.staff_session_ttl_s)
    app.state.conversation.handoff = video.HandoffHook(desk)


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
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(BotUnavailable)
    async def _bot_unavailable(request: Request, exc: BotUnavailable) -> JSONResponse:
        return JSONResponse({"detail": BOT_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = "、".join(".".join(str(p) for p in err.get("loc", [])[1:]) or "请求" for err in exc.errors())
        return JSONResponse({"detail": f"请求参数不正确：{fields}。"}, status_code=422)
