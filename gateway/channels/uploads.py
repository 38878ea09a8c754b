"""Material uploads from the web widget: POST /api/uploads/{application_id}/{item_key}.

The caller needs a live chat session (cookie or bearer, as for /api/chat) and the upload token
the bot handed out with the `custom.upload` payload (X-Upload-Token); the token itself is
checked by the core, which owns the application. The body is capped before it is read whole
(Content-Length at once, then while streaming; BodyLimit has the same cap for this path),
uploads are rate-limited per session, and the multipart body goes to the core unchanged with
the core token. The core's answer (status and JSON) comes back unchanged; a core that cannot be
reached is a 503 with a Chinese message.
"""
from __future__ import annotations

import logging
from typing import Annotated, Optional

import httpx
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from gateway import sessions
from gateway.deps import LimiterDep, SessionsDep, SettingsDep
from gateway.internal_http import internal_client
from gateway.limits import Rate
from gateway.turns import session_or_unavailable

logger = logging.getLogger(__name__)
router = APIRouter(tags=["uploads"])

ApplicationId = Annotated[str, Path(min_length=1, max_length=20, pattern=r"^[A-Z0-9]{1,20}$")]
ItemKey = Annotated[str, Path(min_length=2, max_length=12, pattern=r"^m[0-9]{1,11}$")]
CORE_UNAVAILABLE = "材料上传服务暂时不可用，请稍后再试；急需办理可拨打 12329 服务热线。"
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "JPEG, PNG or PDF (at most 5 pages, 10 MB): a photo or scan"}}}}}}}


def refusal(status: int, code: str, message: str) -> JSONResponse:
    """The same error shape as the core's, so the widget reads one kind of answer."""
    headers = {"Retry-After": "10"} if status == 503 else None
    return JSONResponse({"detail": {"code": code, "message": message}}, status_code=status, headers=headers)


async def capped_body(request: Request, limit: int) -> Optional[bytes]:
    """The body, or None as soon as it is over `limit`."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/api/uploads/{application_id}/{item_key}", openapi_extra=UPLOAD_BODY,
             responses={200: {"description": "{item, status: accepted|needs_review, status_name, message, fields, "
                                             "remaining}"},
                        401: {"description": "no live session, or the upload token is missing/invalid/expired"},
                        413: {"description": "file too large"}, 415: {"description": "not JPEG, PNG or PDF"},
                        422: {"description": "e.g. id_number_mismatch: the document is another person's"},
                        503: {"description": "the core cannot be reached"}})
async def upload_material(application_id: ApplicationId, item_key: ItemKey, request: Request, store: SessionsDep,
                          limiter: LimiterDep, settings: SettingsDep,
                          x_upload_token: Annotated[Optional[str], Header(max_length=200)] = None) -> Response:
    session = await session_or_unavailable(store, sessions.presented_id(request))
    if session is None:
        return refusal(401, "session_required", "会话不存在或已过期，请刷新页面，回到对话中重新获取上传入口。")
    if not x_upload_token:
        return refusal(401, "upload_token_invalid", "缺少上传凭证，请使用对话中显示的上传按钮上传。")
    await limiter.hit("upload_session", session.sender_id, Rate.parse(settings.rate_upload_session))
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return refusal(422, "file_missing", "没有收到文件：请以 multipart/form-data 上传，文件字段名为 file。")
    body = await capped_body(request, settings.limit_body_upload_bytes)
    if body is None:
        limit_mb = settings.limit_body_upload_bytes // (1024 * 1024)
        return refusal(413, "file_too_large", f"文件太大，上限为{limit_mb} MB，请压缩后再上传。")
    url = f"{settings.core_url}/applications/{application_id}/materials/{item_key}"
    headers = {"Authorization": f"Bearer {settings.core_api_token.get_secret_value()}",
               "Content-Type": content_type, "X-Upload-Token": x_upload_token}
    try:
        async with internal_client(timeout=httpx.Timeout(settings.upload_timeout_s, connect=5.0)) as client:
            answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        logger.warning("uploads.core.unavailable error=%s", type(exc).__name__)
        return refusal(503, "core_unavailable", CORE_UNAVAILABLE)
    if answer.status_code >= 500 or "json" not in answer.headers.get("content-type", ""):
        logger.warning("uploads.core.failed status=%s", answer.status_code)
        return refusal(503, "core_unavailable", CORE_UNAVAILABLE)
    logger.info("uploads.forwarded item=%s status=%s bytes=%d", item_key, answer.status_code, len(body))
    return Response(answer.content, status_code=answer.status_code, media_type="application/json")
