"""Uploaded materials: upload rights for the applicant, the upload itself (through the gateway,
with the core token and the citizen's X-Upload-Token), and the stored file for reviewers.

An upload is checked in this order, each refusal a 4xx with a code and a Chinese message:
token → item still needed → size → type (magic bytes) → pixels / pages → OCR cross-checks.
OCR runs in a worker thread behind the process's single OCR slot (fund.ocr).
"""
from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fund import ocr
from fund.material_checks import ReadLine, check, normalize
from fund.materials import (STATUS_NAMES, FileTooLarge, IdNumberMismatch, MaterialError, MaterialService,
                            decode, file_field, outcome_message)
from fund.routes.applications import Number, Reviewer, _person
from fund.routes.deps import CoreDep, note_audit
from fund.routes.errors import error_response

router = APIRouter(tags=["materials"])
review_router = APIRouter(prefix="/review", tags=["review"])
ItemKey = Annotated[str, Path(min_length=2, max_length=12, pattern=r"^m[0-9]{1,11}$")]
ENVELOPE_BYTES = 16 * 1024   # multipart headers and boundaries around the file


class TokenRequest(BaseModel):
    person_ref: str = Field(min_length=1, max_length=80)


def materials_service(request: Request) -> MaterialService:
    """One service per app, built at first use from the core's parts and settings."""
    state = request.app.state
    service = getattr(state, "materials", None)
    if service is None:
        settings, core = state.settings, state.core
        service = MaterialService(core.sessions, core.clock, core.audit,
                                  settings.core_audit_key.get_secret_value().encode(),
                                  settings.core_upload_dir, settings.core_upload_max_bytes)
        state.materials = service
    return service


Materials = Annotated[MaterialService, Depends(materials_service)]
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "JPEG, PNG or PDF (at most 5 pages), up to CORE_UPLOAD_MAX_BYTES"}}}}}}}


def refused(request: Request, exc: MaterialError) -> JSONResponse:
    return error_response(request, exc.code, exc.status, exc.message, **exc.extra)


@router.post("/applications/{number}/upload-token")
async def upload_token(number: Number, body: TokenRequest, core: CoreDep, materials: Materials,
                       request: Request):
    """Upload rights for the applicant's own open application with items 待补充 (30 minutes)."""
    person_id, _ = await run_in_threadpool(_person, core, body.person_ref, request)
    request.state.audit_subject = number
    try:
        return await run_in_threadpool(materials.issue_token, person_id, number)
    except MaterialError as exc:
        return refused(request, exc)


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is over `limit` (by Content-Length, else while reading)."""
    too_big = FileTooLarge(f"文件太大，上限为{(limit - ENVELOPE_BYTES) // 1048576} MB，请压缩后再上传。")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_big
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/applications/{number}/materials/{item_key}", openapi_extra=UPLOAD_BODY)
async def upload(number: Number, item_key: ItemKey, materials: Materials, request: Request,
                 x_upload_token: Annotated[Optional[str], Header(max_length=200)] = None):
    """One file for one item: {"item","status","status_name","message","fields","remaining"}."""
    request.state.audit_subject = number
    try:
        materials.check_token(number, x_upload_token)
        target = await run_in_threadpool(materials.target, number, item_key)
        request.state.audit_actor = target.channel_ref
        body = await read_capped(request, materials.max_bytes + ENVELOPE_BYTES)
        data = file_field(request.headers.get("content-type", ""), body)
        decoded = await run_in_threadpool(decode, data, materials.max_bytes)
        pages = await ocr.read_pages(decoded.images)
        verdict = check(target.name, [[ReadLine(normalize(line.text), line.score) for line in page]
                                      for page in pages], target.claim)
        if verdict.status == "refused":
            seq = await run_in_threadpool(materials.refuse, target, decoded, verdict)
            note_audit(request, seq=seq)
            return refused(request, IdNumberMismatch(item=item_key, status_name=STATUS_NAMES["refused"]))
        remaining, seq = await run_in_threadpool(materials.record, target, decoded, verdict)
    except MaterialError as exc:
        return refused(request, exc)
    note_audit(request, seq=seq)
    request.state.audit_outcome = verdict.status
    return {"item": item_key, "status": verdict.status, "status_name": STATUS_NAMES[verdict.status],
            "message": outcome_message(target.name, verdict, remaining), "fields": verdict.fields,
            "notes": verdict.notes, "remaining": remaining}


@review_router.get("/applications/{number}/materials/{item_key}/file")
async def stored_file(number: Number, item_key: ItemKey, staff: Reviewer, materials: Materials, request: Request):
    """The uploaded file as stored (its hash checked first), for a reviewer to look at."""
    request.state.audit_subject = number
    try:
        path, media_type = await run_in_threadpool(materials.stored_file, number, item_key)
    except MaterialError as exc:
        return refused(request, exc)
    request.state.audit_outcome = f"file {item_key}"
    return FileResponse(path, media_type=media_type, filename=f"{number}-{item_key}.{path.suffix.lstrip('.')}",
                        content_disposition_type="inline",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})
