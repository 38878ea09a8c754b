"""HTTP client for the fund's core business system (the sandbox core by default).

Every call has a timeout; only GETs (idempotent) are retried, once. Failures surface as
CoreUnavailable or CoreError so actions can answer with a response name, never with
exception text.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

import aiohttp

from actions.settings import get_settings
from bot.observability import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)


class CoreError(Exception):
    """The core answered, but refused the request (4xx)."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"core answered {status}: {detail}")
        self.status = status
        self.detail = detail


class CoreUnavailable(Exception):
    """The core could not be reached, timed out or failed (5xx)."""


async def _request(method: str, path: str, *, params: Optional[Dict[str, Any]] = None,
                   json: Optional[Dict[str, Any]] = None) -> Any:
    settings = get_settings()
    headers = {"Authorization": f"Bearer {settings.core_api_token}"} if settings.core_api_token else {}
    if current_request_id():
        headers[REQUEST_ID_HEADER] = current_request_id()
    timeout = aiohttp.ClientTimeout(total=settings.core_timeout_s)
    clean_params = {k: v for k, v in (params or {}).items() if v is not None}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        async with session.request(method, settings.core_url + path, params=clean_params, json=json) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 500:
                raise CoreUnavailable(f"core answered {resp.status}")
            if resp.status >= 400:
                raise CoreError(resp.status, (body or {}).get("detail"))
            return body


async def get(path: str, params: Optional[Dict[str, Any]] = None) -> Any:
    """GET with one retry: reads are idempotent."""
    for attempt in (1, 2):
        try:
            return await _request("GET", path, params=params)
        except (aiohttp.ClientError, asyncio.TimeoutError, CoreUnavailable) as exc:
            logger.warning("core.get.failed path=%s attempt=%d error=%s", path, attempt, type(exc).__name__)
            if attempt == 2:
                raise CoreUnavailable(str(exc)) from exc
    raise AssertionError("unreachable")


async def post(path: str, json: Dict[str, Any]) -> Any:
    """POST without retry: it may not be idempotent."""
    try:
        return await _request("POST", path, json=json)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        logger.warning("core.post.failed path=%s error=%s", path, type(exc).__name__)
        raise CoreUnavailable(str(exc)) from exc


def error_code(exc: CoreError) -> str:
    """The stable error code of a refusal (`{"detail": {"code": ...}}`), or "" if absent."""
    detail = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("code") or "")
    return ""


def error_field(exc: CoreError, name: str) -> Any:
    """An extra field of a refusal's detail (attempts_left, retry_after_s), or None."""
    detail = exc.detail
    return detail.get(name) if isinstance(detail, dict) else None
