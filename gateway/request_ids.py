"""Gives every HTTP request a request id (the caller's X-Request-ID if it is a plain token, else a
new one), answers it in the X-Request-ID header, and keeps it in bot.observability.REQUEST_ID so
log lines and the calls to Rasa and the core carry it. WebSocket turns get one each in
Conversation.turn instead: one socket carries many turns."""
from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.observability import REQUEST_ID, REQUEST_ID_HEADER, accepted_request_id, new_request_id

class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # optional in the ASGI spec
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
