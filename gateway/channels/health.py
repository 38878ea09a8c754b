"""Liveness (/healthz: the process answers), readiness (/readyz: its dependencies do) and the
Prometheus figures (/metrics, bearer METRICS_TOKEN; 404 while no token is configured)."""
from __future__ import annotations

import asyncio
import hmac

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.deps import RasaDep, RedisDep, SettingsDep
from gateway.sessions import bearer

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


async def http_ok(url: str, timeout_s: float) -> bool:
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def _redis_ok(redis) -> bool:
    try:
        return bool(await redis.ping())
    except Exception:  # any redis failure means "not ready"; the details go nowhere useful here
        return False


@router.get("/readyz")
async def readyz(settings: SettingsDep, redis: RedisDep, rasa: RasaDep) -> JSONResponse:
    names = ("redis", "rasa", "action_server", "core")
    results = await asyncio.gather(
        _redis_ok(redis),
        rasa.ready(),
        http_ok(settings.action_server_url + "/health", settings.health_timeout_s),
        http_ok(settings.core_url + "/healthz", settings.health_timeout_s),
    )
    checks = {name: "ok" if ok else "unavailable" for name, ok in zip(names, results)}
    ready = all(results)
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token.get_secret_value()
    if not token:
        raise HTTPException(status_code=404, detail="未启用监控指标（METRICS_TOKEN 未设置）。")
    if not hmac.compare_digest(bearer(request) or "", token):
        raise HTTPException(status_code=401, detail="监控指标需要有效的令牌。")
    return Response(await request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
