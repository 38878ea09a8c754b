"""Security headers on every HTTP response: a strict CSP, no framing, no sniffing, no referrer,
camera and microphone for this origin only, and no caching of /api/ answers (they carry
personal data).

Pure ASGI rather than BaseHTTPMiddleware, so WebSockets pass straight through and streamed
bodies are never buffered. A header the route set itself is left as it is.
"""
from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()",
}
# A Host header fit to be echoed into the CSP: name or [IPv6], optional port; nothing else.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def content_security_policy(host: str) -> str:
    """'self' alone covers same-origin WebSockets only in CSP3 browsers; the explicit ws(s)://host
    keeps older WebViews working without allowing any other host."""
    connect = f"'self' ws://{host} wss://{host}" if _HOST.fullmatch(host) else "'self'"
    return CSP.format(connect=connect)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # optional in the ASGI spec
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", content_security_policy(host))
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if api:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
