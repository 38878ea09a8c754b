"""WeChat's message push: GET /wechat/callback (URL verification) and POST /wechat/callback.

A POST is answered "success" as soon as the message is durably queued (gateway/wechat/inbox.py);
the answer itself goes out later through the customer-service API, so a slow bot never makes
WeChat wait past its 5 s. Anything we will not act on gets a 4xx and a log line, never a 5xx
(a 503 only when redis cannot queue the message, so WeChat retries).
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from redis.exceptions import RedisError

from gateway.wechat import CallbackRejected

logger = logging.getLogger(__name__)
router = APIRouter(tags=["wechat"])


def _rejected(exc: CallbackRejected, what: str) -> PlainTextResponse:
    logger.warning("wechat.callback.rejected what=%s reason=%s status=%d", what, exc.reason, exc.status)
    return PlainTextResponse(exc.reason, status_code=exc.status)


@router.get("/wechat/callback", include_in_schema=False)
async def verify_url(request: Request) -> PlainTextResponse:
    try:
        echostr = request.app.state.wechat.codec.verify_url(request.query_params)
    except CallbackRejected as exc:
        return _rejected(exc, "url")
    logger.info("wechat.callback.url_verified")
    return PlainTextResponse(echostr)


@router.post("/wechat/callback", include_in_schema=False)
async def receive(request: Request) -> PlainTextResponse:
    wechat = request.app.state.wechat
    try:
        message = wechat.codec.decode(request.query_params, await request.body())
    except CallbackRejected as exc:
        return _rejected(exc, "message")
    try:
        queued = await wechat.inbox.enqueue(message)
    except RedisError as exc:
        logger.warning("wechat.callback.queue_unavailable error=%s", type(exc).__name__)
        return PlainTextResponse("retry", status_code=503, headers={"Retry-After": "1"})
    logger.info("wechat.callback.%s type=%s", "queued" if queued else "duplicate", message.msg_type)
    return PlainTextResponse("success")
