"""Online withdrawal applications: the citizen's side (offer, signing code, submit, read,
cancel) with the shared bearer token, and the staff reviewers' side under /review with the
reviewer token (CORE_REVIEWER_TOKEN) and the reviewer's staff id."""
from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fund.applications import offer_view
from fund.routes.deps import Core, CoreDep, DbSession, note_audit
from fund.routes.persons import InvalidKind, PersonRef, verified_person
from fund.rulebook import KINDS

router = APIRouter(tags=["applications"])
review_router = APIRouter(prefix="/review", tags=["review"])
Number = Annotated[str, Path(min_length=1, max_length=20, pattern=r"^[A-Z0-9]{1,20}$")]
KEY = r"^[A-Za-z0-9_.:@-]{8,80}$"
Amount = Annotated[Decimal, Field(gt=0, le=100_000_000, max_digits=14, decimal_places=2)]


class SignRequest(BaseModel):
    person_ref: str = Field(min_length=1, max_length=80)
    kind: str = Field(max_length=20)
    amount: Amount


class ApplicationRequestBody(SignRequest):
    idempotency_key: str = Field(pattern=KEY, description="one per confirmation; a retry sends the same key")
    challenge_id: str = Field(min_length=1, max_length=80)
    code: str = Field(min_length=1, max_length=12)


class CancelRequest(BaseModel):
    person_ref: str = Field(min_length=1, max_length=80)


class RejectRequest(BaseModel):
    reason: str = Field(min_length=2, max_length=150, pattern=r"\S", description="shown to the citizen")


class ApproveRequest(BaseModel):
    note: Optional[str] = Field(default=None, max_length=150)


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidKind(kind)
    return kind


def _person(core: Core, person_ref: str, request: Request) -> tuple[int, str]:
    person_id, channel_ref = core.identity.touch(person_ref)
    request.state.audit_actor = channel_ref
    return person_id, channel_ref


@router.get("/persons/{person_ref}/applications/offer")
def application_offer(person_ref: PersonRef, core: CoreDep, session: DbSession, request: Request,
                      kind: Annotated[str, Query(max_length=20)]) -> dict:
    """What the citizen confirms: kind, largest amount, masked card, materials, declaration."""
    person = verified_person(core, session, person_ref, request)
    return offer_view(core.applications.offer(person.id, _kind(kind)))


@router.post("/applications/sign-challenges", status_code=201)
async def sign_challenge(body: SignRequest, core: CoreDep, request: Request) -> dict:
    person_id, channel_ref = await run_in_threadpool(_person, core, body.person_ref, request)
    started = await run_in_threadpool(core.applications.start_signing, person_id, channel_ref, _kind(body.kind),
                                      body.amount)
    note_audit(request, seq=started.audit_seq)
    return {"challenge_id": started.challenge_id, "phone_masked": started.phone_masked,
            "expires_in_s": started.expires_in_s, "declaration_version": core.applications.declaration.version}


@router.post("/applications", status_code=201)
async def submit(body: ApplicationRequestBody, core: CoreDep, request: Request):
    person_id, channel_ref = await run_in_threadpool(_person, core, body.person_ref, request)
    submitted = await run_in_threadpool(core.applications.submit, person_id, channel_ref, _kind(body.kind),
                                        body.amount, body.idempotency_key, body.challenge_id, body.code)
    if submitted.audit_seq is not None:
        note_audit(request, seq=submitted.audit_seq)
    request.state.audit_outcome = submitted.view["id"] + (" duplicate" if submitted.duplicate else "")
    body_out = {**submitted.view, "duplicate": submitted.duplicate}
    return JSONResponse(body_out, status_code=200 if submitted.duplicate else 201)


@router.get("/applications/{number}")
async def get_application(number: Number, core: CoreDep, request: Request,
                          person_ref: Annotated[str, Query(min_length=1, max_length=80)]) -> dict:
    person_id, _ = await run_in_threadpool(_person, core, person_ref, request)
    request.state.audit_subject = number
    return await run_in_threadpool(core.applications.get, number, person_id)


@router.post("/applications/{number}/cancel")
async def cancel(number: Number, body: CancelRequest, core: CoreDep, request: Request) -> dict:
    person_id, channel_ref = await run_in_threadpool(_person, core, body.person_ref, request)
    request.state.audit_subject = number
    view, seq = await run_in_threadpool(core.applications.cancel, person_id, number, channel_ref)
    note_audit(request, seq=seq)
    return view


# --- staff reviewers ---------------------------------------------------------------------------
def require_reviewer(request: Request,
                     x_staff_id: Annotated[Optional[str], Header(max_length=40)] = None) -> str:
    """The reviewer token (not the actions' core token) and the staff member's id, for the audit."""
    settings = request.app.state.settings
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
    expected = settings.core_reviewer_token
    if expected is not None and hmac.compare_digest(given, expected.get_secret_value().encode()):
        if not x_staff_id or not all(ch.isalnum() or ch in "_.-@" for ch in x_staff_id):
            request.state.audit_outcome = "staff_id_missing"
            raise HTTPException(status_code=400, detail={"code": "staff_id_missing",
                                                         "message": "请在 X-Staff-Id 中提供审核人员工号。"})
        request.state.audit_actor = f"staff:{x_staff_id}"
        return x_staff_id
    if hmac.compare_digest(given, settings.core_api_token.get_secret_value().encode()):
        request.state.audit_outcome = "not_reviewer"
        raise HTTPException(status_code=403, detail={"code": "not_reviewer", "message": "需要审核人员权限。"})
    request.state.audit_outcome = "unauthorized"
    raise HTTPException(status_code=401, detail={"code": "unauthorized", "message": "缺少或错误的访问令牌"})


Reviewer = Annotated[str, Depends(require_reviewer)]
Status = Literal["submitted", "under_review", "approved", "rejected", "paid", "cancelled"]


def _reviewed(request: Request, result: tuple[dict, int]) -> dict:
    view, seq = result
    note_audit(request, seq=seq)
    return view


@review_router.get("/applications")
async def review_list(staff: Reviewer, core: CoreDep, status: Optional[Status] = None) -> dict:
    return {"applications": await run_in_threadpool(core.applications.review_list, status)}


@review_router.get("/applications/{number}")
async def review_get(number: Number, staff: Reviewer, core: CoreDep, request: Request) -> dict:
    request.state.audit_subject = number
    return await run_in_threadpool(core.applications.get, number, None)


@review_router.post("/applications/{number}/start")
async def review_start(number: Number, staff: Reviewer, core: CoreDep, request: Request) -> dict:
    request.state.audit_subject = number
    return _reviewed(request, await run_in_threadpool(core.applications.review, number, staff, "start"))


@review_router.post("/applications/{number}/approve")
async def review_approve(number: Number, staff: Reviewer, core: CoreDep, request: Request,
                         body: Optional[ApproveRequest] = None) -> dict:
    request.state.audit_subject = number
    note = body.note if body else None
    return _reviewed(request, await run_in_threadpool(core.applications.review, number, staff, "approve", note))


@review_router.post("/applications/{number}/reject")
async def review_reject(number: Number, body: RejectRequest, staff: Reviewer, core: CoreDep,
                        request: Request) -> dict:
    request.state.audit_subject = number
    reason = body.reason.strip()
    return _reviewed(request, await run_in_threadpool(core.applications.review, number, staff, "reject", reason))
