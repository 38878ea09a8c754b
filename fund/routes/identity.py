"""Identity verification: ID number + name → SMS code → person_ref; or a bound WeChat openid."""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fund import id_numbers
from fund.privacy import mask_id_number
from fund.routes.deps import CoreDep, note_audit
from fund.verification import VerifiedPerson

router = APIRouter(prefix="/identity", tags=["identity"])
CHANNEL_REF = r"^[A-Za-z0-9_.:@-]{1,80}$"


class IdNumberCheck(BaseModel):
    id_number: str = Field(min_length=1, max_length=40, description="18 characters, or a pii_id_ token")


class ChallengeRequest(IdNumberCheck):
    name: str = Field(min_length=1, max_length=40, description="the name, or a pii_nm_ token")
    channel_ref: str = Field(default="unknown", pattern=CHANNEL_REF)


class VerifyRequest(BaseModel):
    code: str = Field(min_length=1, max_length=12)


class OpenidRequest(BaseModel):
    openid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    channel_ref: str = Field(default="wechat", pattern=CHANNEL_REF)


class BindRequest(OpenidRequest):
    person_ref: str = Field(min_length=1, max_length=64, pattern=r"^pr_[0-9a-f]{1,61}$")
    channel_ref: str = Field(pattern=CHANNEL_REF)


def _verified_body(person: VerifiedPerson) -> dict:
    return {"person_ref": person.person_ref, "name_masked": person.name_masked, "age": person.age,
            "elderly": person.elderly, "disabled": person.disabled, "idle_timeout_s": person.idle_timeout_s}


@router.post("/id-numbers/check")
async def check_id_number(body: IdNumberCheck, core: CoreDep) -> dict:
    """Format and checksum only, so a typo is caught as soon as it is typed, before the name.

    Looks up no person and counts no attempt; the answer says nothing about who exists.
    """
    clear = await run_in_threadpool(core.vault.resolve, body.id_number, "id")
    id_numbers.validate(clear)
    return {"valid": True}


@router.post("/challenges", status_code=201)
async def start_challenge(body: ChallengeRequest, core: CoreDep, request: Request) -> dict:
    note_audit(request, actor=body.channel_ref)
    clear = await run_in_threadpool(core.vault.resolve, body.id_number, "id")
    note_audit(request, subject=mask_id_number(id_numbers.normalize(clear)))
    number = id_numbers.validate(clear)
    name = await run_in_threadpool(core.vault.resolve, body.name, "nm")
    started = await run_in_threadpool(core.identity.start_challenge, number, name, body.channel_ref)
    note_audit(request, seq=started.audit_seq)
    return {"challenge_id": started.challenge_id, "phone_masked": started.phone_masked,
            "expires_in_s": started.expires_in_s}


@router.post("/challenges/{challenge_id}/verify")
async def verify_challenge(challenge_id: str, body: VerifyRequest, core: CoreDep, request: Request) -> dict:
    note_audit(request, subject="challenge:" + challenge_id[:11])
    person = await run_in_threadpool(core.identity.verify_code, challenge_id[:80], body.code)
    note_audit(request, subject=person.id_masked, seq=person.audit_seq)
    return _verified_body(person)


@router.post("/openid")
async def login_openid(body: OpenidRequest, core: CoreDep, request: Request) -> dict:
    note_audit(request, actor=body.channel_ref, subject="openid:" + body.openid[:6] + "***")
    person = await run_in_threadpool(core.identity.login_openid, body.openid, body.channel_ref)
    note_audit(request, subject=person.id_masked, seq=person.audit_seq)
    return _verified_body(person)


@router.post("/openid/bind")
async def bind_openid(body: BindRequest, core: CoreDep, request: Request) -> dict:
    """Called by the actions right after an ID + SMS verification in a WeChat conversation."""
    note_audit(request, actor=body.channel_ref, subject="openid:" + body.openid[:6] + "***")
    binding = await run_in_threadpool(core.identity.bind_openid, body.openid, body.person_ref, body.channel_ref)
    if binding.audit_seq is not None:
        note_audit(request, seq=binding.audit_seq)
    return {"bound": True, "changed": binding.changed, "replaced": binding.replaced}


@router.post("/openid/unbind")
async def unbind_openid(body: OpenidRequest, core: CoreDep, request: Request) -> dict:
    """The WeChat user's “解除绑定” (through the gateway); an openid bound to nobody is simply not bound."""
    note_audit(request, actor=body.channel_ref, subject="openid:" + body.openid[:6] + "***")
    binding = await run_in_threadpool(core.identity.unbind_openid, body.openid, body.channel_ref)
    if binding.audit_seq is not None:
        note_audit(request, seq=binding.audit_seq)
    return {"unbound": binding.changed}
