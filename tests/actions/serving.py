"""Runs a Sanic app on a free loopback port inside a test's event loop (no sanic-testing here)."""
from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sanic import Sanic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serving(app: Sanic) -> AsyncIterator[str]:
    """Starts `app`, yields its base URL, and closes it again."""
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
