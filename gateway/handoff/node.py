"""A media node: one process hosting video rooms behind a small signaling API for the gateway.

`python -m gateway.handoff.node --port 8101` starts one; run one per core. The node announces
itself in redis with a heartbeat (gateway.handoff.nodes), redeems the room tokens the gateway
routes to it, records and audits its rooms, requeues a citizen whose staff member dropped or never
joined, and deletes the recordings past retention. At start it puts back the calls its previous run
(same host:port) was carrying.
Its API is for the gateway only (loopback, bearer token VIDEO_NODE_TOKEN); browsers reach the
node's media ports directly, as they would reach the gateway's in-process media.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from redis.exceptions import RedisError

from gateway.handoff.desk import HandoffDesk
from gateway.handoff.media import VideoService, captions_transcriber, make_rooms
from gateway.handoff.nodes import NodeDirectory
from gateway.handoff.retention import RecordingRetention
from gateway.handoff.tickets import Ticket
from gateway.logs import configure_logging
from gateway.redis_connection import connect as connect_redis
from gateway.settings import Settings, settings_or_exit

logger = logging.getLogger(__name__)


class Captions(BaseModel):
    on: bool
    by: str = ""


class Offer(BaseModel):
    token: str
    sdp: str
    type: str = "offer"


def create_node_app(settings: Settings, port: int) -> FastAPI:
    node_id = f"{settings.video_node_host}:{port}"
    url = f"http://{settings.video_node_host}:{port}"
    expected = settings.video_node_token.get_secret_value()

    async def _gateway_only(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, expected):
            raise HTTPException(status_code=401, detail="media node API: bearer token required")

    gateway_only = [Depends(_gateway_only)]

    async def heartbeat(directory: NodeDirectory, service: VideoService) -> None:
        while True:
            try:
                await directory.heartbeat(node_id, url, len(service.rooms))
            except (OSError, RedisError) as exc:  # redis away for a moment: the next beat tries again
                logger.warning("video.node.heartbeat_failed node=%s error=%s", node_id, exc)
            await asyncio.sleep(settings.video_node_heartbeat_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redis = connect_redis(settings.redis_url)
        desk = HandoffDesk(redis, settings)
        service = VideoService(desk, make_rooms(settings), settings.handoff_staff_reconnect_s, all_rooms_here=False,
                               transcriber=captions_transcriber(settings))
        service.rooms.set_peer_lost(service.on_peer_lost)
        directory = NodeDirectory(redis)
        app.state.service = service
        started_ms = desk.clock.ms()

        async def lost_here(ticket: Ticket) -> bool:
            """A room placed on this node id before this start died with the previous process."""
            return ticket.room_id not in service.rooms and await directory.placed_on(ticket.room_id) == node_id

        async def reconcile() -> None:
            while True:
                try:
                    await desk.reconcile_active(lost_here, started_ms)
                    return
                except (OSError, RedisError) as exc:
                    logger.warning("video.node.reconcile_failed node=%s error=%s", node_id, type(exc).__name__)
                await asyncio.sleep(settings.video_node_heartbeat_s)

        retention = RecordingRetention(redis, desk.audit, settings.video_recordings_dir,
                                       settings.video_recording_retention_days)
        jobs = [asyncio.ensure_future(heartbeat(directory, service)), asyncio.ensure_future(reconcile()),
                asyncio.ensure_future(service.watch_staff_joins(settings.handoff_staff_join_timeout_s)),
                asyncio.ensure_future(retention.run())]
        logger.info("video.node.started node=%s relay_encoded=%s", node_id, settings.video_relay_encoded)
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            try:
                await directory.leave(node_id)
            except (OSError, RedisError) as exc:  # its heartbeat expires by itself
                logger.warning("video.node.leave_failed node=%s error=%s", node_id, type(exc).__name__)
            await service.aclose()
            await desk.audit.aclose()
            await redis.aclose()

    app = FastAPI(title="Anju media node", lifespan=lifespan)

    @app.get("/healthz")
    async def health(request: Request) -> dict:
        return {"status": "ok", "node": node_id, "rooms": len(request.app.state.service.rooms)}

    @app.post("/node/offer", dependencies=gateway_only)
    async def offer(body: Offer, request: Request) -> dict:
        return await request.app.state.service.answer(body.token, body.sdp, body.type)

    @app.post("/node/tickets/{ticket_id}/close", dependencies=gateway_only)
    async def close(ticket_id: str, request: Request) -> dict:
        service: VideoService = request.app.state.service
        ticket = await service.desk.get(ticket_id)
        if ticket is None:
            raise HTTPException(status_code=404, detail="unknown ticket")
        await service.close(ticket)
        return {"closed": ticket.room_id}

    @app.post("/node/tickets/{ticket_id}/captions", dependencies=gateway_only)
    async def captions(ticket_id: str, body: Captions, request: Request) -> dict:
        service: VideoService = request.app.state.service
        ticket = await service.desk.get(ticket_id)
        if ticket is None:
            raise HTTPException(status_code=404, detail="unknown ticket")
        await service.set_captions(ticket, body.on, body.by)
        return {"on": body.on}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.handoff.node", description="Run one media node.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = settings_or_exit()
    configure_logging()
    uvicorn.run(create_node_app(settings, args.port), host=settings.video_node_host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
