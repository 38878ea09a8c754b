"""Runs the gateway process: logging configured once (with PII masking), then uvicorn."""
from __future__ import annotations

import argparse
import asyncio
import resource
from http import HTTPStatus
from typing import Optional

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.settings import Settings, settings_or_exit

FD_RESERVE = 512  # descriptors kept for outgoing connections (redis, Rasa, the core) and files
BUSY = "服务繁忙，请稍后再试；急需办理可拨打 12329 服务热线。\n"


class Inbox:
    """The part of asyncio.Queue that uvicorn's WebSocket protocol uses (put_nowait, get, empty),
    without the Queue's three deques and its Event: ~3 KB less on every idle socket."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list = []
        self._waiters: list[asyncio.Future] = []

    def put_nowait(self, item) -> None:
        self._items.append(item)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                break

    def empty(self) -> bool:
        return not self._items

    async def get(self):
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        return self._items.pop(0)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol with a lighter inbox, and without the handshake's parsed
    request and response once the socket is open (~3.5 KB of headers; the ASGI scope keeps its own
    copy). Idle sockets are what a gateway holds most of (bench/idle_sockets.py)."""

    max_connections: Optional[int] = None  # set by main() from the descriptor limit

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()

    def handle_connect(self, event) -> None:
        """Past max_connections a new socket is refused (503, Retry-After) before it takes a session:
        the descriptors left are for the open sockets' own turns (Rasa, redis, the core)."""
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self.logger.warning("gateway.ws.refused connections=%d limit=%d", len(self.connections),
                                self.max_connections)
            response = self.conn.reject(HTTPStatus.SERVICE_UNAVAILABLE, BUSY)
            response.headers["Retry-After"] = "30"
            self.handshake_complete = self.close_sent = True
            self.conn.send_response(response)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        super().handle_connect(event)

    async def send(self, message) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self.request = self.response = None


def connection_limit() -> int:
    """Connections this process may hold: its descriptor limit (raised to the hard limit) less a
    reserve for outgoing connections and files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(64, soft - FD_RESERVE)


def ws_protocol(settings: Settings):
    """"auto": the lean protocol above; any other name is uvicorn's own (to compare them)."""
    return LeanWebSocketProtocol if settings.ws_protocol == "auto" else settings.ws_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description="Anju gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    settings = settings_or_exit()
    LeanWebSocketProtocol.max_connections = connection_limit()
    # log_config=None: uvicorn's own loggers go through the masking handler as well.
    # ws_max_size: a frame larger than the largest chat message is refused by the server itself.
    # ws_ping_timeout as long as the interval: a busy loop is not mistaken for a dead peer.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                ws=ws_protocol(settings), ws_max_size=settings.ws_max_frame_bytes * 4,
                ws_per_message_deflate=settings.ws_per_message_deflate,
                ws_ping_interval=settings.ws_ping_interval_s or None,
                ws_ping_timeout=settings.ws_ping_interval_s or None)


if __name__ == "__main__":
    main()
