"""One way to build the gateway's HTTP clients for its own services (Rasa, core, media nodes).

Sanic (Rasa) and uvicorn (core, media nodes) close an idle keep-alive connection after 5 s,
which is also httpx's default keep-alive expiry: a request sent on a connection at the moment
the server drops it fails with "Server disconnected" (a citizen's turn answered 503 right
after a quiet moment). Pooled connections are therefore given up well before the servers do.
"""
from __future__ import annotations

from typing import Any

import httpx

from bot.observability import REQUEST_ID_HEADER, current_request_id

KEEPALIVE_EXPIRY_S = 2.0  # below the 5 s keep-alive timeout of Sanic and uvicorn


async def _pass_request_id(request: httpx.Request) -> None:
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def internal_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient that never reuses a connection its server may be closing, and passes
    the current turn's request id on (X-Request-ID) so the logs of every process can be joined."""
    kwargs.setdefault("limits", httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S))
    kwargs.setdefault("event_hooks", {"request": [_pass_request_id]})
    return httpx.AsyncClient(**kwargs)
