"""One way to build the gateway's HTTP clients for its own services (Rasa, core, media nodes).

Sanic (Rasa) and uvicorn (core, media nodes) close an idle keep-alive connection after 5 s,
which is also httpx's default keep-alive expiry: a request sent on a connection at the moment
the server drops it fails with "Server disconnected" (a citizen's turn answered 503 right
after a quiet moment). Pooled connections are therefore given up well before the servers do.
"""
from __future__ import annotations

from typing import Any

import httpx

KEEPALIVE_EXPIRY_S = 2.0  # below the 5 s keep-alive timeout of Sanic and uvicorn


def internal_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient that never reuses a connection its server may be closing."""
    kwargs.setdefault("limits", httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S))
    return httpx.AsyncClient(**kwargs)
