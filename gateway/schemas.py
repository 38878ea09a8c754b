"""Request bodies of the routes that parse their JSON themselves (for clear Chinese errors instead
of pydantic's): declared here so the OpenAPI schema says what they take, for clients and for the
fuzzer (bench/fuzz_http.py) that generates requests from it."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field


class ChatBody(BaseModel):
    text: str = Field(description="the citizen's message, 1-2000 characters")
    metadata: Optional[dict[str, bool]] = Field(None, description="client flags, e.g. {\"elder_mode\": true}")


class WxLoginBody(BaseModel):
    code: str = Field(description="the code from wx.login()")


class TtsBody(BaseModel):
    text: str = Field(description="text to speak, 1-500 characters")


class HandoffBody(BaseModel):
    elder_mode: Optional[bool] = Field(None, description="self-declared: the priority lane within its allowance")


class CancelBody(BaseModel):
    key: str = Field(description="the ticket's key from the handoff_queued payload")


class AppointmentBody(BaseModel):
    slot: str = Field(description="an ISO start time from the handoff_booking payload")


class OfferBody(BaseModel):
    token: str
    sdp: str
    type: str = "offer"


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for a route that reads `model`'s JSON itself."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}
