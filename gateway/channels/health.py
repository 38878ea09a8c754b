"""Liveness (/healthz: the process answers) and readiness (/readyz: its dependencies do)."""
from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import RasaDep, RedisDep, SettingsDep

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
