"""The edge's translation of library errors into HTTP: status, stable code, Chinese message.

Every error body is {"detail": {"code": ..., "message": ..., ...extras}}; the code is also
noted on request.state so the audit record names the outcome (or, when the library already
audited the refusal in its transaction, the record's seq, so the middleware writes none).
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fund.errors import CoreError, IdempotencyConflict, IdentityLocked, TokenExpired, WrongCode

MESSAGES: dict[str, tuple[int, str]] = {
    "invalid_id_format": (422, "身份证号格式不正确：应为18位，前17位为数字，最后一位为数字或X。"),
    "invalid_id_checksum": (422, "身份证号校验位不正确，请核对后重新输入。"),
    "token_expired": (422, "请重新输入身份证号。"),
    "invalid_input": (422, "输入内容不正确，请核对后重试。"),
    "invalid_kind": (422, "不支持的提取类型。"),
    "person_not_found": (404, "身份证号与姓名不匹配，或未查询到公积金账户，请核对后重试。"),
    "not_bound": (404, "该微信尚未绑定公积金账户，请先通过身份证号和短信验证码完成验证。"),
    "wrong_code": (401, "验证码不正确。"),
    "verification_expired": (401, "身份验证已过期，请重新验证。"),
    "locked": (423, "验证失败次数过多，已暂时锁定，请稍后再试。"),
    "challenge_expired": (410, "验证码已失效，请重新获取。"),
    "vault_unavailable": (503, "服务暂时不可用，请稍后再试。"),
    "policy_error": (500, "政策数据暂不可用，请稍后再试。"),
    "idempotency_conflict": (409, "该幂等键已用于内容不同的审计记录。"),
    "not_eligible": (409, "目前不符合该项提取的条件，不能提交申请。"),
    "amount_unavailable": (409, "该提取类型的可提取额度需由工作人员核定，暂不能在线申请，请到服务大厅办理或转人工。"),
    "amount_over_max": (422, "申请金额超过本次最多可提取的金额，请调整金额。"),
    "insufficient_balance": (409, "账户可用余额不足（已扣除办理中的提取申请），请调整金额。"),
    "application_open": (409, "您已有一笔同类提取申请正在办理，请等待办结或先撤销后再申请。"),
    "no_bank_card": (409, "未查询到您登记的收款银行卡，请携带身份证和银行卡到服务大厅登记后再申请。"),
    "application_not_found": (404, "未查询到该申请。"),
    "not_cancellable": (409, "申请已进入审核或已办结，不能撤销；如需帮助请转人工。"),
    "invalid_transition": (409, "该申请当前状态不能执行此操作。"),
    "idempotency_key_reused": (409, "该幂等键已用于另一笔申请，请为新的确认使用新的幂等键。"),
    "sign_mismatch": (409, "验证码与本次申请的类型或金额不符，请重新获取签署验证码。"),
}
TOKEN_EXPIRED_MESSAGES = {"id": "请重新输入身份证号。", "ph": "请重新输入手机号码。", "nm": "请重新输入姓名。",
                          "cd": "请重新输入银行卡号。"}


def error_body(code: str, message: str | None = None, **extra) -> dict:
    status, default = MESSAGES.get(code, (400, "请求无法处理。"))
    return {"detail": {"code": code, "message": message or default, **extra}}


def error_response(request: Request, code: str, status: int | None = None, message: str | None = None,
                   **extra) -> JSONResponse:
    request.state.audit_outcome = code
    return JSONResponse(error_body(code, message, **extra), status_code=status or MESSAGES.get(code, (400,))[0])


def install(app: FastAPI) -> None:
    @app.exception_handler(CoreError)
    async def _core_error(request: Request, exc: CoreError) -> JSONResponse:
        extra: dict = dict(getattr(exc, "extra", None) or {})   # e.g. max_amount, reasons
        message = getattr(exc, "message", None)
        if isinstance(exc, WrongCode):
            extra["attempts_left"] = exc.attempts_left
            message = f"验证码不正确，还可以尝试{exc.attempts_left}次。"
        elif isinstance(exc, TokenExpired):
            message = TOKEN_EXPIRED_MESSAGES.get(exc.kind)
        elif isinstance(exc, IdempotencyConflict):
            extra.update(seq=exc.seq, fields=exc.fields)
        elif isinstance(exc, IdentityLocked):
            extra["retry_after_s"] = exc.retry_after_s
            message = f"验证失败次数过多，已锁定，请{(exc.retry_after_s + 59) // 60}分钟后再试。"
        if exc.audit_seq is not None:  # the refusal was audited with the change it made
            request.state.audit_seq = exc.audit_seq
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, IdentityLocked) else None
        response = error_response(request, exc.code, message=message, **extra)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body", "problem": e.get("msg", "")}
                  for e in exc.errors()[:10]]
        return error_response(request, "invalid_request", 422, "请求内容格式不正确，请检查字段和取值。", errors=errors)
