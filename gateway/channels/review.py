"""Staff reviewers decide online withdrawal applications: the console's side of the core's review API.

Reviewers (role `reviewer`) and supervisors may review; plain staff get 403. The gateway calls
the core's /review API with CORE_REVIEWER_TOKEN and `X-Staff-Id: <username>` (the core's audit
actor becomes `staff:<username>`), and records each decision in the audit chain itself too, as
every staff action is. The core's answers are passed on without the citizen's sender id;
its refusals become Chinese messages a reviewer can act on.
"""
from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, Optional

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from gateway.channels.staff import audited
from gateway.internal_http import internal_client
from gateway.staff_auth import CurrentStaff, StaffSession

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/staff/review", tags=["review"])
REVIEW_ROLES = ("reviewer", "supervisor")
STATUS_NAMES = {"submitted": "已提交", "under_review": "审核中", "approved": "已审批", "rejected": "未通过",
                "paid": "已到账", "cancelled": "已撤销"}
CHANNELS = {"web": "网页", "api": "网页", "wx": "微信小程序", "wxmsg": "微信", "wechat": "微信", "voice": "电话"}
REASON_MIN, REASON_MAX = 2, 150
REASON_RULE = f"请填写驳回原因（{REASON_MIN}–{REASON_MAX} 个字），市民会看到这段原因。"
CORE_UNAVAILABLE = "核心业务系统暂时无法访问，请稍后再试。"
NOT_CONFIGURED = "在线申请审核未启用：未配置审核令牌（CORE_REVIEWER_TOKEN），请联系系统管理员。"
MISCONFIGURED = "核心业务系统拒绝了审核令牌（与核心配置不一致），请联系系统管理员。"
FILE_MAX_BYTES = 20 * 1024 * 1024
Number = Annotated[str, Path(pattern=r"^[A-Z0-9]{1,20}$")]
ItemKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ApproveBody(BaseModel):
    note: Optional[str] = Field(default=None, max_length=REASON_MAX)


class RejectBody(BaseModel):
    reason: str = Field(default="", max_length=1000)   # checked below, with a message that says the rule


class CoreRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ReviewCore:
    """The core's review API as one reviewer sees it; every call names the reviewer."""

    def __init__(self, base_url: str, token: Optional[str], timeout_s: float,
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self._token = token
        self._http = internal_client(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, staff: str, **kwargs: Any) -> httpx.Response:
        if not self._token:
            raise CoreRefused(503, NOT_CONFIGURED)
        headers = {"Authorization": f"Bearer {self._token}", "X-Staff-Id": staff}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            logger.warning("review.core.unavailable error=%s", type(exc).__name__)
            raise CoreRefused(503, CORE_UNAVAILABLE) from exc
        if response.status_code >= 400:
            raise refusal(response)
        return response

    async def call(self, method: str, path: str, staff: str, **kwargs: Any) -> dict:
        response = await self._send(method, path, staff, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise CoreRefused(502, CORE_UNAVAILABLE) from exc

    async def file(self, path: str, staff: str) -> httpx.Response:
        return await self._send("GET", path, staff)


def refusal(response: httpx.Response) -> CoreRefused:
    """The core's error body in words for a reviewer (409 invalid_transition names the current status)."""
    try:
        detail = response.json().get("detail") or {}
    except ValueError:
        detail = {}
    detail = detail if isinstance(detail, dict) else {}
    code, status = detail.get("code", ""), response.status_code
    if code == "invalid_transition":
        current = detail.get("current_status", "")
        return CoreRefused(409, f"该申请已被处理，当前状态：{STATUS_NAMES.get(current, current or '未知')}。请刷新列表。")
    if code == "application_not_found" or status == 404:
        return CoreRefused(404, "未查询到该申请（或该材料文件）。")
    if status in (401, 403) or code == "staff_id_missing":
        logger.error("review.core.refused_token status=%s code=%s", status, code)
        return CoreRefused(503, MISCONFIGURED)
    if status == 422:
        return CoreRefused(422, detail.get("message") or "提交的内容不符合要求。")
    if status >= 500:
        logger.warning("review.core.failed status=%s", status)
        return CoreRefused(503, CORE_UNAVAILABLE)
    return CoreRefused(status, detail.get("message") or "核心业务系统拒绝了该操作。")


async def _reviewer(session: CurrentStaff) -> StaffSession:
    if session.role not in REVIEW_ROLES:
        raise HTTPException(status_code=403, detail="只有审核人员或主管可以审核在线申请。")
    return session


Reviewer = Annotated[StaffSession, Depends(_reviewer)]


def _core(request: Request) -> ReviewCore:
    return request.app.state.review_core


def for_staff(view: dict) -> dict:
    """The core's view without the citizen's sender id (which could continue their chat): the channel in words."""
    view = dict(view)
    channel_ref = view.pop("channel_ref", None) or ""
    view["channel"] = CHANNELS.get(channel_ref.split("-")[0], "其他")
    return view


async def _decided(request: Request, staff: StaffSession, number: str, action: str, call) -> dict:
    try:
        view = await call
    except CoreRefused as exc:
        if exc.status == 409:
            await audited(request, staff.username, f"review.{action}", number, "refused invalid_transition")
        raise HTTPException(status_code=exc.status, detail=exc.message)
    await audited(request, staff.username, f"review.{action}", number, view.get("status", "ok"))
    logger.info("review.%s number=%s staff=%s", action, number, staff.username)
    return for_staff(view)


@router.get("/applications")
async def list_applications(request: Request, staff: Reviewer,
                            status: Literal["open", "submitted", "under_review", "approved", "rejected", "paid",
                                            "cancelled", "all"] = "open") -> dict:
    """Default `open`: submitted and under review, oldest first (the order they should be decided in)."""
    core = _core(request)
    wanted = {"open": ["submitted", "under_review"], "all": [None]}.get(status, [status])
    found: list[dict] = []
    try:
        for one in wanted:
            found += (await core.call("GET", "/review/applications", staff.username,
                                      params={"status": one} if one else None))["applications"]
    except CoreRefused as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message)
    found.sort(key=lambda a: a.get("submitted_at") or "")
    return {"applications": [for_staff(a) for a in found]}


@router.get("/applications/{number}")
async def one_application(number: Number, request: Request, staff: Reviewer) -> dict:
    try:
        return for_staff(await _core(request).call("GET", f"/review/applications/{number}", staff.username))
    except CoreRefused as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message)


@router.post("/applications/{number}/start")
async def start(number: Number, request: Request, staff: Reviewer) -> dict:
    call = _core(request).call("POST", f"/review/applications/{number}/start", staff.username)
    return await _decided(request, staff, number, "start", call)


@router.post("/applications/{number}/approve")
async def approve(number: Number, request: Request, staff: Reviewer, body: Optional[ApproveBody] = None) -> dict:
    note = (body.note or "").strip() if body else ""
    call = _core(request).call("POST", f"/review/applications/{number}/approve", staff.username,
                               json={"note": note} if note else None)
    return await _decided(request, staff, number, "approve", call)


@router.post("/applications/{number}/reject")
async def reject(number: Number, body: RejectBody, request: Request, staff: Reviewer) -> dict:
    reason = " ".join(body.reason.split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise HTTPException(status_code=422, detail=REASON_RULE)
    call = _core(request).call("POST", f"/review/applications/{number}/reject", staff.username,
                               json={"reason": reason})
    return await _decided(request, staff, number, "reject", call)


@router.get("/applications/{number}/materials/{item_key}/file")
async def material_file(number: Number, item_key: ItemKey, request: Request, staff: Reviewer) -> Response:
    """An uploaded material, passed through from the core (never cached, never run as a page)."""
    try:
        got = await _core(request).file(f"/review/applications/{number}/materials/{item_key}/file", staff.username)
    except CoreRefused as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message)
    if len(got.content) > FILE_MAX_BYTES:
        raise HTTPException(status_code=502, detail="材料文件过大，无法显示。")
    media_type = got.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if media_type not in ("image/jpeg", "image/png", "application/pdf"):
        media_type = "application/octet-stream"
    await audited(request, staff.username, "review.material.read", number, item_key)
    return Response(got.content, media_type=media_type, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{number}-{item_key}"',
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"})
