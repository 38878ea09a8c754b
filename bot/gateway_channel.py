"""Rasa's input channel for the gateway: the REST channel, open to the gateway alone.

Rasa loads it from bot/credentials.yml by module path (`bot.gateway_channel.GatewayInput`,
PYTHONPATH = repository root). Every request under /webhooks/gateway/ must carry
`X-Anju-Gateway-Token` equal to RASA_GATEWAY_TOKEN; anything else gets 401, so nobody
but the gateway can speak for a sender. Rasa's own HTTP API stays behind --auth-token.
"""
from __future__ import annotations

import hmac
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

import bot.durable_turns  # noqa: F401 - loaded with this channel at `rasa run` start: no forgotten turns
import bot.lean_turns  # noqa: F401 - loaded with this channel at `rasa run` start: lighter turns

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Anju-Gateway-Token"


def whole_turn_or_nothing(on_new_message: Callable[[UserMessage], Awaitable[None]]
                          ) -> Callable[[UserMessage], Awaitable[None]]:
    """Rasa's REST channel answers with whatever the bot said before a failure (a tracker store
    that could not save, say): a reply for a turn that is not kept. A failed turn answers nothing
    instead, and the gateway answers without the bot."""
    async def handle(message: UserMessage) -> None:
        try:
            await on_new_message(message)
        except Exception:
            message.output_channel.messages.clear()
            raise
    return handle


class GatewayInput(RestInput):
    """POST /webhooks/gateway/webhook, as the REST channel, with the gateway's token."""

    def __init__(self, token: Optional[str] = None) -> None:
        self._token = (os.environ.get("RASA_GATEWAY_TOKEN", "") if token is None else token).encode()

    @classmethod
    def name(cls) -> Text:
        return "gateway"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GatewayInput":
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        blueprint = super().blueprint(whole_turn_or_nothing(on_new_message))
        blueprint.middleware("request")(self._require_token)
        return blueprint

    async def _require_token(self, request: Request) -> Optional[HTTPResponse]:
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if self._token and hmac.compare_digest(given, self._token):
            return None
        logger.warning("rasa.gateway_channel.refused reason=%s", "missing_token" if not given else "wrong_token")
        return response.json({"error": "unauthorized", "message": f"{TOKEN_HEADER} header missing or wrong"},
                             status=401)
